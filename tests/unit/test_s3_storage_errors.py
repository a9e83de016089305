"""S3Storage without a server: URL parsing, the missing-boto3 message, and the translation of S3
errors that moto cannot produce (checksum rejection, expired tokens, wrong region, throttling),
injected with botocore's own Stubber. The server-backed tests are in
tests/integration/test_s3_storage.py."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from f5serve.core.storage.base import StorageError
from f5serve.errors import NotFound

boto3 = pytest.importorskip("boto3")
from botocore.stub import Stubber  # noqa: E402

from f5serve.core.storage.s3 import S3Storage, make_client, parse_s3_url  # noqa: E402


def test_a_missing_boto3_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import f5serve.core.storage as package

    # A fresh import of the module with boto3 unimportable: the import itself must succeed.
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.setitem(sys.modules, "botocore", None)
    monkeypatch.delitem(sys.modules, "f5serve.core.storage.s3", raising=False)
    monkeypatch.setattr(package, "s3", None, raising=False)
    fresh = importlib.import_module("f5serve.core.storage.s3")
    with pytest.raises(StorageError, match=r"needs boto3: pip install 'f5serve\[s3\]'"):
        fresh.S3Storage.from_url("s3://bucket/prefix", access_key_id="k", secret_access_key="s")


ENDPOINT = "http://s3.invalid:9000"


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://results", "results", ""),
        ("s3://results/", "results", ""),
        ("s3://results/tts/prod", "results", "tts/prod"),
        ("s3://results/tts/prod/", "results", "tts/prod"),
    ],
)
def test_s3_urls_give_bucket_and_prefix(url: str, bucket: str, prefix: str) -> None:
    assert parse_s3_url(url) == (bucket, prefix)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("s3://", "not an S3 storage URL"),
        ("file:///tmp/x", "not an S3 storage URL"),
        ("s3://AKIA:secret@results/p", "must name only the bucket"),
        ("s3://results/a/../b", "invalid storage key"),
        ("s3://results/p?region=x", "no query"),
    ],
)
def test_bad_s3_urls_are_rejected_with_the_reason(url: str, problem: str) -> None:
    with pytest.raises(StorageError, match=problem):
        parse_s3_url(url)


def test_an_access_key_without_its_secret_is_rejected() -> None:
    with pytest.raises(StorageError, match="both the S3 access key id and the secret"):
        S3Storage.from_url("s3://results", endpoint_url=ENDPOINT, access_key_id="AKIA")


@pytest.fixture
def stubbed() -> Iterator[tuple[S3Storage, Stubber]]:
    client = make_client(
        endpoint_url=ENDPOINT, region="eu-west-1", access_key_id="k", secret_access_key="s"
    )
    with Stubber(client) as stubber:
        yield S3Storage(client, "results", "tts"), stubber
        stubber.assert_no_pending_responses()


def _fail(stubber: Stubber, method: str, code: str, status: int, **meta: Any) -> None:
    stubber.add_client_error(
        method,
        service_error_code=code,
        service_message=f"{code} message",
        http_status_code=status,
        response_meta=meta or None,
    )


@pytest.mark.parametrize("code", ["BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"])
def test_a_body_damaged_in_transit_is_reported_as_not_stored(
    stubbed: tuple[S3Storage, Stubber], code: str
) -> None:
    store, stubber = stubbed
    _fail(stubber, "put_object", code, 400)
    with pytest.raises(StorageError, match=r"damaged in transit and rejected.*nothing was stored"):
        store.put("output/a.wav", b"x", "audio/wav")


def test_an_expired_session_token_is_named(stubbed: tuple[S3Storage, Stubber]) -> None:
    store, stubber = stubbed
    _fail(stubber, "get_object", "ExpiredToken", 400)
    with pytest.raises(StorageError, match="AWS_SESSION_TOKEN"):
        store.get("output/a.wav")


def test_a_bucket_in_another_region_names_that_region(stubbed: tuple[S3Storage, Stubber]) -> None:
    store, stubber = stubbed
    _fail(stubber, "head_bucket", "301", 301, HTTPHeaders={"x-amz-bucket-region": "ap-south-1"})
    with pytest.raises(
        StorageError, match=r"in another region \(it is in ap-south-1\).*AWS_REGION"
    ):
        store.check()


def test_throttling_is_reported_as_temporary(stubbed: tuple[S3Storage, Stubber]) -> None:
    store, stubber = stubbed
    _fail(stubber, "put_object", "SlowDown", 503)
    with pytest.raises(StorageError, match=r"unavailable or throttling.*try again"):
        store.put("output/a.wav", b"x", "audio/wav")


def test_an_unknown_error_keeps_the_s3_code_and_message(stubbed: tuple[S3Storage, Stubber]) -> None:
    store, stubber = stubbed
    _fail(stubber, "delete_object", "InvalidObjectState", 403)
    with pytest.raises(
        StorageError, match=r"delete of s3://results/tts/output/a\.wav failed"
    ) as err:
        store.delete("output/a.wav")
    assert "InvalidObjectState message" in err.value.message
    assert err.value.details["s3_code"] == "InvalidObjectState"


def test_a_head_404_in_an_existing_bucket_is_not_found(stubbed: tuple[S3Storage, Stubber]) -> None:
    store, stubber = stubbed
    _fail(stubber, "head_object", "404", 404)
    stubber.add_response("list_objects_v2", {"KeyCount": 0})  # the probe: the bucket is there
    with pytest.raises(NotFound, match=r"'output/a\.wav'"):
        store.info("output/a.wav")


def test_presigned_urls_are_path_style_on_a_custom_endpoint_and_regional_on_aws() -> None:
    custom = make_client(
        endpoint_url=ENDPOINT, access_key_id="k", secret_access_key="s", environ={}
    )
    aws = make_client(region="eu-central-1", access_key_id="k", secret_access_key="s", environ={})
    on_custom = S3Storage(custom, "results").url("output/a.wav", 60)
    on_aws = S3Storage(aws, "results").url("output/a.wav", 60)
    assert on_custom.startswith(f"{ENDPOINT}/results/output/a.wav?")
    assert on_aws.startswith("https://results.s3.eu-central-1.amazonaws.com/output/a.wav?")


@pytest.mark.parametrize("seconds", [0, 8 * 24 * 3600])
def test_a_default_url_lifetime_outside_sigv4_limits_is_a_configuration_error(seconds: int) -> None:
    with pytest.raises(StorageError, match=r"presign_expires must be 1\.\.604800"):
        S3Storage.from_url(
            "s3://results",
            endpoint_url=ENDPOINT,
            access_key_id="k",
            secret_access_key="s",
            presign_expires=seconds,
        )
