"""OnnxClassifier refuses a model whose metadata labels do not match its graph's output width."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlpipes.errors import DataError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from mlpipes.onnx import OnnxClassifier  # noqa: E402


def graph_file(path, labels, classes: int = 3, output: str = "logits", temperature=None):
    """A tiny hand-built graph: images (N, 1, 2, 2) → flatten → matmul → (N, classes), every class its own logit."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(4 * classes, dtype=np.float32).reshape(4, classes) / 4, "w")
    nodes = [helper.make_node("Flatten", ["images"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], [output])]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 1, 2, 2])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", classes])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    props = {} if labels is None else {"labels": labels if isinstance(labels, str) else json.dumps(labels)}
    if temperature is not None:
        props["temperature"] = str(temperature)
    helper.set_model_props(model, props)
    onnx.save(model, path)
    return path


def test_matching_labels_load_and_predict(tmp_path):
    model = OnnxClassifier(graph_file(tmp_path / "ok.onnx", ["a", "b", "c"]))
    assert model.labels == ("a", "b", "c")
    assert model.predict(np.zeros((2, 1, 2, 2), np.float32)).shape == (2, 3)


def test_predict_divides_the_logits_by_the_metadata_temperature(tmp_path):
    from mlpipes.calibration import softmax

    inputs = np.random.default_rng(0).random((4, 1, 2, 2), dtype=np.float32)
    for temperature in (None, 0.5, 2.0):
        model = OnnxClassifier(graph_file(tmp_path / f"t{temperature}.onnx", ["a", "b", "c"], temperature=temperature))
        got = model.predict(inputs)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, softmax(model.logits(inputs), temperature or 1.0), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("labels", "output", "message"),
    [
        (["a", "b"], "logits", "metadata lists 2 labels but the graph outputs 3 classes"),
        (None, "logits", "no list of labels"),
        ("abc", "logits", "no list of labels"),  # a plain string would become 3 one-letter labels
        (["a", "b", "c"], "scores", "needs one input and an output 'logits'"),
        (["a", "b", "c"], "logits:0", "temperature 0 is not a positive number"),
        (["a", "b", "c"], "logits:nan", "temperature nan is not a positive number"),
    ],
    ids=["width", "missing", "string", "names", "temperature-0", "temperature-nan"],
)
def test_inconsistent_models_are_refused_in_one_line(tmp_path, labels, output, message):
    output, _, temperature = output.partition(":")
    path = graph_file(tmp_path / "bad.onnx", labels, output=output, temperature=temperature or None)
    with pytest.raises(DataError, match=rf"bad\.onnx: .*{message}"):
        OnnxClassifier(path)
