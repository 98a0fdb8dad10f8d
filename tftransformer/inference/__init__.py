"""Fast inference beyond the tutorial: the cached incremental decoder, greedy and beam
search as single graphs over a batch, `FastTranslator`, and the batched serving export.

Imports only the tutorial's modules (see the import-linter contracts in pyproject.toml).
"""
