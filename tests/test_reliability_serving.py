"""The serving contract of the exported SavedModels (issue 9).

Proves: every op in each exported graph is one TensorFlow Serving's stock model
server can run (core TensorFlow, or a TF Text op of the `ops_lib` it links: see
`tests/data/tf_serving_text_ops.txt` for the list and its source); the
signature names, input/output names, dtypes and shapes are exactly those the
README documents, so they cannot change silently.
"""

from pathlib import Path

import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

ALLOWLIST_FILE = Path(__file__).parent / "data" / "tf_serving_text_ops.txt"

# The serving contract (README, "Serving contract"): signature -> (inputs, outputs),
# each name -> (dtype, shape); None is a dimension of any size, "L" the number of labels.
TRANSLATOR_SIGNATURES = {
    "serving_default": ({"sentences": (tf.string, [None])}, {"translations": (tf.string, [None])}),
    "beam_search": ({"sentences": (tf.string, [None])}, {"translations": (tf.string, [None])}),
}
CLASSIFIER_SIGNATURES = {
    "serving_default": (
        {"texts": (tf.string, [None])},
        {
            "scores": (tf.float32, [None, "L"]),
            "labels": (tf.string, [None, "L"]),
            "predicted": (tf.bool, [None, "L"]),
        },
    ),
}


def tf_text_serving_ops() -> set[str]:
    """The documented allowlist: the first column of `tf_serving_text_ops.txt`."""
    lines = ALLOWLIST_FILE.read_text(encoding="utf-8").splitlines()
    return {line.split()[0] for line in lines if line.strip() and not line.startswith("#")}


def core_tensorflow_ops() -> set[str]:
    """Every op of core TensorFlow (`tf.raw_ops`; TF Text's ops are not in it)."""
    return {name for name in dir(tf.raw_ops) if not name.startswith("_")}


def graph_op_types(saved_model_dir) -> set[str]:
    """Every op type in a SavedModel: the graph's nodes and all its functions' nodes."""
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    ops = set()
    for meta_graph in proto.meta_graphs:
        graph = meta_graph.graph_def
        functions = {f.signature.name for f in graph.library.function}
        ops.update(node.op for node in graph.node)
        for function in graph.library.function:
            ops.update(node.op for node in function.node_def)
        ops -= functions  # a node calling a library function directly is not an op
    return ops


def not_servable(ops) -> set[str]:
    return set(ops) - core_tensorflow_ops() - tf_text_serving_ops()


def test_allowlist_is_the_documented_tf_text_ops_lib():
    ops = tf_text_serving_ops()
    assert len(ops) == 38
    # The tokenizer's ops (BertTokenizer: normalize, regex split, wordpiece) are in it.
    assert {"CaseFoldUTF8", "NormalizeUTF8", "RegexSplitWithOffsets",
            "WordpieceTokenizeWithOffsets"} <= ops  # fmt: skip
    assert not ops & core_tensorflow_ops()
    # ... and the check can fail: an op from neither list is reported.
    assert not_servable({"MatMul", "WordpieceTokenizeWithOffsets", "MyCustomOp"}) == {"MyCustomOp"}


_REGISTRY_DIFF = """
import json
import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session

def registered():
    ops = op_def_pb2.OpList()
    ops.ParseFromString(pywrap_tf_session.TF_GetBuffer(pywrap_tf_session.TF_GetAllOpList()))
    return {op.name for op in ops.op}

before = registered()
import tensorflow_text
print(json.dumps(sorted(registered() - before)))
"""


def test_allowlist_matches_the_installed_tensorflow_text():
    """The ops `import tensorflow_text` registers (in a fresh process) are exactly the list."""
    from fresh_process import python_json

    added = set(python_json(_REGISTRY_DIFF, timeout=300))
    assert added == tf_text_serving_ops()


@pytest.mark.parametrize("which", ["translator", "classifier", "tokenizers"])
def test_exported_graphs_use_only_servable_ops(which, request):
    path = {
        "translator": lambda: request.getfixturevalue("tiny_translator_export"),
        "classifier": lambda: request.getfixturevalue("tiny_classifier_export"),
        "tokenizers": lambda: request.getfixturevalue("tiny_run") / "tokenizers",
    }[which]()
    ops = graph_op_types(path)
    assert not_servable(ops) == set(), f"{which}: ops TF Serving cannot run"
    # The graphs really hold the tokenizer's TF Text ops (so the check is not vacuous):
    # SentencePiece's (the default of `train` and of `classify train`; the classifier only
    # tokenizes).
    tokenizer_ops = {
        "translator": {"SentencepieceTokenizeOp", "SentencepieceDetokenizeOp"},
        "classifier": {"SentencepieceTokenizeOp"},
        "tokenizers": {"SentencepieceTokenizeOp", "SentencepieceDetokenizeOp"},
    }[which]
    assert tokenizer_ops <= ops


def _spec_matches(spec, dtype, shape, labels):
    want = [labels if d == "L" else d for d in shape]
    return spec.dtype == dtype and spec.shape.as_list() == want


def _check_signature(function, inputs, outputs, labels=None):
    _args, kwargs = function.structured_input_signature
    assert sorted(kwargs) == sorted(inputs)
    for name, (dtype, shape) in inputs.items():
        assert _spec_matches(kwargs[name], dtype, shape, labels), (name, kwargs[name])
    assert sorted(function.structured_outputs) == sorted(outputs)
    for name, (dtype, shape) in outputs.items():
        spec = function.structured_outputs[name]
        assert _spec_matches(spec, dtype, shape, labels), (name, spec)


@pytest.fixture(scope="module")
def translator_model(tiny_translator_export):
    return tf.saved_model.load(str(tiny_translator_export))


@pytest.fixture(scope="module")
def classifier_model(tiny_classifier_export):
    return tf.saved_model.load(str(tiny_classifier_export))


def test_translator_signature_names_are_pinned(translator_model):
    assert set(translator_model.signatures) == set(TRANSLATOR_SIGNATURES)


@pytest.mark.parametrize("name", sorted(TRANSLATOR_SIGNATURES))
def test_translator_signature_is_pinned(translator_model, name):
    inputs, outputs = TRANSLATOR_SIGNATURES[name]
    _check_signature(translator_model.signatures[name], inputs, outputs)


def test_classifier_signature_is_pinned(classifier_model, tiny_classifier_run):
    labels = len((tiny_classifier_run / "labels.txt").read_text(encoding="utf-8").split())
    assert set(classifier_model.signatures) == set(CLASSIFIER_SIGNATURES)
    inputs, outputs = CLASSIFIER_SIGNATURES["serving_default"]
    _check_signature(classifier_model.signatures["serving_default"], inputs, outputs, labels)


def test_saved_model_cli_shows_the_pinned_classifier_signature(tiny_classifier_export):
    """The signature as a model server reads it from saved_model.pb (not Python objects)."""
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((tiny_classifier_export / "saved_model.pb").read_bytes())
    (meta_graph,) = [m for m in proto.meta_graphs if "serve" in m.meta_info_def.tags]
    signature = meta_graph.signature_def["serving_default"]
    assert signature.method_name == "tensorflow/serving/predict"
    assert list(signature.inputs) == ["texts"]
    assert signature.inputs["texts"].dtype == tf.string.as_datatype_enum
    assert [d.size for d in signature.inputs["texts"].tensor_shape.dim] == [-1]
    dtypes = {name: info.dtype for name, info in signature.outputs.items()}
    assert dtypes == {
        "scores": tf.float32.as_datatype_enum,
        "labels": tf.string.as_datatype_enum,
        "predicted": tf.bool.as_datatype_enum,
    }
