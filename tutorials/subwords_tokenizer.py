"""
Title: Subword tokenizers
Author: the tftransformer developers, following the TensorFlow guide
Description: The *Subword tokenizers* guide, heading by heading, on the
    `tftransformer.tokenizers` module: WordPiece vocabularies, BertTokenizer, and the
    exportable CustomTokenizer used by the translator.
Mirrors: https://www.tensorflow.org/text/guide/subwords_tokenizer

Run: `python tutorials/subwords_tokenizer.py [--smoke] [--out DIR]`.
"""

"""
## Overview

Subword tokenizers split rare words into known pieces (for example `searchability`
becomes `search ##ability`), so a small vocabulary covers any text. This guide learns
such a vocabulary from a corpus and wraps it in a `tf.Module` that can be saved and served.
"""

"""
## Setup
"""

import argparse
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tensorflow_text as text  # noqa: E402

import tftransformer as tt  # noqa: E402
from tftransformer import tokenizers as tok  # noqa: E402

parser = argparse.ArgumentParser(description="The Subword tokenizers guide on tftransformer.")
parser.add_argument("--smoke", action="store_true", help="a smaller corpus, for CI")
parser.add_argument("--out", default="tutorials_out/subwords_tokenizer")
args = parser.parse_args()
OUT = pathlib.Path(args.out)
OUT.mkdir(parents=True, exist_ok=True)

"""
## Download the dataset

The guide uses TFDS's TED talks; offline (and with `--smoke`) this uses the package's
embedded corpus, and says so.
"""

train_examples = None
if not args.smoke:
    try:
        train_examples = tt.load_corpus("tfds:ted_hrlr_translate/pt_to_en", "train")
        print("Data: TFDS ted_hrlr_translate/pt_to_en")
    except tt.CorpusError:
        pass
if train_examples is None:
    print("Data: the embedded pt->en corpus (no TFDS download)")
    train_examples = tt.load_corpus("embedded", "train")
if args.smoke:
    train_examples = train_examples.take(1000)

for pt, en in train_examples.take(1):
    print("Portuguese: ", pt.numpy().decode("utf-8"))
    print("English:   ", en.numpy().decode("utf-8"))

train_en = train_examples.map(lambda pt, en: en)
train_pt = train_examples.map(lambda pt, en: pt)

"""
## Generate the vocabulary

`tok.build_vocab` calls tensorflow_text's `bert_vocab_from_dataset` with the guide's
arguments (`tok.bert_vocab_args()`): reserved tokens `[PAD] [UNK] [START] [END]`,
`lower_case=True`, a target of 8000 tokens. A small corpus supports fewer.
"""

print(tok.bert_vocab_args())
pt_vocab = tok.build_vocab(train_pt)
print(pt_vocab[:10])
print(pt_vocab[100:110])
print(pt_vocab[-10:])
en_vocab = tok.build_vocab(train_en)
print(en_vocab[:10])
print(en_vocab[100:110])
print(en_vocab[-10:])
tok.write_vocab_file(OUT / "pt_vocab.txt", pt_vocab)
tok.write_vocab_file(OUT / "en_vocab.txt", en_vocab)
print(f"vocab sizes: pt {len(pt_vocab)}, en {len(en_vocab)}")

"""
## Build the tokenizer
"""

pt_tokenizer = text.BertTokenizer(str(OUT / "pt_vocab.txt"), **tok.BERT_TOKENIZER_PARAMS)
en_tokenizer = text.BertTokenizer(str(OUT / "en_vocab.txt"), **tok.BERT_TOKENIZER_PARAMS)

for pt_examples, en_examples in train_examples.batch(3).take(1):
    for ex in en_examples:
        print(ex.numpy())
token_batch = en_tokenizer.tokenize(en_examples)  # (batch, word, word-piece)
token_batch = token_batch.merge_dims(-2, -1)  # (batch, tokens)
for ex in token_batch.to_list():
    print(ex)
txt_tokens = tf.gather(en_vocab, token_batch)
print(tf.strings.reduce_join(txt_tokens, separator=" ", axis=-1))
words = en_tokenizer.detokenize(token_batch)
print(tf.strings.reduce_join(words, separator=" ", axis=-1))

"""
## Customization and export

### Custom tokenization

`tok.add_start_end` frames every row with `[START]` (id 2) and `[END]` (id 3).
"""

print(tok.add_start_end(token_batch))

"""
### Custom detokenization

`tok.cleanup_text` drops the reserved tokens (except `[UNK]`) and joins the words.
"""

words = en_tokenizer.detokenize(tok.add_start_end(token_batch))
print(tok.cleanup_text(tok.RESERVED_TOKENS, words).numpy())

"""
### Export

`tok.CustomTokenizer` bundles all of that in a `tf.Module`, the same interface as the
tutorial's published converter; `tt.save_tokenizers` saves it atomically.
"""

tokenizers = tf.Module()
tokenizers.pt = tok.CustomTokenizer(tok.RESERVED_TOKENS, str(OUT / "pt_vocab.txt"))
tokenizers.en = tok.CustomTokenizer(tok.RESERVED_TOKENS, str(OUT / "en_vocab.txt"))
model_name = str(OUT / "ted_hrlr_translate_pt_en_converter")
tt.save_tokenizers(tokenizers, model_name)

reloaded_tokenizers = tf.saved_model.load(model_name)
print(reloaded_tokenizers.en.get_vocab_size().numpy())
tokens = reloaded_tokenizers.en.tokenize(["Hello TensorFlow!"])
print(tokens.numpy())
text_tokens = reloaded_tokenizers.en.lookup(tokens)
print(text_tokens)
round_trip = reloaded_tokenizers.en.detokenize(tokens)
print(round_trip.numpy()[0].decode("utf-8"))
assert round_trip.numpy()[0].decode("utf-8") == "hello tensorflow !"

"""
## Optional: The algorithm

### Choosing the vocabulary

The WordPiece learner (tensorflow_text's `wordpiece_tokenizer_learner_lib`) counts words,
then keeps the pieces that occur at least `lower_thresh` times (10 by default; see
`tok.MIN_TOKEN_COUNT`), searching for a threshold that gives about the target size.

#### First iteration

Every word proposes all its prefixes and all its `##`-suffix pieces; frequent ones survive.

#### Second (and third ...) iteration

Words are split greedily with the pieces kept so far; counts are redone on those splits,
which removes pieces that only looked frequent because longer pieces overlapped them.

### Applying WordPiece

`text.BertTokenizer` first splits on whitespace and punctuation (and lower-cases, strips
accents), then splits each word into the longest matching pieces, left to right.

### Intuition

Frequent words stay whole; rare ones fall back to pieces and, at worst, characters.
"""

"""
## Optional: tf.lookup

A `BertTokenizer` can also take a lookup table instead of a file.
"""

pt_lookup = tf.lookup.StaticVocabularyTable(
    num_oov_buckets=1,
    initializer=tf.lookup.TextFileInitializer(
        filename=str(OUT / "pt_vocab.txt"),
        key_dtype=tf.string,
        key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
        value_dtype=tf.int64,
        value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
    ),
)
pt_tokenizer = text.BertTokenizer(pt_lookup)
print(pt_tokenizer.tokenize(pt_examples))
pt_lookup = tf.lookup.StaticVocabularyTable(
    num_oov_buckets=1,
    initializer=tf.lookup.KeyValueTensorInitializer(
        keys=pt_vocab, values=tf.range(len(pt_vocab), dtype=tf.int64)
    ),
)
pt_tokenizer = text.BertTokenizer(pt_lookup)
print(pt_tokenizer.tokenize(pt_examples))
print("Done.")
