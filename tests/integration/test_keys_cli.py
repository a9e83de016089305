"""``f5serve keys create|list|revoke`` as a user runs them (real subprocesses), on SQLite and
PostgreSQL: the key is printed once and only its hash is stored, the list never shows a key,
a revoked key stops working, and bad input is one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from f5serve.core.db import ApiKeyRow, open_database, upgrade_database
from f5serve.core.tenants import Tenancy, key_hash
from f5serve.errors import Unauthorized


def keys(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "f5serve", "keys", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def url(empty_database: str) -> str:
    upgrade_database(empty_database)
    return empty_database


def test_create_list_revoke(url: str) -> None:
    made = keys("create", "--name", "alice", "--rpm", "5", "--database-url", url)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert made.stdout == key + "\n" and key.startswith("f5s_") and len(key) > 40
    with open_database(url)() as session:
        (row,) = session.scalars(select(ApiKeyRow))
    assert row.hash == key_hash(key) and key not in (row.hash, row.prefix)
    assert made.stderr == f"created key {row.id} (alice); it is not shown again\n"
    ops = keys(
        "create",
        "--name",
        "ops",
        "--admin",
        "--audio-seconds-per-day",
        "90.5",
        "--database-url",
        url,
    )
    assert ops.returncode == 0, ops.stderr
    assert Tenancy(open_database(url)).authenticate(ops.stdout.strip()).admin  # type: ignore[union-attr]

    listed = keys("list", "--database-url", url)
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if row.id in line)
    for shown in ("alice", key[:12] + "…", "no", "5 req/min, default s/day", "│ -"):
        assert shown in line, shown
    ops_line = next(line for line in listed.stdout.splitlines() if "ops" in line)
    assert "yes" in ops_line and "default req/min, 90.5 s/day" in ops_line
    assert key not in listed.stdout

    tenancy = Tenancy(open_database(url))
    assert tenancy.authenticate(key) is not None
    revoked = keys("revoke", row.id, "--database-url", url)
    assert revoked.returncode == 0 and revoked.stderr == f"revoked {row.id} (alice)\n"
    with pytest.raises(Unauthorized):
        tenancy.authenticate(key)
    again = keys("revoke", row.id, "--database-url", url)
    assert again.returncode == 0 and again.stderr == f"{row.id} was already revoked\n"
    line = next(
        line for line in keys("list", "--database-url", url).stdout.splitlines() if row.id in line
    )
    assert "│ -" not in line  # the revoked column has its time


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--name", "x", "--rpm", "0"], "requests per minute must be at least 1"),
        (["create", "--name", " "], "a key needs a name (who or what uses it)"),
        (
            ["create", "--name", "x", "--audio-seconds-per-day", "-1"],
            "audio seconds per day must be more than 0",
        ),
        (["revoke", "key_nope"], "no API key 'key_nope' (see `f5serve keys list`)"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = keys(*args, "--database-url", f"sqlite:///{tmp_path / 'keys.db'}")
    assert done.returncode == 1 and done.stderr == f"error: {message}\n" and done.stdout == ""
