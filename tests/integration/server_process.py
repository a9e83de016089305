"""``f5serve serve`` as a child process on a free loopback port, for tests that need a real
socket (the integration and browser tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
from helpers import make_deployment

F5SERVE = Path(sys.executable).parent / "f5serve"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``f5serve serve`` (or ``f5serve worker``) as a child process, configured by environment
    variables."""

    def __init__(self, root: Path, command: str = "serve", **extra: Any) -> None:
        self.root = root
        self.command = command
        self.fields = make_deployment(root) | extra | {"host": "127.0.0.1"}
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, attempts: int = 3) -> Server:
        """Start (again) on its port, or a free one; another one if a process took that port
        in the meantime."""
        for _ in range(attempts):
            self.port = self.port or free_port()
            if self._started():
                return self
            self.port = 0
        raise AssertionError(f"no free port after {attempts} attempts")

    def _started(self) -> bool:
        log_path = self.root / "server.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        fields = self.fields | {"port": self.port}
        env = {**os.environ, **{f"F5SERVE_{k.upper()}": str(v) for k, v in fields.items()}}
        self.process = subprocess.Popen(
            [str(F5SERVE), self.command, "--env-file", str(self.root / "none.env")],
            env=env,
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = log_path.read_bytes()[offset:].decode(errors="replace")
                assert "address already in use" in log, log
                return False
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("server did not become ready")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=30)
