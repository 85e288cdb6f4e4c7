"""Run the real ``fairshare`` command line and ``fairshare serve`` as subprocesses in tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

FAIRSHARE = Path(sys.executable).with_name("fairshare")
START_TIMEOUT = 60.0


def service_env(data_dir: Path, url: str, **extra: str) -> dict[str, str]:
    """The environment of a test service: test mode (generated secrets), this database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSHARE_")}
    env.update(
        FAIRSHARE_ENV="test",
        FAIRSHARE_DATA_DIR=str(data_dir),
        FAIRSHARE_DATABASE_URL=url,
    )
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: Mapping[str, str], *, input: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``fairshare ARGS`` as a subprocess (stdin closed unless ``input``)."""
    return subprocess.run(
        [str(FAIRSHARE), *args],
        env=dict(env),
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``fairshare serve`` in its own process group, logging to a file."""

    def __init__(self, env: Mapping[str, str], log: Path, *args: str) -> None:
        self.env = dict(env)
        self.log = log
        self.args = args
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(FAIRSHARE), "serve", "--port", str(self.port), "--no-access-log", *self.args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(base_url=self.base, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"fairshare serve exited: {self.output()}")
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/api/v1/health").status_code == 200:
                        return
                time.sleep(0.1)  # polling for start-up, not a timing assumption
        self.stop()
        raise AssertionError(f"fairshare serve did not answer in {START_TIMEOUT} s")

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL the whole process group (the server and any workers): a crash."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it hangs."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def login(client: httpx.Client, username: str, password: str) -> dict[str, str]:
    """The Authorization header of a fresh token."""
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@contextlib.contextmanager
def serving(env: Mapping[str, str], log: Path, *args: str) -> Iterator[Server]:
    server = Server(env, log, *args)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def family_body(entry_state: str, n: int, tag: str) -> dict[str, Any]:
    """A synthetic registration body: a family of ``n`` (adults, then children)."""
    members = [
        {
            "given_name": f"Test {j + 1}",
            "family_name": f"Synthetic-{tag}",
            "age": 35 - j if j < 2 else 12 - j,
            "sex": "F" if j % 2 else "M",
        }
        for j in range(n)
    ]
    return {
        "entry_state": entry_state,
        "members": members,
        "care": {"reception_place": "Test centre (synthetic)"},
    }
