"""``ref_name`` never reaches outside the voices directory: a symlink in it that points out is
refused, and names that no file system can hold are 422 before any file is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from f5serve.core.db import open_database
from f5serve.core.storage.local import LocalStorage
from f5serve.core.voices.library import VoiceLibrary, VoiceLimits
from f5serve.errors import InvalidInput, NotFound


@pytest.fixture
def library(tmp_path: Path) -> VoiceLibrary:
    voices = tmp_path / "sample"
    voices.mkdir()
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"RIFF not yours")
    (voices / "escape.wav").symlink_to(outside)
    (voices / "escape.txt").write_text("a transcript")
    sessions = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    return VoiceLibrary(
        sessions, LocalStorage(tmp_path / "storage"), VoiceLimits(10**6, 12), voices
    )


@pytest.mark.parametrize("ref_name", ["escape.wav", "sample/escape.wav", "escape"])
def test_a_symlink_out_of_the_voices_directory_is_refused(
    library: VoiceLibrary, ref_name: str
) -> None:
    with pytest.raises(InvalidInput, match="outside the voices directory"):
        library.resolve_ref_name(ref_name)


@pytest.mark.parametrize(
    "ref_name", ["../secret.wav", "/etc/passwd", "sample/../x.wav", "a\x00b", "x" * 252]
)
def test_names_that_are_not_one_file_are_invalid(library: VoiceLibrary, ref_name: str) -> None:
    with pytest.raises(InvalidInput):
        library.ref_name_stem(ref_name)


def test_a_missing_file_is_not_found(library: VoiceLibrary) -> None:
    with pytest.raises(NotFound):
        library.resolve_ref_name("sample/nobody.wav")
