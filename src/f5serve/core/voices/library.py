"""The voice library: reference clips cleaned and resampled once at upload, transcripts (heard
by speech recognition when none is given, then kept in the voice's row), and a cache of
prepared :class:`~f5serve.engine.pipeline.Reference` objects (their mels) per model.

A voices directory (``<name>.wav`` + ``<name>.txt``) is imported at start-up, so requests may
name a voice by file, as the RunPod seed does: ``ref_name: "sample/narrator.wav"``.

Voices belong to the API key that uploaded them (see :mod:`f5serve.core.tenants`): a key sees
its own and the shared voices of the directory, which only an admin key (or an open server) may
change. Names are unique across the whole library.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import logging
import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import soundfile as sf
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from f5serve.core.db import LANGUAGE_CHARS, VoiceRow, utcnow
from f5serve.core.storage.base import Storage
from f5serve.core.tenants import Tenant, may_see, restricted_to
from f5serve.core.validation import check_string, storable
from f5serve.engine import asr
from f5serve.engine import audio as audio_io
from f5serve.engine.asr import Recognizer
from f5serve.engine.options import SynthesisOptions
from f5serve.engine.pipeline import Engine, Reference
from f5serve.engine.pronounce import Lexicon
from f5serve.errors import (
    AsrUnavailable,
    Conflict,
    F5ServeError,
    Forbidden,
    InvalidInput,
    ModelUnavailable,
    NotFound,
    PayloadTooLarge,
)

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}")  # whole name: fullmatch
CACHE_SIZE = 64
DIRECTORY = "directory"  # the source of a voice imported from the voices directory (shared)
MAX_FILE_NAME_BYTES = 255  # what file systems allow in one path component


@dataclass(frozen=True)
class VoiceLimits:
    """Upload limits of the library."""

    max_upload_bytes: int
    max_reference_seconds: float


@dataclass(frozen=True)
class TranscriptCheck:
    """Whether the library compares a given transcript with what speech recognition hears in
    the clip, and the character error rate over which the two disagree."""

    enabled: bool = True
    max_cer: float = 0.3


@dataclass(frozen=True)
class CleanClip:
    """A reference clip after clean-up: 24 kHz mono float32 audio, as WAV bytes, and its
    length."""

    audio: np.ndarray
    wav: bytes
    seconds: float


def check_upload(data: bytes, limits: VoiceLimits) -> None:
    """Size limit of an uploaded or base64 reference."""
    if len(data) > limits.max_upload_bytes:
        raise PayloadTooLarge(
            f"reference audio is {len(data)} bytes (at most {limits.max_upload_bytes})",
            details={"bytes": len(data), "max_bytes": limits.max_upload_bytes},
        )
    if not data:
        raise InvalidInput("reference audio is empty")


def decode_reference(data: bytes, limits: VoiceLimits) -> tuple[np.ndarray, int]:
    """Decode by content (415 if not audio), refusing a clip over the maximum duration without
    decoding it in full (413); ``([channels, n], sr)``."""
    check_upload(data, limits)
    channels, sr = audio_io.load_audio(data, mono=False, max_seconds=limits.max_reference_seconds)
    audio_io.validate_reference(audio_io.to_mono(channels), sr)
    return channels, sr


def clean_clip(data: bytes, limits: VoiceLimits) -> CleanClip:
    """What the library stores: the reference clean-up, then 24 kHz mono float32 WAV."""
    channels, sr = decode_reference(data, limits)
    mono = audio_io.to_mono(audio_io.clean_reference(channels, sr))
    audio_io.validate_reference(mono, sr)
    resampled = audio_io.resample(mono, sr, audio_io.SAMPLE_RATE)
    buffer = io.BytesIO()
    sf.write(buffer, resampled, audio_io.SAMPLE_RATE, format="WAV", subtype="FLOAT")
    return CleanClip(resampled, buffer.getvalue(), len(resampled) / audio_io.SAMPLE_RATE)


class VoiceLibrary:
    """Voices in the database, their clips in storage, prepared references in memory."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        storage: Storage,
        limits: VoiceLimits,
        voices_dir: Path | None = None,
        recognizer: Recognizer | None = None,
        transcript_check: TranscriptCheck | None = None,
    ) -> None:
        self.sessions = sessions
        self.storage = storage
        self.limits = limits
        self.voices_dir = voices_dir.resolve() if voices_dir is not None else None
        self.recognizer = recognizer
        self.transcript_check = transcript_check or TranscriptCheck()
        # (voice id, voice updated_at, model, options.reference_key()) → prepared reference
        self._cache: OrderedDict[tuple[str, str, str, tuple[Any, ...]], Reference] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ CRUD

    def create(
        self,
        name: str,
        data: bytes,
        ref_text: str | None,
        language: str | None,
        source: str = "upload",
        pronunciations: dict[str, str] | None = None,
        owner: str | None = None,
    ) -> VoiceRow:
        """Clean, store and register a voice of the key ``owner`` (409 if the name is
        taken). Without ``ref_text`` the cleaned clip is transcribed (speech recognition) and
        the transcript stored."""
        _check_name(name)
        _check_fields(ref_text, language)
        Lexicon.parse(pronunciations)
        recognizer = None
        if ref_text is None or not ref_text.strip():
            recognizer = asr.require(self.recognizer, asr.missing_ref_text("the clip"))
        clip = clean_clip(data, self.limits)
        if recognizer is not None:
            ref_text = recognizer.transcribe(clip.audio, audio_io.SAMPLE_RATE, language).text
            if not ref_text.strip():
                raise InvalidInput("no words were heard in the clip: give its ref_text")
        assert ref_text is not None
        voice_id = "voice_" + uuid.uuid4().hex[:16]
        key = f"voices/{voice_id}/reference.wav"
        now = utcnow()
        row = VoiceRow(
            id=voice_id,
            name=name,
            ref_text=ref_text.strip(),
            language=language,
            source=source,
            audio_key=key,
            duration=clip.seconds,
            sha256=hashlib.sha256(data).hexdigest(),
            created_at=now,
            updated_at=now,
            pronunciations=pronunciations or None,
            owner=owner,
        )
        self.storage.put(key, clip.wav, "audio/wav")
        try:
            self._insert(row)
        except BaseException:  # no clip without its row
            self._discard(key)
            raise
        return row

    def _insert(self, row: VoiceRow) -> None:
        with self.sessions() as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                raise Conflict(f"a voice called {row.name!r} already exists") from None

    def _discard(self, key: str) -> None:
        """Remove a clip whose row was not written (best effort: the error being raised is the
        one the client must see)."""
        try:
            self.storage.delete(key)
        except F5ServeError as exc:
            log.error("could not remove the orphan clip %s: %s", key, exc.message)

    def all(self, tenant: Tenant | None = None) -> list[VoiceRow]:
        """The voices ``tenant`` sees, by name."""
        query = select(VoiceRow).order_by(VoiceRow.name)
        own = restricted_to(tenant)
        if own is not None:
            query = query.where(or_(VoiceRow.owner == own, VoiceRow.source == DIRECTORY))
        with self.sessions() as session:
            return list(session.scalars(query))

    def exists(self, id_or_name: str, tenant: Tenant | None = None) -> bool:
        """Whether ``tenant`` sees a voice with this id or name."""
        try:
            self.get(id_or_name, tenant)
        except NotFound:
            return False
        return True

    def get(self, id_or_name: str, tenant: Tenant | None = None) -> VoiceRow:
        """A voice by id, or else by name (one ``tenant`` does not see does not exist for it)."""
        row = None
        if storable(id_or_name):
            with self.sessions() as session:
                row = session.get(VoiceRow, id_or_name) or session.scalar(
                    select(VoiceRow).where(VoiceRow.name == id_or_name)
                )
        if row is None or not (row.source == DIRECTORY or may_see(tenant, row.owner)):
            raise NotFound(f"voice {id_or_name!r} does not exist", details={"voice": id_or_name})
        return row

    def _writable(self, voice_id: str, tenant: Tenant | None) -> VoiceRow:
        """A voice ``tenant`` may change: its own (403 for a shared voice of the directory)."""
        row = self.get(voice_id, tenant)
        if not may_see(tenant, row.owner):
            raise Forbidden(
                f"voice {row.name!r} is a shared voice of the voices directory: "
                "only an admin key may change it",
                details={"voice": voice_id},
            )
        return row

    def update(
        self,
        voice_id: str,
        name: str | None,
        ref_text: str | None,
        language: str | None,
        pronunciations: dict[str, str] | None = None,
        tenant: Tenant | None = None,
    ) -> VoiceRow:
        """Change what is given (``pronunciations``: the whole dictionary; ``{}`` clears it)."""
        row = self._writable(voice_id, tenant)
        _check_fields(ref_text, language)
        if name is not None:
            _check_name(name)
            row.name = name
        if ref_text is not None:
            if not ref_text.strip():
                raise InvalidInput("ref_text must not be empty")
            row.ref_text = ref_text.strip()
        if language is not None:
            row.language = language or None
        if pronunciations is not None:
            Lexicon.parse(pronunciations)
            row.pronunciations = pronunciations or None
        row.updated_at = utcnow()
        with self.sessions() as session:
            session.merge(row)
            try:
                session.commit()
            except IntegrityError:
                raise Conflict(f"a voice called {name!r} already exists") from None
        self._forget(row.id)
        return row

    def delete(self, voice_id: str, tenant: Tenant | None = None) -> None:
        """Remove the row, then the clip; a clip that cannot be removed puts the row back, so
        that a failure leaves both or neither."""
        row = self._writable(voice_id, tenant)
        with self.sessions() as session:
            session.delete(session.get(VoiceRow, row.id))
            session.commit()
        try:
            self.storage.delete(row.audio_key)
        except BaseException:
            with self.sessions() as session:
                session.merge(row)
                session.commit()
            raise
        self._forget(row.id)

    def audio(self, voice_id: str, tenant: Tenant | None = None) -> bytes:
        return self.storage.get(self.get(voice_id, tenant).audio_key)

    def transcript_warnings(self, voice: VoiceRow) -> list[str]:
        """What is wrong with the transcript of ``voice`` as speech recognition hears its clip:
        a warning when the two disagree (a known cause of garbled speech), or when the check
        could not run; no warnings without speech recognition or with the check off."""
        check = self.transcript_check
        if not check.enabled:
            return []
        try:
            recognizer = asr.require(self.recognizer, "")
        except AsrUnavailable:
            return []
        except ModelUnavailable as exc:
            return [f"ref_text was not checked against the clip: {exc.message}"]
        audio, sr = audio_io.load_audio(self.storage.get(voice.audio_key))
        heard = recognizer.transcribe(audio, sr, voice.language).text
        rate = asr.cer(voice.ref_text, heard, voice.language)
        if rate <= check.max_cer:
            return []
        return [
            f"ref_text disagrees with the clip: speech recognition hears {heard!r} "
            f"(character error rate {rate:.2f}, over {check.max_cer:g}); a wrong transcript "
            "garbles the speech"
        ]

    # ------------------------------------------------------------------ use

    def ref_name(self, voice: VoiceRow) -> str | None:
        """How a request names ``voice`` by file (``sample/narrator.wav``); None for an upload."""
        if self.voices_dir is None or voice.source != DIRECTORY:
            return None
        return f"{self.voices_dir.name}/{voice.name}.wav"

    def resolve_ref_name(self, ref_name: str, tenant: Tenant | None = None) -> VoiceRow:
        """``sample/narrator.wav``, ``narrator.wav`` or ``narrator`` → the voice ``narrator``
        (as ``tenant`` sees the library), never anything outside the voices directory."""
        stem = self.ref_name_stem(ref_name)
        assert self.voices_dir is not None
        candidate = (self.voices_dir / f"{stem}.wav").resolve()
        if not candidate.is_relative_to(self.voices_dir):
            raise InvalidInput(f"ref_name {ref_name!r} is outside the voices directory")
        try:
            return self.get(stem, tenant)
        except NotFound:
            if candidate.is_file() and not self.exists(stem):  # added after start-up
                self.import_file(candidate)
                return self.get(stem, tenant)
            raise NotFound(f"no voice file {ref_name!r}", details={"ref_name": ref_name}) from None

    def ref_name_stem(self, ref_name: str) -> str:
        """The voice name a ``ref_name`` gives, checked without touching the file system:
        one file name in the voices directory (422 otherwise, 404 without a directory)."""
        if self.voices_dir is None:
            raise NotFound(
                "ref_name needs a voices directory (F5SERVE_VOICES_DIR)",
                details={"ref_name": ref_name},
            )
        check_string(ref_name, "ref_name")
        path = PurePosixPath(ref_name.replace("\\", "/"))
        parts = path.parts
        if parts and parts[0] == self.voices_dir.name:
            parts = parts[1:]
        if path.is_absolute() or len(parts) != 1 or parts[0] in ("", ".", ".."):
            raise InvalidInput(
                f"ref_name {ref_name!r} must name a file in the voices directory "
                f"({self.voices_dir.name}/<name>.wav)",
                details={"ref_name": ref_name},
            )
        stem = PurePosixPath(parts[0]).stem if parts[0].endswith(".wav") else parts[0]
        if len(f"{stem}.wav".encode()) > MAX_FILE_NAME_BYTES:
            raise InvalidInput(
                f"ref_name names a file longer than {MAX_FILE_NAME_BYTES} bytes",
                details={"max_bytes": MAX_FILE_NAME_BYTES},
            )
        return stem

    async def reference(
        self, voice: VoiceRow, model: str, engine: Engine, options: SynthesisOptions
    ) -> Reference:
        """The prepared reference of ``voice`` for ``model`` with ``options`` (computed once,
        then cached). The clip was cleaned when the voice was added, so it is not again."""
        options = dataclasses.replace(options, preprocess_ref=False)
        key = (voice.id, voice.updated_at.isoformat(), model, options.reference_key())
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        data = await asyncio.to_thread(self.storage.get, voice.audio_key)
        ref = await asyncio.to_thread(engine.prepare_reference, data, voice.ref_text, options)
        with self._lock:
            self._cache[key] = ref
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return ref

    # ------------------------------------------------------------------ voices directory

    def import_dir(self) -> int:
        """Import ``<name>.wav`` + ``<name>.txt`` pairs; returns how many were added or updated."""
        if self.voices_dir is None or not self.voices_dir.is_dir():
            return 0
        changed = 0
        for wav in sorted(self.voices_dir.glob("*.wav")):
            try:
                changed += self.import_file(wav)
            except F5ServeError as exc:  # one bad file must not stop the server
                log.warning("voice file %s not imported: %s", wav, exc.message)
        return changed

    def import_file(self, wav: Path) -> bool:
        """Import or refresh one directory voice; False when it is already up to date. A clip
        without its ``.txt`` is transcribed (speech recognition) when it is new or changed."""
        transcript = wav.with_suffix(".txt")
        ref_text = None
        if transcript.is_file():
            ref_text = transcript.read_text(encoding="utf-8").strip()
        elif not asr.can_transcribe(self.recognizer):
            raise InvalidInput(f"{wav.name} has no transcript {transcript.name} beside it")
        data = wav.read_bytes()
        try:
            existing = self.get(wav.stem)
        except NotFound:
            self.create(wav.stem, data, ref_text, None, source=DIRECTORY)
            return True
        if existing.source != DIRECTORY:
            raise Conflict(f"an uploaded voice is already called {wav.stem!r}")
        same_text = ref_text is None or existing.ref_text == ref_text
        if existing.sha256 == hashlib.sha256(data).hexdigest() and same_text:
            return False
        self.delete(existing.id)
        self.create(wav.stem, data, ref_text, None, source=DIRECTORY)
        return True

    def _forget(self, voice_id: str) -> None:
        with self._lock:
            for key in [k for k in self._cache if k[0] == voice_id]:
                del self._cache[key]


def _check_name(name: str) -> None:
    if not NAME_RE.fullmatch(name):
        raise InvalidInput(
            "voice name must be 1-128 letters, digits, spaces, '.', '_' or '-', "
            "starting with a letter or digit",
            details={"name": name},
        )


def _check_fields(ref_text: str | None, language: str | None) -> None:
    check_string(ref_text, "ref_text")
    check_string(language, "language", LANGUAGE_CHARS)
