"""Jobs over a run directory: training (backups, options, distribution), averaging,
translation, evaluation and scoring, plots, and the classifier's jobs.

A run directory is the unit a user holds (see `paths.py`); the command line (`cli/`) only
parses arguments and calls these jobs.
"""
