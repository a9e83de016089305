"""Object storage in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, Wasabi...).

``s3://bucket/prefix`` selects a bucket and an optional key prefix: the object ``output/<id>.wav``
is stored under the key ``prefix/output/<id>.wav`` (exactly ``output/<id>.wav`` without a prefix,
the layout today's RunPod deployments use).

- Every object is one ``PutObject`` (atomic in S3: readers see the whole object or none of it),
  sent with ``Content-MD5`` and ``x-amz-checksum-sha256`` so the server rejects a body damaged in
  transit; the hex sha256 is also kept as user metadata ``sha256`` and checked again on ``get``.
- Endpoint, region and credentials come from the arguments of :meth:`S3Storage.from_url`, else
  from boto3's own chain (``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, ``AWS_REGION``/
  ``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``,
  profiles, instance roles).
- botocore errors never leave this module: each becomes a :class:`StorageError` (missing bucket,
  bad credentials, unreachable endpoint...) or :class:`~f5serve.errors.NotFound` (missing object)
  whose message says what is wrong and what to check.

boto3 is an optional dependency (``pip install 'f5serve[s3]'``), imported here only.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import hashlib
import logging
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from f5serve.core.storage.base import ObjectInfo, StorageError
from f5serve.errors import F5ServeError, InvalidInput, NotFound

log = logging.getLogger(__name__)

INSTALL_HINT = "the S3 storage backend needs boto3: pip install 'f5serve[s3]'"
CONNECT_TIMEOUT_S = 3.0  # short, so that check() (/ready) fails fast on a dead endpoint
READ_TIMEOUT_S = 20.0  # per socket read, not per object
MAX_ATTEMPTS = 2  # total attempts per request: one retry for transient errors
MAX_PRESIGN_S = 7 * 24 * 3600  # the longest lifetime SigV4 allows
LIST_PAGE_SIZE = 1000  # keys per ListObjectsV2 page (S3's maximum)
HEAD_WORKERS = 8  # parallel HeadObject requests in list(); below botocore's pool of 10
SHA256_META = "sha256"  # user metadata (x-amz-meta-sha256) holding the hex digest

# Error codes S3 answers with, grouped by what they mean to the operator.
_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}
_BAD_KEY_ID = {"InvalidAccessKeyId"}
_BAD_SECRET = {"SignatureDoesNotMatch"}
_DENIED = {"AccessDenied", "AllAccessDisabled", "403", "AccountProblem"}
_TOKEN = {"ExpiredToken", "InvalidToken", "TokenRefreshRequired"}
_CORRUPT = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}
_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "301", "IncorrectEndpoint"}
_BUSY = {"SlowDown", "ServiceUnavailable", "InternalError", "503", "500"}
# HEAD responses have no body, so S3 can only say "400"/"403"/"404": probe with a GET to learn more.
_BODYLESS = {"400", "403", "404"}


def _import_boto3() -> Any:
    try:
        import boto3
    except ImportError as exc:
        raise StorageError(INSTALL_HINT) from exc
    return boto3


def _botocore_exceptions() -> Any:
    try:
        import botocore.exceptions
    except ImportError as exc:
        raise StorageError(INSTALL_HINT) from exc
    return botocore.exceptions


def check_key(key: str) -> str:
    """``key`` if it is a valid relative key (the same rules as the local backend), else raise."""
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or "\\" in key
        or "\x00" in key
    ):
        raise StorageError(
            f"invalid storage key {key!r}: keys are relative '/'-separated names "
            "without empty, '.' or '..' segments",
            details={"key": key},
        )
    return key


def parse_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix`` (the prefix without outer slashes)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise StorageError(
            f"not an S3 storage URL: {url!r} (expected s3://bucket or s3://bucket/prefix)"
        )
    if "@" in parts.netloc or ":" in parts.netloc:
        raise StorageError(
            f"S3 storage URL {url!r} must name only the bucket: give credentials in "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the endpoint in AWS_ENDPOINT_URL"
        )
    if parts.query or parts.fragment:
        raise StorageError(f"S3 storage URL {url!r} takes no query or fragment")
    prefix = parts.path.strip("/")
    if prefix:
        check_key(prefix)
    return parts.netloc, prefix


def make_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Any:
    """A boto3 S3 client with short timeouts, one retry and SigV4; path-style addressing on a
    custom endpoint (MinIO and most S3-compatible services need it), virtual-hosted on AWS."""
    boto3 = _import_boto3()
    from botocore.config import Config

    if (access_key_id is None) != (secret_access_key is None):
        raise StorageError("give both the S3 access key id and the secret access key, or neither")
    endpoint = endpoint_url or environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    # botocore itself reads AWS_DEFAULT_REGION and profiles, but not AWS_REGION.
    region = region or environ.get("AWS_REGION") or None
    session = boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
    )
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        signature_version="s3v4",
        # "virtual" on AWS presigns regional URLs (bucket.s3.<region>.amazonaws.com); "auto"
        # would use the global host, which redirects for days after a bucket is created.
        s3={"addressing_style": "path" if endpoint else "virtual"},
    )
    return session.client("s3", endpoint_url=endpoint or None, config=config)


class S3Storage:
    """:class:`~f5serve.core.storage.base.Storage` in an S3-compatible bucket."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        *,
        presign_expires: int = 3600,
        list_page_size: int = LIST_PAGE_SIZE,
    ) -> None:
        exceptions = _botocore_exceptions()
        self._client = client  # a boto3 S3 client (thread-safe)
        self.bucket = bucket
        self.prefix = prefix.strip("/")  # prepended to every key, "" for none
        if not 1 <= presign_expires <= MAX_PRESIGN_S:
            raise StorageError(
                f"presign_expires must be 1..{MAX_PRESIGN_S} s, not {presign_expires}"
            )
        self.presign_expires = presign_expires  # default lifetime of url(), seconds
        self.list_page_size = list_page_size  # keys per ListObjectsV2 request
        self.endpoint: str = client.meta.endpoint_url
        self._catch = (exceptions.ClientError, exceptions.BotoCoreError)
        self._exc = exceptions

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        presign_expires: int = 3600,
    ) -> S3Storage:
        """The storage of ``s3://bucket/prefix``; arguments left out come from the AWS
        environment variables (and boto3's profiles and instance roles)."""
        bucket, prefix = parse_s3_url(url)
        client = make_client(
            endpoint_url=endpoint_url,
            region=region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
        )
        return cls(client, bucket, prefix, presign_expires=presign_expires)

    def __repr__(self) -> str:
        return f"S3Storage({self._where('')!r}, endpoint={self.endpoint!r})"

    # --- the Storage protocol -------------------------------------------------------------

    def put(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        """One PutObject with Content-MD5 and SHA-256 checksums: stored whole or not at all."""
        full = self._full(key)
        digest = hashlib.sha256(data).digest()
        md5 = hashlib.md5(data, usedforsecurity=False).digest()
        content_type = content_type or "application/octet-stream"
        with self._errors("write", key):
            self._client.put_object(
                Bucket=self.bucket,
                Key=full,
                Body=data,
                ContentType=content_type,
                ContentMD5=base64.b64encode(md5).decode(),
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(digest).decode(),
                Metadata={SHA256_META: digest.hex()},
            )
        # PutObject returns no modification time; the local clock is close enough.
        return ObjectInfo(key, len(data), content_type, digest.hex(), datetime.now(timezone.utc))

    def get(self, key: str) -> bytes:
        """The content of ``key``, checked against its stored sha256."""
        full = self._full(key)
        with self._errors("read", key):
            response = self._client.get_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
            data: bytes = response["Body"].read()
        expected = _sha256_of(response)
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise StorageError(
                f"object {self._where(key)} is corrupted: its content does not match "
                "its sha256 checksum",
                details={"key": key},
            )
        return data

    def info(self, key: str) -> ObjectInfo:
        return self._head(key, self._full(key))

    def exists(self, key: str) -> bool:
        try:
            self.info(key)
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        full = self._full(key)
        with self._errors("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=full)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Objects under ``prefix`` (all pages of ListObjectsV2), with their metadata read by
        parallel HeadObject requests; objects deleted meanwhile are left out."""
        keys = self._list_keys(prefix)
        if not keys:
            return []
        with ThreadPoolExecutor(max_workers=min(HEAD_WORKERS, len(keys))) as pool:
            found = pool.map(self._head_if_present, keys)
            return sorted((info for info in found if info is not None), key=lambda i: i.key)

    def url(self, key: str, expires_in: int | None = None) -> str:
        """A presigned GET URL of ``key`` valid for ``expires_in`` seconds (default:
        ``presign_expires``). No request is made: a missing object gives 404 when fetched."""
        expires = _check_expiry(self.presign_expires if expires_in is None else expires_in)
        full = self._full(key)
        with self._errors("presign", key):
            url: str = self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": full}, ExpiresIn=expires
            )
        return url

    def check(self) -> None:
        """HeadBucket: raise :class:`StorageError` unless the endpoint answers, the bucket
        exists and these credentials may use it."""
        with self._errors("check", None):
            self._client.head_bucket(Bucket=self.bucket)

    # --- helpers ---------------------------------------------------------------------------

    def _full(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def _where(self, key: str | None) -> str:
        path = "/".join(p for p in (self.prefix, key or "") if p)
        return f"s3://{self.bucket}/{path}"

    def _list_keys(self, prefix: str) -> builtins.list[str]:
        if prefix.startswith("/") or ".." in prefix.split("/") or "\x00" in prefix:
            raise StorageError(f"invalid storage prefix {prefix!r}", details={"prefix": prefix})
        root = f"{self.prefix}/" if self.prefix else ""
        with self._errors("list", None):
            paginator = self._client.get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=self.bucket,
                Prefix=root + prefix,
                PaginationConfig={"PageSize": self.list_page_size},
            )
            keys = [str(obj["Key"]) for page in pages for obj in page.get("Contents", [])]
        # Folder markers ("dir/") made by consoles are not objects of ours.
        return [self._relative(k) for k in keys if not k.endswith("/")]

    def _head(self, key: str, full: str) -> ObjectInfo:
        with self._errors("read", key):
            head = self._client.head_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
        return ObjectInfo(
            key=key,
            size=int(head["ContentLength"]),
            content_type=head.get("ContentType") or "application/octet-stream",
            sha256=_sha256_of(head),
            modified=head["LastModified"].astimezone(timezone.utc),
        )

    def _head_if_present(self, key: str) -> ObjectInfo | None:
        try:
            return self._head(key, f"{self.prefix}/{key}" if self.prefix else key)
        except NotFound:
            log.debug("%s was deleted while being listed", self._where(key))
            return None

    @contextmanager
    def _errors(self, op: str, key: str | None) -> Iterator[None]:
        """Turn botocore's exceptions into :class:`StorageError` / :class:`NotFound`."""
        try:
            yield
        except self._catch as exc:
            detailed = exc
            if _code(exc) in _BODYLESS:
                detailed = self._probe(key) or exc
            error = self._translate(detailed, op, key)
            log.debug("S3 %s of %s failed: %r -> %s", op, self._where(key), exc, error.message)
            raise error from exc

    def _probe(self, key: str | None) -> Exception | None:
        """A bodyless HEAD error says only 403/404: a one-key listing (GET, whose error has a
        body) tells a missing bucket, an unknown key id or a wrong secret apart."""
        try:
            self._client.list_objects_v2(Bucket=self.bucket, MaxKeys=1, Prefix=self.prefix)
        except self._catch as exc:
            return exc if _code(exc) not in _BODYLESS else None
        return None

    def _translate(self, exc: Exception, op: str, key: str | None) -> F5ServeError:
        code = _code(exc)
        if code is None:
            return self._translate_transport(exc, op, key)
        where = self._where(key)
        details = {"s3_code": code, "operation": op, "endpoint": self.endpoint}
        if code == "NoSuchBucket" or (code in _NOT_FOUND and key is None):
            message = f"bucket '{self.bucket}' does not exist at {self.endpoint}"
        elif code in _NOT_FOUND:
            return NotFound(f"object '{key}' does not exist in {self._where('')}", details=details)
        elif code in _BAD_KEY_ID:
            message = (
                f"the access key id is not known to {self.endpoint}: "
                "check AWS_ACCESS_KEY_ID (and that the endpoint is the right service)"
            )
        elif code in _BAD_SECRET:
            message = (
                f"{self.endpoint} rejected the request signature: the secret access key does "
                "not match the access key id (check AWS_SECRET_ACCESS_KEY)"
            )
        elif code in _TOKEN:
            message = "the session token has expired or is invalid: renew AWS_SESSION_TOKEN"
        elif code in _DENIED:
            message = f"access denied: the credentials may not {op} {where}"
        elif code in _CORRUPT:
            message = (
                f"the upload of {where} was damaged in transit and rejected ({code}); "
                "nothing was stored"
            )
        elif code in _REGION:
            region = _header(exc, "x-amz-bucket-region")
            hint = f" (it is in {region})" if region else ""
            message = f"bucket '{self.bucket}' is in another region{hint}: set AWS_REGION"
        elif code in _BUSY:
            message = (
                f"S3 at {self.endpoint} is unavailable or throttling ({code}): try again later"
            )
        else:
            message = f"S3 {op} of {where} failed: {code}: {_error_message(exc)}"
        return StorageError(message, details=details)

    def _translate_transport(self, exc: Exception, op: str, key: str | None) -> StorageError:
        details = {"operation": op, "endpoint": self.endpoint, "error": type(exc).__name__}
        if isinstance(exc, self._exc.NoCredentialsError | self._exc.PartialCredentialsError):
            message = (
                "no usable S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or an AWS profile / instance role)"
            )
        elif isinstance(exc, self._exc.ResponseStreamingError | self._exc.IncompleteReadError):
            message = f"the download of {self._where(key)} from {self.endpoint} was interrupted"
        elif isinstance(exc, self._exc.ReadTimeoutError):
            message = f"S3 endpoint {self.endpoint} did not answer within {READ_TIMEOUT_S:g} s"
        elif isinstance(exc, self._exc.HTTPClientError | self._exc.EndpointConnectionError):
            message = (
                f"S3 endpoint {self.endpoint} is unreachable ({type(exc).__name__}): "
                "check AWS_ENDPOINT_URL and the network"
            )
        else:
            message = f"S3 {op} of {self._where(key)} failed: {exc}"
        return StorageError(message, details=details)


def _check_expiry(seconds: int) -> int:
    if not 1 <= seconds <= MAX_PRESIGN_S:
        raise InvalidInput(
            f"presigned URL lifetime must be 1..{MAX_PRESIGN_S} seconds, not {seconds}"
        )
    return seconds


def _code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    return str(response.get("Error", {}).get("Code", "")) or None


def _error_message(exc: BaseException) -> str:
    response: dict[str, Any] = getattr(exc, "response", {})
    return str(response.get("Error", {}).get("Message", "")) or type(exc).__name__


def _header(exc: BaseException, name: str) -> str | None:
    response: dict[str, Any] = getattr(exc, "response", {})
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    value = headers.get(name)
    return str(value) if value else None


def _sha256_of(response: Mapping[str, Any]) -> str:
    """The hex sha256 of a Head/GetObject response: our metadata, else S3's full-object
    ChecksumSHA256, else "" (objects written by other tools may have neither)."""
    meta = response.get("Metadata") or {}
    if meta.get(SHA256_META):
        return str(meta[SHA256_META]).lower()
    checksum = response.get("ChecksumSHA256")
    if checksum and "-" not in checksum:  # "<b64>-<parts>" is a multipart composite
        try:
            return base64.b64decode(checksum, validate=True).hex()
        except (binascii.Error, ValueError):
            log.warning("ignoring a malformed ChecksumSHA256 %r", checksum)
    return ""
