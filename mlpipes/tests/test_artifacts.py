import os

import pytest

from mlpipes.artifacts import RunRecord, atomic_path, atomic_write


def test_atomic_write_replaces_whole_files(tmp_path):
    target = tmp_path / "sub" / "file.json"
    atomic_write(target, "first")
    atomic_write(target, "second")
    assert target.read_text() == "second"
    assert os.listdir(target.parent) == ["file.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "weights.bin"
    atomic_write(target, b"good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["weights.bin"]


def test_run_records_are_found_again(tmp_path):
    first = RunRecord.create(tmp_path, "a: 1\n")
    second = RunRecord.create(tmp_path, "a: 2\n")
    assert first.dir != second.dir
    assert RunRecord.latest(tmp_path).dir == second.dir
    second.write_history([{"epoch": 1}])
    assert RunRecord.latest(tmp_path).history == [{"epoch": 1}]
    assert (second.dir / "config.yaml").read_text() == "a: 2\n"
