"""Versions are written whole or not at all: faults at every rename and copy, real kills, racing deploys.

Each case records every artifact before the operation and asserts it is byte-identical after the
operation failed (an exception injected at the k-th rename/link/copy/fsync, for every k until the
operation completes, or a ``kill -9`` while it is paused), and that the previous version still loads.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from mlpipes import registry
from mlpipes.errors import UserError
from mlpipes.weights import add_file, copy_version, load_state_dict, read_manifest, save_version

FAULT_POINTS = [(os, "replace"), (os, "rename"), (os, "link"), (os, "fsync"), (shutil, "copyfile")]


class Injected(OSError):
    """The fault a test injects (an OSError, like a full disk or a dying device)."""


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPES_CACHE", str(tmp_path / "cache"))


def states(seed: int) -> dict[str, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return {
        "features": {"conv.weight": torch.randn(4, 1, 3, 3, generator=g)},
        "classifier": {"head.weight": torch.randn(3, 4, generator=g), "head.bias": torch.zeros(3)},
    }


def save(folder: Path, seed: int = 0, version: str = "1.0.0", force: bool = False) -> Path:
    return save_version(
        folder, name="toy", version=version, state_dicts=states(seed), config={"seed": seed}, metrics={},
        dataset_sha256=None, code_version="toy 0.1.0", force=force,
    )  # fmt: skip


def snapshot(root: Path) -> dict[str, bytes]:
    """Every visible file under ``root`` (temporary and lock files are hidden) with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def assert_survived(before: dict[str, bytes], root: Path) -> None:
    after = snapshot(root)
    changed = [name for name, data in before.items() if after.get(name) != data]
    assert not changed, f"artifacts changed or lost: {changed}"


def assert_loads(manifest: Path, seed: int) -> None:
    for role, state in states(seed).items():
        loaded = load_state_dict(manifest, role)
        assert all(torch.equal(loaded[k], v) for k, v in state.items())


def with_faults(monkeypatch: pytest.MonkeyPatch, k: int) -> list[str]:
    """Make the k-th call to any rename/link/copy/fsync raise; return the log of calls made."""
    calls: list[str] = []
    for module, name in FAULT_POINTS:
        original = getattr(module, name)

        def faulty(*args, _original=original, _name=name, **kwargs):
            if _name == "fsync" and stat.S_ISDIR(os.fstat(args[0]).st_mode):
                return _original(*args, **kwargs)  # a folder's fsync after the commit is best effort
            calls.append(_name)
            if len(calls) == k:
                raise Injected(28, f"injected fault at {_name} call {k}")
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, faulty)
    return calls


def every_fault(
    operation: Callable[[], object], check: Callable[[], None], monkeypatch: pytest.MonkeyPatch, root: Path
) -> int:
    """Run ``operation`` with a fault at call 1, 2, ... until it completes; ``check`` after each failure.

    Files a failed attempt left (unreferenced, content-addressed) are removed before the next
    attempt, so every attempt starts from the same state and meets the k-th step afresh.
    """
    initial = set(snapshot(root))
    for k in range(1, 200):
        with monkeypatch.context() as patch:
            calls = with_faults(patch, k)
            try:
                operation()
            except (Injected, UserError):
                pass
            else:
                assert len(calls) < k, "the operation swallowed an injected fault"
                return k - 1
        check()
        for name in set(snapshot(root)) - initial:
            (root / name).unlink()
    raise AssertionError("the operation never completed")


# ---- local versions ---------------------------------------------------------------------------
def test_replacing_a_version_survives_a_fault_at_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "weights"
    old = save(folder, seed=0)
    save(folder, seed=5, version="0.9.0")
    before = snapshot(folder)

    def check() -> None:
        assert_survived(before, folder)
        assert_loads(old, 0)
        assert_loads(folder / "toy-0.9.0.json", 5)
        assert not list(folder.glob(".*.tmp"))

    faults = every_fault(lambda: save(folder, seed=1, force=True), check, monkeypatch, folder)
    assert faults == 6  # two weight files and the manifest, each fsynced and renamed
    assert_loads(old, 1)
    assert_loads(folder / "toy-0.9.0.json", 5)


def test_adding_and_replacing_an_export_survives_a_fault_at_every_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = save(tmp_path / "weights")
    export = tmp_path / "model.onnx"
    for content in (b"graph-1", b"graph-2"):
        export.write_bytes(content)
        before = snapshot(tmp_path / "weights")

        def check(before: dict[str, bytes] = before) -> None:
            assert_survived(before, tmp_path / "weights")
            assert_loads(manifest, 0)

        assert every_fault(lambda: add_file(manifest, "onnx", export), check, monkeypatch, tmp_path / "weights") == 4
        entry = read_manifest(manifest)["files"]["onnx"]
        assert (manifest.parent / entry["file"]).read_bytes() == content
        weights = {k: v for k, v in before.items() if k.endswith(".safetensors")}
        assert {k: v for k, v in snapshot(tmp_path / "weights").items() if k.endswith(".safetensors")} == weights


def test_copying_a_bundled_version_survives_a_fault_at_every_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = save(tmp_path / "package", seed=3)
    save(tmp_path / "artifacts", seed=4, version="1.0.0+run1")
    before = snapshot(tmp_path)

    def check() -> None:
        assert_survived(before, tmp_path)
        assert not (tmp_path / "artifacts" / bundled.name).exists() or read_manifest(
            tmp_path / "artifacts" / bundled.name
        )

    every_fault(lambda: copy_version(bundled, tmp_path / "artifacts"), check, monkeypatch, tmp_path / "artifacts")
    assert_loads(tmp_path / "artifacts" / bundled.name, 3)
    assert_survived(before, tmp_path)


KILLED_SAVE = textwrap.dedent(
    """
    import os, sys, time, torch
    from pathlib import Path
    sys.path.insert(0, sys.argv[4])
    from test_versions_atomic import save

    marker, k = Path(sys.argv[2]), int(sys.argv[3])
    replace, calls = os.replace, []

    def paused(*args):  # pause at the k-th rename: the parent kills us there with SIGKILL
        calls.append(args)
        if len(calls) == k:
            marker.write_text(str(args[1]))
            time.sleep(600)
        return replace(*args)

    os.replace = paused
    save(Path(sys.argv[1]), seed=1, force=True)
    """
)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_version_survives_kill_9_in_the_middle_of_a_replacement(tmp_path: Path, k: int) -> None:
    folder = tmp_path / "weights"
    old = save(folder, seed=0)
    before = snapshot(folder)
    marker = tmp_path / "paused"
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_SAVE, str(folder), str(marker), str(k), str(Path(__file__).parent)]
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert writer.poll() is None and time.monotonic() < deadline, "the writer never reached the pause"
            time.sleep(0.05)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    if k == 3:  # the renames: two weight files, then the manifest
        assert Path(marker.read_text()).name == old.name
    assert_survived(before, folder)
    assert_loads(old, 0)
    with pytest.raises(UserError, match="already exists with different content"):
        save(folder, seed=1)  # still immutable after the kill
    assert_loads(save(folder, seed=1, force=True), 1)  # and the replacement completes on retry


CONCURRENT_SAVE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[4])
    from test_versions_atomic import save
    from mlpipes.errors import UserError

    go = Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.01)
    try:
        save(Path(sys.argv[1]), seed=int(sys.argv[3]))
    except UserError as e:
        print(e)
        sys.exit(1)
    print("saved")
    """
)


def test_two_processes_saving_one_version_cannot_both_win(tmp_path: Path) -> None:
    folder, go = tmp_path / "weights", tmp_path / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_SAVE, str(folder), str(go), str(seed), str(Path(__file__).parent)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    time.sleep(3)  # both imported torch and are waiting
    go.touch()
    results = [(w.wait(), w.stdout.read(), w.stderr.read()) for w in writers]
    codes = sorted(code for code, *_ in results)
    assert codes == [0, 1], results
    [winner] = [seed for seed, (code, *_) in zip((1, 2), results, strict=True) if code == 0]
    [(_, refusal, _)] = [r for r in results if r[0] == 1]
    assert "already exists with different content" in refusal
    assert_loads(folder / "toy-1.0.0.json", winner)


# ---- the registry -----------------------------------------------------------------------------
@pytest.fixture(params=["local", "s3"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "registry")
    return f"s3://{request.getfixturevalue('s3_bucket')}/models"


def registry_snapshot(url: str) -> dict[str, bytes]:
    fs, root = registry.Registry(url).fs, registry.Registry(url).root
    return {path[len(root) :]: fs.cat_file(path) for path in sorted(fs.find(root)) if not path.endswith("index.json")}


def test_publishing_survives_a_fault_at_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "registry")
    first = save(tmp_path / "a", seed=0)
    registry.Registry(url).publish(first)
    pulled = registry.pull(url, "toy", "1.0.0").read_bytes()
    before = registry_snapshot(url)
    replacement = save(tmp_path / "b", seed=1)
    new_version = save(tmp_path / "c", seed=2, version="1.1.0")

    def check() -> None:
        assert_survived(
            {k.lstrip("/"): v for k, v in before.items()},
            tmp_path / "registry",
        )
        assert registry.pull(url, "toy", "1.0.0", refresh=True).read_bytes() == pulled
        assert next(v["version"] for v in registry.Registry(url).versions("toy")) == "1.0.0"

    # The index write after the commit is best effort in publish; surface its faults here too.
    monkeypatch.setattr(registry.Registry, "_refresh_index", registry.Registry._update_index)
    every_fault(lambda: registry.Registry(url).publish(new_version), check, monkeypatch, tmp_path / "registry")
    with pytest.raises(UserError, match="already published with different content"):
        registry.Registry(url).publish(replacement)
    check()
    assert [v["version"] for v in registry.Registry(url).versions("toy")] == ["1.0.0", "1.1.0"]


DEPLOY = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mlpipes import registry
    from mlpipes.errors import UserError

    url, manifest, go, pause = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    if pause:  # stop right before the manifest write until the test says go
        create = registry.Registry._create

        def paused(self, path, data):
            if path.endswith(".json"):
                Path(pause).write_text("paused")
                while not go.exists():
                    time.sleep(0.01)
            return create(self, path, data)

        registry.Registry._create = paused
    else:
        while not go.exists():
            time.sleep(0.005)
    try:
        print(registry.Registry(url).publish(manifest))
    except UserError as e:
        print(e)
        sys.exit(1)
    """
)


def deploy(url: str, manifest: Path, go: Path, pause: Path | None = None) -> subprocess.Popen:
    args = [sys.executable, "-c", DEPLOY, url, str(manifest), str(go), str(pause or "")]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_concurrent_deploys_of_one_version_never_both_succeed(registry_url: str, tmp_path: Path) -> None:
    manifests = {seed: save(tmp_path / f"w{seed}", seed=seed) for seed in (1, 2)}
    go = tmp_path / "go"
    deploys = {seed: deploy(registry_url, m, go) for seed, m in manifests.items()}
    time.sleep(2)  # both started and are waiting at the line
    go.touch()
    results = {seed: (p.wait(timeout=120), p.stdout.read()) for seed, p in deploys.items()}
    winners = [seed for seed, (code, _) in results.items() if code == 0]
    assert len(winners) == 1, results
    [loser] = set(results) - set(winners)
    assert "different content" in results[loser][1] or "another deploy" in results[loser][1], results
    pulled = registry.pull(registry_url, "toy", "1.0.0")
    assert pulled.read_bytes() == manifests[winners[0]].read_bytes()
    assert_loads(pulled, winners[0])


def test_a_deploy_paused_before_its_manifest_cannot_publish_over_a_completed_one(
    registry_url: str, tmp_path: Path
) -> None:
    a, b = save(tmp_path / "a", seed=1), save(tmp_path / "b", seed=2)
    go, paused = tmp_path / "go", tmp_path / "paused"
    first = deploy(registry_url, a, go, pause=paused)
    deadline = time.monotonic() + 120
    while not paused.exists():
        assert first.poll() is None and time.monotonic() < deadline, first.stdout.read()
        time.sleep(0.05)
    assert registry.Registry(registry_url).publish(b).status == "published"  # B completes meanwhile
    published = registry_snapshot(registry_url)
    go.touch()
    code, output = first.wait(timeout=120), first.stdout.read()
    assert code == 1 and "already published with different content" in output, output
    assert registry_snapshot(registry_url) == published  # A's files sit beside B's, none of B's changed
    pulled = registry.pull(registry_url, "toy", "1.0.0")
    assert pulled.read_bytes() == b.read_bytes()
    assert_loads(pulled, 2)


def test_a_paused_deploy_of_identical_content_reports_unchanged(tmp_path: Path) -> None:
    url, manifest = str(tmp_path / "registry"), save(tmp_path / "a", seed=1)
    go, paused = tmp_path / "go", tmp_path / "paused"
    first = deploy(url, manifest, go, pause=paused)
    while not paused.exists():
        assert first.poll() is None
        time.sleep(0.05)
    registry.Registry(url).publish(manifest)
    go.touch()
    assert first.wait(timeout=120) == 0 and "already published with identical content" in first.stdout.read()


def test_a_version_missing_from_the_index_is_still_listed(registry_url: str, tmp_path: Path) -> None:
    reg = registry.Registry(registry_url)
    reg.publish(save(tmp_path / "a", version="1.0.0"))
    index = reg.fs.cat_file(reg.path("toy", "index.json"))  # lists 1.0.0 only
    reg.publish(save(tmp_path / "b", version="1.1.0"))
    reg.fs.pipe_file(reg.path("toy", "index.json"), index)  # a racing deploy wrote its older index last
    assert [v["version"] for v in registry.Registry(registry_url).versions("toy")] == ["1.0.0", "1.1.0"]
    reg.fs.pipe_file(reg.path("toy", "index.json"), b"{broken")
    assert [v["version"] for v in registry.Registry(registry_url).versions("toy")] == ["1.0.0", "1.1.0"]
    reg.fs.pipe_file(reg.path("toy", "index.json"), b'{"versions": [{"version": "1.0.0"}, 3]}')
    assert [v["version"] for v in registry.Registry(registry_url).versions("toy")] == ["1.0.0", "1.1.0"]
    reg.fs.pipe_file(reg.path("toy", "1.1.0", "toy-1.1.0.json"), b"\xff not a manifest")
    listed = registry.Registry(registry_url).versions("toy")
    assert [v["version"] for v in listed] == ["1.0.0", "1.1.0"] and "not UTF-8" in listed[1]["damaged"]


def test_force_removes_the_old_manifest_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "registry")
    registry.Registry(url).publish(save(tmp_path / "a", seed=1))
    seen = []
    create = registry.Registry._create

    def spy(self, path, data):
        if path.endswith("toy-1.0.0.json"):
            seen.append(Path(path).exists())
        return create(self, path, data)

    monkeypatch.setattr(registry.Registry, "_create", spy)
    assert registry.Registry(url).publish(save(tmp_path / "b", seed=2), force=True).status == "replaced"
    assert seen == [False]
    assert_loads(registry.pull(url, "toy", "1.0.0", refresh=True), 2)


def test_unreachable_storage_is_one_line_naming_the_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secretexample")
    with pytest.raises(registry.RegistryError, match=r"^s3://some-bucket/models: storage error") as failed:
        registry.Registry("s3://some-bucket/models").publish(save(tmp_path / "a"))
    assert "\n" not in str(failed.value) and "secretexample" not in str(failed.value)
    with pytest.raises(UserError, match=r"gopher://x/y: cannot open this registry"):
        registry.Registry("gopher://x/y")
