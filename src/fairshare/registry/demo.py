"""A realistic demo registry: SYNTHETIC data only, seeded once, for development.

``fairshare demo-data`` (and ``make run``) fill an empty registry with a few thousand
synthetic family cases so that the service can be tried end to end:

* cases registered at the entry states EL, IT and HU (members drawn by
  :func:`fairshare.synthetic.synthetic_document`; every mix there is a labelled ASSUMPTION,
  not a statistic), registered over the last 90 days, with care arranged at a demo reception
  centre and a few persons registered twice (same passport number) so that duplicate
  detection has something to flag;
* names that are obviously fictional (``Demo 1 Synthetic-00042``) and documents numbered
  ``DEMO0000042``: **no real person is described**;
* about 10% of the cases left ``registered`` and 10% ``screened``; the rest ``ready``;
  declared vulnerabilities are recorded as screenings, uncertain ages are assessed for some,
  and victims of trafficking get trafficking indicators (a place-of-safety referral and
  priority tier 1);
* free places and service places for every EU-27 state, spread by the population key with
  noise (:func:`fairshare.synthetic.synthetic_document`: an ASSUMPTION, not real reception
  capacity), enough for about the persons of the ready cases;
* two committed allocation batches (about 40% and 25% of the ready cases), so part of the
  registry is allocated and the rest waits for the next batch; a few transfers scheduled,
  carried out and confirmed on arrival;
* demo users for every role, all with :data:`DEMO_PASSWORD`.

Everything happens in **one transaction**, marked by a ``demo.seeded`` audit event: a second
run finds the marker and seeds nothing; a registry that already holds other data is never
touched. The caller (the command line) refuses to seed outside development.

The registry does not import the API: the password hasher is passed in
(``fairshare.api.security.hash_password``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from fairshare.errors import InputError
from fairshare.reference import group_members
from fairshare.registry.audit import audit_log, record_event
from fairshare.registry.batches import commit_batch
from fairshare.registry.casework import (
    confirm_arrival,
    confirm_transferred,
    record_screening,
    schedule_transfer,
    set_capacity,
    transition,
)
from fairshare.registry.db import make_engine, session_scope
from fairshare.registry.models import Case, Person, User
from fairshare.registry.registration import bulk_import
from fairshare.registry.scopes import Actor
from fairshare.registry.users import create_user
from fairshare.synthetic import synthetic_document

__all__ = [
    "DEMO_MARKER",
    "DEMO_PASSWORD",
    "DEMO_USERS",
    "ENTRY_STATES",
    "DemoResult",
    "seed_demo",
]

DEMO_PASSWORD = "synthetic-data-only"
"""The password of every demo user: printed by ``make run``, never for real data."""

DEMO_MARKER = "demo.seeded"
"""The audit action that marks a registry as seeded with demo data."""

#: ASSUMPTION: the entry states of the demo and their share of registrations.
ENTRY_STATES: tuple[tuple[str, float], ...] = (("EL", 0.55), ("IT", 0.3), ("HU", 0.15))

#: The demo users: (user name, role, state), one or more for every role.
DEMO_USERS: tuple[tuple[str, str, str | None], ...] = (
    ("registrar.el", "registrar", "EL"),
    ("registrar.it", "registrar", "IT"),
    ("registrar.hu", "registrar", "HU"),
    ("caseworker.de", "caseworker", "DE"),
    ("caseworker.fr", "caseworker", "FR"),
    ("caseworker.se", "caseworker", "SE"),
    ("capacity.de", "capacity_manager", "DE"),
    ("capacity.fr", "capacity_manager", "FR"),
    ("coordinator", "coordinator", None),
    ("auditor", "auditor", None),
    ("analyst", "analyst", None),
    ("admin", "admin", None),
)

_SETUP = Actor("demo-setup", "admin")
_LOCK_KEY = 0x46534445  # "FSDE": serialises two seeders on PostgreSQL
_TRAFFICKING_INDICATORS = (
    "synthetic indicator: debt bondage to the smuggler",
    "synthetic indicator: documents withheld by a third person",
)
_ADVICE = (
    "Synthetic demo note: referred to a place of safety; legal advice and psychosocial support "
    "offered in the person's language."
)


@dataclass
class DemoResult:
    """What :func:`seed_demo` did (``seeded=False``: the registry was seeded before)."""

    seeded: bool
    cases: int = 0
    persons: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    batches: list[str] = field(default_factory=list)
    users: list[tuple[str, str, str | None]] = field(default_factory=list)
    password: str = DEMO_PASSWORD


def _actor(username: str) -> Actor:
    for name, role, state in DEMO_USERS:
        if name == username:
            return Actor(name, role, state)
    raise KeyError(username)  # pragma: no cover - programming error


def _registrar(state: str) -> Actor:
    return _actor(f"registrar.{state.lower()}")


def _cases(n: int, seed: int, today: date) -> list[dict[str, Any]]:
    """``n`` synthetic registration bodies (allocation case JSON plus registration fields)."""
    doc = synthetic_document(n, states=("DE", "FR"), seed=seed)
    rng = np.random.default_rng(seed)
    codes = [s for s, _ in ENTRY_STATES]
    weights = np.array([w for _, w in ENTRY_STATES])
    entry = rng.choice(len(codes), size=n, p=weights / weights.sum())
    days = rng.integers(1, 91, n)
    has_passport = rng.random(n) < 0.6
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(doc["cases"]):
        number = i + 1
        case: dict[str, Any] = {
            "entry_state": codes[int(entry[i])],
            "registered_on": (today - timedelta(days=int(days[i]))).isoformat(),
            "members": [],
            "care": {
                "reception_place": f"Demo reception centre {codes[int(entry[i])]}-{number % 7 + 1}"
                " (synthetic)",
                "child_protection_referral": False,
            },
        }
        for key in ("family_links", "preferences", "scores", "excluded"):
            if key in raw:
                case[key] = raw[key]
        # Preferences, scores and exclusions name the synthetic document's destinations
        # (DE, FR): real state codes, so they stay meaningful for the demo's EU-27.
        for j, member in enumerate(raw["members"]):
            m = {k: v for k, v in member.items() if k != "id"}
            m["given_name"] = f"Demo {j + 1}"
            m["family_name"] = f"Synthetic-{number:05d}"
            if j == 0 and has_passport[i]:
                m["documents"] = [
                    {"kind": "passport", "issuing_state": "SYR", "number": f"DEMO{number:07d}"}
                ]
            if m.get("age", 99) < 18 and len(raw["members"]) == 1:
                case["care"]["child_protection_referral"] = True
            case["members"].append(m)
        out.append(case)
    # A few persons registered twice (the same passport in another state or again in the
    # same one): duplicate detection flags them for review, never merges them.
    for k in range(min(5, n // 200)):
        original = out[k * 37]
        docs = original["members"][0].get("documents")
        if docs:
            twin = {
                **original,
                "entry_state": codes[(codes.index(original["entry_state"]) + 1) % len(codes)],
                "members": [{**original["members"][0]}],
            }
            twin.pop("preferences", None)
            out.append(twin)
    return out


def _already_seeded(session: Session) -> bool:
    if audit_log(session, action=DEMO_MARKER, limit=1):
        return True
    cases = session.scalar(select(func.count()).select_from(Case)) or 0
    users = session.scalar(select(func.count()).select_from(User)) or 0
    if cases or users:
        raise InputError(
            f"the registry already holds data ({cases} cases, {users} users) and was not "
            "seeded with demo data; demo data is only put into an empty registry (use a new "
            "FAIRSHARE_DATA_DIR or FAIRSHARE_DATABASE_URL)"
        )
    return False


def _screen(session: Session, rng: np.random.Generator, case_ids: Sequence[str]) -> None:
    """Record screenings: declared vulnerabilities, assessed ages, trafficking indicators."""
    persons = session.scalars(
        select(Person).where(Person.case_id.in_(list(case_ids))).order_by(Person.id)
    ).all()
    entry = dict(
        session.execute(select(Case.id, Case.entry_state).where(Case.id.in_(list(case_ids)))).all()
    )
    for person in persons:
        declared = list(person.vulnerabilities or [])
        uncertain = bool(person.age_uncertain)
        if not declared and not uncertain:
            continue
        trafficked = "trafficking_victim" in declared
        assessed = None
        if uncertain and rng.random() < 0.5:
            # Half of the uncertain ages are assessed; the others count as minors meanwhile.
            assessed = int(person.age) if person.age is not None else 16
        record_screening(
            session,
            _registrar(entry[person.case_id]),
            person.id,
            categories=declared,
            trafficking_indicators=_TRAFFICKING_INDICATORS if trafficked else (),
            advice_and_support=_ADVICE if trafficked else None,
            age_assessed=assessed,
        )


def _seed(
    session: Session,
    *,
    cases: int,
    seed: int,
    fingerprint_key: bytes,
    hasher: Callable[[str, str], str],
) -> DemoResult:
    today = date.today()
    rng = np.random.default_rng(seed + 1)
    users = []
    for name, role, state in DEMO_USERS:
        create_user(
            session,
            _SETUP,
            username=name,
            password_hash=hasher(DEMO_PASSWORD, name),
            role=role,
            state=state,
        )
        users.append((name, role, state))

    bodies = _cases(cases, seed, today)
    ids: list[str] = []
    for state, _ in ENTRY_STATES:
        rows = [b for b in bodies if b["entry_state"] == state]
        for start in range(0, len(rows), 500):
            report = bulk_import(
                session,
                _registrar(state),
                rows[start : start + 500],
                fingerprint_key=fingerprint_key,
            )
            if not report.ok:  # pragma: no cover - the generator makes valid cases
                raise InputError(f"demo data did not validate: {report.errors[:3]}")
            ids.extend(report.imported)
            session.flush()
            session.expunge_all()  # keep the identity map small: flushes stay fast

    # ASSUMPTION: 10% wait for screening, 10% are screened, the rest are ready.
    stage = rng.random(len(ids))
    screened = [c for c, s in zip(ids, stage, strict=True) if s >= 0.1]
    ready = [c for c, s in zip(ids, stage, strict=True) if s >= 0.2]
    _screen(session, rng, screened)
    session.flush()
    session.expunge_all()
    entry = dict(session.execute(select(Case.id, Case.entry_state)).all())
    for cid in screened:
        transition(session, _registrar(entry[cid]), cid, "screened")
    for cid in ready:
        transition(session, _registrar(entry[cid]), cid, "ready")
    session.flush()
    session.expunge_all()

    # Capacities for every EU-27 state: about the persons of the ready cases, spread by the
    # population key with noise (synthetic_document's ASSUMPTION, not real reception data).
    ready_persons = int(
        session.scalar(select(func.count()).select_from(Person).where(Person.case_id.in_(ready)))
        or 0
    )
    eu27 = tuple(group_members("EU27"))
    places = synthetic_document(
        max(ready_persons // 2, 1), states=eu27, seed=seed, scarcity=1.0, service_scarcity=1.5
    )["destinations"]
    total = sum(d["capacity"] for d in places) or 1
    scale = ready_persons / total
    for d in places:
        free = max(round(d["capacity"] * scale), 1)
        services = {s: min(round(n * scale), free) for s, n in d["services"].items()}
        manager = next(
            (Actor(n, r, s) for n, r, s in DEMO_USERS if r == "capacity_manager" and s == d["id"]),
            _actor("admin"),
        )
        set_capacity(session, manager, d["id"], free=free, services=services)

    # Two committed batches: about 40% and then 25% of the ready cases.
    coordinator = _actor("coordinator")
    first = ready[: int(len(ready) * 0.4)]
    second = ready[len(first) : len(first) + int(len(ready) * 0.25)]
    batches = []
    allocated: list[tuple[str, str]] = []
    for k, chunk in enumerate((first, second)):
        if not chunk:
            continue
        batch = commit_batch(session, coordinator, seed + k, chunk, today=today)
        batches.append(batch.batch_id)
        dest = {a["case"]: a["state"] for a in batch.document["assignments"] if a["destination"]}
        allocated.extend((cid, dest[cid]) for cid in batch.allocated)

    # A few transfers: scheduled, carried out, arrived (confirmed by the receiving state).
    caseworkers = {s: Actor(n, r, s) for n, r, s in DEMO_USERS if r == "caseworker"}
    with_cw = [(c, s) for c, s in allocated if s in caseworkers]
    for k, (cid, state) in enumerate(with_cw[: max(len(allocated) // 20, 3)]):
        registrar = _registrar(entry[cid])
        schedule_transfer(session, registrar, cid, today + timedelta(days=14 + k % 30))
        if k % 2 == 0:
            confirm_transferred(session, registrar, cid)
            if k % 4 == 0:
                confirm_arrival(session, caseworkers[state], cid)

    statuses = dict(session.execute(select(Case.status, func.count()).group_by(Case.status)).all())
    persons = int(session.scalar(select(func.count()).select_from(Person)) or 0)
    record_event(
        session,
        _SETUP,
        DEMO_MARKER,
        "registry",
        None,
        detail={
            "synthetic": True,
            "note": "synthetic demo data, not real people",
            "cases": len(ids),
            "persons": persons,
            "seed": seed,
            "batches": batches,
        },
    )
    return DemoResult(
        seeded=True,
        cases=len(ids),
        persons=persons,
        statuses={k: int(v) for k, v in sorted(statuses.items())},
        batches=batches,
        users=users,
    )


def seed_demo(
    url: str,
    *,
    fingerprint_key: bytes,
    hash_password: Callable[[str, str], str],
    cases: int = 3000,
    seed: int = 2026,
) -> DemoResult:
    """Seed the (migrated) registry at ``url`` with synthetic demo data, once.

    Returns ``DemoResult(seeded=False)`` if it was seeded before; raises
    :class:`~fairshare.errors.InputError` if it holds other data. ``hash_password(password,
    username)`` makes the stored hash (``fairshare.api.security.hash_password``).
    """
    if isinstance(cases, bool) or not isinstance(cases, int) or not 10 <= cases <= 100_000:
        raise InputError(f"--cases must be a whole number from 10 to 100000, not {cases!r}")
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            if engine.dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            if _already_seeded(session):
                users = session.execute(
                    select(User.username, User.role, User.state).order_by(User.id)
                )
                return DemoResult(seeded=False, users=[(u, r, s) for u, r, s in users])
            return _seed(
                session,
                cases=cases,
                seed=seed,
                fingerprint_key=fingerprint_key,
                hasher=hash_password,
            )
    finally:
        engine.dispose()
