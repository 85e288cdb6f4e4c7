"""Data for analysts: pseudonymised exports and aggregates without personal data.

* :func:`pseudonymised_export`: one row per case, no names, documents, birth dates or
  free-text notes; case and person ids replaced by keyed hashes (HMAC-SHA-256, so they
  cannot be reversed without the key and stay stable between exports with the same key);
  ages in the bands Eurostat publishes asylum statistics in (migr_asyappctza: under 14,
  14-17, 18-34, 35-64, 65 and over). Pseudonymised data is still personal data (Regulation
  (EU) 2016/679 Recital 26; Art. 25 and 89(1) for the safeguards); the export is audited.
* :func:`aggregates`: counts per state only (received, fair share, waiting by tier).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from fractions import Fraction
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fairshare.errors import InputError
from fairshare.identity import MIN_KEY_BYTES
from fairshare.keys import compute_key, load_key
from fairshare.registry.audit import record_event
from fairshare.registry.batches import DEFAULT_KEY, current_ledger
from fairshare.registry.models import Capacity, Case, Person
from fairshare.registry.scopes import Actor, cases_query
from fairshare.registry.snapshot import person_age

__all__ = ["AGE_BANDS", "age_band", "aggregates", "pseudonymised_export"]

AGE_BANDS: tuple[tuple[int, int | None, str], ...] = (
    (0, 13, "0-13"),
    (14, 17, "14-17"),
    (18, 34, "18-34"),
    (35, 64, "35-64"),
    (65, None, "65+"),
)
"""Eurostat's age classes for asylum statistics (migr_asyappctza)."""

_WAITING = ("registered", "screened", "ready")


def age_band(age: int | None) -> str:
    """The Eurostat age band of ``age``, or ``unknown``.

    >>> age_band(6), age_band(17), age_band(70), age_band(None)
    ('0-13', '14-17', '65+', 'unknown')
    """
    if age is None:
        return "unknown"
    for low, high, label in AGE_BANDS:
        if age >= low and (high is None or age <= high):
            return label
    return "unknown"


def _pseudonym(key: bytes, kind: str, value: str) -> str:
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:20]


def pseudonymised_export(
    session: Session,
    actor: Actor,
    *,
    key: bytes,
    scope: str = "all",
    today: date | None = None,
) -> list[dict[str, Any]]:
    """One pseudonymised row per case ``actor`` may see; the export itself is audited.

    ``key`` (at least 32 bytes, from configuration, different from the fingerprint key)
    keys the pseudonyms. Rows hold: case pseudonym, entry state, month of registration,
    status, tier, needs, allocated state, and per member a pseudonym, age band, sex,
    nationality, vulnerability categories and whether the age is uncertain.
    """
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise InputError(f"the pseudonymisation key needs at least {MIN_KEY_BYTES} bytes")
    day = today or date.today()
    cases = list(session.scalars(cases_query(actor, scope)))
    members: dict[str, list[Person]] = {}
    ids = [c.id for c in cases]
    for p in session.scalars(select(Person).where(Person.case_id.in_(ids)).order_by(Person.id)):
        members.setdefault(p.case_id, []).append(p)
    rows = []
    for c in cases:
        rows.append(
            {
                "case": _pseudonym(key, "case", c.id),
                "entry_state": c.entry_state,
                "registered_month": c.registered_on.strftime("%Y-%m"),
                "status": c.status,
                "tier": c.tier,
                "needs": dict(c.needs),
                "allocated_state": c.allocated_state,
                "persons": [
                    {
                        "person": _pseudonym(key, "person", p.id),
                        "age_band": age_band(person_age(p, day)),
                        "age_uncertain": p.age_uncertain,
                        "sex": p.sex,
                        "nationality": p.nationality,
                        "vulnerabilities": sorted(p.vulnerabilities),
                    }
                    for p in members.get(c.id, [])
                ],
            }
        )
    record_event(
        session,
        actor,
        "export.pseudonymised",
        "case",
        None,
        detail={"cases": len(rows), "scope": scope},
    )
    return rows


def aggregates(session: Session, *, key: dict[str, Any] | None = None) -> dict[str, Any]:
    """Counts per state, without personal data: received, fair share, waiting cases by tier.

    ``received`` is the ledger's (regions added to their state); the fair share of a state
    is its key share of all persons received by the participating states
    (docs/ledger.md); ``waiting`` counts cases not yet allocated per entry state and tier.
    """
    spec = dict(key or DEFAULT_KEY)
    received_by_dest, largest = current_ledger(session)
    parent: dict[str, str | None] = dict(
        session.execute(select(Capacity.destination_id, Capacity.parent)).all()
    )
    participating = sorted(
        {
            (p or d)
            for d, p, on in session.execute(
                select(Capacity.destination_id, Capacity.parent, Capacity.participating)
            )
            if on
        }
    )
    received: dict[str, int] = {}
    for dest, count in received_by_dest.items():
        state = parent.get(dest) or dest
        received[state] = received.get(state, 0) + count
    shares: dict[str, Fraction] = {}
    if participating:
        definition = load_key(str(spec.get("name", "population")))
        year = spec.get("year")
        shares = dict(
            compute_key(
                definition,
                year=year if isinstance(year, int) else None,
                participants=participating,
            ).shares
        )
    total = sum(received.get(s, 0) for s in shares)
    waiting: dict[str, dict[str, int]] = {}
    for state, tier, count in session.execute(
        select(Case.entry_state, Case.tier, func.count())
        .where(Case.status.in_(_WAITING))
        .group_by(Case.entry_state, Case.tier)
    ):
        waiting.setdefault(state, {})[f"tier{tier}" if tier else "unscreened"] = int(count)
    states = sorted(set(received) | set(shares) | set(waiting))
    return {
        "key": spec,
        "total_received": total,
        "M": largest,
        "states": [
            {
                "state": s,
                "received": received.get(s, 0),
                "share": float(shares[s]) if s in shares else None,
                "fair_share": float(shares[s] * total) if s in shares else None,
                "deviation": float(received.get(s, 0) - shares[s] * total) if s in shares else None,
                "waiting": waiting.get(s, {}),
            }
            for s in states
        ],
    }
