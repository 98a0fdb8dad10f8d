"""tftransformer: the TensorFlow "Transformer and Keras" NMT tutorial, as a package.

The public API mirrors the tutorial's names; see README.md.
"""

from tftransformer.attention import (
    BaseAttention,
    CausalSelfAttention,
    CrossAttention,
    GlobalSelfAttention,
)
from tftransformer.config import TransformerConfig
from tftransformer.decoder import Decoder, DecoderLayer
from tftransformer.embedding import PositionalEmbedding, positional_encoding
from tftransformer.encoder import Encoder, EncoderLayer
from tftransformer.feed_forward import FeedForward
from tftransformer.training import (
    CustomSchedule,
    masked_accuracy,
    masked_loss,
    tutorial_optimizer,
)
from tftransformer.transformer import Transformer

__version__ = "0.1.0"

__all__ = [
    "BaseAttention",
    "CausalSelfAttention",
    "CrossAttention",
    "CustomSchedule",
    "Decoder",
    "DecoderLayer",
    "Encoder",
    "EncoderLayer",
    "FeedForward",
    "GlobalSelfAttention",
    "PositionalEmbedding",
    "Transformer",
    "TransformerConfig",
    "__version__",
    "masked_accuracy",
    "masked_loss",
    "positional_encoding",
    "tutorial_optimizer",
]
