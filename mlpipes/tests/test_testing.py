"""The test S3 server speaks plain S3: boto3 and s3fs both read what the other wrote."""

import boto3
import botocore.exceptions
import fsspec
import pytest

from mlpipes.testing import S3Server


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
