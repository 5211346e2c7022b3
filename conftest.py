"""Fixtures shared by every package's tests (pytest loads this file for all test folders)."""

import pytest

from mlpipes.testing import S3Server, seaweedfs_s3


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> S3Server:
    """A real S3 server (SeaweedFS) on 127.0.0.1 for the whole test session, with one bucket."""
    with seaweedfs_s3(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """``s3_server`` with its credentials and endpoint in the standard AWS environment variables."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server
