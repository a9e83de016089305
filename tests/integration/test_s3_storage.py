"""S3Storage against a real S3-compatible HTTP server on loopback (moto in server mode).

moto answers the S3 REST API over HTTP like AWS does, with three gaps that shape these tests:
- it does not check presigned URLs (neither signature nor expiry), so expiry is asserted on the
  URL's ``X-Amz-Expires`` parameter, not by waiting for a 403;
- it does not verify ``Content-MD5``/``x-amz-checksum-sha256`` against the body, so the put test
  asserts that both are sent (correctly) and stored; the server's rejection (BadDigest) is
  translated in tests/unit/test_s3_storage_errors.py with botocore's Stubber;
- it checks signatures and IAM policies only when told to (``/moto-api/reset-auth``), process-wide,
  so the bad-credential tests switch enforcement on for their own duration only.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto.server")
from moto_s3 import BUCKET, REGION, Moto

from f5serve.core.storage.base import ObjectInfo, Storage, StorageError
from f5serve.core.storage.s3 import S3Storage, make_client
from f5serve.errors import InvalidInput, NotFound


@pytest.fixture(autouse=True)
def clean_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No AWS settings of the machine running the tests leak in (env, ~/.aws, instance role)."""
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def open_s3(moto: Moto, url: str, *, key_id: str = "", secret: str = "", **kw: Any) -> S3Storage:
    return S3Storage.from_url(
        url,
        endpoint_url=moto.endpoint,
        region=REGION,
        access_key_id=key_id or moto.key_id,
        secret_access_key=secret or moto.secret,
        **kw,
    )


@pytest.fixture(scope="session")
def raw(moto: Moto) -> Any:
    """A plain boto3 client, to look at the bucket behind the backend's back."""
    return moto.client()


@pytest.fixture(scope="session")
def svc_client(moto: Moto) -> Any:
    """The backend's own client for the allowed IAM user (made once: clients are slow to build)."""
    return make_client(
        endpoint_url=moto.endpoint,
        region=REGION,
        access_key_id=moto.key_id,
        secret_access_key=moto.secret,
        environ={},
    )


@pytest.fixture
def prefix() -> str:
    """A fresh key prefix per test, so tests share the bucket without seeing each other."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(svc_client: Any, prefix: str) -> S3Storage:
    return S3Storage(svc_client, BUCKET, prefix)


@pytest.fixture
def enforced_auth(moto: Moto) -> Iterator[None]:
    """moto checks signatures and IAM policies while this fixture is active."""
    _reset_auth(moto.endpoint, "0")
    try:
        yield
    finally:
        _reset_auth(moto.endpoint, "inf")


def _reset_auth(endpoint: str, count: str) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- objects -------------------------------------------------------------------------------


def test_s3_storage_satisfies_the_storage_protocol(store: S3Storage) -> None:
    assert isinstance(store, Storage)


def test_put_then_get_returns_the_same_bytes(store: S3Storage) -> None:
    data = bytes(range(256)) * 300
    store.put("output/a.wav", data, "audio/wav")
    assert store.get("output/a.wav") == data


def test_info_reports_size_content_type_and_sha256(store: S3Storage) -> None:
    data = b"RIFF....WAVEfmt " * 100
    written = store.put("output/b.wav", data, "audio/wav")
    info = store.info("output/b.wav")
    assert (info.key, info.size, info.content_type) == ("output/b.wav", len(data), "audio/wav")
    assert info.sha256 == hashlib.sha256(data).hexdigest() == written.sha256
    assert info.modified.utcoffset() is not None and info.modified.utcoffset().total_seconds() == 0
    assert abs((info.modified - written.modified).total_seconds()) < 60


def test_put_sends_md5_and_sha256_checksums_and_the_server_stores_them(
    moto: Moto, prefix: str, raw: Any
) -> None:
    client = make_client(
        endpoint_url=moto.endpoint,
        region=REGION,
        access_key_id=moto.key_id,
        secret_access_key=moto.secret,
    )
    sent: list[dict[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(
            {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        )

    client.meta.events.register("before-send.s3.PutObject", capture)
    store = S3Storage(client, BUCKET, prefix)
    data = b"checksummed payload"
    store.put("output/c.wav", data, "audio/wav")

    (headers,) = sent
    assert headers["Content-MD5"] == base64.b64encode(hashlib.md5(data).digest()).decode()
    sha_b64 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert headers["x-amz-checksum-sha256"] == sha_b64
    head = raw.head_object(Bucket=BUCKET, Key=f"{prefix}/output/c.wav", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == sha_b64
    assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_put_replaces_an_existing_object(store: S3Storage) -> None:
    store.put("voices/v/reference.wav", b"old", "audio/wav")
    store.put("voices/v/reference.wav", b"new content", "audio/flac")
    assert store.get("voices/v/reference.wav") == b"new content"
    assert store.info("voices/v/reference.wav").content_type == "audio/flac"


def test_exists_is_false_before_put_and_after_delete(store: S3Storage) -> None:
    assert not store.exists("output/d.wav")
    store.put("output/d.wav", b"x", "audio/wav")
    assert store.exists("output/d.wav")
    store.delete("output/d.wav")
    assert not store.exists("output/d.wav")


def test_deleting_a_missing_key_is_not_an_error(store: S3Storage) -> None:
    store.delete("output/never-written.wav")
    assert not store.exists("output/never-written.wav")


@pytest.mark.parametrize("operation", ["get", "info"])
def test_a_missing_object_raises_not_found_naming_the_key(store: S3Storage, operation: str) -> None:
    with pytest.raises(NotFound, match=r"object 'output/missing\.wav' does not exist"):
        getattr(store, operation)("output/missing.wav")


def test_get_rejects_content_that_does_not_match_its_sha256(
    store: S3Storage, prefix: str, raw: Any
) -> None:
    raw.put_object(
        Bucket=BUCKET,
        Key=f"{prefix}/output/e.wav",
        Body=b"tampered",
        Metadata={"sha256": hashlib.sha256(b"original").hexdigest()},
    )
    with pytest.raises(StorageError, match="corrupted"):
        store.get("output/e.wav")


def test_objects_written_by_todays_handlers_are_readable(moto: Moto, raw: Any) -> None:
    """The seed handlers upload with plain boto3 (no sha256 metadata) to output/<job_id>.wav."""
    store_root = open_s3(moto, f"s3://{BUCKET}")  # no prefix, like the seed deployments
    job_id = str(uuid.uuid4())
    raw.put_object(
        Bucket=BUCKET, Key=f"output/{job_id}.wav", Body=b"legacy", ContentType="audio/wav"
    )
    assert store_root.get(f"output/{job_id}.wav") == b"legacy"
    info = store_root.info(f"output/{job_id}.wav")
    assert (info.size, info.content_type, info.sha256) == (6, "audio/wav", "")


# --- key layout ----------------------------------------------------------------------------


def test_results_land_under_output_job_id_wav_without_a_url_prefix(moto: Moto, raw: Any) -> None:
    job_id = str(uuid.uuid4())
    open_s3(moto, f"s3://{BUCKET}").put(f"output/{job_id}.wav", b"result", "audio/wav")
    body = raw.get_object(Bucket=BUCKET, Key=f"output/{job_id}.wav")["Body"].read()
    assert body == b"result"


def test_the_url_prefix_is_prepended_to_every_key(moto: Moto, prefix: str, raw: Any) -> None:
    job_id = str(uuid.uuid4())
    store = open_s3(moto, f"s3://{BUCKET}/{prefix}/prod/")
    store.put(f"output/{job_id}.wav", b"result", "audio/wav")
    body = raw.get_object(Bucket=BUCKET, Key=f"{prefix}/prod/output/{job_id}.wav")["Body"].read()
    assert body == b"result"
    assert [i.key for i in store.list()] == [f"output/{job_id}.wav"]


@pytest.mark.parametrize(
    "key", ["../escape.wav", "output/../../escape.wav", "/output/a.wav", "", "a//b", "a\\b", "./a"]
)
def test_keys_with_traversal_or_absolute_paths_are_rejected(
    store: S3Storage, raw: Any, prefix: str, key: str
) -> None:
    with pytest.raises(StorageError, match="invalid storage key"):
        store.put(key, b"x", "audio/wav")
    with pytest.raises(StorageError, match="invalid storage key"):
        store.get(key)
    assert raw.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["KeyCount"] == 0


# --- listing -------------------------------------------------------------------------------


def test_list_returns_only_objects_under_the_prefix(
    moto: Moto, store: S3Storage, prefix: str
) -> None:
    store.put("output/1.wav", b"1", "audio/wav")
    store.put("output/2.wav", b"22", "audio/wav")
    store.put("voices/v/reference.wav", b"333", "audio/wav")
    open_s3(moto, f"s3://{BUCKET}/{prefix}-sibling").put("output/x.wav", b"x", "audio/wav")

    listed = store.list("output/")
    assert [(i.key, i.size) for i in listed] == [("output/1.wav", 1), ("output/2.wav", 2)]
    assert all(isinstance(i, ObjectInfo) and i.content_type == "audio/wav" for i in listed)
    assert listed[1].sha256 == hashlib.sha256(b"22").hexdigest()
    assert len(store.list()) == 3
    assert store.list("nothing/") == []


def test_list_follows_pagination(moto: Moto, prefix: str) -> None:
    client = make_client(
        endpoint_url=moto.endpoint,
        region=REGION,
        access_key_id=moto.key_id,
        secret_access_key=moto.secret,
    )
    pages: list[int] = []
    client.meta.events.register(
        "before-call.s3.ListObjectsV2",
        lambda params, **_: pages.append(params["query_string"]["max-keys"]),
    )
    store = S3Storage(client, BUCKET, prefix, list_page_size=10)
    keys = [f"output/{n:03d}.wav" for n in range(25)]
    for key in keys:
        store.put(key, key.encode(), "audio/wav")
    assert [i.key for i in store.list("output/")] == keys
    assert pages == [10, 10, 10]


# --- presigned URLs ------------------------------------------------------------------------


def test_a_presigned_url_downloads_the_bytes_with_plain_http(store: S3Storage) -> None:
    store.put("output/f.wav", b"downloadable", "audio/wav")
    url = store.url("output/f.wav", 60)
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.read() == b"downloadable"
        assert response.headers["Content-Type"] == "audio/wav"


def test_a_presigned_url_carries_the_requested_lifetime(moto: Moto, prefix: str) -> None:
    """moto serves presigned URLs without checking expiry, so the lifetime is read off the URL."""
    store = open_s3(moto, f"s3://{BUCKET}/{prefix}", presign_expires=900)
    default = parse_qs(urlsplit(store.url("output/g.wav")).query)
    short = parse_qs(urlsplit(store.url("output/g.wav", 1)).query)
    assert default["X-Amz-Expires"] == ["900"]
    assert short["X-Amz-Expires"] == ["1"]
    assert short["X-Amz-Credential"][0].startswith(f"{moto.key_id}/")


@pytest.mark.parametrize("seconds", [0, -5, 7 * 24 * 3600 + 1])
def test_a_presigned_lifetime_outside_sigv4_limits_is_rejected(
    store: S3Storage, seconds: int
) -> None:
    with pytest.raises(InvalidInput, match="lifetime"):
        store.url("output/g.wav", seconds)


# --- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        lambda s: s.check(),
        lambda s: s.put("output/h.wav", b"x", "audio/wav"),
        lambda s: s.get("output/h.wav"),
        lambda s: s.info("output/h.wav"),
        lambda s: s.exists("output/h.wav"),
        lambda s: s.list(),
        lambda s: s.delete("output/h.wav"),
    ],
    ids=["check", "put", "get", "info", "exists", "list", "delete"],
)
def test_a_missing_bucket_is_named_by_every_operation(moto: Moto, operation: Any) -> None:
    store = open_s3(moto, "s3://no-such-bucket-here/prefix")
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-here' does not exist"):
        operation(store)


def test_check_passes_on_a_healthy_bucket(store: S3Storage) -> None:
    store.check()  # raises on failure; the failing cases are the tests around it


@pytest.mark.parametrize("operation", ["check", "get", "exists", "put"])
def test_an_unreachable_endpoint_is_a_storage_error_naming_it(operation: str) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    store = S3Storage.from_url(
        f"s3://{BUCKET}", endpoint_url=endpoint, access_key_id="k", secret_access_key="s"
    )
    with pytest.raises(StorageError, match=f"endpoint {endpoint} is unreachable"):
        if operation == "put":
            store.put("output/i.wav", b"x", "audio/wav")
        else:
            getattr(store, operation)(*([] if operation == "check" else ["output/i.wav"]))


def test_no_credentials_at_all_is_a_clear_error(moto: Moto) -> None:
    store = S3Storage.from_url(f"s3://{BUCKET}", endpoint_url=moto.endpoint, region=REGION)
    with pytest.raises(StorageError, match="no usable S3 credentials"):
        store.check()


@pytest.mark.usefixtures("enforced_auth")
def test_valid_credentials_work_while_moto_enforces_auth(store: S3Storage) -> None:
    store.check()
    store.put("output/j.wav", b"authorised", "audio/wav")
    assert store.get("output/j.wav") == b"authorised"


@pytest.mark.usefixtures("enforced_auth")
@pytest.mark.parametrize("operation", ["check", "get", "exists", "put"])
def test_an_unknown_access_key_id_is_named(moto: Moto, operation: str) -> None:
    store = open_s3(moto, f"s3://{BUCKET}", key_id="AKIAUNKNOWNUNKNOWN00", secret="whatever")
    with pytest.raises(StorageError, match="access key id is not known"):
        _run(store, operation)


@pytest.mark.usefixtures("enforced_auth")
@pytest.mark.parametrize("operation", ["check", "get", "exists", "put"])
def test_a_wrong_secret_key_is_named(moto: Moto, operation: str) -> None:
    store = open_s3(moto, f"s3://{BUCKET}", secret="not-the-secret")
    with pytest.raises(StorageError, match="secret access key does not match"):
        _run(store, operation)


@pytest.mark.usefixtures("enforced_auth")
@pytest.mark.parametrize("operation", ["check", "get", "put"])
def test_credentials_without_permission_are_denied(moto: Moto, operation: str) -> None:
    store = open_s3(moto, f"s3://{BUCKET}", key_id=moto.weak_key_id, secret=moto.weak_secret)
    with pytest.raises(StorageError, match="access denied"):
        _run(store, operation)


def _run(store: S3Storage, operation: str) -> None:
    if operation == "put":
        store.put("output/k.wav", b"x", "audio/wav")
    elif operation == "check":
        store.check()
    else:
        getattr(store, operation)("output/k.wav")


# --- configuration from the environment ----------------------------------------------------


def test_from_url_reads_endpoint_region_and_keys_from_aws_variables(
    moto: Moto, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")  # _S3 wins
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto.endpoint)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")  # AWS_REGION wins
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto.secret)
    store = S3Storage.from_url(f"s3://{BUCKET}/{prefix}")
    assert store.endpoint == moto.endpoint
    store.put("output/l.wav", b"from env", "audio/wav")
    assert store.get("output/l.wav") == b"from env"
    credential = parse_qs(urlsplit(store.url("output/l.wav", 60)).query)["X-Amz-Credential"][0]
    assert credential.startswith(f"{moto.key_id}/") and "/eu-west-1/s3/" in credential


def test_explicit_arguments_override_the_aws_variables(
    moto: Moto, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMTHEENVIRON00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environ")
    store = open_s3(moto, f"s3://{BUCKET}/{prefix}")
    store.put("output/m.wav", b"explicit", "audio/wav")
    assert store.get("output/m.wav") == b"explicit"


def test_a_presigned_url_of_a_missing_object_answers_404(store: S3Storage) -> None:
    url = store.url("output/never.wav", 60)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=5)
    assert caught.value.code == 404
