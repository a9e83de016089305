"""Voice names per owner in the database, on SQLite and on the machine's PostgreSQL: revision 0007
keeps the voices it finds and makes names unique per key (the voices without an owner still
unique among themselves), and the library resolves a name as each key sees it: its own voice,
then the shared one; for an admin key (or none) its own, then the unowned one, then the only
other key's, else a 409 naming the ids."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from f5serve.core import migrations
from f5serve.core.db import database_revision, database_url, open_database, upgrade_database
from f5serve.core.storage.local import LocalStorage
from f5serve.core.tenants import Tenant, owner_of
from f5serve.core.voices.library import DIRECTORY, VoiceLibrary, VoiceLimits
from f5serve.errors import AmbiguousVoice, Conflict

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
from helpers import REF_TEXT, REF_WAV

HEAD = migrations.head()
ALICE = Tenant("key_alice", "alice", False)
BOB = Tenant("key_bob", "bob", False)
ADMIN = Tenant("key_admin", "admin", True)
INSERT = text(
    "INSERT INTO voices (id, name, ref_text, source, audio_key, duration, sha256, created_at, "
    "updated_at, owner) VALUES (:id, :name, 'Words.', :source, 'k', 1.0, 'x', :t, :t, :owner)"
)


def insert(url: str, voice_id: str, name: str, owner: str | None, source: str = "upload") -> None:
    engine = create_engine(database_url(url))
    try:
        with engine.begin() as conn:
            values = {"id": voice_id, "name": name, "source": source, "owner": owner}
            conn.execute(INSERT, values | {"t": "2026-01-02 03:04:05"})
    finally:
        engine.dispose()


def migrate(url: str, action: str, revision: str) -> None:
    engine = create_engine(database_url(url))
    try:
        with engine.begin() as conn:
            getattr(command, action)(migrations.config(conn), revision)
    finally:
        engine.dispose()


def names(url: str) -> list[tuple[str, str, str | None]]:
    engine = create_engine(database_url(url))
    try:
        with engine.connect() as conn:
            query = text("SELECT id, name, owner FROM voices ORDER BY id")
            return [(row.id, row.name, row.owner) for row in conn.execute(query)]
    finally:
        engine.dispose()


def test_revision_0007_keeps_the_voices_and_makes_names_unique_per_owner(
    empty_database: str,
) -> None:
    url = empty_database
    migrate(url, "upgrade", "0006")
    insert(url, "v-alice", "mine", "key_alice")
    insert(url, "v-legacy", "old", None)  # uploaded before keys were tenants
    insert(url, "v-shared", "narrator", None, DIRECTORY)
    with pytest.raises(IntegrityError):  # 0006: one name in the whole library
        insert(url, "v-bob", "mine", "key_bob")
    before = names(url)

    assert upgrade_database(url) == ("0006", HEAD)
    assert names(url) == before
    insert(url, "v-bob", "mine", "key_bob")  # another key's name is free
    insert(url, "v-alice-narrator", "narrator", "key_alice")  # so is a shared one
    for voice_id, name, owner in (
        ("x-1", "mine", "key_alice"),  # twice in one key's voices
        ("x-2", "narrator", None),  # twice among the voices without an owner
        ("x-3", "old", None),
    ):
        with pytest.raises(IntegrityError):
            insert(url, voice_id, name, owner)

    # going down needs the names to be unique again: refused, nothing changed
    with pytest.raises(RuntimeError, match=r"share a name \(mine, narrator\): rename"):
        migrate(url, "downgrade", "0006")
    assert database_revision(url) == HEAD
    engine = create_engine(database_url(url))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM voices WHERE id IN ('v-bob', 'v-alice-narrator')"))
    engine.dispose()
    migrate(url, "downgrade", "0006")
    with pytest.raises(IntegrityError):
        insert(url, "v-bob", "mine", "key_bob")
    assert upgrade_database(url) == ("0006", HEAD)  # and up again from the restored constraint
    insert(url, "v-bob", "mine", "key_bob")


@pytest.fixture
def library(empty_database: str, tmp_path: Path) -> VoiceLibrary:
    """A library at the newest schema with the shared voice ``narrator`` of its directory."""
    upgrade_database(empty_database)
    voices = tmp_path / "sample"
    voices.mkdir()
    (voices / "narrator.wav").write_bytes(REF_WAV.read_bytes())
    (voices / "narrator.txt").write_text(REF_TEXT)
    storage = LocalStorage(tmp_path / "storage")
    made = VoiceLibrary(open_database(empty_database), storage, VoiceLimits(10**7, 30), voices)
    assert made.import_dir() == 1
    return made


def add(library: VoiceLibrary, name: str, tenant: Tenant | None) -> str:
    return library.create(name, REF_WAV.read_bytes(), REF_TEXT, None, owner=owner_of(tenant)).id


def test_a_key_resolves_a_name_to_its_own_voice_then_the_shared_one(
    library: VoiceLibrary,
) -> None:
    alice, bob = add(library, "twin", ALICE), add(library, "twin", BOB)
    assert library.get("twin", ALICE).id == alice and library.get("twin", BOB).id == bob
    with pytest.raises(Conflict, match="the key already has a voice called 'twin'"):
        add(library, "twin", ALICE)

    shared = library.get("narrator", BOB)
    assert shared.source == DIRECTORY
    mine = add(library, "narrator", ALICE)
    assert library.get("narrator", ALICE).id == mine
    assert library.get("narrator", BOB).id == shared.id
    assert library.resolve_ref_name("sample/narrator.wav").id == shared.id  # the file's voice
    seen = library.all(ALICE)
    assert [v.name for v in seen] == ["narrator", "narrator", "twin"]
    assert {v.id for v in seen} == {shared.id, mine, alice}

    # renaming: a name of another key or of a shared voice is free, one's own is taken
    assert library.update(bob, "narrator", None, None, tenant=BOB).name == "narrator"
    with pytest.raises(Conflict):
        library.update(mine, "twin", None, None, tenant=ALICE)
    assert library.get("narrator", BOB).id == bob


def test_an_admin_or_no_key_gets_the_only_voice_of_a_name_or_a_409_naming_the_ids(
    library: VoiceLibrary,
) -> None:
    alice, bob = add(library, "twin", ALICE), add(library, "twin", BOB)
    add(library, "narrator", ALICE)
    for who in (ADMIN, None):  # None: an open server, the RunPod worker
        with pytest.raises(AmbiguousVoice) as ambiguous:
            library.get("twin", who)
        assert ambiguous.value.http_status == 409
        assert ambiguous.value.details == {"voice": "twin", "ids": sorted([alice, bob])}
        assert library.get(alice, who).id == alice  # by id it is fine
        assert library.get("narrator", who).source == DIRECTORY  # the unowned one first
    solo = add(library, "solo", ALICE)
    assert library.get("solo", ADMIN).id == solo and library.get("solo", None).id == solo

    admins = add(library, "twin", ADMIN)
    assert library.get("twin", ADMIN).id == admins  # an admin's own voice first
    with pytest.raises(AmbiguousVoice):
        library.get("twin", None)
    # an upload with no key has no owner: unique among the unowned voices, first for no key,
    # and not a key's to see
    unowned = add(library, "twin", None)
    assert library.get("twin", None).id == unowned
    for name in ("twin", "narrator"):
        with pytest.raises(Conflict, match="a voice without an owner is already called"):
            add(library, name, None)
    assert library.get("twin", ALICE).id == alice
