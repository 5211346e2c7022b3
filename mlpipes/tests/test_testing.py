"""The test S3 server speaks plain S3: boto3 and s3fs both read what the other wrote."""

import io

import boto3
import botocore.exceptions
import fsspec
import pytest

from mlpipes.testing import S3Server, _wait_until_writable


def test_s3_server_round_trips_objects_between_boto3_and_s3fs(s3_env: S3Server) -> None:
    bucket = s3_env.create_bucket()
    s3_env.client().put_object(Bucket=bucket, Key="dir/a.bin", Body=b"\x00\x01payload")
    fs, _ = fsspec.core.url_to_fs(f"s3://{bucket}", skip_instance_cache=True)
    assert fs.cat(f"{bucket}/dir/a.bin") == b"\x00\x01payload"
    fs.pipe_file(f"{bucket}/dir/b.bin", b"from s3fs")
    assert s3_env.client().get_object(Bucket=bucket, Key="dir/b.bin")["Body"].read() == b"from s3fs"
    assert sorted(fs.ls(f"{bucket}/dir")) == [f"{bucket}/dir/a.bin", f"{bucket}/dir/b.bin"]


def test_s3_server_refuses_wrong_credentials(s3_server: S3Server) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id="nobody",
        aws_secret_access_key="wrong",
        region_name="us-east-1",
    )
    with pytest.raises(botocore.exceptions.ClientError, match="InvalidAccessKeyId"):
        client.list_objects_v2(Bucket=s3_server.bucket)


def test_a_new_bucket_is_empty_and_already_takes_writes(s3_env: S3Server) -> None:
    bucket = s3_env.create_bucket()
    client = s3_env.client()
    assert client.list_objects_v2(Bucket=bucket)["KeyCount"] == 0  # the readiness probe is gone
    client.put_object(Bucket=bucket, Key="first", Body=b"x")


def test_many_fresh_buckets_all_take_writes(s3_env: S3Server) -> None:
    """Each bucket takes a volume; SeaweedFS's default cap (free disk / volume size) ran out at 18 on a full disk."""
    client = s3_env.client()
    for _ in range(30):
        client.put_object(Bucket=s3_env.create_bucket(timeout=15), Key="x", Body=b"x")


class _Flaky:
    """A client whose puts fail with InternalError ``failures`` times (as a fresh SeaweedFS bucket's can)."""

    exceptions = type("Exceptions", (), {"BucketAlreadyOwnedByYou": type("Owned", (Exception,), {})})

    def __init__(self, failures: int) -> None:
        self.failures, self.puts, self.stored = failures, 0, {}

    def create_bucket(self, Bucket: str) -> None:  # boto3 names its keywords like this
        pass

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:
        self.puts += 1
        if self.puts <= self.failures:
            error = {"Error": {"Code": "InternalError", "Message": "We encountered an internal error"}}
            raise botocore.exceptions.ClientError(error, "PutObject")
        self.stored[Key] = Body

    def get_object(self, Bucket: str, Key: str) -> dict:
        return {"Body": io.BytesIO(self.stored[Key])}

    def delete_object(self, Bucket: str, Key: str) -> None:
        del self.stored[Key]


def test_waiting_for_a_bucket_outlasts_transient_internal_errors_and_names_the_last_one() -> None:
    flaky = _Flaky(failures=3)
    _wait_until_writable(flaky, "b1", timeout=10, create=True)
    assert flaky.puts == 4 and flaky.stored == {}
    with pytest.raises(TimeoutError, match=r"bucket 'b2' not writable after 1s \(.*InternalError"):
        _wait_until_writable(_Flaky(failures=10**6), "b2", timeout=1)
