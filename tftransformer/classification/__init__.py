"""Text classification beyond the NMT tutorial: the Transformer-encoder classifier, labelled
data (corpora, label vocabularies) and its serving export.

Imports only the tutorial's modules (see the import-linter contracts in pyproject.toml).
"""
