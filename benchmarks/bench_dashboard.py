"""Dashboard page times with 100,000 cases in the registry (issue 5: p95 < 300 ms per page).

Run:  .venv/bin/python benchmarks/bench_dashboard.py [--cases 100000] [--requests 40]

The registry (SQLite, the registry's own settings) is seeded with the synthetic demo
(`fairshare.registry.demo.seed_demo`: users, capacities, screenings, two committed batches,
transfers) and then filled up to ``--cases`` with synthetic cases inserted in bulk (three
persons on average; statuses, tiers and needs spread like the demo's) — all SYNTHETIC. Each
page is then requested ``--requests`` times in-process (Starlette's test client; the time is
the server's work plus a negligible in-process transport) by the role that uses it, and the
table shows p50, p95 and max in milliseconds. The batch *preview* is an allocation of every
ready case (the engine's time, benchmarked in bench_allocation.py) and is not a page view.
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from fairshare.api.app import create_app
from fairshare.api.security import hash_password
from fairshare.api.settings import explicit_settings
from fairshare.registry import db
from fairshare.registry.db import make_engine, session_scope
from fairshare.registry.demo import DEMO_PASSWORD, seed_demo
from fairshare.registry.models import Case, Person

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

STATES = ("EL", "IT", "HU")
STATUSES = (("registered", 0.1), ("screened", 0.1), ("ready", 0.8))
NEEDS = ("medical", "maternity", "accessible", "unaccompanied_minor", "trafficking_shelter")


def fill(url: str, target: int, seed: int) -> int:
    """Insert synthetic cases (and their persons) until the registry holds ``target``."""
    rng = random.Random(seed)
    engine = make_engine(url)
    today = date.today()
    try:
        with session_scope(engine) as s:
            have = int(s.scalar(select(func.count()).select_from(Case)) or 0)
        missing = max(target - have, 0)
        chunk = 5000
        for start in range(0, missing, chunk):
            cases: list[dict[str, Any]] = []
            persons: list[dict[str, Any]] = []
            for k in range(start, min(start + chunk, missing)):
                cid = f"BENCH-{k:07d}"
                status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
                tier = rng.choices([1, 2, 3], [5, 15, 80])[0]  # set at registration
                needs = {rng.choice(NEEDS): 1} if tier in (1, 2) and rng.random() < 0.7 else {}
                cases.append(
                    {
                        "id": cid,
                        "entry_state": rng.choice(STATES),
                        "registered_on": today - timedelta(days=rng.randrange(0, 180)),
                        "status": status,
                        "version": 1,
                        "tier": tier,
                        "needs": needs,
                        "preferences": [],
                        "scores": {},
                        "excluded": [],
                        "child_protection_referral": False,
                        "created_by": "bench",
                    }
                )
                for j in range(rng.choice((1, 2, 3, 3, 4, 5))):
                    persons.append(
                        {
                            "id": f"{cid}-P{j + 1}",
                            "case_id": cid,
                            "ref": f"p{j + 1}",
                            "given_name": "Bench",
                            "family_name": f"Synthetic-{k:07d}",
                            "age": rng.randrange(0, 70),
                            "age_uncertain": False,
                            "languages": [],
                            "vulnerabilities": [],
                            "unhcr_codes": [],
                            "duplicate_flags": [],
                        }
                    )
            with session_scope(engine) as s:
                s.execute(insert(Case), cases)
                s.execute(insert(Person), persons)
        with session_scope(engine) as s:
            return int(s.scalar(select(func.count()).select_from(Case)) or 0)
    finally:
        engine.dispose()


def measure(client: TestClient, user: str, paths: list[str], n: int) -> list[dict[str, Any]]:
    client.cookies.clear()
    r = client.post("/login", data={"username": user, "password": DEMO_PASSWORD})
    assert r.status_code == 303, r.text
    rows = []
    for path in paths:
        times = []
        for _ in range(n):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        times.sort()
        rows.append(
            {
                "user": user,
                "page": path,
                "p50": statistics.median(times),
                "p95": times[max(round(0.95 * len(times)) - 1, 0)],
                "max": times[-1],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'registry.db'}"
        settings = explicit_settings(
            env="test",
            data_dir=Path(tmp),
            database_url=url,
            secret_key=secrets.token_hex(32),
            fingerprint_key=secrets.token_hex(32),
        )
        started = time.perf_counter()
        db.upgrade(url)
        seed_demo(
            url,
            fingerprint_key=settings.fingerprint_key_bytes(),
            hash_password=hash_password,
            cases=2000,
            seed=args.seed,
        )
        total = fill(url, args.cases, args.seed)
        print(f"registry: {total:,} cases (seeded in {time.perf_counter() - started:.0f} s)")
        engine = make_engine(url)
        with session_scope(engine, readonly=True) as s:
            some_case = s.scalar(select(Case.id).where(Case.entry_state == "EL").limit(1))
            allocated_de = s.scalar(select(Case.id).where(Case.allocated_state == "DE").limit(1))
        engine.dispose()
        app = create_app(settings)
        rows: list[dict[str, Any]] = []
        with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
            rows += measure(
                client,
                "coordinator",
                [
                    "/",
                    "/queue",
                    "/queue?tier=1",
                    "/queue?need=medical",
                    "/queue?sort=waiting&offset=50000",
                    f"/cases/{some_case}",
                    "/batches",
                    "/capacities",
                ],
                args.requests,
            )
            rows += measure(
                client,
                "registrar.el",
                ["/queue", "/queue?sort=newest", f"/cases/{some_case}", "/register"],
                args.requests,
            )
            rows += measure(
                client,
                "caseworker.de",
                ["/arrivals", *([f"/cases/{allocated_de}"] if allocated_de else [])],
                args.requests,
            )
            rows += measure(client, "auditor", ["/audit", "/audit?action=case.*"], args.requests)
            rows += measure(client, "analyst", ["/"], args.requests)
        app.state.fairshare.engine.dispose()
    print(f"\nPage times with {total:,} cases ({args.requests} requests each; target p95 < 300 ms)")
    print(f"{'user':<14} {'page':<40} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for r in rows:
        flag = "" if r["p95"] < 300 else "  (over 300 ms)"
        print(
            f"{r['user']:<14} {r['page'][:40]:<40} {r['p50']:>8.1f} {r['p95']:>8.1f} "
            f"{r['max']:>8.1f}{flag}"
        )
    worst = max(r["p95"] for r in rows)
    print(f"\nworst p95: {worst:.1f} ms — {'met' if worst < 300 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
