"""predict on CSV files (columns by name, any order) and on arrays, tensors and DataFrames; clear refusals."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer

from breast_cancer import FEATURES, breast_cancer_classifier
from breast_cancer.preprocess import preprocess_rows, read_input
from mlpipes.errors import DataError

TABLE = load_breast_cancer(as_frame=True)
CASES = [0, 19, 20, 568]  # malignant, benign, benign, benign in scikit-learn's order


@pytest.fixture
def cases_csv(tmp_path):
    """Four cases as a spreadsheet would export them: scikit-learn's names, columns in reverse order."""
    path = tmp_path / "cases.csv"
    TABLE.data.iloc[CASES, ::-1].to_csv(path, index=False)
    return path


def test_predict_reads_named_columns_in_any_order(cases_csv, bc_cli, capsys):
    assert bc_cli("predict", cases_csv, "--weights", "pretrained", "--json") == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in results] == ["malignant", "benign", "benign", "benign"]
    assert [r["index"] for r in results] == [0, 1, 2, 3] and all(r["file"] == str(cases_csv) for r in results)
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in results)


def test_predict_in_bf16_on_the_cpu_gives_float32_probabilities(cases_csv, bc_cli, capsys):
    bf16_on_cpu = ["--precision", "bf16", "--device", "cpu"]
    assert bc_cli("predict", cases_csv, "--weights", "pretrained", "--json", *bf16_on_cpu) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in results] == ["malignant", "benign", "benign", "benign"]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in results)  # bf16 softmax: off by ~2e-3


def test_predict_prints_one_line_per_case(cases_csv, bc_cli, capsys):
    assert bc_cli("predict", cases_csv, "--weights", "pretrained") == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[0].startswith(f"{cases_csv}[0]: malignant (")


def test_every_input_form_gives_the_same_rows():
    frame = TABLE.data.iloc[CASES]
    rows = frame.to_numpy(np.float32)
    assert np.array_equal(preprocess_rows(frame.iloc[:, ::-1]), rows)  # DataFrame: by name
    assert np.array_equal(preprocess_rows(frame.rename(columns=lambda c: c.replace(" ", "_"))), rows)
    assert np.array_equal(preprocess_rows(torch.tensor(rows)), rows)
    assert preprocess_rows(rows[0].astype(np.float64)).shape == (1, 30)  # one case, any float dtype
    model = breast_cancer_classifier(pretrained=True)
    probabilities = model.predict(frame)
    assert probabilities.shape == (4, 2) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, model.predict(torch.tensor(rows)), atol=1e-6)
    assert model.predict(np.zeros((0, 30), np.float32)).shape == (0, 2)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.drop(columns="worst area"), "column 'worst_area' is missing"),
        (lambda t: t.assign(patient_id=1), "column 'patient_id' is not a feature"),
        (lambda t: t.assign(**{"mean texture": ["n/a", 1, 2, 3]}), "row 1, column 'mean_texture': empty or not"),
        (lambda t: t.assign(**{"mean area": [1, None, 2, 3]}), "row 2, column 'mean_area': empty or not"),
    ],
)
def test_bad_columns_are_refused_in_one_line_naming_file_and_column(edit, message, tmp_path, bc_cli, capsys):
    path = tmp_path / "bad.csv"
    edit(TABLE.data.iloc[CASES].copy()).to_csv(path, index=False)
    assert bc_cli("predict", path, "--weights", "pretrained") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"breast-cancer: error: {path}: ") and message in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable CSV table (No columns to parse from file)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a readable CSV table"),
        (",".join(FEATURES).encode() + b"\n" + b",".join([b"1"] * 31) + b"\n", "not a readable CSV table"),
    ],
)
def test_unreadable_files_are_refused(content, message, tmp_path):
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: {re.escape(message)}"):
        read_input(path)
    with pytest.raises(DataError, match="no-such.csv: not a readable CSV table"):
        read_input(tmp_path / "no-such.csv")


def test_arrays_of_the_wrong_width_are_refused():
    with pytest.raises(DataError, match=r"expected rows of 30 features, got an array of shape \(2, 29\)"):
        preprocess_rows(np.zeros((2, 29)))
    with pytest.raises(DataError, match="row 2, column 'worst_fractal_dimension'"):
        preprocess_rows(np.array([[1.0] * 30, [1.0] * 29 + [np.inf]]))
