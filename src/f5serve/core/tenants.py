"""API keys as tenants: who a request is, what it may see, and how much it may use.

A key made by ``f5serve keys create`` is stored as the SHA-256 of the key (a random 256-bit
secret, so a plain hash is as strong as a slow one) and its first characters for display. The
keys of ``F5SERVE_API_KEYS`` are admin keys: each is its own tenant, ``env_<hash>``. With no key
at all (none in the environment, none ever created) the server is open and nothing is owned.

A tenant sees what it owns; an admin key sees everything. Jobs and voices made on an open server
(or before keys were tenants) have no owner: only admin keys see them. Voices of the voices
directory are shared: every key may use and read them, only an admin key may change them.

Limits are counted in the database, so every process of a deployment shares them: requests per
minute (checked and counted at once, atomically) and seconds of audio per UTC day (checked when a
request or job is accepted and when a job starts, charged as the audio is made, so the last
request of a day may pass the limit by its own length). Each key has one row per period,
started again when a new minute or day begins.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Table, case, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from f5serve.core.db import ApiKeyRow, KeyUsageRow, utcnow
from f5serve.core.metrics import Metrics
from f5serve.core.validation import check_string, storable
from f5serve.errors import InvalidInput, NotFound, TooManyRequests, Unauthorized

KEY_PREFIX = "f5s_"  # what every generated key starts with (found by secret scanners)
SHOWN = 12  # characters of a key kept for display
MINUTE, DAY = "minute", "day"
SECONDS = {MINUTE: 60, DAY: 86_400}
ASK_FOR_KEY = "send 'Authorization: Bearer <key>'"


def key_hash(key: str) -> str:
    """What the database keeps of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Limits:
    """Per-key limits (None: none)."""

    requests_per_minute: int | None = None
    audio_seconds_per_day: float | None = None


@dataclass(frozen=True)
class Tenant:
    """The key a request came with, and its limits (its own, else the server's defaults)."""

    id: str
    name: str
    admin: bool
    limits: Limits = Limits()

    def sees(self, owner: str | None) -> bool:
        """Whether this key may see what ``owner`` made."""
        return self.admin or owner == self.id


def sees_all(tenant: Tenant | None) -> bool:
    """No key (an open server, or the server's own work) and admin keys see everything."""
    return tenant is None or tenant.admin


def restricted_to(tenant: Tenant | None) -> str | None:
    """The key whose things alone ``tenant`` sees (None: it sees everything)."""
    return None if tenant is None or tenant.admin else tenant.id


def may_see(tenant: Tenant | None, owner: str | None) -> bool:
    """Whether ``tenant`` (None: no key) may see what ``owner`` made."""
    return tenant is None or tenant.sees(owner)


def owner_of(tenant: Tenant | None) -> str | None:
    """The owner recorded on what ``tenant`` makes."""
    return None if tenant is None else tenant.id


@dataclass(frozen=True)
class KeyUsage:
    """What one key used on ``day`` (UTC)."""

    tenant: Tenant
    day: date
    requests: int
    audio_seconds: float
    revoked: bool


class Tenancy:
    """The keys (environment and database), authentication, limits and usage."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        env_keys: frozenset[str] = frozenset(),
        defaults: Limits = Limits(),
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.defaults = defaults
        self.metrics = metrics
        self.clock = clock  # seconds since the epoch (tests move it)
        self._env: dict[str, Tenant] = {}
        for key in env_keys:
            digest = key_hash(key)
            self._env[digest] = Tenant(f"env_{digest[:12]}", f"env-{digest[:8]}", True, defaults)
        self._closed = bool(self._env)  # once a key exists the server never opens again
        bind = sessions.kw["bind"]
        self._insert = postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert

    # ------------------------------------------------------------------ keys

    def create(
        self,
        name: str,
        admin: bool = False,
        requests_per_minute: int | None = None,
        audio_seconds_per_day: float | None = None,
    ) -> tuple[ApiKeyRow, str]:
        """A new key; ``(row, key)``: the key itself is shown once and never stored."""
        check_string(name, "name", 128)
        if not name.strip():
            raise InvalidInput("a key needs a name (who or what uses it)")
        if requests_per_minute is not None and requests_per_minute < 1:
            raise InvalidInput("requests per minute must be at least 1")
        if audio_seconds_per_day is not None and not audio_seconds_per_day > 0:
            raise InvalidInput("audio seconds per day must be more than 0")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id="key_" + secrets.token_hex(8),
            name=name.strip(),
            hash=key_hash(key),
            prefix=key[:SHOWN],
            admin=admin,
            requests_per_minute=requests_per_minute,
            audio_seconds_per_day=audio_seconds_per_day,
            created_at=utcnow(),
        )
        with self.sessions() as session:
            session.add(row)
            session.commit()
        self._closed = True
        return row, key

    def stored_keys(self) -> list[ApiKeyRow]:
        """Every key of the database, oldest first (revoked ones included)."""
        with self.sessions() as session:
            query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
            return list(session.scalars(query))

    @property
    def env_tenants(self) -> list[Tenant]:
        """The admin keys of ``F5SERVE_API_KEYS``."""
        return list(self._env.values())

    def revoke(self, key_id: str) -> tuple[ApiKeyRow, bool]:
        """Refuse a key from now on, in every process; ``(row, whether it was in use)``."""
        with self.sessions() as session:
            row = session.get(ApiKeyRow, key_id) if storable(key_id) else None
            if row is None:
                raise NotFound(f"no API key {key_id!r} (see `f5serve keys list`)")
            was_active = row.revoked_at is None
            if was_active:
                row.revoked_at = utcnow()
                session.commit()
            return row, was_active

    def enabled(self) -> bool:
        """Whether requests need a key: some key is configured or was ever created."""
        if not self._closed:
            with self.sessions() as session:
                self._closed = session.scalar(select(ApiKeyRow.id).limit(1)) is not None
        return self._closed

    def authenticate(self, key: str | None, ask: str = ASK_FOR_KEY) -> Tenant | None:
        """The tenant of ``key`` (None on an open server); :class:`Unauthorized` for a missing,
        unknown or revoked key (``ask`` says how to send one)."""
        if not self.enabled():
            return None
        if key and storable(key):
            digest = key_hash(key)
            for known, tenant in self._env.items():
                if hmac.compare_digest(digest, known):
                    return tenant
            with self.sessions() as session:
                row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.hash == digest))
            if row is not None and row.revoked_at is None:
                return self._tenant(row)
        raise Unauthorized(f"a valid API key is required: {ask}")

    def admit(self, key: str | None, ask: str = ASK_FOR_KEY) -> Tenant | None:
        """Authenticate and count one request against the key's requests per minute."""
        tenant = self.authenticate(key, ask)
        self.count_request(tenant)
        return tenant

    def tenant(self, owner: str) -> Tenant:
        """The tenant that owns a job (a worker runs it as that key, even if revoked since);
        a key no longer known (an environment key removed) sees only its own."""
        for tenant in self._env.values():
            if tenant.id == owner:
                return tenant
        with self.sessions() as session:
            row = session.get(ApiKeyRow, owner)
        return self._tenant(row) if row is not None else Tenant(owner, owner, False, self.defaults)

    def _tenant(self, row: ApiKeyRow) -> Tenant:
        limits = Limits(
            _or(row.requests_per_minute, self.defaults.requests_per_minute),
            _or(row.audio_seconds_per_day, self.defaults.audio_seconds_per_day),
        )
        return Tenant(row.id, row.name, row.admin, limits)

    # ------------------------------------------------------------------ limits and usage

    def count_request(self, tenant: Tenant | None) -> None:
        """Count a request of ``tenant``; 429 (nothing counted) when its minute is used up."""
        if tenant is None:
            return
        now = self.clock()
        limit = tenant.limits.requests_per_minute
        with self.sessions() as session:
            if session.execute(self._bump(tenant.id, MINUTE, now, 1, 0.0, limit)).first() is None:
                session.rollback()
                raise TooManyRequests(
                    f"API key {tenant.name!r} may make {limit} requests per minute",
                    retry_after=_left(now, MINUTE),
                )
            session.execute(self._bump(tenant.id, DAY, now, 1, 0.0))
            session.commit()
        if self.metrics is not None:
            self.metrics.key_requests.labels(tenant.id, tenant.name).inc()

    def check_audio(self, tenant: Tenant | None) -> None:
        """429 when ``tenant`` has used its seconds of audio of today (UTC)."""
        limit = None if tenant is None else tenant.limits.audio_seconds_per_day
        if tenant is None or limit is None:
            return
        now = self.clock()
        used = self._today(now).get(tenant.id, (0, 0.0))[1]
        if used >= limit:
            raise TooManyRequests(
                f"API key {tenant.name!r} has used its {limit:g} s of audio of today (UTC)",
                retry_after=_left(now, DAY),
            )

    def charge(self, tenant: Tenant | None, seconds: float) -> None:
        """Add ``seconds`` of audio made for ``tenant`` to its day."""
        if tenant is None or seconds <= 0:
            return
        with self.sessions() as session:
            session.execute(self._bump(tenant.id, DAY, self.clock(), 0, seconds))
            session.commit()
        if self.metrics is not None:
            self.metrics.key_audio_seconds.labels(tenant.id, tenant.name).inc(seconds)

    def usage(self, tenant: Tenant | None) -> list[KeyUsage]:
        """Today's usage of ``tenant``'s key; of every key for an admin (none on an open
        server)."""
        if tenant is None:
            return []
        now = self.clock()
        today = datetime.fromtimestamp(now, timezone.utc).date()
        counts = self._today(now)
        if tenant.admin:
            rows = self.stored_keys()
            revoked = {row.id for row in rows if row.revoked_at is not None}
            tenants = self.env_tenants + [self._tenant(row) for row in rows]
        else:
            revoked, tenants = set(), [tenant]
        return [
            KeyUsage(t, today, *counts.get(t.id, (0, 0.0)), revoked=t.id in revoked)
            for t in tenants
        ]

    def _today(self, now: float) -> dict[str, tuple[int, float]]:
        """``{key id: (requests, audio seconds)}`` of the current day."""
        query = select(KeyUsageRow.key_id, KeyUsageRow.requests, KeyUsageRow.audio_seconds).where(
            KeyUsageRow.period == DAY, KeyUsageRow.bucket == _bucket(now, DAY)
        )
        with self.sessions() as session:
            return {key: (requests, audio) for key, requests, audio in session.execute(query)}

    def _bump(
        self,
        key_id: str,
        period: str,
        now: float,
        requests: int,
        audio: float,
        limit: int | None = None,
    ) -> Any:
        """Upsert: add to the key's row of ``period`` (started again in a new window); with a
        request ``limit``, nothing is changed or returned once the window holds that many."""
        table = KeyUsageRow.__table__
        assert isinstance(table, Table)
        bucket = _bucket(now, period)
        current = table.c.bucket == bucket
        values = {"key_id": key_id, "period": period, "bucket": bucket}
        insert = self._insert(table).values(values | {"requests": requests, "audio_seconds": audio})
        return insert.on_conflict_do_update(
            index_elements=[table.c.key_id, table.c.period],
            set_={
                "requests": case((current, table.c.requests + requests), else_=requests),
                "audio_seconds": case((current, table.c.audio_seconds + audio), else_=audio),
                "bucket": bucket,
            },
            where=None if limit is None else or_(~current, table.c.requests < limit),
        ).returning(table.c.requests)


def _bucket(now: float, period: str) -> int:
    return int(now // SECONDS[period])


def _left(now: float, period: str) -> float:
    """Whole seconds until the window of ``period`` that holds ``now`` ends."""
    size = SECONDS[period]
    return math.ceil(size - now % size)


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value
