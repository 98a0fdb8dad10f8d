"""tftransformer: the TensorFlow "Transformer and Keras" NMT tutorial, as a package.

The public API mirrors the tutorial's names; see README.md. The tutorial's components
are the flat modules of this package, under their section names; what goes beyond the
tutorial lives in subpackages: `inference/` (cached decoding, beam search, serving
export), `classification/`, `runs/` (the jobs over a run directory) and `cli/`.
"""

from tftransformer.attention import (
    BaseAttention,
    CausalSelfAttention,
    CrossAttention,
    GlobalSelfAttention,
)
from tftransformer.classification.model import TransformerClassifier
from tftransformer.config import TransformerConfig
from tftransformer.corpus import CorpusError, load_corpus
from tftransformer.data import (
    BATCH_SIZE,
    BUFFER_SIZE,
    MAX_TOKENS,
    make_batches,
    make_bucketed_batches,
    prepare_batch,
)
from tftransformer.decoder import Decoder, DecoderLayer
from tftransformer.embedding import PositionalEmbedding, positional_encoding
from tftransformer.encoder import Encoder, EncoderLayer
from tftransformer.export import ExportTranslator
from tftransformer.feed_forward import FeedForward
from tftransformer.inference.fast_translator import FastTranslator
from tftransformer.inference.serving_translator import ServingTranslator
from tftransformer.plotting import plot_attention_head, plot_attention_weights
from tftransformer.tokenizers import (
    CustomTokenizer,
    build_tokenizers,
    load_tokenizers,
    save_tokenizers,
)
from tftransformer.training import (
    CustomSchedule,
    MaskedLoss,
    masked_accuracy,
    masked_loss,
    tutorial_optimizer,
)
from tftransformer.transformer import Transformer
from tftransformer.translator import Translator, print_translation
from tftransformer.version import __version__

__all__ = [
    "BATCH_SIZE",
    "BUFFER_SIZE",
    "CorpusError",
    "CustomTokenizer",
    "MAX_TOKENS",
    "BaseAttention",
    "CausalSelfAttention",
    "CrossAttention",
    "CustomSchedule",
    "Decoder",
    "DecoderLayer",
    "Encoder",
    "ExportTranslator",
    "FastTranslator",
    "EncoderLayer",
    "FeedForward",
    "GlobalSelfAttention",
    "PositionalEmbedding",
    "Transformer",
    "TransformerClassifier",
    "TransformerConfig",
    "Translator",
    "__version__",
    "build_tokenizers",
    "load_corpus",
    "load_tokenizers",
    "make_batches",
    "make_bucketed_batches",
    "prepare_batch",
    "print_translation",
    "plot_attention_head",
    "plot_attention_weights",
    "save_tokenizers",
    "ServingTranslator",
    "masked_accuracy",
    "masked_loss",
    "MaskedLoss",
    "positional_encoding",
    "tutorial_optimizer",
]
