"""The weights_vs_previous row finds the version a bundled one replaced in git history."""

import subprocess

import pytest
import torch

from benchmarks.registry import NotAvailable
from benchmarks.rows.previous import alternating, previous_bundled, ratios
from mlpipes.weights import find_versions, load_state_dict, read_manifest, save_version


def commit(repo, message):
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    settings = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "-C", str(repo), *settings, "commit", "-qm", message, "--no-verify"], check=True)


def publish(folder, version, weight, temperature=1.0, keep=False):
    for old in [] if keep else folder.glob("*"):
        old.unlink()
    weights = {"classifier": {"w": torch.full((2,), weight)}}
    return save_version(folder, name="toy", version=version, state_dicts=weights, config={}, metrics={},
                        dataset_sha256=None, code_version="0", meta={"temperature": temperature})  # fmt: skip


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    folder = repo / "pkg" / "pretrained"
    folder.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "README").write_text("x")
    commit(repo, "first")
    publish(folder, "1.0.0", 1.0)
    commit(repo, "1.0.0")
    publish(folder, "1.1.0", 2.0)
    commit(repo, "1.1.0")
    publish(folder, "1.1.0", 2.0, temperature=1.5)  # a refit of the same version is not a previous version
    commit(repo, "1.1.0 refit")
    return repo, folder


def test_previous_bundled_is_the_version_before_the_current_one_with_its_weights(repo, tmp_path):
    repo, folder = repo
    out = tmp_path / "out"
    out.mkdir()
    manifest = previous_bundled(folder, "toy", out, repo=repo)
    assert read_manifest(manifest)["version"] == "1.0.0"
    assert load_state_dict(manifest, "classifier")["w"].tolist() == [1.0, 1.0]  # checksum verified on load
    assert [p.name for p in find_versions(folder, "toy")] == ["toy-1.1.0.json"]  # the working tree is untouched


def previous_version(folder, tmp_path, repo):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    for stale in out.glob("*"):
        stale.unlink()
    return read_manifest(previous_bundled(folder, "toy", out, repo=repo))["version"]


def test_weights_not_yet_committed_compare_with_the_committed_ones(repo, tmp_path):
    repo, folder = repo
    publish(folder, "1.2.0", 3.0)  # make pretrained, before the commit
    assert previous_version(folder, tmp_path, repo) == "1.1.0"


def test_a_tree_holding_two_versions_gives_the_older_one_alone(repo, tmp_path):
    repo, folder = repo
    publish(folder, "1.2.0", 3.0, keep=True)
    commit(repo, "1.2.0 beside 1.1.0")
    publish(folder, "1.2.0", 3.0)
    commit(repo, "1.1.0 removed")
    out = tmp_path / "two"
    out.mkdir()
    manifest = previous_bundled(folder, "toy", out, repo=repo)
    assert read_manifest(manifest)["version"] == "1.1.0"
    assert len(list(out.glob("*.json"))) == 1 and len(list(out.glob("*.safetensors"))) == 1


def test_a_rollback_compares_with_an_older_version_never_a_newer_one(repo, tmp_path):
    repo, folder = repo
    publish(folder, "1.2.0", 3.0)
    commit(repo, "1.2.0")
    publish(folder, "1.1.0", 2.0)
    commit(repo, "back to 1.1.0")
    assert previous_version(folder, tmp_path, repo) == "1.0.0"


def test_no_earlier_version_is_not_available(tmp_path):
    repo = tmp_path / "repo"
    folder = repo / "pretrained"
    folder.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    publish(folder, "1.0.0", 1.0)
    commit(repo, "only version")
    (tmp_path / "out").mkdir()
    with pytest.raises(NotAvailable, match="no toy version older than 1.0.0 in the git history of pretrained"):
        previous_bundled(folder, "toy", tmp_path / "out", repo=repo)


def test_outside_a_git_clone_is_not_available(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # whatever holds the temp folder
    folder = tmp_path / "pretrained"
    folder.mkdir()
    publish(folder, "1.0.0", 1.0)
    (tmp_path / "out").mkdir()
    with pytest.raises(NotAvailable, match="needs a git clone"):
        previous_bundled(folder, "toy", tmp_path / "out", repo=tmp_path)


def test_rounds_alternate_which_version_goes_first():
    calls = []
    old, new = alternating(4, lambda: calls.append("old") or 2.0, lambda: calls.append("new") or 3.0)
    assert calls == ["old", "new", "new", "old", "old", "new", "new", "old"]
    assert ratios(old, new) == [1.5] * 4
