"""
Title: Neural machine translation with a Transformer and Keras
Author: the tftransformer developers, following the TensorFlow tutorial
Description: The official tutorial, heading by heading, with every component imported
    from `tftransformer` instead of redefined, on TensorFlow 2.21 / Keras 3.
Mirrors: https://www.tensorflow.org/text/tutorials/transformer

Run: `python tutorials/transformer.py` (full: trains for 20 epochs), or with `--smoke`
(a few training steps, short decoding) to check everything in a few minutes. Figures are
written as PNG files under `--out` (default `tutorials_out/transformer`).
"""

"""
## Why Transformers are significant

The Transformer replaces recurrence with attention: every position looks at every other
position in one step, so training parallelizes and long-range links are one hop away.
This script builds the tutorial's Portuguese→English translator from the same parts.
"""

"""
## Setup

The tutorial pins old packages (cuDNN, protobuf); here `pip install tftransformer` is all.
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import matplotlib  # noqa: E402

if not os.environ.get("DISPLAY"):
    matplotlib.use("Agg")  # no display: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tftransformer as tt  # noqa: E402
from tftransformer import plotting  # noqa: E402

parser = argparse.ArgumentParser(description="The Transformer tutorial on tftransformer.")
parser.add_argument("--smoke", action="store_true", help="tiny data and training, for CI")
parser.add_argument("--out", default="tutorials_out/transformer")
parser.add_argument("--epochs", type=int, default=20)
args = parser.parse_args()
OUT = Path(args.out)
OUT.mkdir(parents=True, exist_ok=True)
keras.utils.set_random_seed(0)


def save(name):
    path = OUT / name
    plt.savefig(path)
    plt.close("all")
    print(f"[figure written to {path}]")


"""
## Data handling

### Download the dataset

The tutorial loads TED talk transcripts with TFDS (`ted_hrlr_translate/pt_to_en`). That
needs network; when it is not reachable (and always with `--smoke`) this script uses the
package's embedded corpus of everyday sentences and says so.
"""

train_examples = val_examples = None
if not args.smoke:
    try:
        train_examples = tt.load_corpus("tfds:ted_hrlr_translate/pt_to_en", "train")
        val_examples = tt.load_corpus("tfds:ted_hrlr_translate/pt_to_en", "validation")
        print("Data: TFDS ted_hrlr_translate/pt_to_en (the tutorial's TED talks)")
    except tt.CorpusError as error:
        print(f"TFDS is not reachable ({str(error)[:80]}...)")
if train_examples is None:
    print("Data: the embedded pt->en corpus (tftransformer/resources), not the TED talks")
    train_examples = tt.load_corpus("embedded", "train")
    val_examples = tt.load_corpus("embedded", "validation")
if args.smoke:
    train_examples, val_examples = train_examples.take(320), val_examples.take(32)

for pt_examples, en_examples in train_examples.batch(3).take(1):
    print("> Examples in Portuguese:")
    for pt in pt_examples.numpy():
        print(pt.decode("utf-8"))
    print()
    print("> Examples in English:")
    for en in en_examples.numpy():
        print(en.decode("utf-8"))

"""
### Set up the tokenizer

The tutorial downloads a prebuilt converter (`tt.tokenizers.fetch_tutorial_tokenizers` does
that, coping with Keras 3's `_extracted/` directory). Offline, we learn the same kind of
WordPiece tokenizers from the training split with the *Subword tokenizers* guide's recipe
(see `tutorials/subwords_tokenizer.py`).
"""

tokenizers = tt.build_tokenizers(train_examples)
print([item for item in dir(tokenizers.en) if not item.startswith("_")])

print("> This is a batch of strings:")
for en in en_examples.numpy():
    print(en.decode("utf-8"))
encoded = tokenizers.en.tokenize(en_examples)
print("> This is a padded-batch of token IDs:")
for row in encoded.to_list():
    print(row)
round_trip = tokenizers.en.detokenize(encoded)
print("> This is human-readable text:")
for line in round_trip.numpy():
    print(line.decode("utf-8"))
print("> This is the text split into tokens:")
print(tokenizers.en.lookup(encoded))

lengths = []
for pt_examples, en_examples in train_examples.batch(1024):
    lengths.append(tokenizers.pt.tokenize(pt_examples).row_lengths())
    lengths.append(tokenizers.en.tokenize(en_examples).row_lengths())
all_lengths = np.concatenate(lengths)
plt.hist(all_lengths, np.linspace(0, 500, 101))
plt.ylim(plt.ylim())
max_length = max(all_lengths)
plt.plot([max_length, max_length], plt.ylim())
plt.title(f"Maximum tokens per example: {max_length}")
save("token_lengths.png")

"""
### Set up a data pipeline with `tf.data`

`tt.prepare_batch` / `tt.make_batches` are the tutorial's functions (MAX_TOKENS=128,
BUFFER_SIZE=20000, BATCH_SIZE=64); deviation: they take the tokenizers as an argument
instead of reading a global.
"""

train_batches = tt.make_batches(train_examples, tokenizers)
val_batches = tt.make_batches(val_examples, tokenizers)

"""
## Test the Dataset
"""

for (pt, en), en_labels in train_batches.take(1):
    break
print(pt.shape)
print(en.shape)
print(en_labels.shape)
print(en[0][:10])
print(en_labels[0][:10])

"""
## Define the components

### The embedding and positional encoding layer
"""

pos_encoding = tt.positional_encoding(length=2048, depth=512)
print(pos_encoding.shape)
plt.pcolormesh(pos_encoding.numpy().T, cmap="RdBu")
plt.ylabel("Depth")
plt.xlabel("Position")
plt.colorbar()
save("positional_encoding.png")

pos_encoding /= tf.norm(pos_encoding, axis=1, keepdims=True)
p = pos_encoding[1000]
dots = tf.einsum("pd,d -> p", pos_encoding, p)
plt.subplot(2, 1, 1)
plt.plot(dots)
plt.ylim([0, 1])
plt.plot([950, 950, float("nan"), 1050, 1050], [0, 1, float("nan"), 0, 1], color="k",
         label="Zoom")  # fmt: skip
plt.legend()
plt.subplot(2, 1, 2)
plt.plot(dots)
plt.xlim([950, 1050])
plt.ylim([0, 1])
save("positional_encoding_dots.png")
print("dots[995:1006] =", np.round(dots.numpy()[995:1006], 3))

# Works as written in the tutorial: numpy vocab sizes are accepted (a Keras 3 fix).
embed_pt = tt.PositionalEmbedding(vocab_size=tokenizers.pt.get_vocab_size().numpy(), d_model=512)
embed_en = tt.PositionalEmbedding(vocab_size=tokenizers.en.get_vocab_size().numpy(), d_model=512)
pt_emb = embed_pt(pt)
en_emb = embed_en(en)
print(en_emb._keras_mask)

"""
### Add and normalize

Every block is residual (`Add`) and then `LayerNormalization`. Deviation: on Keras 3 the
padding masks do not survive `MultiHeadAttention`, so in `tftransformer` they are handed to
every attention layer explicitly; tests prove extra padding changes no real output.

### The base attention layer

`tt.BaseAttention` holds a `MultiHeadAttention`, a `LayerNormalization` and an `Add`.

#### Attention refresher

Each query position gets a weighted average of the values; the weights come from how
well the query matches each key (a softmax over scaled dot products), separately per head.

### The cross attention layer
"""

sample_ca = tt.CrossAttention(num_heads=2, key_dim=512)
print(pt_emb.shape)
print(en_emb.shape)
print(sample_ca(en_emb, pt_emb).shape)

"""
### The global self-attention layer
"""

sample_gsa = tt.GlobalSelfAttention(num_heads=2, key_dim=512)
print(pt_emb.shape)
print(sample_gsa(pt_emb).shape)

"""
### The causal self-attention layer

The check from the tutorial: the first three outputs do not depend on later tokens.
"""

sample_csa = tt.CausalSelfAttention(num_heads=2, key_dim=512)
print(en_emb.shape)
print(sample_csa(en_emb).shape)
out1 = sample_csa(embed_en(en[:, :3]))
out2 = sample_csa(embed_en(en))[:, :3]
causal_diff = tf.reduce_max(abs(out1 - out2)).numpy()
print(causal_diff)
assert causal_diff < 1e-5

"""
### The feed forward network

Deviation: `FeedForward` honours `dropout_rate` (the tutorial's layers always used 0.1).
"""

sample_ffn = tt.FeedForward(512, 2048)
print(en_emb.shape)
print(sample_ffn(en_emb).shape)

"""
### The encoder layer
"""

sample_encoder_layer = tt.EncoderLayer(d_model=512, num_heads=8, dff=2048)
print(pt_emb.shape)
print(sample_encoder_layer(pt_emb).shape)

"""
### The encoder
"""

sample_encoder = tt.Encoder(num_layers=4, d_model=512, num_heads=8, dff=2048, vocab_size=8500)
sample_encoder_output = sample_encoder(pt, training=False)
print(pt.shape)
print(sample_encoder_output.shape)  # Shape `(batch_size, input_seq_len, d_model)`.

"""
### The decoder layer
"""

sample_decoder_layer = tt.DecoderLayer(d_model=512, num_heads=8, dff=2048)
sample_decoder_layer_output = sample_decoder_layer(x=en_emb, context=pt_emb)
print(en_emb.shape)
print(pt_emb.shape)
print(sample_decoder_layer_output.shape)  # `(batch_size, seq_len, d_model)`

"""
### The decoder
"""

sample_decoder = tt.Decoder(num_layers=4, d_model=512, num_heads=8, dff=2048, vocab_size=8000)
output = sample_decoder(x=en, context=pt_emb)
print(en.shape)
print(pt_emb.shape)
print(output.shape)
print(sample_decoder.last_attn_scores.shape)  # (batch, heads, target_seq, input_seq)

"""
## The Transformer

### Hyperparameters

`tt.TransformerConfig()` holds the tutorial's values: 4 layers, d_model 128, dff 512,
8 heads, dropout 0.1.
"""

hp = tt.TransformerConfig()
print(hp)
# `--smoke` (CI) runs the same code on a 1-layer, d_model 32 model, in seconds; the
# parameter count below is still checked on the tutorial's size.
model_hp = tt.TransformerConfig(num_layers=1, d_model=32, dff=64, num_heads=2) if args.smoke else hp

"""
### Try it out
"""

transformer = tt.Transformer.from_hparams(
    model_hp,
    input_vocab_size=tokenizers.pt.get_vocab_size().numpy(),
    target_vocab_size=tokenizers.en.get_vocab_size().numpy(),
)
output = transformer((pt, en))
print(en.shape)
print(pt.shape)
print(output.shape)
attn_scores = transformer.decoder.dec_layers[-1].last_attn_scores
print(attn_scores.shape)  # (batch, heads, target_seq, input_seq)
transformer.summary()

# With the published converter's vocabularies (7765 / 7010) the tutorial reports
# 10,184,162 parameters; the same model here:
tutorial_size = tt.Transformer.from_hparams(hp, input_vocab_size=7765, target_vocab_size=7010)
tutorial_size.build(((None, None), (None, None)))
print(f"Parameters with the tutorial's vocabularies: {tutorial_size.count_params():,}")
assert tutorial_size.count_params() == 10_184_162

"""
## Training

### Set up the optimizer
"""

learning_rate = tt.CustomSchedule(hp.d_model)
optimizer = keras.optimizers.Adam(learning_rate, beta_1=0.9, beta_2=0.98, epsilon=1e-9)
plt.plot(learning_rate(tf.range(40000, dtype=tf.float32)))
plt.ylabel("Learning Rate")
plt.xlabel("Train Step")
save("learning_rate.png")

"""
### Set up the loss and metrics

`tt.masked_loss` and `tt.masked_accuracy` skip padding (label 0).

### Train the model
"""

transformer.compile(loss=tt.masked_loss, optimizer=optimizer, metrics=[tt.masked_accuracy])
start = time.perf_counter()
if args.smoke:
    transformer.fit(train_batches, epochs=1, steps_per_epoch=2, validation_data=val_batches,
                    validation_steps=1)  # fmt: skip
else:
    transformer.fit(train_batches, epochs=args.epochs, validation_data=val_batches)
print(f"Training took {time.perf_counter() - start:.0f} s")

"""
## Run inference

`tt.Translator` is the tutorial's greedy loop (deviation: it uses its own tokenizers, not
a global). `tftransformer translate` runs it from the command line.
"""

translator = tt.Translator(tokenizers, transformer)
max_length = 8 if args.smoke else tt.MAX_TOKENS

examples = [
    ("este é um problema que temos que resolver.", "this is a problem we have to solve ."),
    ("os meus vizinhos ouviram sobre esta ideia.",
     "and my neighboring homes heard about this idea ."),
    ("vou então muito rapidamente partilhar convosco algumas histórias de algumas coisas "
     "mágicas que aconteceram.",
     "so i'll just share with you some stories very quickly of some magical things that "
     "have happened."),
]  # fmt: skip
for sentence, ground_truth in examples:
    translated_text, translated_tokens, attention_weights = translator(
        tf.constant(sentence), max_length=max_length
    )
    tt.print_translation(sentence, translated_text, ground_truth)
    print()

"""
## Create attention plots
"""

sentence = "este é o primeiro livro que eu fiz."
ground_truth = "this is the first book i've ever done."
translated_text, translated_tokens, attention_weights = translator(
    tf.constant(sentence), max_length=max_length
)
tt.print_translation(sentence, translated_text, ground_truth)

head = 0
attention_heads = tf.squeeze(attention_weights, 0)  # (heads, out_tokens, in_tokens)
attention = attention_heads[head]
print(attention.shape)
in_tokens = plotting.input_tokens(tokenizers, sentence)
plt.figure()
plotting.plot_attention_head(in_tokens, translated_tokens, attention)
save("attention_head.png")

plotting.plot_attention_weights(sentence, translated_tokens, attention_weights[0], tokenizers)
save("attention_heads.png")

sentence = "Eu li sobre triceratops na enciclopédia."
ground_truth = "I read about triceratops in the encyclopedia."
translated_text, translated_tokens, attention_weights = translator(
    tf.constant(sentence), max_length=max_length
)
tt.print_translation(sentence, translated_text, ground_truth)
plotting.plot_attention_weights(sentence, translated_tokens, attention_weights[0], tokenizers)
save("attention_heads_unfamiliar.png")

"""
## Export the model

`tt.ExportTranslator` is the tutorial's: one scalar string in, its translation out.
`tt.ServingTranslator` is that plus two batched signatures (deviation: the tutorial's
export takes one string at a time and re-runs the model over the whole prefix per token):
`serving_default`, the cached greedy decoder of `tt.FastTranslator`, which returns the
same translations, and `beam_search`.
`tftransformer export RUN` writes it in TensorFlow Serving's layout.
"""

export = tt.ServingTranslator(translator, max_length=max_length)
before = export("este é o primeiro livro que eu fiz.").numpy()
print(before)
tf.saved_model.save(export, export_dir=str(OUT / "translator"),
                    signatures={"serving_default": export.translate,
                                "beam_search": export.beam_search})  # fmt: skip
reloaded = tf.saved_model.load(str(OUT / "translator"))
after = reloaded("este é o primeiro livro que eu fiz.").numpy()
print(after)
assert before == after, "the reloaded translator must give the same output"
batch = reloaded.signatures["serving_default"](
    sentences=tf.constant(["este é o primeiro livro que eu fiz.", "bom dia!"])
)["translations"]
print(batch)
# Cached greedy decoding returns the tutorial's translation. (A barely trained `--smoke`
# model may have near-tied logits, where the two computations can round either way.)
if not args.smoke:
    assert batch.numpy()[0] == before, "cached greedy decoding returns the tutorial's translation"
beams = reloaded.signatures["beam_search"](sentences=tf.constant(["bom dia!"]))["translations"]
print(beams)

"""
## Conclusion

You have built every part of the Transformer from `tftransformer`, trained it with the
tutorial's schedule and masked loss, translated greedily, plotted its attention and
exported it. Next: `tftransformer train` does all of this over a run directory that can be
resumed, evaluated (BLEU/chrF) and served.
"""
print("Done.")
