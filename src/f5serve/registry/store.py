"""Where a model's files are: the Hugging Face cache, downloads into it, integrity checks.

:class:`ModelStore` turns a :class:`~f5serve.registry.catalog.ModelSpec` into local paths
(:class:`ModelFiles`), downloading what is missing through ``huggingface_hub`` into the standard
Hugging Face cache layout (so ``hf`` and other tools share it).

- ``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE`` are honoured (read when the store is made;
  explicit arguments win). The cache is ``cache_dir``, else ``$F5SERVE_CACHE_DIR``, else the
  Hugging Face cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub``, ``~/.cache/huggingface/hub``).
- One process at a time fetches a given model (a file lock per model in the cache), so two
  processes asking at once download it once; the second waits and then finds it cached.
- A connection cut in the middle of a file is resumed with an HTTP range request by
  ``huggingface_hub`` itself (up to 5 attempts while data keeps arriving). A download that fails
  for good is not kept (``huggingface_hub`` >= 1 writes to a process-unique temporary file and
  deletes it), so the next attempt starts that file again.
- Integrity: ``huggingface_hub`` only checks the size of what it downloads. We also check the
  content against the hash the hub names the file by (the ``ETag``: sha256 for LFS files, the git
  blob sha1 for small ones), after every download and whenever a cached file's size or mtime
  changed since it was last checked. A mismatch removes the file and raises
  :class:`~f5serve.errors.IntegrityError`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import filelock
import httpx2
from huggingface_hub import HfApi, constants, hf_hub_download, scan_cache_dir
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from f5serve.engine.config import DiTConfig
from f5serve.errors import DownloadError, IntegrityError, ModelAccessDenied, ModelUnavailable
from f5serve.registry.catalog import (
    VOCODER_FILES,
    FileSource,
    FolderSource,
    HubFile,
    HubFolder,
    LocalPath,
    ModelSpec,
)

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "F5SERVE_CACHE_DIR"
ProgressMode = Literal["bar", "log", "none"]
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_STEP = re.compile(r"(\d+)")
_HASH_CHUNK = 8 << 20


@dataclass(frozen=True)
class ModelFiles:
    """Local paths of one model, ready for :meth:`f5serve.Engine.from_files`."""

    name: str  # model name
    checkpoint: Path  # weights file
    vocab: Path  # vocab.txt
    vocoder: Path  # folder with config.yaml + pytorch_model.bin
    arch: str | DiTConfig  # preset name or dims


def _env_flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$F5SERVE_CACHE_DIR``, else the Hugging Face hub cache."""
    env = os.environ if environ is None else environ
    chosen = env.get(CACHE_DIR_ENV) or env.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE
    return Path(chosen).expanduser()


def pick_checkpoint(files: list[str]) -> str | None:
    """The checkpoint in a repository listing: ``.safetensors`` over ``.pt``, shallowest path,
    then the highest training step in the name (``model_1250000`` over ``model_1200000``)."""
    for suffix in (".safetensors", ".pt"):
        found = [f for f in files if f.endswith(suffix) and not f.split("/")[-1].startswith(".")]
        if found:

            def rank(path: str) -> tuple[int, int, str]:
                steps = [int(n) for n in _STEP.findall(path.split("/")[-1])]
                return (-path.count("/"), max(steps, default=-1), path)

            return max(found, key=rank)
    return None


class _LogProgress:
    """A stand-in for tqdm that reports download progress as log lines (for servers)."""

    def __init__(self, *, desc: str = "", total: int | None = None, initial: int = 0, **_: Any):
        self.desc, self.total, self.n = desc, total, initial
        self._next_tenth = self._tenth() + 1

    def _tenth(self) -> int:
        return (10 * self.n) // self.total if self.total else 0

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.total and self._tenth() >= self._next_tenth:
            self._next_tenth = self._tenth() + 1
            log.info("downloading %s: %d%% of %s", self.desc, 10 * self._tenth(), _mb(self.total))

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> _LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def file_digest(path: Path, algorithm: str, prefix: bytes = b"") -> str:
    """Hex digest of ``prefix`` + the bytes of ``path``, read in chunks."""
    digest = hashlib.new(algorithm, prefix)
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def content_hash(path: Path, etag: str) -> str | None:
    """The hash of ``path`` computed the way the hub computed ``etag``; None if unknown kind."""
    if _SHA256.match(etag):
        return file_digest(path, "sha256")
    if _SHA1.match(etag):  # git blob id of a small (non-LFS) file
        return file_digest(path, "sha1", f"blob {path.stat().st_size}\0".encode())
    return None


class ModelStore:
    """The local model cache: find, download, verify and remove model files."""

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        *,
        endpoint: str | None = None,
        token: str | bool | None = None,
        offline: bool | None = None,
        progress: ProgressMode = "log",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir(env)
        self.endpoint = (endpoint or env.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
        self.token = token
        self.offline = _env_flag(env.get("HF_HUB_OFFLINE")) if offline is None else offline
        self.progress = progress

    # ----------------------------------------------------------------- fetching
    def fetch(self, spec: ModelSpec, *, full_check: bool = False) -> ModelFiles:
        """Local paths of ``spec``'s files, downloading what is missing.

        ``full_check`` re-hashes every file even if it was verified before (``models pull``).
        Raises :class:`ModelUnavailable` (offline/unreachable and not cached),
        :class:`DownloadError` or :class:`IntegrityError`.
        """
        with self._model_lock(spec.name):
            checkpoint = self._file(spec, spec.checkpoint, full_check)
            vocab = self._file(spec, spec.vocab, full_check)
            vocoder = self._folder(spec, spec.vocoder, full_check)
        return ModelFiles(spec.name, checkpoint, vocab, vocoder, spec.arch)

    def cached(self, spec: ModelSpec) -> ModelFiles | None:
        """Local paths of ``spec`` if every file is already here (no network), else None."""
        try:
            checkpoint = self._cached_file(spec.checkpoint)
            vocab = self._cached_file(spec.vocab)
            vocoder = self._cached_folder(spec.vocoder)
        except FileNotFoundError:
            return None
        return ModelFiles(spec.name, checkpoint, vocab, vocoder, spec.arch)

    def is_cached(self, spec: ModelSpec) -> bool:
        """True when every file of ``spec`` is on this machine."""
        return self.cached(spec) is not None

    def cached_bytes(self, spec: ModelSpec) -> int | None:
        """Bytes of the checkpoint and vocab on disk (the shared vocoder is not counted)."""
        files = self.cached(spec)
        if files is None:
            return None
        return files.checkpoint.stat().st_size + files.vocab.stat().st_size

    @contextmanager
    def _model_lock(self, name: str) -> Iterator[None]:
        path = self.cache_dir / ".locks" / "f5serve" / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(path))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            log.info("waiting for another process that is fetching model %s", name)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def _file(self, spec: ModelSpec, source: FileSource, full_check: bool) -> Path:
        if isinstance(source, LocalPath):
            if not source.path.is_file():
                raise ModelUnavailable(f"model {spec.name!r}: file not found: {source.path}")
            return source.path
        if source.path is None:
            chosen = self._listed_checkpoint(spec, source, refresh=full_check)
            source = HubFile(source.repo, chosen, source.revision)
        path = self._download(spec, source)
        self._verify(spec, path, full_check)
        return path

    def _folder(self, spec: ModelSpec, source: FolderSource, full_check: bool) -> Path:
        if isinstance(source, LocalPath):
            if not source.path.is_dir():
                raise ModelUnavailable(
                    f"model {spec.name!r}: vocoder folder not found: {source.path}"
                )
            return source.path
        paths = [self._file(spec, source.file(name), full_check) for name in VOCODER_FILES]
        return paths[0].parent

    def _download(self, spec: ModelSpec, source: HubFile) -> Path:
        assert source.path is not None
        try:
            path = hf_hub_download(
                source.repo,
                source.path,
                revision=source.revision,
                cache_dir=self.cache_dir,
                endpoint=self.endpoint,
                token=self.token,
                local_files_only=self.offline,
                tqdm_class=self._tqdm_class(),
            )
        except LocalEntryNotFoundError as exc:
            raise self._unavailable(spec, source, exc) from exc
        except (RepositoryNotFoundError, RevisionNotFoundError, RemoteEntryNotFoundError) as exc:
            raise self._missing(spec, source, exc) from exc
        except (HfHubHTTPError, httpx2.HTTPError, OSError) as exc:
            raise DownloadError(
                f"model {spec.name!r}: downloading {source} from {self.endpoint} failed: "
                f"{_first_line(exc)}; run `f5serve models pull {spec.name}` to retry"
            ) from exc
        return Path(str(path))

    def _tqdm_class(self) -> Any:
        if self.progress == "bar":
            return None  # huggingface_hub's own tqdm bars
        return _LogProgress if self.progress == "log" else _SilentProgress

    def _unavailable(self, spec: ModelSpec, source: HubFile, exc: Exception) -> ModelUnavailable:
        where = f"{source} is not in the cache {self.cache_dir}"
        if self.offline:
            return ModelUnavailable(
                f"model {spec.name!r} is not available offline: {where} and HF_HUB_OFFLINE is "
                f"set; fetch it with `f5serve models pull {spec.name}` while online",
                details={"model": spec.name, "file": str(source)},
            )
        return ModelUnavailable(
            f"model {spec.name!r} is not available: the hub at {self.endpoint} cannot be reached "
            f"and {where}; check the network (or HF_ENDPOINT) and run "
            f"`f5serve models pull {spec.name}`",
            details={"model": spec.name, "file": str(source), "cause": _first_line(exc)},
        )

    def _missing(self, spec: ModelSpec, source: HubFile, exc: Exception) -> DownloadError:
        """The error for a repository, revision or file the hub does not give us.

        A gated repository, and one the hub does not show (it answers "not found" for a private
        repository to anyone without access, as for a missing one), get one message: how to get
        access (:class:`ModelAccessDenied`).
        """
        if isinstance(exc, RepositoryNotFoundError):  # GatedRepoError is one too
            found = "is gated" if isinstance(exc, GatedRepoError) else "was not found or is private"
            return ModelAccessDenied(
                f"model {spec.name!r}: repository {source.repo} {found}: accept its terms "
                f"(request access) at {self.endpoint}/{source.repo} and set HF_TOKEN to a "
                "token of an account that has access",
                details={"model": spec.name, "repository": source.repo},
            )
        if isinstance(exc, RevisionNotFoundError):
            kind = f"revision {source.revision or 'main'} of {source.repo} was not found"
        else:
            kind = f"{source} was not found"
        return DownloadError(f"model {spec.name!r}: {kind} on {self.endpoint}")

    # ----------------------------------------------------------------- listing
    def _listed_checkpoint(self, spec: ModelSpec, source: HubFile, refresh: bool) -> str:
        """Pick the checkpoint of a repository whose card names no file.

        A checkpoint already in the cache is used as is unless ``refresh`` (``models pull``);
        otherwise the hub's listing decides, and the cache's when the hub cannot be asked.
        """
        cached = pick_checkpoint(self._cached_listing(source) or [])
        if cached is not None and not refresh:
            return cached
        files: list[str] | None = None
        if not self.offline:
            try:
                files = HfApi(endpoint=self.endpoint, token=self.token).list_repo_files(
                    source.repo, revision=source.revision
                )
            except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
                raise self._missing(spec, source, exc) from exc
            except (HfHubHTTPError, httpx2.HTTPError, OSError) as exc:
                log.warning("listing %s failed (%s); using the cache", source.repo, exc)
        if files is None:
            files = self._cached_listing(source)
        chosen = pick_checkpoint(files or [])
        if chosen is None and files is None:
            raise self._unavailable(spec, source, FileNotFoundError(source.repo))
        if chosen is None:
            raise DownloadError(
                f"model {spec.name!r}: no .safetensors or .pt checkpoint in {source.repo}"
            )
        log.info(
            "model %s: checkpoint %s picked from the %s listing", spec.name, chosen, source.repo
        )
        return chosen

    def _snapshot(self, repo: str, revision: str | None) -> Path | None:
        folder = self.cache_dir / f"models--{repo.replace('/', '--')}"
        rev = revision or constants.DEFAULT_REVISION
        ref = folder / "refs" / rev
        commit = ref.read_text().strip() if ref.is_file() else rev
        snapshot = folder / "snapshots" / commit
        return snapshot if snapshot.is_dir() else None

    def _cached_listing(self, source: HubFile) -> list[str] | None:
        snapshot = self._snapshot(source.repo, source.revision)
        if snapshot is None:
            return None
        return [p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()]

    def _cached_file(self, source: FileSource) -> Path:
        if isinstance(source, LocalPath):
            if source.path.is_file():
                return source.path
            raise FileNotFoundError(source.path)
        snapshot = self._snapshot(source.repo, source.revision)
        path = source.path or pick_checkpoint(self._cached_listing(source) or [])
        if snapshot is None or path is None or not (snapshot / path).is_file():
            raise FileNotFoundError(str(source))
        return snapshot / path

    def _cached_folder(self, source: FolderSource) -> Path:
        if isinstance(source, LocalPath):
            if source.path.is_dir():
                return source.path
            raise FileNotFoundError(source.path)
        paths = [self._cached_file(source.file(n)) for n in VOCODER_FILES]
        return paths[0].parent

    # ----------------------------------------------------------------- integrity
    def _verify(self, spec: ModelSpec, pointer: Path, full_check: bool) -> None:
        """Check ``pointer``'s content against the hash its cache blob is named by."""
        if not pointer.is_symlink():
            return  # a copy (no symlinks on this filesystem): nothing names the expected hash
        target = os.readlink(pointer)  # ../../blobs/<etag>: the blob is named by its hash
        blob = Path(os.path.normpath(pointer.parent / target))  # the repo's entry, not the store's
        etag = Path(target).name
        stat = pointer.stat()
        stamp = f"{stat.st_size} {stat.st_mtime_ns}"
        marker = self.cache_dir / ".f5serve-verified" / etag
        if not full_check and marker.is_file() and marker.read_text() == stamp:
            return
        started = time.perf_counter()
        actual = content_hash(pointer, etag)
        if actual is None or actual == etag:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(stamp)
            log.debug("verified %s in %.2f s", pointer, time.perf_counter() - started)
            return
        pointer.unlink(missing_ok=True)
        blob.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
        raise IntegrityError(
            f"model {spec.name!r}: {pointer.name} is corrupted (hash {actual} but the hub says "
            f"{etag}); the damaged file was removed, run `f5serve models pull {spec.name}` to "
            "download it again",
            details={"model": spec.name, "file": str(pointer), "expected": etag, "actual": actual},
        )

    # ----------------------------------------------------------------- removal
    def remove(self, spec: ModelSpec, keep: list[ModelSpec] | None = None) -> int:
        """Delete ``spec``'s checkpoint and vocab from the cache; bytes freed.

        Files that a model in ``keep`` also uses (e.g. the shared vocoder) stay.
        """
        targets = self._hub_paths(spec)
        for other in keep or []:
            targets -= self._hub_paths(other)
        if not targets or not self.cache_dir.is_dir():
            return 0
        info = scan_cache_dir(self.cache_dir)
        files = [
            f
            for repo in info.repos
            for rev in repo.revisions
            for f in rev.files
            if (repo.repo_id, f.file_path.relative_to(rev.snapshot_path).as_posix()) in targets
        ]
        strategy = info.delete_files(*files)
        strategy.execute()
        log.info(
            "removed %d file(s) of model %s (%d bytes)",
            len(files),
            spec.name,
            strategy.expected_freed_size,
        )
        return strategy.expected_freed_size

    def _hub_paths(self, spec: ModelSpec) -> set[tuple[str, str]]:
        paths: set[tuple[str, str]] = set()
        for source in (spec.checkpoint, spec.vocab):
            if isinstance(source, HubFile):
                path = source.path or pick_checkpoint(self._cached_listing(source) or [])
                if path is not None:
                    paths.add((source.repo, path))
        if isinstance(spec.vocoder, HubFolder):
            paths.update(
                (spec.vocoder.repo, cast(str, spec.vocoder.file(n).path)) for n in VOCODER_FILES
            )
        return paths


class _SilentProgress(_LogProgress):
    """No progress output at all."""

    def update(self, n: int = 1) -> None:
        self.n += n


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
