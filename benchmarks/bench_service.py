"""Service load benchmark (issue 4, "Load"): concurrent clients registering families over HTTP.

Run:  .venv/bin/python benchmarks/bench_service.py                       (60 s per setting)
      .venv/bin/python benchmarks/bench_service.py --seconds 10 --workers 1
      .venv/bin/python benchmarks/bench_service.py --backends postgresql --workers 2 --client httpx
      FAIRSHARE_DATABASE_URL=postgresql://u@host/db .venv/bin/python benchmarks/bench_service.py \
          --backends postgresql

For every backend (SQLite file, PostgreSQL) and number of server workers, it starts
``fairshare serve --no-access-log --workers N`` as a subprocess on a fresh database, creates
three registrars (EL, IT, HU) with ``fairshare users create``, logs them in, and then runs
``--clients`` concurrent clients (asyncio, one keep-alive connection each, on the same machine
as the server) that register a three-person family each (``POST /api/v1/cases`` with a new
body and ``Idempotency-Key`` each time), back to back, for ``--seconds``. Latency is measured
per request, from before the request is written to after the whole response body is read.
Registrations/s = 201 responses / seconds. ``--client raw`` (the default) speaks HTTP/1.1
directly over asyncio streams; ``--client httpx`` uses httpx, whose own CPU time (on the cores
the server needs) costs about 15% of the throughput.

PostgreSQL: ``FAIRSHARE_DATABASE_URL`` (an admin URL; a database ``fairshare_bench_*`` is
created and dropped), else a throw-away cluster started with Debian's binaries like the tests
do, but with PostgreSQL's durable defaults (``fsync``, ``synchronous_commit`` on). SQLite runs
with the registry's own settings (WAL, ``synchronous=FULL``). All data is synthetic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
PASSWORD = "benchmark pass phrase"
REGISTRARS = (("bench.el", "EL"), ("bench.it", "IT"), ("bench.hu", "HU"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------
# PostgreSQL


class Cluster:
    """A throw-away PostgreSQL cluster with durable settings (Debian's server binaries)."""

    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not found:
            raise SystemExit("no PostgreSQL binaries; set FAIRSHARE_DATABASE_URL")
        self.bin = found[-1].parent
        self.dir = Path(tempfile.mkdtemp(prefix="fairshare-bench-pg-"))
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        self.user = "postgres" if self.as_postgres else os.environ.get("USER", "postgres")
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        cmd = [*(["runuser", "-u", "postgres", "--"] if self.as_postgres else []), *args]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        data = str(self.dir / "data")
        self._run(
            str(self.bin / "initdb"), "-D", data, "-A", "trust", "-U", self.user, "-E", "UTF8"
        )
        options = (
            f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            data,
            "-o",
            options,
            "-w",
            "-l",
            str(self.dir / "log"),
            "start",
        )
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def _admin(url: str, sql: str) -> None:
    from fairshare.registry.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database URL for one run (dropped afterwards)."""
    from sqlalchemy.engine import make_url

    from fairshare.registry.db import normalise_url

    cluster = None
    admin = os.environ.get("FAIRSHARE_DATABASE_URL", "").strip()
    if not admin:
        cluster = Cluster()
        admin = cluster.start()
    name = f"fairshare_bench_{uuid.uuid4().hex[:8]}"
    try:
        _admin(admin, f'CREATE DATABASE "{name}"')
        try:
            yield make_url(normalise_url(admin)).set(database=name).render_as_string(False)
        finally:
            _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        if cluster is not None:
            cluster.stop()


# ------------------------------------------------------------------------------------------
# The server


@contextlib.contextmanager
def server(url: str, data_dir: Path, workers: int) -> Iterator[str]:
    """``fairshare serve`` on ``url`` with registrars created; yields the base URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSHARE_")}
    env.update(
        FAIRSHARE_ENV="test",
        FAIRSHARE_DATA_DIR=str(data_dir),
        FAIRSHARE_DATABASE_URL=url,
        FAIRSHARE_PASSWORD=PASSWORD,
    )
    subprocess.run(
        [str(BIN / "fairshare"), "db", "upgrade"], env=env, check=True, capture_output=True
    )
    for name, state in REGISTRARS:
        subprocess.run(
            [
                str(BIN / "fairshare"),
                "users",
                "create",
                name,
                "--role",
                "registrar",
                "--state",
                state,
            ],
            env=env,
            check=True,
            capture_output=True,
        )
    port = _free_port()
    log = (data_dir / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            str(BIN / "fairshare"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=base, timeout=2) as client:
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"the server did not start: {(data_dir / 'serve.log').read_text()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/api/v1/health").status_code == 200:
                        break
                time.sleep(0.1)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


# ------------------------------------------------------------------------------------------
# The load


def family(state: str, tag: str) -> dict[str, Any]:
    """A synthetic three-person family (two adults, one child)."""
    return {
        "entry_state": state,
        "members": [
            {"given_name": "Bench A", "family_name": f"Synthetic-{tag}", "age": 34, "sex": "F"},
            {"given_name": "Bench B", "family_name": f"Synthetic-{tag}", "age": 36, "sex": "M"},
            {"given_name": "Bench C", "family_name": f"Synthetic-{tag}", "age": 7, "sex": "F"},
        ],
        "care": {"reception_place": "Benchmark reception centre (synthetic)"},
    }


async def _client_httpx(
    base: str, token: str, state: str, until: float, latencies: list[float], errors: list[str]
) -> None:
    """One client with httpx (``--client httpx``)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while time.monotonic() < until:
            tag = uuid.uuid4().hex
            started = time.perf_counter()
            try:
                r = await client.post(
                    "/api/v1/cases",
                    json=family(state, tag[:12]),
                    headers={**headers, "Idempotency-Key": tag},
                )
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
                continue
            elapsed = time.perf_counter() - started
            if r.status_code == 201:
                latencies.append(elapsed)
            else:
                errors.append(str(r.status_code))


async def _client_raw(
    base: str, token: str, state: str, until: float, latencies: list[float], errors: list[str]
) -> None:
    """One client speaking HTTP/1.1 over one keep-alive connection (``--client raw``).

    The same requests as httpx sends (a new JSON body and Idempotency-Key each time), only
    without a client library's overhead: the load generator shares the two cores with the
    server, so every millisecond it spends is one the server does not get. The latency is
    still taken from before the request is written to after the whole response body is read.
    """
    host, port = base.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST /api/v1/cases HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        "Accept: application/json\r\n"
    ).encode()
    try:
        while time.monotonic() < until:
            tag = uuid.uuid4().hex
            body = json.dumps(family(state, tag[:12]), separators=(",", ":")).encode()
            request = b"%sIdempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s" % (
                head,
                tag.encode(),
                len(body),
                body,
            )
            started = time.perf_counter()
            try:
                writer.write(request)
                status_line, _, headers = (
                    (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").partition("\r\n")
                )
                length = 0
                for line in headers.split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "transfer-encoding":
                        raise ValueError("chunked responses are not supported")
                await reader.readexactly(length)
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                errors.append(type(exc).__name__)
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port))
                continue
            elapsed = time.perf_counter() - started
            if status_line.split(" ", 2)[1] == "201":
                latencies.append(elapsed)
            else:
                errors.append(status_line.split(" ", 2)[1])
    finally:
        writer.close()


_CLIENTS = {"raw": _client_raw, "httpx": _client_httpx}


async def _load(
    base: str, clients: int, seconds: float, kind: str = "raw"
) -> tuple[list[float], list[str], float]:
    tokens = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for name, state in REGISTRARS:
            r = await client.post(
                "/api/v1/auth/token", data={"username": name, "password": PASSWORD}
            )
            r.raise_for_status()
            tokens[state] = r.json()["access_token"]
    latencies: list[float] = []
    errors: list[str] = []
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(
        *(
            _CLIENTS[kind](
                base, tokens[REGISTRARS[i % 3][1]], REGISTRARS[i % 3][1], until, latencies, errors
            )
            for i in range(clients)
        )
    )
    return latencies, errors, time.monotonic() - started


@dataclass
class Row:
    backend: str
    workers: int
    client: str
    clients: int
    seconds: float
    registrations: int
    per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000
        if len(values) > 1
        else values[0] * 1000
    )


def measure(backend: str, workers: int, clients: int, seconds: float, kind: str = "raw") -> Row:
    with tempfile.TemporaryDirectory(prefix="fairshare-bench-") as tmp:
        data_dir = Path(tmp)
        with contextlib.ExitStack() as stack:
            if backend == "sqlite":
                url = f"sqlite:///{data_dir / 'bench.db'}"
            else:
                url = stack.enter_context(postgres_database())
            base = stack.enter_context(server(url, data_dir, workers))
            latencies, errors, elapsed = asyncio.run(_load(base, clients, seconds, kind))
    return Row(
        backend=backend,
        workers=workers,
        client=kind,
        clients=clients,
        seconds=round(elapsed, 1),
        registrations=len(latencies),
        per_second=round(len(latencies) / elapsed, 1),
        p50_ms=round(_percentile(latencies, 50), 1),
        p95_ms=round(_percentile(latencies, 95), 1),
        p99_ms=round(_percentile(latencies, 99), 1),
        errors=len(errors),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", default="1,2", help="comma-separated, e.g. 1,2")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--client",
        choices=sorted(_CLIENTS),
        default="raw",
        help="the load generator's HTTP client (default: raw HTTP/1.1 over asyncio streams)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    rows = []
    print(
        f"{'backend':<11} {'workers':>7} {'client':>6} {'clients':>7} {'seconds':>7} {'regs':>7} "
        f"{'regs/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6}",
        flush=True,
    )
    for backend in args.backends.split(","):
        for workers in (int(w) for w in args.workers.split(",")):
            row = measure(backend.strip(), workers, args.clients, args.seconds, args.client)
            rows.append(row)
            print(
                f"{row.backend:<11} {row.workers:>7} {row.client:>6} {row.clients:>7} "
                f"{row.seconds:>7} {row.registrations:>7} {row.per_second:>7} {row.p50_ms:>7} "
                f"{row.p95_ms:>7} {row.p99_ms:>7} {row.errors:>6}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
