"""Concurrency test (issue 4): parallel batch commits and registrations over HTTP.

Two coordinators commit batches at the same time while two registrars register families and
make them ready, against a live ``fairshare serve`` on SQLite and on PostgreSQL. No case is
allocated twice, no capacity is exceeded, and capacities, ledger and audit agree.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from fairshare.api.settings import explicit_settings
from fairshare.registry.db import make_engine

from . import seed
from .server import family_body, login, service_env, serving

pytestmark = pytest.mark.slow

DESTINATIONS = ("AT", "DE", "FR", "NL", "SE")


@pytest.fixture
def registry(migrated_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_parallel_commits_and_registrations(
    registry: Engine, migrated_url: str, tmp_path: Path
) -> None:
    rng = random.Random(4)
    key = explicit_settings(env="test", data_dir=tmp_path).fingerprint_key_bytes()
    seed.users(registry)
    sizes_list = [rng.choice((1, 1, 2, 3, 4, 6)) for _ in range(240)]
    ids = seed.ready_cases(registry, key, sizes_list)
    # Scarce places: about 40% of the persons, so commits compete for the last ones.
    per_state = sum(sizes_list) * 2 // 5 // len(DESTINATIONS)
    seed.capacities(registry, dict.fromkeys(DESTINATIONS, per_state))
    initial = seed.snapshot(registry)

    statuses: Counter[int] = Counter()
    commits: list[dict[str, Any]] = []
    lock = threading.Lock()
    errors: list[str] = []

    def record(r: httpx.Response) -> None:
        with lock:
            statuses[r.status_code] += 1
            if r.status_code >= 500:
                errors.append(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")

    def coordinator(name: str, base: str, k: int) -> None:
        local = random.Random(k)
        with httpx.Client(base_url=base, timeout=300) as c:
            headers = login(c, name, seed.PASSWORD)
            for _ in range(4):
                body: dict[str, Any] = {"seed": local.randrange(1000)}
                if local.random() < 0.5:
                    body["case_ids"] = local.sample(ids, 120)
                r = c.post("/api/v1/batches", json=body, headers=headers)
                record(r)
                assert r.status_code in (201, 409), r.text
                if r.status_code == 201:
                    with lock:
                        commits.append(r.json())

    def registrar(name: str, state: str, base: str) -> None:
        with httpx.Client(base_url=base, timeout=300) as c:
            headers = login(c, name, seed.PASSWORD)
            for i in range(15):
                tag = uuid.uuid4().hex[:10]
                r = c.post(
                    "/api/v1/cases",
                    json=family_body(state, 1 + i % 4, tag),
                    headers={**headers, "Idempotency-Key": tag},
                )
                record(r)
                assert r.status_code == 201, r.text
                case_id = r.json()["case_id"]
                etag = r.headers["ETag"]
                for target in ("screened", "ready"):
                    t = c.post(
                        f"/api/v1/cases/{case_id}/transitions",
                        json={"to": target},
                        headers={**headers, "If-Match": etag},
                    )
                    record(t)
                    assert t.status_code == 200, t.text
                    etag = t.headers["ETag"]

    env = service_env(tmp_path, migrated_url)
    failures: list[BaseException] = []

    def guarded(target: Any, *args: Any) -> None:
        try:
            target(*args)
        except BaseException as exc:  # an assertion in a thread: reported below
            failures.append(exc)

    with serving(env, tmp_path / "serve.log") as server:
        runners = [
            threading.Thread(target=guarded, args=(coordinator, "coordinator", server.base, 1)),
            threading.Thread(target=guarded, args=(coordinator, "coordinator2", server.base, 2)),
            threading.Thread(target=guarded, args=(registrar, "registrar.el", "EL", server.base)),
            threading.Thread(target=guarded, args=(registrar, "registrar.it", "IT", server.base)),
        ]
        for t in runners:
            t.start()
        for t in runners:
            t.join(timeout=600)
    assert not errors, errors
    assert not failures, failures
    assert commits, statuses

    after = seed.snapshot(registry)
    sizes = seed.persons_per_case(registry)
    newly = seed.check_consistent(initial, after, sizes)
    # Each committed batch allocated its own cases: no case appears in two responses.
    allocated = Counter(c for batch in commits for c in batch["allocated"])
    assert all(n == 1 for n in allocated.values()), "a case was allocated by two batches"
    assert set(allocated) == newly
    for dest in DESTINATIONS:
        assert 0 <= after.free[dest] <= per_state
        assert after.placed.get(dest, 0) == per_state - after.free[dest]
