"""A moto S3 server on loopback (moto in server mode): the S3 REST API over HTTP, as AWS or MinIO
answer it, with a test bucket and two IAM users (moto checks their keys and policies only while
told to, see test_s3_storage.py). Without moto or boto3 the test is skipped, with the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

BUCKET = "f5serve-test"
REGION = "us-east-1"
ALLOW_ALL_S3 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


@dataclass(frozen=True)
class Moto:
    endpoint: str  # http://127.0.0.1:<port>
    key_id: str  # an IAM user allowed s3:*
    secret: str
    weak_key_id: str  # an IAM user with no permissions at all
    weak_secret: str

    def client(self) -> Any:
        """A plain boto3 client of the allowed user, to look at the bucket directly."""
        boto3 = pytest.importorskip("boto3")
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
        )


@contextmanager
def moto_s3() -> Iterator[Moto]:
    """A moto S3 server on a free loopback port with ``BUCKET`` and two IAM users; stopped on
    exit."""
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        admin = {
            "endpoint_url": endpoint,
            "region_name": REGION,
            "aws_access_key_id": "admin",
            "aws_secret_access_key": "admin",
        }
        boto3.client("s3", **admin).create_bucket(Bucket=BUCKET)
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="svc")
        policy = json.dumps(ALLOW_ALL_S3)
        iam.put_user_policy(UserName="svc", PolicyName="s3", PolicyDocument=policy)
        svc = iam.create_access_key(UserName="svc")["AccessKey"]
        iam.create_user(UserName="weak")
        weak = iam.create_access_key(UserName="weak")["AccessKey"]
        yield Moto(
            endpoint,
            svc["AccessKeyId"],
            svc["SecretAccessKey"],
            weak["AccessKeyId"],
            weak["SecretAccessKey"],
        )
    finally:
        server.stop()
