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


HOLD_RUN = """
import sys, time
from mlpipes.artifacts import RunRecord
run = RunRecord.create(sys.argv[1], "a: 1\\n")
print(run.name, flush=True)
time.sleep(60)
"""


TRY_RUN = """
import sys
from mlpipes.artifacts import RunBusyError, RunRecord
try:
    RunRecord(sys.argv[1], sys.argv[2]).acquire()
except RunBusyError as e:
    print(e)
    sys.exit(1)
"""


def test_a_run_being_trained_cannot_be_resumed_by_another_process(tmp_path):
    import signal
    import subprocess
    import sys

    from mlpipes.artifacts import RunBusyError

    trainer = subprocess.Popen([sys.executable, "-c", HOLD_RUN, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        name = trainer.stdout.readline().strip()
        run = RunRecord.latest(tmp_path)
        assert run.name == name
        with pytest.raises(
            RunBusyError, match=rf"run {name} .* is being trained by process {trainer.pid}; wait or start"
        ):
            run.acquire()
    finally:
        trainer.send_signal(signal.SIGKILL)
        trainer.wait()
    with RunRecord.latest(tmp_path) as resumed:  # the lock died with its process
        assert resumed.name == name
        again = RunRecord.resume(tmp_path)  # re-entrant in one process (a resume after an in-process failure)
        assert again.name == name
        other = subprocess.run([sys.executable, "-c", TRY_RUN, str(tmp_path), name], capture_output=True, text=True)
        assert other.returncode == 1 and f"being trained by process {os.getpid()}" in other.stdout
        again.release()
        assert subprocess.run([sys.executable, "-c", TRY_RUN, str(tmp_path), name]).returncode == 1  # still held
    assert subprocess.run([sys.executable, "-c", TRY_RUN, str(tmp_path), name]).returncode == 0  # all released


CREATE_RUNS = """
import sys
from mlpipes.artifacts import RunRecord
names = [RunRecord.create(sys.argv[1], "a: 1\\n").name for _ in range(5)]
print(" ".join(names))
"""


def test_concurrent_creates_never_share_a_run_folder(tmp_path):
    import subprocess
    import sys

    procs = [
        subprocess.Popen([sys.executable, "-c", CREATE_RUNS, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    names = [name for p in procs for name in p.communicate()[0].split()]
    assert len(names) == 15 and len(set(names)) == 15
    assert RunRecord.latest(tmp_path).name in names


def test_credentials_never_reach_the_run_config(tmp_path):
    run = RunRecord.create(tmp_path, "registry: s3://AK:SECRET@bucket/m\ndataset_url: https://u:pw@h/x?token=abc\n")
    text = (run.dir / "config.yaml").read_text()
    assert "SECRET" not in text and "pw@" not in text and "abc" not in text
    assert "s3://bucket/m" in text


def test_a_damaged_latest_pointer_means_no_run(tmp_path):
    (tmp_path / "latest").write_text("../../etc\n")
    assert RunRecord.latest(tmp_path) is None
    (tmp_path / "latest").write_bytes(b"\xff\xfe")
    assert RunRecord.latest(tmp_path) is None
