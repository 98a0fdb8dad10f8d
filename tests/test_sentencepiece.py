"""SentencePiece tokenizers: cased, reversible, any script; a run, its export, a classifier."""

import json
import unicodedata

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_CLASSIFY_FLAGS, TINY_TRAIN_FLAGS, copy_run
from decisive import MARGIN, greedy_margin, text_ids
from fresh_process import python_json
from test_reliability_inputs import BAD_TEXTS, as_bytes, check_translations
from test_reliability_serving import core_tensorflow_ops, graph_op_types, tf_text_serving_ops

from tftransformer import TransformerClassifier
from tftransformer.classification.metrics import f1_scores
from tftransformer.classification.model import classifier_loss_and_metrics
from tftransformer.classification.serving_classifier import tokenize_texts
from tftransformer.cli import main
from tftransformer.cli.common import as_line
from tftransformer.corpus import load_corpus
from tftransformer.runs.classify import ClassifySettings, build_text_tokenizer
from tftransformer.runs.paths import RunDir
from tftransformer.runs.run import Run
from tftransformer.tokenizers import RESERVED_TOKENS, load_tokenizers, save_tokenizers
from tftransformer.vocabularies.sentencepiece_model import build_sentencepiece_tokenizers

KOREAN = "한국어를 공부합니다"  # "공부합니다": one 5-syllable word
TEXTS = [
    "Não gosto de dirigir na cidade grande.",  # pt, accents
    "I don't like driving in the big city!",  # en, case and punctuation
    KOREAN,
    "日本語の文章です。",  # ja
    "مرحبا بالعالم",  # ar
    "😀👍🏽 emoji",
    "Mixed: Olá, 세계 and 世界 — ça va?",
]


def expected_round_trip(text):
    """The stated normalization: NFKC, leading whitespace removed."""
    return unicodedata.normalize("NFKC", text).lstrip()


@pytest.fixture(scope="module")
def sp_dir(tmp_path_factory):
    """SentencePiece pt/en tokenizers learned from the embedded train split, saved."""
    root = tmp_path_factory.mktemp("sp")
    built = build_sentencepiece_tokenizers(load_corpus("embedded", "train"), 8000, root / "m")
    save_tokenizers(built, root / "saved")
    return root / "saved"


@pytest.fixture(scope="module")
def sp(sp_dir):
    return load_tokenizers(sp_dir)


def round_trip(tokenizer, texts):
    ids = tokenizer.tokenize(tf.constant([as_bytes(t) for t in texts], tf.string))
    return ids, [t.decode("utf-8") for t in tokenizer.detokenize(ids).numpy()]


@pytest.mark.parametrize("lang", ["pt", "en"])
def test_round_trip_is_exact_for_every_script(sp, lang):
    tokenizer = getattr(sp, lang)
    ids, back = round_trip(tokenizer, TEXTS)
    assert back == [expected_round_trip(t) for t in TEXTS]
    for row in ids.to_list():
        assert row[0] == 2 and row[-1] == 3 and 2 not in row[1:] and 3 not in row[:-1]


def test_corpus_sentences_come_back_cased_with_punctuation_attached(sp):
    rows = [en.decode() for _pt, en in load_corpus("embedded", "test").take(50).as_numpy_iterator()]
    assert round_trip(sp.en, rows)[1] == rows


def test_hangul_stays_composed_and_unseen_characters_use_bytes(sp):
    decomposed = unicodedata.normalize("NFD", KOREAN)  # jamo, as some keyboards send
    assert len(decomposed) > len(KOREAN)
    ids, back = round_trip(sp.en, [KOREAN, decomposed])
    assert back == [KOREAN, KOREAN]  # composed syllables either way
    assert len(back[0].split()[1]) == 5  # "공부합니다" keeps its 5 syllables
    # The English training text has no Hangul: it is spelled in UTF-8 byte pieces, not [UNK].
    pieces = [p.decode() for p in sp.en.lookup(ids).to_list()[0]]
    assert 1 not in ids.to_list()[0] and any(p.startswith("<0x") for p in pieces)


def package_ids(model_file, sentences):
    """Ids the `sentencepiece` package gives, framed by [START]=2 ... [END]=3."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    return [[2, *processor.encode(sentence), 3] for sentence in sentences]


def test_each_saved_tokenizer_runs_its_own_model(sp, sp_dir):
    # Both models live in one SavedModel; once loaded, `.pt` must not run the en model.
    sentences = ["Não gosto de dirigir na cidade grande.", "The bread is still warm."]
    for lang in ("pt", "en"):
        expected = package_ids(sp_dir.parent / "m" / f"{lang}_sentencepiece.model", sentences)
        assert getattr(sp, lang).tokenize(tf.constant(sentences)).to_list() == expected, lang
    assert sp.pt.tokenize(tf.constant(sentences)).to_list() != expected  # the models differ


def test_interface_and_reserved_ids_match_custom_tokenizer(sp, tokenizers):
    for tokenizer in (sp.pt, sp.en):
        assert [t.decode() for t in tokenizer.get_reserved_tokens().numpy()] == RESERVED_TOKENS
        assert [t.decode() for t in tokenizer.vocab.numpy()[:4]] == RESERVED_TOKENS
        assert int(tokenizer.get_vocab_size()) == len(tokenizer.vocab.numpy()) > 1000
        assert tokenizer.get_vocab_path().numpy().decode().endswith("sentencepiece.model")
        for name in ("tokenize", "detokenize", "lookup", "get_vocab_size", "get_vocab_path"):
            assert hasattr(tokenizer, name) and hasattr(tokenizers.en, name)
    dense = tf.constant([[2, 40, 41, 3, 0, 0]], tf.int64)
    ragged = tf.ragged.constant([[2, 40, 41, 3]], tf.int64)
    assert sp.en.detokenize(dense).numpy()[0] == sp.en.detokenize(ragged).numpy()[0]
    assert sp.en.lookup(ragged).shape[0] == 1


def test_a_shared_vocabulary_is_one_model_for_both_languages(tmp_path):
    pairs = load_corpus("embedded", "train")
    built = build_sentencepiece_tokenizers(pairs, 3000, tmp_path / "m", shared=True)
    assert built.pt is built.en
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["shared_sentencepiece.model"]
    save_tokenizers(built, tmp_path / "saved")
    shared = load_tokenizers(tmp_path / "saved")
    assert int(shared.pt.get_vocab_size()) == int(shared.en.get_vocab_size()) == 3000
    pieces = {p.decode() for p in shared.en.vocab.numpy()}
    assert {"▁não", "▁the"} <= pieces  # whole words of both languages
    sentences = [(pt.decode(), en.decode()) for pt, en in pairs.take(20).as_numpy_iterator()]
    for side in (shared.pt, shared.en):
        ids, back = round_trip(side, [s for pair in sentences for s in pair])
        assert back == [expected_round_trip(s) for pair in sentences for s in pair]
        assert 1 not in ids.flat_values.numpy()
    # The same text gets the same ids on both sides.
    both = [
        shared.pt.tokenize(tf.constant(["Brasil, 2010."])),
        shared.en.tokenize(tf.constant(["Brasil, 2010."])),
    ]
    assert both[0].to_list() == both[1].to_list()


def test_hostile_inputs_give_one_well_formed_row_each(sp):
    texts = [as_bytes(t) for t in BAD_TEXTS.values()]
    ids = sp.pt.tokenize(tf.constant(texts))
    assert ids.shape[0] == len(texts)
    size = int(sp.pt.get_vocab_size())
    for row in ids.to_list():
        assert row[0] == 2 and row[-1] == 3 and all(0 <= i < size for i in row)
    check_translations(sp.pt.detokenize(ids), len(texts))  # valid UTF-8, no reserved token
    assert sp.pt.tokenize(tf.constant([], tf.string)).shape[0] == 0


def test_saved_tokenizers_run_in_a_fresh_process_with_only_tf(sp_dir):
    code = f"""
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the ops
t = tf.saved_model.load({str(sp_dir)!r})
ids = t.en.tokenize(tf.constant({TEXTS!r}))
print(json.dumps([s.decode() for s in t.en.detokenize(ids).numpy()]))
assert not any(m.startswith("tftransformer") for m in sys.modules)
"""
    assert python_json(code, timeout=300) == [expected_round_trip(t) for t in TEXTS]


@pytest.fixture(scope="module")
def sp_run(tiny_run, tmp_path_factory):
    """A copy of the session's tiny run: `tftransformer train`'s default is SentencePiece."""
    return copy_run(tiny_run, tmp_path_factory.mktemp("sp_run") / "run")


def test_the_default_run_is_sentencepiece_and_scores_as_published(tiny_run, tiny_run_printed):
    config = json.loads(RunDir(tiny_run).config.read_text())
    assert config["tokenizer"] == "sentencepiece" and not config["shared_vocabulary"]
    run = Run(tiny_run)
    for lang in ("pt", "en"):
        path = getattr(run.tokenizers, lang).get_vocab_path().numpy().decode()
        assert path.endswith(f"{lang}_sentencepiece.model"), path
    assert "sacrebleu on raw references: BLEU nrefs:1|case:mixed" in tiny_run_printed
    assert "normalized" not in tiny_run_printed  # only WordPiece's output is normalized text


@pytest.mark.slow
def test_a_wordpiece_run_prints_normalized_scores_labelled_and_keeps_its_kind(
    tiny_wordpiece_training, tmp_path, capsys
):
    out = copy_run(tiny_wordpiece_training[0], tmp_path / "run")
    printed = tiny_wordpiece_training[1]
    config = json.loads(RunDir(out).config.read_text())
    assert config["tokenizer"] == "wordpiece" and config["vocab_size"] == 500
    assert Run(out).tokenizers.en.get_vocab_path().numpy().decode().endswith("en_vocab.txt")
    assert "sacrebleu on raw references: BLEU nrefs:1|case:mixed" in printed
    assert printed.count("  normalized (references lower-cased") == 2  # greedy and beam
    # A rerun with the default kind is refused, and says how to resume: a run decodes with
    # the kind it was trained with.
    rerun = ["train", "--out", str(out), "--epochs", "2", "--vocab-size", "500"]
    assert main([*rerun, *TINY_TRAIN_FLAGS]) == 2
    assert "trained with tokenizer='wordpiece', not 'sentencepiece'" in capsys.readouterr().err


@pytest.mark.slow
def test_sentencepiece_export_reloads_in_a_fresh_process_as_translate(sp_run, capsys):
    out = sp_run
    # Enough sentences that a tiny model has at least one without a near-tie.
    sentences = ["Não gosto de dirigir.", "Bom dia!", KOREAN, "A casa é grande.",
                 "Eu gosto de ler livros.", "O gato dorme no sofá."]  # fmt: skip
    expected = []
    for sentence in sentences:  # one at a time: the same computation as one request each
        assert main(["translate", str(out), sentence, "--no-jit-compile"]) == 0
        expected.append(capsys.readouterr().out.rstrip("\n"))
    assert main(["export", str(out), "--version", "1"]) == 0
    exported = RunDir(out).export_root("translator") / "1"
    capsys.readouterr()
    assert graph_op_types(exported) <= core_tensorflow_ops() | tf_text_serving_ops()
    assert "SentencepieceTokenizeOp" in graph_op_types(exported)
    # The export's tokenizers run the run's own models (pt's, not en's, for the source).
    served = tf.saved_model.load(str(exported)).fast.tokenizers
    assets = RunDir(out).tokenizers / "assets"
    for lang in ("pt", "en"):
        ids = getattr(served, lang).tokenize(tf.constant(sentences)).to_list()
        assert ids == package_ids(assets / f"{lang}_sentencepiece.model", sentences), lang
    hostile = [as_bytes(t) for t in BAD_TEXTS.values()]
    code = f"""
import json, sys
import tensorflow as tf
import tensorflow_text
model = tf.saved_model.load({str(exported)!r})
fn = model.signatures["serving_default"]
out = [fn(sentences=tf.constant([s]))["translations"].numpy()[0].decode() for s in {sentences!r}]
for name in ("serving_default", "beam_search"):  # hostile input: one valid row each
    rows = model.signatures[name](sentences=tf.constant({hostile!r}))["translations"].numpy()
    assert len(rows) == {len(hostile)}, rows
    [row.decode("utf-8") for row in rows]
assert not any(m.startswith("tftransformer") for m in sys.modules)
print(json.dumps(out))
"""
    got = python_json(code)
    # The CLI's plain-graph greedy and the served graph are the same computation on the
    # same one-sentence batch; equal text is guaranteed where the model has no near-tie.
    run = Run(out)
    translator = run.translator()
    vocab = [t.decode() for t in run.tokenizers.en.vocab.numpy()]
    checked = 0
    for sentence, served, printed in zip(sentences, got, expected, strict=True):
        pieces = translator(tf.constant(sentence), max_length=run.max_tokens)[1].numpy()
        ids = np.array([vocab.index(p.decode()) for p in pieces])
        context = text_ids(run.tokenizers, sentence, run.max_tokens)
        if greedy_margin(run.model, context, ids) > MARGIN:
            assert as_line(served) == printed, sentence  # `translate` prints one line each
            checked += 1
    assert checked >= 1


KOREAN_KEYWORDS = {"fruit": ["사과", "바나나"], "water": ["강물", "바다"], "sky": ["구름", "별빛"]}
KOREAN_FILLER = "나는 오늘 정말 우리 그리고 아주 많이 조금 다시 함께 보았다 좋아한다".split()


def korean_synthetic(n, seed):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        words = list(rng.choice(KOREAN_FILLER, size=rng.integers(3, 7)))
        label = list(KOREAN_KEYWORDS)[rng.integers(3)]
        words.insert(rng.integers(len(words) + 1), rng.choice(KOREAN_KEYWORDS[label]))
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def test_sentencepiece_classifier_learns_a_korean_keyword_task(tmp_path):
    texts, labels = korean_synthetic(400, 1)
    settings = ClassifySettings(tokenizer="sentencepiece", vocab_size=600)
    build_text_tokenizer(texts, settings, tmp_path / "tokenizer")
    tokenizer = load_tokenizers(tmp_path / "tokenizer").text
    back = tokenizer.detokenize(tokenizer.tokenize(texts[:20])).numpy()
    assert [t.decode() for t in back] == texts[:20]  # Hangul intact in the classifier
    names = sorted(KOREAN_KEYWORDS)
    y = np.array([names.index(label) for label in labels], "int64")
    keras.utils.set_random_seed(0)
    model = TransformerClassifier(
        num_layers=1, d_model=16, num_heads=2, dff=32, dropout_rate=0.0,
        vocab_size=tokenizer.get_vocab_size(), num_labels=3, mode="multiclass",
    )  # fmt: skip
    loss, metrics = classifier_loss_and_metrics("multiclass", 3)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss, metrics=metrics)
    model.fit(tokenize_texts(tokenizer, tf.constant(texts), 32), y, epochs=15, verbose=0)
    held_out, held_labels = korean_synthetic(150, 2)
    scores = model.scores(model(tokenize_texts(tokenizer, tf.constant(held_out), 32)))
    predicted = np.asarray(model.predicted(scores))
    truth = np.array([[names.index(label) == i for i in range(3)] for label in held_labels])
    assert f1_scores(truth, predicted)["micro_f1"] >= 0.95


def test_classify_cli_trains_a_sentencepiece_classifier(tmp_path, capsys):
    out = tmp_path / "cls"
    argv = ["classify", "train", "--out", str(out), "--epochs", "1", "--tokenizer",
            "sentencepiece", "--vocab-size", "400", *TINY_CLASSIFY_FLAGS]  # fmt: skip
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["tokenizer"] == "sentencepiece" and config["vocab_size"] == 400
    tokenizer = load_tokenizers(out / "tokenizer").text
    assert tokenizer.get_vocab_path().numpy().decode().endswith("sentencepiece.model")
    capsys.readouterr()
    assert main(["classify", "predict", str(out), "Não gosto!", KOREAN]) == 0
    assert capsys.readouterr().out.count("\n") == 2
    # The export: hostile input gives one well-formed row each, and its tokenizer keeps
    # Hangul composed (also from decomposed input).
    assert main(["classify", "export", str(out), "--version", "1"]) == 0
    exported = tf.saved_model.load(str(RunDir(out).export_root("classifier") / "1"))
    hostile = [as_bytes(t) for t in BAD_TEXTS.values()] + [KOREAN.encode()]
    scores = exported.signatures["serving_default"](texts=tf.constant(hostile))["scores"]
    assert scores.shape[0] == len(hostile) and np.isfinite(scores.numpy()).all()
    jamo = unicodedata.normalize("NFD", KOREAN)
    back = exported.tokenizer.detokenize(exported.tokenizer.tokenize(tf.constant([jamo])))
    assert back.numpy()[0].decode() == KOREAN


def test_a_vocabulary_too_small_for_the_text_is_named(tmp_path):
    from tftransformer.runs.paths import RunError
    from tftransformer.vocabularies.sentencepiece_model import train_sentencepiece

    texts, _labels = korean_synthetic(100, 3)
    with pytest.raises(RunError, match="--vocab-size 100 is too small .* at least"):
        train_sentencepiece(texts, 100, tmp_path / "m.model")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_train_records_a_shared_vocabulary_and_a_rerun_must_keep_it(tmp_path, capsys):
    # A vocabulary too small for the text stops the run just after config.json is written
    # (a whole shared run trains in test_benchmarks' tokenizer_choice smoke run).
    out = tmp_path / "run"
    argv = ["train", "--out", str(out), "--tokenizer", "sentencepiece", "--vocab-size", "5",
            *TINY_TRAIN_FLAGS]  # fmt: skip
    assert main([*argv, "--shared-vocabulary"]) == 2
    captured = capsys.readouterr()
    assert "(one shared pt+en vocabulary)" in captured.out
    assert "--vocab-size 5 is too small for SentencePiece" in captured.err
    assert json.loads(RunDir(out).config.read_text())["shared_vocabulary"] is True
    # A rerun without the flag would decode with other tokenizers: refused, naming the setting.
    assert main(argv) == 2
    assert "shared_vocabulary=True, not False" in capsys.readouterr().err
