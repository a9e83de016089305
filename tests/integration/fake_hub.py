"""A Hugging Face Hub stand-in on loopback, answering what huggingface_hub 2.4 asks.

Requests it answers (found by reading huggingface_hub's ``file_download.py`` and ``hf_api.py``):

- ``HEAD /{owner}/{repo}/resolve/{revision}/{path}``: the metadata call of ``hf_hub_download``.
  It reads ``X-Repo-Commit`` (required), ``X-Linked-Etag`` or ``ETag`` (required; sha256 for
  LFS files, git blob sha1 for others), ``X-Linked-Size`` or ``Content-Length``; errors by
  ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``).
- ``GET`` of the same URL: the bytes, with ``Range: bytes=N-`` → ``206`` + ``Content-Range`` when
  a download resumes after a cut connection.
- ``GET /api/models/{owner}/{repo}/tree/{revision}?recursive=True&expand=False``: the listing of
  ``list_repo_files`` (JSON entries ``{type, path, size, oid, lfs: {oid, size, pointerSize}}``).

Access: ``gated[repo] = {tokens}`` makes a repository gated, as the Hub answers one (checked
against huggingface_hub's ``hf_raise_for_status``): without a token ``401`` and with a token
whose account was not granted access ``403``, both with ``X-Error-Code: GatedRepo``; the tokens
listed get the files. ``private[repo] = {tokens}`` answers ``401`` + ``RepoNotFound`` (the Hub
does not say that a private repository exists) to every other request.

Faults for tests: ``cut_after[path] = n`` closes the connection after ``n`` body bytes of the
next full GET of ``path``; ``corrupt`` serves different bytes (same size) under the true hash;
``delay`` slows every body down. Every request is recorded in ``requests``.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt")


@dataclass(frozen=True)
class Seen:
    """One request the hub received."""

    method: str
    path: str
    range: str | None
    auth: str | None


@dataclass
class Repo:
    commit: str
    files: dict[str, bytes] = field(default_factory=dict)


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


class FakeHub:
    """Serve repositories of in-memory files; see the module docstring."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[Seen] = []
        self.cut_after: dict[str, int] = {}
        self.corrupt: set[str] = set()
        self.delay = 0.0  # seconds to wait before sending a file body
        self.gated: dict[str, set[str]] = {}  # repo -> tokens granted access
        self.private: dict[str, set[str]] = {}  # repo -> tokens of its owners
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add(self, repo: str, path: str, data: bytes) -> None:
        commit = hashlib.sha1(repo.encode()).hexdigest()
        self.repos.setdefault(repo, Repo(commit)).files[path] = data

    url = ""  # http://127.0.0.1:PORT once started (kept after stop, for "hub is down" tests)

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def gets(self, suffix: str) -> list[Seen]:
        """Full or ranged GETs of a file whose URL path ends with ``suffix``."""
        with self.lock:
            return [r for r in self.requests if r.method == "GET" and r.path.endswith(suffix)]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def _record(self) -> None:
        with self.fake.lock:
            self.fake.requests.append(
                Seen(
                    self.command,
                    unquote(urlsplit(self.path).path),
                    self.headers.get("Range"),
                    self.headers.get("Authorization"),
                )
            )

    def do_HEAD(self) -> None:
        self._record()
        self._resolve(send_body=False)

    def do_GET(self) -> None:
        self._record()
        if urlsplit(self.path).path.startswith("/api/models/"):
            self._tree()
        else:
            self._resolve(send_body=True)

    def _error(
        self, status: int, code: str, commit: str | None = None, message: str | None = None
    ) -> None:
        body = json.dumps({"error": message or code}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message or code)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":  # a body after HEAD would corrupt the kept-alive connection
            self.wfile.write(body)

    def _refused(self, repo_id: str) -> bool:
        """Answer as the Hub does for a gated or private repository this request may not
        read; True if it was refused."""
        auth = self.headers.get("Authorization") or ""
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        if repo_id in self.fake.private and token not in self.fake.private[repo_id]:
            self._error(401, "RepoNotFound")
            return True
        if repo_id in self.fake.gated and token not in self.fake.gated[repo_id]:
            if token is None:
                message = (
                    f"Access to model {repo_id} is restricted. You must have access to it "
                    "and be authenticated to access it. Please log in."
                )
                self._error(401, "GatedRepo", message=message)
            else:
                message = (
                    f"Access to model {repo_id} is restricted and you are not in the "
                    "authorized list."
                )
                self._error(403, "GatedRepo", message=message)
            return True
        return False

    def _resolve(self, send_body: bool) -> None:
        parts = unquote(urlsplit(self.path).path).strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._error(404, "RepoNotFound")
        repo = self.fake.repos.get("/".join(parts[:2]))
        if repo is None:
            return self._error(404, "RepoNotFound")
        if self._refused("/".join(parts[:2])):
            return None
        if parts[3] not in ("main", repo.commit):
            return self._error(404, "RevisionNotFound")
        path = "/".join(parts[4:])
        if path not in repo.files:
            return self._error(404, "EntryNotFound", repo.commit)
        self._send_file(repo, path, send_body)

    def _send_file(self, repo: Repo, path: str, send_body: bool) -> None:
        data = repo.files[path]
        start = _range_start(self.headers.get("Range"))
        status = 206 if start else 200
        self.send_response(status)
        self.send_header("X-Repo-Commit", repo.commit)
        self.send_header("Accept-Ranges", "bytes")
        if path.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(data).hexdigest()
            self.send_header("ETag", f'"{sha}"')
            self.send_header("X-Linked-Etag", f'"{sha}"')
            self.send_header("X-Linked-Size", str(len(data)))
        else:
            self.send_header("ETag", f'"{git_blob_sha1(data)}"')
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if not send_body:
            return
        time.sleep(self.fake.delay)
        body = data[start:]
        if path in self.fake.corrupt:
            body = bytes(b ^ 0xFF for b in body[:64]) + body[64:]
        cut = self.fake.cut_after.pop(path, None) if not start else None
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)

    def _tree(self) -> None:
        # /api/models/{owner}/{repo}/tree/{revision}[/{path}]
        parts = unquote(urlsplit(self.path).path).strip("/").split("/")[2:]
        repo = self.fake.repos.get("/".join(parts[:2]))
        if repo is None or len(parts) < 4 or parts[2] != "tree":
            return self._error(404, "RepoNotFound")
        if self._refused("/".join(parts[:2])):
            return None
        entries = [_tree_entry(path, data) for path, data in sorted(repo.files.items())]
        body = json.dumps(entries).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _range_start(header: str | None) -> int:
    if not header or not header.startswith("bytes="):
        return 0
    return int(header[len("bytes=") :].split("-", 1)[0] or 0)


def _tree_entry(path: str, data: bytes) -> dict[str, object]:
    entry: dict[str, object] = {
        "type": "file",
        "path": path,
        "size": len(data),
        "oid": git_blob_sha1(data),
    }
    if path.endswith(LFS_SUFFIXES):
        entry["lfs"] = {
            "oid": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "pointerSize": 134,
        }
    return entry
