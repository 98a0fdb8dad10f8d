"""The opt-in training options of `tftransformer train` (issue 7), checked and applied.

All are off by default, which is the tutorial's training: float32, no XLA,
`masked_loss` without smoothing, one device, batches padded to their longest
sentence. `train.build_model` and `train.make_batches_for` apply them.
"""

from __future__ import annotations

import contextlib

import keras

from tftransformer._checks import positive_int
from tftransformer._files import RunError
from tftransformer.runs.distribute import STRATEGIES
from tftransformer.tokenizers import BERT_TOKENIZER_PARAMS, CASED_BERT_TOKENIZER_PARAMS
from tftransformer.training import MaskedLoss, masked_loss

# --mixed-precision value -> Keras dtype policy (variables stay float32).
PRECISION_POLICIES = {"bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def _name(field, source):
    """The option as the user wrote it: a `--flag`, or `file: field`."""
    return f"--{field.replace('_', '-')}" if source is None else f"{source}: {field}"


# `train --recipe NAME`: settings that replace the defaults (flags given explicitly still win).
# "tutorial" is every training setting of the tutorial: 20 epochs, WordPiece, batches of 64
# padded to their longest sentence, float32, `CustomSchedule(d_model, 4000)`, the last weights
# kept, dropout 0.1 and no label smoothing.
RECIPES = {
    "default": {},
    "tutorial": dict(epochs=20, tokenizer="wordpiece", bucket=False, tokens_per_batch=None,
                     batch_size=64, mixed_precision=None, schedule="tutorial", warmup_steps=4000,
                     keep="last", dropout_rate=0.1, label_smoothing=0.0),
}  # fmt: skip

# The subword tokenizer kinds a run can be trained with (see `runs.train.prepare_tokenizers`).
TOKENIZERS = ("wordpiece", "wordpiece-cased", "sentencepiece")


def bert_params(kind):
    """The BertTokenizer parameters of a WordPiece kind (`wordpiece` is the tutorial's)."""
    return CASED_BERT_TOKENIZER_PARAMS if kind == "wordpiece-cased" else BERT_TOKENIZER_PARAMS


def check_train_options(settings, source=None) -> None:
    """`RunError` naming the option and value if the issue-7 options are unusable.

    `source` is the config file the settings came from (None: the command line).
    """
    if settings.tokenizer not in TOKENIZERS:
        raise RunError(
            f"{_name('tokenizer', source)} must be one of {', '.join(TOKENIZERS)}, "
            f"got {settings.tokenizer!r}"
        )
    precision = settings.mixed_precision
    if precision is not None and precision not in (*PRECISION_POLICIES, "auto"):
        raise RunError(
            f"{_name('mixed_precision', source)} must be auto, bf16 or fp16, got {precision!r}"
        )
    if settings.strategy not in STRATEGIES:
        raise RunError(
            f"{_name('strategy', source)} must be one of {', '.join(STRATEGIES)}, "
            f"got {settings.strategy!r}"
        )
    if not isinstance(settings.jit_compile, bool):
        raise RunError(f"{_name('jit_compile', source)} must be true or false, "
                       f"got {settings.jit_compile!r}")  # fmt: skip
    smoothing = settings.label_smoothing
    if (
        isinstance(smoothing, bool)
        or not isinstance(smoothing, (int, float))
        or not 0 <= smoothing < 1
    ):
        raise RunError(
            f"{_name('label_smoothing', source)} must be a number in [0, 1), got {smoothing!r}"
        )
    budget = settings.tokens_per_batch
    if budget is not None:
        positive_int(budget, _name("tokens_per_batch", source), error=RunError)
        if not settings.bucket:
            raise RunError(
                f"{_name('tokens_per_batch', source)} {budget} needs "
                f"{_name('bucket', source)} (a token budget sizes length-bucketed batches)"
            )


@contextlib.contextmanager
def dtype_policy(precision):
    """Keras' global dtype policy set for `precision` (None: float32) inside the block.

    Deviation from tutorial (`--mixed-precision`, "auto" by default): layers created in
    the block compute in bfloat16/float16 with float32 variables.
    """
    if precision is None:
        yield
        return
    previous = keras.mixed_precision.global_policy()
    # Deviation from tutorial (--mixed-precision, auto by default): 16-bit compute where native.
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[precision])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def training_loss(settings, strategy):
    """The tutorial's `masked_loss`, unless smoothing or several replicas need `MaskedLoss`."""
    if not settings.label_smoothing and strategy.num_replicas_in_sync == 1:
        return masked_loss
    # Deviation from tutorial (opt-in): see `MaskedLoss`.
    return MaskedLoss(label_smoothing=settings.label_smoothing)
