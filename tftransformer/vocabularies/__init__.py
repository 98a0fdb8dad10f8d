"""Subword tokenizers beyond the tutorial's WordPiece: SentencePiece (cased, reversible,
any script), and one vocabulary shared by both languages (SentencePiece or WordPiece),
with the interface and reserved ids of the tutorial's `CustomTokenizer`.

Imports only the tutorial's modules (see the import-linter contracts in pyproject.toml).
"""
