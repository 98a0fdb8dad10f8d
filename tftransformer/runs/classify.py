"""Classifier runs: train, predict, evaluate and export, over a run directory.

The classifier's run dir mirrors the translator's (see `paths.py`):
`config.json`, `tokenizer/` (one `CustomTokenizer` as `.text`), `labels.txt`
(label names in score order), `checkpoints/`, `model.keras`, `logs/`,
`history.json`, `thresholds.json` (with `--threshold auto`) and
`export/classifier/<N>/`.

Four models share this run layout, the loss, the metrics and the export
(`MODELS`): the Transformer encoder, an LSTM or GRU stack, and one-vs-rest
logistic regression on TF-IDF (`linear`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tftransformer._files import RunError, first_line, read_json, write_json_atomic
from tftransformer.classification.labelled import LabelVocab, read_labelled
from tftransformer.classification.linear import LinearClassifier, l2_for
from tftransformer.classification.metrics import f1_scores
from tftransformer.classification.model import (
    TransformerClassifier,
    classifier_loss_and_metrics,
)
from tftransformer.classification.recurrent import RecurrentClassifier
from tftransformer.classification.serving_classifier import ExportClassifier, tokenize_texts
from tftransformer.classification.thresholds import DEFAULT_THRESHOLD, choose_thresholds
from tftransformer.export import save_servable
from tftransformer.plotting import plot_history
from tftransformer.runs.backup import (
    RunBackup,
    raise_if_stopped_on_nan,
    require_run_space,
    restore_backup,
    save_model_atomic,
)
from tftransformer.runs.classify_settings import (  # noqa: F401  (re-exported)
    AUTO,
    DEFAULT_LEARNING_RATES,
    MODELS,
    ClassifySettings,
)
from tftransformer.runs.paths import RunDir
from tftransformer.runs.settings import check_same_run
from tftransformer.runs.train_options import bert_params
from tftransformer.tokenizers import (
    RESERVED_TOKENS,
    CustomTokenizer,
    build_vocab,
    load_tokenizers,
    save_tokenizers,
    write_vocab_file,
)
from tftransformer.vocabularies.sentencepiece_model import (
    MODEL_FILE,
    SentencePieceTokenizer,
    train_sentencepiece,
)


def make_dataset(tokenizer, texts, targets, settings, shuffle):
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(texts, tf.string), targets))
    if shuffle:
        ds = ds.shuffle(len(texts), seed=settings.seed)
    return (
        ds.batch(settings.batch_size)
        .map(
            lambda t, y: (tokenize_texts(tokenizer, t, settings.max_tokens), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(tf.data.AUTOTUNE)
    )


def targets_for(vocab: LabelVocab, examples, mode, source):
    if mode == "multilabel":
        vocab.check(examples, source)
        return vocab.multi_hot(examples)
    return vocab.class_ids(examples, source)


def build_text_tokenizer(texts, settings, path) -> None:
    """Learn a vocabulary from `texts`; save a tf.Module whose `.text` is its tokenizer."""
    with tempfile.TemporaryDirectory(prefix="tftransformer-vocab-") as vocab_dir:
        module = tf.Module()
        if settings.tokenizer == "sentencepiece":
            model = train_sentencepiece(texts, settings.vocab_size, Path(vocab_dir) / MODEL_FILE)
            module.text = SentencePieceTokenizer(model)
            save_tokenizers(module, path)  # copies the model file in as an asset
            return
        vocab = build_vocab(
            tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)),
            settings.vocab_size,
            settings.min_token_count,
            bert_params(settings.tokenizer),
        )
        vocab_path = os.path.join(vocab_dir, "text_vocab.txt")
        write_vocab_file(vocab_path, vocab)
        module.text = CustomTokenizer(RESERVED_TOKENS, vocab_path, bert_params(settings.tokenizer))
        save_tokenizers(module, path)  # copies the vocab file in as an asset


def learning_rate_schedule(settings, train_examples):
    """Linear warm-up to `learning_rate` over `warmup_epochs`, then cosine decay to 0.

    A post-norm encoder trained at a constant rate from step 0 can stall
    (measured: AUC 0.50 after two epochs at 5e-4 on the embedded tags); the
    NMT tutorial warms up for the same reason.
    """
    steps_per_epoch = -(-train_examples // settings.batch_size)
    total = max(1, steps_per_epoch * settings.epochs)
    warmup = min(total - 1, int(steps_per_epoch * settings.warmup_epochs))
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, total - warmup), warmup_target=settings.learning_rate,
        warmup_steps=warmup,
    )  # fmt: skip


def train_classifier(out, settings: ClassifySettings, verbose=1, extra_callbacks=()):
    """Train (or resume) a classifier run; returns (model, tokenizer, vocab, history).

    Writes the run directory, training curves included (`plots/history.png`). (Long:
    the job's sequence, read top to bottom: settings, labels, tokenizer, data, model, fit,
    thresholds, files.)
    """
    run = RunDir(out)
    run.path.mkdir(parents=True, exist_ok=True)
    if run.config.exists():
        stored = ClassifySettings.from_json(read_json(run.config), run.config)
        check_same_run(stored, settings, run.config)
    write_json_atomic(run.config, settings.to_json())
    keras.utils.set_random_seed(settings.seed)

    train = read_labelled(settings.data, "train", settings.side, settings.limit)
    val = read_labelled(settings.data, "validation", settings.side, settings.limit)
    labels_path = run.path / "labels.txt"
    vocab = (
        LabelVocab.load(labels_path) if labels_path.exists() else LabelVocab.from_examples(train)
    )
    vocab.save(labels_path)
    tokenizer_dir = run.path / "tokenizer"
    if not (tokenizer_dir / "saved_model.pb").exists():
        build_text_tokenizer([e.text for e in train], settings, tokenizer_dir)
    tokenizer = load_tokenizers(tokenizer_dir).text

    train_ds = make_dataset(
        tokenizer, [e.text for e in train],
        targets_for(vocab, train, settings.mode, "train split"), settings, shuffle=True,
    )  # fmt: skip
    val_ds = make_dataset(
        tokenizer, [e.text for e in val],
        targets_for(vocab, val, settings.mode, "validation split"), settings, shuffle=False,
    )  # fmt: skip
    model = build_classifier(settings, tokenizer.get_vocab_size(), len(vocab.names), len(train))
    if isinstance(model, LinearClassifier):
        model.adapt(ids for ids, _ in train_ds)  # the TF-IDF weights of the train split
    metric_threshold = DEFAULT_THRESHOLD if settings.threshold == AUTO else settings.threshold
    loss, metrics = classifier_loss_and_metrics(settings.mode, len(vocab.names), metric_threshold)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate_schedule(settings, len(train))),
        loss=loss,
        metrics=metrics,
    )
    model.optimizer.build(model.trainable_variables)
    history = restore_backup(run, model)
    require_run_space(run, model, settings.epochs)
    done = len(next(iter(history.values()), []))
    backup = RunBackup(run, history=history)
    if done < settings.epochs:
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=settings.epochs,
            initial_epoch=done,
            shuffle=False,
            verbose=verbose,
            callbacks=[backup, keras.callbacks.TensorBoard(log_dir=str(run.logs)),
                       keras.callbacks.TerminateOnNaN(), *extra_callbacks],
        )  # fmt: skip
    raise_if_stopped_on_nan(backup)
    if settings.threshold == AUTO:
        thresholds = auto_thresholds(model, tokenizer, vocab, val, settings)
        model.set_thresholds(thresholds)
        write_json_atomic(run.path / "thresholds.json",
                          dict(zip(vocab.names, thresholds, strict=True)))  # fmt: skip
    save_model_atomic(model, run.model)
    write_json_atomic(run.history, backup.history)
    plot_history(backup.history, run.plots / "history.png")
    return model, tokenizer, vocab, backup.history


def build_classifier(settings: ClassifySettings, vocab_size, num_labels, train_examples):
    """The uncompiled, built model `settings.model` names."""
    common = {"vocab_size": int(vocab_size), "num_labels": int(num_labels), "mode": settings.mode,
              "threshold": DEFAULT_THRESHOLD if settings.threshold == AUTO
              else settings.threshold}  # fmt: skip
    if settings.model == "transformer":
        model = TransformerClassifier(**settings.hparams.to_dict(), pooling=settings.pooling,
                                      **common)  # fmt: skip
    elif settings.model in ("lstm", "gru"):
        model = RecurrentClassifier(
            cell=settings.model, embedding_dim=settings.hparams.d_model,
            units=settings.rnn_units, num_layers=settings.rnn_layers,
            bidirectional=settings.bidirectional, dropout_rate=settings.hparams.dropout_rate,
            **common,
        )  # fmt: skip
    elif settings.model == "linear":
        l2 = l2_for(settings.linear_c, train_examples, num_labels, settings.mode)
        model = LinearClassifier(l2=l2, **common)
    else:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {settings.model!r}")
    model.build((None, None))
    return model


def auto_thresholds(model, tokenizer, vocab, examples, settings):
    """Per-label thresholds maximizing micro-F1 on `examples` (the validation split)."""
    scores = predict_scores(model, tokenizer, [e.text for e in examples], settings.max_tokens)
    return choose_thresholds(vocab.multi_hot(examples) > 0, scores)


def load_classifier_run(path):
    """`(settings, tokenizer, vocab, model)` of a trained classifier run."""
    run = RunDir(path)
    run.require("config", "model")
    settings = ClassifySettings.from_json(read_json(run.config), run.config)
    labels_path = run.path / "labels.txt"
    if not labels_path.exists():
        raise RunError(f"{labels_path}: missing")
    try:
        tokenizer = load_tokenizers(run.path / "tokenizer").text
        model = keras.models.load_model(run.model)
    except Exception as error:
        raise RunError(f"{run.path}: cannot load the classifier ({first_line(error)})") from None
    return settings, tokenizer, LabelVocab.load(labels_path), model


def predict_scores(model, tokenizer, texts, max_tokens, batch_size=64):
    """Probabilities (n, num_labels) for a list of strings."""
    out = []
    for start in range(0, len(texts), batch_size):
        ids = tokenize_texts(tokenizer, tf.constant(texts[start : start + batch_size]), max_tokens)
        out.append(np.asarray(model.scores(model(ids, training=False))))
    return np.concatenate(out) if out else np.zeros((0, model.num_labels), "float32")


def export_classifier(run_path, version=None):
    """`classify export`: the run's classifier as `RUN/export/classifier/<version>/`."""
    settings, tokenizer, vocab, model = load_classifier_run(run_path)
    module = ExportClassifier(tokenizer, model, vocab.names, settings.max_tokens)
    root = RunDir(run_path).export_root("classifier")
    return save_servable(module, root, {"serving_default": module.classify}, version)


def evaluate_classifier(settings, tokenizer, vocab, model, data, split, limit=None):
    """Metrics of a trained classifier on one split of `data`."""
    from tftransformer.classification.labelled import read_labelled

    examples = read_labelled(data, split, settings.side, limit)
    vocab.check(examples, f"{data} ({split})")
    scores = predict_scores(model, tokenizer, [e.text for e in examples], settings.max_tokens)
    predicted = np.asarray(model.predicted(scores))
    truth = vocab.multi_hot(examples) > 0
    metrics = f1_scores(truth, predicted)
    if settings.mode == "multiclass":
        metrics = {"accuracy": float(np.mean(predicted.argmax(1) == truth.argmax(1))), **metrics}
    return {"examples": len(examples), **{k: round(v, 4) for k, v in metrics.items()}}
