"""The registry on a local folder and on a real S3 server: publish, list, pull, immutability, integrity."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import fsspec
import pytest
import torch

from mlpipes import registry
from mlpipes.artifacts import sha256_bytes
from mlpipes.config import Config
from mlpipes.errors import ConfigError, DataError, IntegrityError, UserError
from mlpipes.testing import S3Server
from mlpipes.weights import add_file as add_to_version
from mlpipes.weights import load_state_dict, read_manifest, save_version


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MLPIPES_CACHE", str(cache))
    return cache


@pytest.fixture(params=["local", "s3"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests against a local folder and against a fresh bucket on the loopback S3 server."""
    if request.param == "local":
        return str(tmp_path / "registry")
    return f"s3://{request.getfixturevalue('s3_bucket')}/models"


def make_version(folder: Path, version: str = "1.0.0", seed: int = 0, onnx: bytes | None = b"onnx-bytes") -> Path:
    """A small model version like a pipeline writes it, plus an ONNX file listed under role 'onnx'."""
    generator = torch.Generator().manual_seed(seed)
    states = {
        "features": {"conv.weight": torch.randn(4, 1, 3, 3, generator=generator)},
        "classifier": {"head.weight": torch.randn(3, 4, generator=generator), "head.bias": torch.zeros(3)},
    }
    manifest = save_version(
        folder, name="toy", version=version, state_dicts=states, config={"seed": seed}, metrics={"test_accuracy": 0.5},
        dataset_sha256=None, code_version="toy 0.1.0",
    )  # fmt: skip
    if onnx is not None:
        add_file(manifest, "onnx", f"toy-{version}.onnx", onnx)
    return manifest


def add_file(manifest: Path, role: str, name: str, data: bytes) -> None:
    source = manifest.parent.parent / name
    source.write_bytes(data)
    add_to_version(manifest, role, source)


def names(manifest: Path) -> dict[str, str]:
    """role -> file name (content-addressed: ``toy-features-1.0.0.<sha16>.safetensors``)."""
    return {role: entry["file"] for role, entry in read_manifest(manifest)["files"].items()}


def storage(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    return fsspec.core.url_to_fs(url, skip_instance_cache=True)


def test_deploy_then_pull_into_an_empty_cache_gives_the_same_weights(registry_url: str, tmp_path: Path) -> None:
    manifest = make_version(tmp_path / "weights")
    published = registry.Registry(registry_url).publish(manifest)
    assert published.status == "published"
    assert set(published.files) == {*names(manifest).values(), "toy-1.0.0.json"}
    assert all(name.startswith(f"toy-{role}-1.0.0.") for role, name in names(manifest).items())

    [listed] = registry.Registry(registry_url).versions("toy")
    assert listed["version"] == "1.0.0" and set(listed["files"]) == {"features", "classifier", "onnx"}

    pulled = registry.pull(registry_url, "toy", "1.0.0")
    assert pulled.read_bytes() == manifest.read_bytes()
    for role in ("features", "classifier"):
        got, want = load_state_dict(pulled, role), load_state_dict(manifest, role)
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert (pulled.parent / names(manifest)["onnx"]).read_bytes() == b"onnx-bytes"
    assert pulled.parent.is_relative_to(registry.cache_root())


def test_identical_redeploy_is_a_no_op(registry_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = make_version(tmp_path / "weights")
    registry.Registry(registry_url).publish(manifest)
    fs, root = storage(registry_url)
    before = {f: fs.info(f)["size"] for f in fs.find(root)}
    writes = []
    monkeypatch.setattr(registry.Registry, "_put", lambda self, path, data: writes.append(path))
    again = registry.Registry(registry_url).publish(manifest)
    assert again.status == "unchanged" and "nothing to do" in str(again)
    assert writes == []
    assert {f: fs.info(f)["size"] for f in fs.find(root)} == before


def test_redeploy_restores_a_file_missing_from_the_registry(registry_url: str, tmp_path: Path) -> None:
    manifest = make_version(tmp_path / "weights")
    registry.Registry(registry_url).publish(manifest)
    fs, root = storage(registry_url)
    onnx = names(manifest)["onnx"]
    fs.rm_file(f"{root}/toy/1.0.0/{onnx}")
    repaired = registry.Registry(registry_url).publish(manifest)
    assert repaired.status == "repaired" and repaired.files == (onnx,)
    assert (registry.pull(registry_url, "toy", "1.0.0").parent / onnx).read_bytes() == b"onnx-bytes"


def test_changed_content_is_refused_naming_the_file_unless_forced(registry_url: str, tmp_path: Path) -> None:
    original = make_version(tmp_path / "a", seed=0)
    registry.Registry(registry_url).publish(original)
    retrained = make_version(tmp_path / "b", seed=1)
    with pytest.raises(UserError, match=rf"{names(retrained)['features']} differs") as refused:
        registry.Registry(registry_url).publish(retrained)
    assert f"{names(retrained)['classifier']} differs" in str(refused.value) and "--force" in str(refused.value)
    assert registry.pull(registry_url, "toy", "1.0.0").read_bytes() == original.read_bytes()

    with_new_file = make_version(tmp_path / "c", seed=0)
    add_file(with_new_file, "notes", "toy-1.0.0.txt", b"notes")
    with pytest.raises(UserError, match=r"toy-notes-1\.0\.0\.\w+\.txt is new"):
        registry.Registry(registry_url).publish(with_new_file)

    assert registry.Registry(registry_url).publish(retrained, force=True).status == "replaced"
    assert registry.pull(registry_url, "toy", "1.0.0", refresh=True).read_bytes() == retrained.read_bytes()


def test_a_tampered_object_is_detected_and_nothing_is_cached(registry_url: str, tmp_path: Path) -> None:
    manifest = make_version(tmp_path / "weights")
    registry.Registry(registry_url).publish(manifest)
    fs, root = storage(registry_url)
    target = f"{root}/toy/1.0.0/{names(manifest)['classifier']}"
    data = bytearray(fs.cat_file(target))
    data[-1] ^= 0xFF
    fs.pipe_file(target, bytes(data))
    with pytest.raises(IntegrityError, match=rf"{names(manifest)['classifier']}: sha256 .* does not match"):
        registry.pull(registry_url, "toy", "1.0.0")
    assert registry.cached_manifest(registry_url, "toy", "1.0.0") is None


def test_a_tampered_cache_fails_closed_on_load(tmp_path: Path) -> None:
    url = str(tmp_path / "registry")
    manifest = make_version(tmp_path / "weights")
    registry.Registry(url).publish(manifest)
    pulled = registry.pull(url, "toy", "1.0.0")
    cached = pulled.parent / names(manifest)["features"]
    cached.write_bytes(cached.read_bytes()[:-1] + b"\x00")
    with pytest.raises(IntegrityError, match="does not match the manifest"):
        load_state_dict(pulled, "features")


def test_a_missing_or_invalid_hash_is_an_error(registry_url: str, tmp_path: Path) -> None:
    manifest = make_version(tmp_path / "weights")
    content = json.loads(manifest.read_text())
    del content["files"]["onnx"]["sha256"]
    manifest.write_text(json.dumps(content))
    with pytest.raises(IntegrityError, match=r"no sha256 for 'toy-onnx-1\.0\.0\.\w+\.onnx'"):
        registry.Registry(registry_url).publish(manifest)
    # A registry written by something else: the reader refuses it too.
    fs, root = storage(registry_url)
    fs.makedirs(f"{root}/toy/1.0.0", exist_ok=True)
    fs.pipe_file(f"{root}/toy/1.0.0/toy-1.0.0.json", json.dumps(content).encode())
    with pytest.raises(IntegrityError, match="no sha256"):
        registry.pull(registry_url, "toy", "1.0.0")
    content["files"]["onnx"] = {"file": "../../escape.onnx", "sha256": "0" * 64}
    fs.pipe_file(f"{root}/toy/1.0.0/toy-1.0.0.json", json.dumps(content).encode())
    with pytest.raises(IntegrityError, match="unsafe file name"):
        registry.pull(registry_url, "toy", "1.0.0")


def test_a_corrupted_local_file_is_not_deployed(tmp_path: Path) -> None:
    manifest = make_version(tmp_path / "weights")
    (tmp_path / "weights" / names(manifest)["onnx"]).write_bytes(b"changed after the manifest was written")
    with pytest.raises(IntegrityError, match=rf"{names(manifest)['onnx']}: sha256 .* refusing to deploy"):
        registry.Registry(str(tmp_path / "registry")).publish(manifest)
    assert not (tmp_path / "registry").exists()


KILLED_DEPLOY = textwrap.dedent(
    """
    import os, signal, sys
    from mlpipes import registry

    put = registry.Registry._put_object

    def put_then_die(self, path, data, replace):  # the process is killed right after its first upload
        put(self, path, data, replace)
        os.kill(os.getpid(), signal.SIGKILL)

    registry.Registry._put_object = put_then_die
    registry.Registry(sys.argv[1]).publish(sys.argv[2])
    """
)


def test_a_deploy_killed_mid_upload_leaves_no_visible_version(registry_url: str, tmp_path: Path) -> None:
    manifest = make_version(tmp_path / "weights")
    killed = subprocess.run([sys.executable, "-c", KILLED_DEPLOY, registry_url, str(manifest)], capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()
    fs, root = storage(registry_url)
    assert [f.rsplit("/", 1)[-1] for f in fs.find(root)] == [names(manifest)["features"]]  # died mid-deploy

    assert registry.Registry(registry_url).versions("toy") == []
    with pytest.raises(DataError, match=r"no toy version 1\.0\.0 \(published: none\)"):
        registry.pull(registry_url, "toy", "1.0.0")
    assert registry.Registry(registry_url).publish(manifest).status == "published"  # a retry completes it
    assert [v["version"] for v in registry.Registry(registry_url).versions("toy")] == ["1.0.0"]


def test_objects_are_plain_s3_objects_readable_by_boto3(s3_bucket: str, s3_env: S3Server, tmp_path: Path) -> None:
    manifest = make_version(tmp_path / "weights")
    registry.Registry(f"s3://{s3_bucket}/models").publish(manifest)
    client = s3_env.client()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert keys == sorted(
        ["models/toy/1.0.0/toy-1.0.0.json", "models/toy/index.json"]
        + [f"models/toy/1.0.0/{name}" for name in names(manifest).values()]
    )
    get = lambda key: client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()  # noqa: E731
    published = json.loads(get("models/toy/1.0.0/toy-1.0.0.json"))
    for entry in published["files"].values():
        assert sha256_bytes(get(f"models/toy/1.0.0/{entry['file']}")) == entry["sha256"]
    index = json.loads(get("models/toy/index.json"))
    assert index["format"] == registry.INDEX_FORMAT and [v["version"] for v in index["versions"]] == ["1.0.0"]


def test_credentials_never_reach_objects_or_output(
    s3_bucket: str, s3_env: S3Server, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    url = f"s3://{s3_bucket}/models"
    print(registry.Registry(url).publish(make_version(tmp_path / "weights")))
    print(registry.pull(url, "toy", "1.0.0"))
    fs, root = storage(url)
    texts = [fs.cat_file(f) for f in fs.find(root)] + [capfd.readouterr().out.encode()]
    for secret in (s3_env.secret_key, s3_env.access_key):
        assert not any(secret.encode() in text for text in texts)
    with pytest.raises(ConfigError, match="must not contain credentials"):
        registry.Registry(f"s3://{s3_env.access_key}:{s3_env.secret_key}@{s3_bucket}/models")


def test_a_missing_bucket_is_a_clear_error(s3_env: S3Server, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does the bucket exist"):
        registry.Registry("s3://no-such-bucket/models").publish(make_version(tmp_path / "weights"))


def test_a_cached_version_loads_with_no_network_attempt(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{s3_bucket}/models"
    registry.Registry(url).publish(make_version(tmp_path / "weights"))
    pulled = registry.pull(url, "toy", "1.0.0")

    def no_network(*args, **kwargs):
        raise AssertionError("the storage was opened for a cached version")

    monkeypatch.setattr(fsspec.core, "url_to_fs", no_network)
    monkeypatch.setattr(fsspec, "filesystem", no_network)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # and the server is unreachable anyway
    assert registry.pull(url, "toy", "1.0.0") == pulled
    assert load_state_dict(pulled, "classifier")["head.weight"].shape == (3, 4)


def test_versions_are_listed_in_version_order_even_without_an_index(tmp_path: Path) -> None:
    url = str(tmp_path / "registry")
    for version in ("1.10.0", "1.9.0", "1.2.0"):
        registry.Registry(url).publish(make_version(tmp_path / version, version=version))
    assert [v["version"] for v in registry.Registry(url).versions("toy")] == ["1.2.0", "1.9.0", "1.10.0"]
    (tmp_path / "registry" / "toy" / "index.json").unlink()
    assert [v["version"] for v in registry.Registry(url).versions("toy")] == ["1.2.0", "1.9.0", "1.10.0"]


def test_the_registry_url_comes_from_the_config_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLPIPES_REGISTRY", raising=False)
    monkeypatch.setenv("MLPIPES_HOME", str(tmp_path / "home"))
    assert Config().registry_url == str(tmp_path / "home" / "registry")
    monkeypatch.setenv("MLPIPES_REGISTRY", "s3://bucket/from-env")
    assert Config().registry_url == "s3://bucket/from-env"
    assert Config(registry="s3://bucket/from-config").registry_url == "s3://bucket/from-config"


def test_names_and_versions_cannot_escape_the_registry(tmp_path: Path) -> None:
    url = str(tmp_path / "registry")
    with pytest.raises(UserError, match=r"version '\.\./\.\./x' is not a safe name"):
        registry.pull(url, "toy", "../../x")
    manifest = make_version(tmp_path / "weights")
    content = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**content, "name": "../toy"}))
    with pytest.raises(UserError, match=r"name '\.\./toy' is not a safe name"):
        registry.Registry(url).publish(manifest)
    assert not (tmp_path / "registry").exists()


def test_a_manifest_carrying_credentials_is_never_published(tmp_path: Path) -> None:
    manifest = make_version(tmp_path / "weights")
    content = json.loads(manifest.read_text())
    content["config"]["registry"] = "s3://AKIA:SeCrEt@bucket/m"  # written by an older version of the code
    manifest.write_text(json.dumps(content, indent=2))
    with pytest.raises(UserError, match="contains a URL with credentials") as refused:
        registry.Registry(str(tmp_path / "registry")).publish(manifest)
    assert "SeCrEt" not in str(refused.value)
    assert not (tmp_path / "registry").exists()
