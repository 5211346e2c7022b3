import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mlpipes import weights
from mlpipes.errors import ConfigError, DataError, IntegrityError, UserError
from mlpipes.weights import (
    add_file,
    copy_version,
    find_versions,
    load_state_dict,
    load_weights,
    manifest_path,
    read_manifest,
    save_version,
)


def save(folder: Path, seed: int = 0, version: str = "1.2.0", **kwargs) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    manifest = save_version(
        folder,
        name="demo",
        version=version,
        state_dicts={"classifier": model.state_dict(), "head": model[0].state_dict()},
        config=kwargs.pop("config", {"lr": 0.1}),
        metrics={"test_accuracy": 0.9},
        dataset_sha256="d" * 64,
        code_version="demo 0.1.0",
        meta={"labels": ["a", "b", "c"]},
        parent={"name": "mnist", "version": "1.0.0", "sha256": "e" * 64},
        **kwargs,
    )
    return manifest, model


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


@pytest.fixture
def version(tmp_path):
    return save(tmp_path)


def test_weights_round_trip_with_a_complete_manifest(version):
    path, model = version
    assert path.name == "demo-1.2.0.json" and path == manifest_path(path.parent, "demo", "1.2.0")
    manifest = read_manifest(path)
    entry = manifest["files"]["classifier"]
    assert entry["file"] == f"demo-classifier-1.2.0.{entry['sha256'][:16]}.safetensors"  # named by content
    assert manifest["files"]["head"]["parameters"] == 15
    assert (manifest["config"], manifest["metrics"], manifest["dataset_sha256"]) == (
        {"lr": 0.1},
        {"test_accuracy": 0.9},
        "d" * 64,
    )
    assert manifest["code_version"] == "demo 0.1.0" and manifest["parent"]["version"] == "1.0.0"
    loaded = load_state_dict(path, "classifier")
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded[key], tensor)


def test_load_weights_fills_a_module_of_the_same_labels_and_returns_the_manifest(version):
    path, model = version
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    manifest = load_weights(fresh, path, "classifier", labels=("a", "b", "c"))
    assert manifest["version"] == "1.2.0"
    for key, tensor in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], tensor)


def test_load_weights_refuses_other_labels_before_loading(version):
    path, _ = version
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(DataError, match=r"demo-1.2.0.json: weights of 'demo' for 3 labels \(a, b, c\), but this model "
                       r"reads 3 \(c, b, a\)") as caught:  # fmt: skip
        load_weights(fresh, path, "classifier", labels=("c", "b", "a"))  # same count, other order: silent misuse
    assert "\n" not in str(caught.value)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in before.items())


def test_load_weights_names_the_tensor_another_architecture_made(version):
    path, _ = version
    wider = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.BatchNorm1d(5))
    misfit = r" \(0.weight is \(3, 4\), the model's \(5, 4\); 6 shapes differ, 0 missing, 0 unexpected\)"
    with pytest.raises(DataError, match=r"demo-1.2.0.json \(classifier\): these weights do not fit the model" + misfit):
        load_weights(wider, path, "classifier")
    deeper = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 3))
    with pytest.raises(DataError, match=r"missing 2.weight; 0 shapes differ, 2 missing, 0 unexpected"):
        load_weights(deeper, path, "classifier")


def test_a_tampered_file_is_refused(version):
    path, _ = version
    weights_file = path.parent / read_manifest(path)["files"]["head"]["file"]
    data = bytearray(weights_file.read_bytes())
    data[-1] ^= 1
    weights_file.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=rf"{weights_file.name}: sha256 .* does not match"):
        load_state_dict(path, "head")
    assert load_state_dict(path, "classifier")  # the untouched file still loads


def test_a_manifest_without_hash_fails_closed(version):
    path, _ = version
    manifest = json.loads(path.read_text())
    del manifest["files"]["head"]["sha256"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="no sha256"):
        load_state_dict(path, "head")


# ---- determinism ------------------------------------------------------------------------------
DETERMINISM = """
import hashlib, sys, torch
from mlpipes.weights import safetensors_bytes
tensors = {"b": torch.ones(3), "a": torch.arange(6, dtype=torch.int64).reshape(2, 3), "c": torch.zeros(2, 2)}
metadata = {"name": "demo", "role": "classifier", "version": "1.0.0", "z": "1", "m": "2"}
print(hashlib.sha256(safetensors_bytes(tensors, metadata)).hexdigest())
"""


def test_same_tensors_and_metadata_give_the_same_bytes_in_every_process():
    # The safetensors library orders its metadata by a per-process random hash: compare across processes.
    digests = {
        subprocess.run([sys.executable, "-c", DETERMINISM], capture_output=True, text=True).stdout for _ in range(4)
    }
    assert len(digests) == 1 and len(next(iter(digests)).strip()) == 64


def test_the_created_time_never_enters_the_weight_files(tmp_path, monkeypatch):
    first, _ = save(tmp_path / "a")
    monkeypatch.setattr(weights, "_created", lambda: "1970-01-01T00:00:00Z")
    second, _ = save(tmp_path / "b")
    assert read_manifest(first)["created"] != read_manifest(second)["created"]
    for role in ("classifier", "head"):
        a, b = (read_manifest(p)["files"][role] for p in (first, second))
        assert a == b and (first.parent / a["file"]).read_bytes() == (second.parent / b["file"]).read_bytes()


def test_saved_files_load_with_the_safetensors_library(version):
    from safetensors import safe_open

    path, _ = version
    entry = read_manifest(path)["files"]["classifier"]
    with safe_open(str(path.parent / entry["file"]), framework="pt") as f:
        assert f.metadata() == {"name": "demo", "role": "classifier", "version": "1.2.0"}
        assert set(f.keys()) == {
            "0.weight",
            "0.bias",
            "1.weight",
            "1.bias",
            "1.running_mean",
            "1.running_var",
            "1.num_batches_tracked",
        }


# ---- immutability -----------------------------------------------------------------------------
def test_saving_the_same_content_again_is_a_no_op(tmp_path, monkeypatch):
    path, _ = save(tmp_path)
    before, mtime = snapshot(tmp_path), path.stat().st_mtime_ns
    monkeypatch.setattr(weights, "_created", lambda: "1970-01-01T00:00:00Z")  # another created time
    assert save(tmp_path)[0] == path
    assert snapshot(tmp_path) == before and path.stat().st_mtime_ns == mtime


def test_different_content_under_a_saved_version_is_refused_naming_the_file(tmp_path):
    save(tmp_path, seed=0)
    before = snapshot(tmp_path)
    with pytest.raises(
        UserError,
        match=r"demo-1\.2\.0\.json: version 1\.2\.0 already exists .*demo-classifier-1\.2\.0\.\w+\.safetensors differs",
    ) as refused:
        save(tmp_path, seed=1)
    assert "--force" in str(refused.value) and "\n" not in str(refused.value)
    assert snapshot(tmp_path) == before
    with pytest.raises(UserError, match=r"fields: config"):
        save(tmp_path, seed=0, config={"lr": 0.2})  # same weights, other config: still another version
    assert snapshot(tmp_path) == before


def test_force_replaces_a_version_and_removes_only_its_old_files(tmp_path):
    other, _ = save(tmp_path, version="1.1.0")
    other_files = {k: v for k, v in snapshot(tmp_path).items() if "1.1.0" in k}
    old, _ = save(tmp_path, seed=0)
    old_files = {e["file"] for e in read_manifest(old)["files"].values()}
    new, model = save(tmp_path, seed=1, force=True)
    assert new == old
    assert torch.equal(load_state_dict(new, "head")["weight"], model[0].weight)
    assert not any((tmp_path / f).exists() for f in old_files)
    assert {k: v for k, v in snapshot(tmp_path).items() if "1.1.0" in k} == other_files
    assert load_state_dict(other, "head")


# ---- names ------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["/../../../../x", "../x", "a/b", ".hidden", ""])
def test_an_unsafe_version_or_name_is_refused_before_anything_is_written(tmp_path, bad):
    with pytest.raises(ConfigError, match="not a safe name"):
        save(tmp_path / "weights", version=bad)
    with pytest.raises(ConfigError, match="not a safe name"):
        save_version(
            tmp_path / "weights", name=bad, version="1.0.0", state_dicts={"c": {"w": torch.ones(1)}},
            config={}, metrics={}, dataset_sha256=None, code_version="x",
        )  # fmt: skip
    assert not (tmp_path / "weights").exists()


@pytest.mark.parametrize("file", ["../outside.safetensors", "/etc/passwd", "sub/x.safetensors", ".hidden", ".."])
def test_manifest_file_names_outside_their_folder_are_refused(version, file):
    path, _ = version
    (path.parent.parent / "outside.safetensors").write_bytes(
        path.parent.joinpath(read_manifest(path)["files"]["head"]["file"]).read_bytes()
    )
    content = json.loads(path.read_text())
    content["files"]["head"]["file"] = file
    path.write_text(json.dumps(content))
    with pytest.raises(IntegrityError, match="unsafe file name"):
        load_state_dict(path, "head")


# ---- malformed manifests: one line, never a raw KeyError/TypeError ------------------------------
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: b"{not json", "not valid JSON"),
        (lambda m: b"\xff\xfe\x00garbage", "not UTF-8"),
        (lambda m: b"[1, 2]", "unknown manifest format"),
        (lambda m: {**m, "format": "other/1"}, "unknown manifest format"),
        (lambda m: {k: v for k, v in m.items() if k != "files"}, "has no 'files'"),
        (lambda m: {k: v for k, v in m.items() if k != "version"}, "has no 'version'"),
        (lambda m: {**m, "files": ["a"]}, "'files' is not a dict"),
        (lambda m: {**m, "version": 3}, "'version' is not a str"),
        (lambda m: {**m, "config": "x"}, "'config' is not a dict"),
        (lambda m: {**m, "files": {"head": "x.safetensors"}}, "not a mapping"),
        (lambda m: {**m, "files": {"head": {**m["files"]["head"], "bytes": "12"}}}, "invalid size"),
        (lambda m: {**m, "files": {"head": {**m["files"]["head"], "sha256": "abc"}}}, "no sha256"),
        (lambda m: {**m, "name": "../demo"}, "not a safe name"),
    ],
)
def test_malformed_manifests_are_one_line_integrity_errors(version, mutate, message):
    path, _ = version
    changed = mutate(json.loads(path.read_text()))
    path.write_bytes(changed if isinstance(changed, bytes) else json.dumps(changed).encode())
    with pytest.raises(IntegrityError, match=message) as refused:
        load_state_dict(path, "head")
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)


def test_missing_manifest_and_missing_file_are_data_errors(version):
    path, _ = version
    with pytest.raises(DataError, match="no 'nope' weights"):
        load_state_dict(path, "nope")
    (path.parent / read_manifest(path)["files"]["head"]["file"]).unlink()
    with pytest.raises(DataError, match="weights file not found"):
        load_state_dict(path, "head")
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(path.parent / "missing.json")
    with pytest.raises(DataError, match="is a folder"):
        read_manifest(path.parent)


# ---- credentials ------------------------------------------------------------------------------
def test_urls_in_the_config_lose_their_credentials(tmp_path):
    config = {"registry": "s3://AKIA:SeCrEt@bucket/m", "dataset_url": "https://u:pw@h/mnist?token=t0k"}
    path, _ = save(tmp_path, config=config)
    text = path.read_text()
    assert "SeCrEt" not in text and "AKIA" not in text and "pw@" not in text and "t0k" not in text
    assert read_manifest(path)["config"]["registry"] == "s3://bucket/m"


# ---- listing ----------------------------------------------------------------------------------
def test_find_versions_lists_valid_manifests_oldest_first(tmp_path, monkeypatch):
    stamps = iter(["2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"])
    monkeypatch.setattr(weights, "_created", lambda: next(stamps))
    b, _ = save(tmp_path, version="1.10.0")
    a, _ = save(tmp_path, version="1.9.0", seed=1)
    c, _ = save(tmp_path, version="1.9.1", seed=2)
    (tmp_path / "demo-broken.json").write_text("{")
    (tmp_path / "demo_other-1.0.json").write_text("{}")
    assert find_versions(tmp_path, "demo") == [a, c, b]
    assert find_versions(tmp_path / "missing", "demo") == []


# ---- add_file (exports) and copy_version (bundled weights) --------------------------------------
def test_add_file_never_touches_the_weights(tmp_path):
    path, _ = save(tmp_path / "w")
    weight_files = {e["file"]: (path.parent / e["file"]).read_bytes() for e in read_manifest(path)["files"].values()}
    export = tmp_path / "model.onnx"
    export.write_bytes(b"graph-1")
    entry = add_file(path, "onnx", export, opset=18)
    assert entry["file"].startswith("demo-onnx-1.2.0.") and entry["file"].endswith(".onnx") and entry["opset"] == 18
    assert read_manifest(path)["files"]["onnx"] == entry
    assert (path.parent / entry["file"]).read_bytes() == b"graph-1"
    manifest_bytes = path.read_bytes()
    assert add_file(path, "onnx", export, opset=18) == entry and path.read_bytes() == manifest_bytes  # no-op

    export.write_bytes(b"graph-2")  # a different export replaces only the onnx file
    second = add_file(path, "onnx", export, opset=18)
    assert second["file"] != entry["file"] and not (path.parent / entry["file"]).exists()
    assert {f: (path.parent / f).read_bytes() for f in weight_files} == weight_files
    with pytest.raises(UserError, match="weights of a saved version never change"):
        add_file(path, "head", export)
    assert {f: (path.parent / f).read_bytes() for f in weight_files} == weight_files


def test_copy_version_never_overwrites_a_different_local_version(tmp_path):
    bundled, _ = save(tmp_path / "package", seed=0)
    package = snapshot(bundled.parent)
    local = copy_version(bundled, tmp_path / "artifacts")
    assert local == tmp_path / "artifacts" / bundled.name and local.read_bytes() == bundled.read_bytes()
    assert load_state_dict(local, "head") and copy_version(bundled, tmp_path / "artifacts") == local  # idempotent

    export = tmp_path / "model.onnx"
    export.write_bytes(b"graph")
    add_file(local, "onnx", export)  # exporting the copy does not make it another version
    assert copy_version(bundled, tmp_path / "artifacts") == local and "onnx" in read_manifest(local)["files"]

    trained, _ = save(tmp_path / "trained", seed=1)
    before = snapshot(tmp_path / "artifacts")
    with pytest.raises(UserError, match="already exists with different content"):
        copy_version(trained, tmp_path / "artifacts")
    assert snapshot(tmp_path / "artifacts") == before and snapshot(bundled.parent) == package


def test_copy_version_refuses_a_corrupted_source(tmp_path):
    bundled, _ = save(tmp_path / "package")
    file = bundled.parent / read_manifest(bundled)["files"]["head"]["file"]
    file.write_bytes(file.read_bytes()[:-1] + b"\x01")
    with pytest.raises(IntegrityError, match="not copying a corrupted version"):
        copy_version(bundled, tmp_path / "artifacts")
    assert not (tmp_path / "artifacts" / bundled.name).exists()


def test_a_full_disk_is_a_one_line_error_and_the_old_version_survives(tmp_path, monkeypatch):
    import errno

    path, _ = save(tmp_path, seed=0)
    before = snapshot(tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(
        DataError, match=r"demo-1\.2\.0\.json: cannot write version 1\.2\.0 \(No space left on device\)"
    ):
        save(tmp_path, seed=1, force=True)
    monkeypatch.undo()
    assert snapshot(tmp_path) == before and load_state_dict(path, "head")


def test_bundled_package_folders_are_never_written(tmp_path):
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    built, _ = save(tmp_path / "build")
    (package / "pretrained").mkdir()
    for file in built.parent.glob("demo-*"):
        (package / "pretrained" / file.name).write_bytes(file.read_bytes())
    bundled = package / "pretrained" / built.name
    before = snapshot(package / "pretrained")
    export = tmp_path / "model.onnx"
    export.write_bytes(b"graph")
    with pytest.raises(UserError, match="bundled weights inside a package is never modified"):
        add_file(bundled, "onnx", export)
    with pytest.raises(UserError, match="bundled weights inside a package is never modified"):
        save(package / "pretrained", seed=1, force=True)
    assert snapshot(package / "pretrained") == before
    local = copy_version(bundled, tmp_path / "artifacts")
    assert add_file(local, "onnx", export)["sha256"] and snapshot(package / "pretrained") == before
