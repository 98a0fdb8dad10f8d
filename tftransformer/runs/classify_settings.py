"""A classifier run's settings (`RUN/config.json`) and their checks.

`ClassifySettings` is everything that defines a `classify train` run; the jobs
that use it are in `tftransformer.runs.classify`.
"""

from __future__ import annotations

import dataclasses

from tftransformer._files import RunError
from tftransformer.classification.model import check_threshold
from tftransformer.classification.thresholds import DEFAULT_THRESHOLD
from tftransformer.config import TransformerConfig
from tftransformer.data import MAX_TOKENS
from tftransformer.runs.train_options import TOKENIZERS
from tftransformer.tokenizers import MIN_TOKEN_COUNT, VOCAB_SIZE
from tftransformer.version import __version__

MODELS = ("transformer", "lstm", "gru", "linear")
# Adam's rate per model when --learning-rate is not given, measured on the
# embedded tags in 10 epochs: at 2e-3 the LSTM's validation micro-F1 was still 0
# after 10 epochs (0.60 at 1e-2) and the GRU's 0.63 (0.70 at 1e-2); the convex
# linear model needs a large step to reach scikit-learn's optimum in 10 epochs.
DEFAULT_LEARNING_RATES = {"transformer": 5e-4, "lstm": 1e-2, "gru": 1e-2, "linear": 5e-2}
AUTO = "auto"


@dataclasses.dataclass
class ClassifySettings:
    """Everything that defines a classifier run; stored as RUN/config.json.

    `hparams` sizes the Transformer; the recurrent models take their embedding
    size from `hparams.d_model` and their dropout from `hparams.dropout_rate`.
    `learning_rate=None` means the model's entry in `DEFAULT_LEARNING_RATES`.
    `threshold` is a probability, or `"auto"`: per-label thresholds chosen on
    the validation split (multilabel only).
    """

    data: str = "embedded"
    side: str = "en"
    mode: str = "multilabel"
    model: str = "transformer"
    pooling: str = "mean"
    threshold: float | str = DEFAULT_THRESHOLD
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float | None = None
    warmup_epochs: float = 1.0
    max_tokens: int = MAX_TOKENS
    vocab_size: int = VOCAB_SIZE
    min_token_count: int = MIN_TOKEN_COUNT
    # "sentencepiece" (cased, any script) or "wordpiece" (the tutorial's: lower-cased, accents
    # stripped, Hangul decomposed into jamo). Chosen by measurement (docs/classification.md,
    # "Which tokenizer"): SentencePiece scored higher on the embedded tags and on a small
    # Korean task, seeds 0-2. Runs from before this default are WordPiece (`from_json`).
    tokenizer: str = "sentencepiece"
    rnn_layers: int = 1
    rnn_units: int = 128
    bidirectional: bool = False
    linear_c: float = 1.0
    seed: int = 0
    limit: int | None = None
    hparams: TransformerConfig = dataclasses.field(default_factory=TransformerConfig)

    def __post_init__(self):
        if self.learning_rate is None and self.model in DEFAULT_LEARNING_RATES:
            self.learning_rate = DEFAULT_LEARNING_RATES[self.model]

    def check(self):
        """A `ValueError` naming the first setting that cannot work."""
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(
                f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {self.tokenizer!r}"
            )
        if isinstance(self.threshold, str) and self.threshold != AUTO:
            raise ValueError(f"threshold must be a number or 'auto', got {self.threshold!r}")
        if self.threshold == AUTO:
            if self.mode != "multilabel":
                raise ValueError("threshold 'auto' needs mode multilabel (multiclass takes "
                                 "the argmax)")  # fmt: skip
        else:
            check_threshold(self.threshold, 1)
        if not self.linear_c > 0:
            raise ValueError(f"linear_c must be positive, got {self.linear_c!r}")

    def to_json(self):
        data = dataclasses.asdict(self)
        data["hparams"] = self.hparams.to_dict()
        return {"kind": "classifier", "tftransformer_version": __version__, **data}

    @classmethod
    def from_json(cls, data, source):
        data = dict(data)
        if data.pop("kind", None) != "classifier":
            raise RunError(f'{source}: not a classifier run (no "kind": "classifier")')
        data.pop("tftransformer_version", None)
        data.setdefault("tokenizer", "wordpiece")  # the default before SentencePiece
        try:
            hparams = TransformerConfig.from_dict(data.pop("hparams", {}))
            settings = cls(**data, hparams=hparams)
        except (TypeError, ValueError) as error:
            raise RunError(f"{source}: {error}") from None
        settings._check_types(source)
        try:
            settings.check()
        except ValueError as error:
            raise RunError(f"{source}: {error}") from None
        return settings

    def _check_types(self, source):
        """A `RunError` naming the first setting whose JSON value has the wrong type."""
        for field in dataclasses.fields(self):
            if field.name == "hparams":
                continue
            value, kinds = getattr(self, field.name), field.type.split(" | ")
            if value is None and "None" in kinds:
                continue
            if isinstance(value, bool):
                if "bool" not in kinds:
                    raise RunError(f"{source}: {field.name} must be {kinds[0]}, got {value!r}")
                continue
            expected = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
                        "None": ()}  # fmt: skip
            if not isinstance(value, tuple(t for k in kinds for t in expected[k])):
                kind = kinds[0]
                raise RunError(f"{source}: {field.name} must be {kind}, got {value!r}")
