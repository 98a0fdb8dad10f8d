"""Shared fixtures: tiny model sizes and seeded random token batches."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One TensorFlow thread per pool in every test process (workers and the processes they
# start): the suite runs more processes than there are cores (see
# pytest_xdist_auto_num_workers), and each TensorFlow process otherwise starts pools as wide
# as the machine whose threads spin and compete for the same cores. The tests' models are
# tiny; parallelism comes from the workers. Set either variable to override.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")


def _share_xla_compilations():
    """One XLA compilation cache on disk for the whole test session.

    Many tests decode with the same tiny model shapes, and every new translator
    compiles its XLA decoding loop again (seconds each on 2 cores). TensorFlow's
    persistent cache keys each executable by its HLO and device, not by weight
    values, so a hit returns exactly what a fresh compilation would. The
    controller makes the directory; xdist workers and the subprocesses tests
    start inherit it through the environment. Files are written to a temporary
    name and renamed by TensorFlow, so concurrent writers are safe.
    """
    import atexit
    import shutil
    import tempfile

    if "TFTRANSFORMER_TEST_XLA_CACHE" in os.environ:
        return  # a worker: the controller set it up
    cache = tempfile.mkdtemp(prefix="tftransformer-xla-cache-")
    os.environ["TFTRANSFORMER_TEST_XLA_CACHE"] = cache
    flags = os.environ.get("TF_XLA_FLAGS", "")
    os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={cache}".strip()
    atexit.register(shutil.rmtree, cache, ignore_errors=True)


_share_xla_compilations()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# The slowest test files, slowest first (their tests' summed `--durations` on 2 cores,
# 3 workers; remeasured 2026-12-03).
# pytest-xdist hands whole files to its workers in collection order (`--dist loadfile
# --no-loadscope-reorder` in pyproject.toml), so the long files start first and the short
# ones fill in at the end, instead of one worker finishing a long file while the other idles.
# (xdist's own reordering puts files with the most tests first, which left the longest,
# with few tests each, for last.)
SLOWEST_FILES_FIRST = [
    "test_fast_translator.py", "test_reliability_interruption.py", "test_train_translate_export.py",
    "test_tutorials.py", "test_distribute.py", "test_classify_cli.py", "test_sentencepiece.py",
    "test_benchmarks.py", "test_reliability_inputs.py", "test_classifier_models.py",
    "test_train_options.py", "test_budget.py", "test_classifier.py", "test_transformer.py",
    "test_tokenizers.py", "test_decoder.py", "test_ctranslate2.py",
]  # fmt: skip


@pytest.hookimpl(optionalhook=True)  # without xdist (`-p no:xdist`) nobody calls it
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker more than there are cores (pyproject caps it at 4).

    Most of a test's time is single-threaded Python (tracing graphs) or waiting on
    a child process, and each process has one TensorFlow thread per pool (above), so
    one worker per core leaves cores idle. Measured on 2 cores, whole suite: 988 s
    with 2 workers, 641 s with 3. PYTEST_XDIST_AUTO_NUM_WORKERS still wins.
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    return (os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(config, items):
    """Slowest files first (see SLOWEST_FILES_FIRST); the rest keep their order."""
    rank = {name: i for i, name in enumerate(SLOWEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole


class InterruptAt(keras.callbacks.Callback):
    """A test callback: `fire()` after step `step` of epoch `epoch` (both 0-based); by default
    it raises KeyboardInterrupt (a Ctrl-C)."""

    def __init__(self, epoch, step):
        super().__init__()
        self.epoch, self.step, self.current = epoch, step, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.step:
            self.fire()

    def fire(self):
        raise KeyboardInterrupt


TINY = dict(num_layers=2, d_model=16, num_heads=2, dff=32, dropout_rate=0.1)
TINY_VOCAB = dict(input_vocab_size=37, target_vocab_size=29)


def random_ids(rng, vocab_size, lengths, pad_to=None):
    """A (batch, pad_to) int array of ids in [1, vocab), zero-padded per row length."""
    width = pad_to or max(lengths)
    ids = np.zeros((len(lengths), width), dtype="int64")
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1, vocab_size, size=length)
    return ids


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


# What `train` sees as its device in every test: a CPU without 16-bit arithmetic, so that
# `--mixed-precision auto` (the default) trains the tests' runs in float32 whatever CPU runs
# the suite. The tiny runs, and the decoders and exports compared on them, must not round
# differently on a CI machine with bf16 instructions than on one without. Tests of precision
# pick their own device (monkeypatch `tftransformer.runs.train.training_device`); tests that
# train in another process pass `mixed_precision=None` / `--mixed-precision float32`.
TEST_DEVICE_FLAGS = frozenset({"avx2", "fma"})


@pytest.fixture(scope="session", autouse=True)
def _float32_training_device():
    from tftransformer.runs.precision import Device

    device = Device("cpu", "test CPU (float32 only)", cpu_flags=TEST_DEVICE_FLAGS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tftransformer.runs.train.training_device", lambda: device)
        yield device


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def tiny_batch(rng):
    """((pt, en_inputs), en_labels) with ragged row lengths, like prepare_batch's."""
    pt = random_ids(rng, TINY_VOCAB["input_vocab_size"], [7, 5, 3, 6])
    en = random_ids(rng, TINY_VOCAB["target_vocab_size"], [6, 4, 5, 2], pad_to=7)
    return (pt, en[:, :-1]), en[:, 1:]


def built_once(tmp_path_factory, name, build):
    """`build(path)` once per test session, shared by every pytest-xdist worker.

    The session fixtures below (tiny trained runs and their exports) take most of a
    minute each; built once per worker, they were built twice on two cores. The first
    worker to ask builds into a directory all workers share, holding a file lock; the
    others wait for it and reuse the result. Returns `path`.
    """
    import fcntl

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's directory, above each worker's own
    root = root / "built_once"
    root.mkdir(exist_ok=True)
    path, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            build(path)
            done.touch()
    return path


@pytest.fixture(scope="session")
def tokenizers_dir(tmp_path_factory):
    """Tokenizers learned from the embedded train split, saved as a SavedModel."""
    from tftransformer.corpus import load_corpus
    from tftransformer.tokenizers import build_tokenizers, save_tokenizers

    def build(root):
        root.mkdir()
        built = build_tokenizers(load_corpus("embedded", "train"), vocab_dir=root / "vocab")
        save_tokenizers(built, root / "saved")

    return built_once(tmp_path_factory, "tokenizers", build) / "saved"


@pytest.fixture(scope="session")
def tokenizers(tokenizers_dir):
    from tftransformer.tokenizers import load_tokenizers

    return load_tokenizers(tokenizers_dir)


# The one tiny model every trained test run uses: CLI flags, and the same as a config.
TINY_MODEL_FLAGS = ["--num-layers", "1", "--d-model", "16", "--dff", "32", "--num-heads", "2"]
TINY_HPARAMS = dict(num_layers=1, d_model=16, dff=32, num_heads=2)
# Tiny trained runs, built once per session for the reliability tests.
TINY_TRAIN_FLAGS = [
    *TINY_MODEL_FLAGS, "--batch-size", "16", "--limit", "24", "--warmup-steps", "10",
]  # fmt: skip
TINY_CLASSIFY_FLAGS = [*TINY_MODEL_FLAGS, "--limit", "48", "--batch-size", "16"]


def _train_tiny_once(tmp_path_factory, name, flags=()):
    """`tftransformer train` on the tiny config plus `flags`, once per session (`built_once`):
    (run dir, what it printed on stdout)."""
    import contextlib
    import io

    from tftransformer.cli import main

    def build(root):
        root.mkdir()
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            argv = ["train", "--out", str(root / "pt_en"), "--epochs", "1",
                    *TINY_TRAIN_FLAGS, *flags]  # fmt: skip
            assert main(argv) == 0
        (root / "printed.txt").write_text(printed.getvalue(), encoding="utf-8")

    root = built_once(tmp_path_factory, name, build)
    return root / "pt_en", (root / "printed.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def _tiny_training(tmp_path_factory):
    """The tiny run (default tokenizer), once per session: (run dir, what it printed)."""
    return _train_tiny_once(tmp_path_factory, "tiny_run")


@pytest.fixture(scope="session")
def tiny_wordpiece_training(tmp_path_factory):
    """The tiny run with the tutorial's WordPiece tokenizer (500 pieces), once per session:
    (run dir, what `train` printed). Tests that change it work on a copy (`copy_run`)."""
    return _train_tiny_once(tmp_path_factory, "tiny_wordpiece_run",
                            ["--tokenizer", "wordpiece", "--vocab-size", "500"])  # fmt: skip


@pytest.fixture(scope="session")
def tiny_run(_tiny_training):
    """A translator run dir trained for one epoch on a tiny config (through the CLI).

    Shared by every test: tests that change a run work on a copy (`tiny_run_copy`).
    """
    return _tiny_training[0]


@pytest.fixture(scope="session")
def tiny_run_printed(_tiny_training):
    """Everything `tftransformer train` printed on stdout while training `tiny_run`."""
    return _tiny_training[1]


def copy_run(run, out):
    """A copy of run dir `run` at `out`, without its exports (each test makes its own)."""
    import shutil

    shutil.copytree(run, out, ignore=shutil.ignore_patterns("export"))
    return out


@pytest.fixture(scope="session")
def tiny_translator_export(tiny_run, tmp_path_factory):
    """`tftransformer export` of `tiny_run`: the SavedModel directory."""
    from tftransformer.cli import main
    from tftransformer.runs.paths import RunDir

    def build(_marker):
        assert main(["export", str(tiny_run), "--version", "1"]) == 0

    built_once(tmp_path_factory, "tiny_translator_export", build)
    return RunDir(tiny_run).export_root("translator") / "1"


@pytest.fixture(scope="session")
def tiny_classifier_run(tmp_path_factory):
    from tftransformer.cli import main

    def build(out):
        args = ["classify", "train", "--out", str(out), "--epochs", "1", *TINY_CLASSIFY_FLAGS]
        assert main(args) == 0

    return built_once(tmp_path_factory, "tiny_classifier_run", build)


@pytest.fixture(scope="session")
def tiny_classifier_export(tiny_classifier_run, tmp_path_factory):
    from tftransformer.cli import main
    from tftransformer.runs.paths import RunDir

    def build(_marker):
        assert main(["classify", "export", str(tiny_classifier_run), "--version", "1"]) == 0

    built_once(tmp_path_factory, "tiny_classifier_export", build)
    return RunDir(tiny_classifier_run).export_root("classifier") / "1"
