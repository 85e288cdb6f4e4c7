"""Casework on stored cases: screening, workflow transitions, transfers, capacities, reads.

Every change bumps the record's ``version`` (optimistic concurrency: pass the version you
read as ``expected_version`` and a concurrent change is a
:class:`~fairshare.registry.errors.StaleVersionError`, HTTP 412) and writes its audit event
in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fairshare.cases import SERVICES, unhcr_codes, vulnerability_categories
from fairshare.errors import InputError
from fairshare.reference import states
from fairshare.registry.audit import MAX_PAGE, record_event
from fairshare.registry.batches import current_ledger
from fairshare.registry.errors import ConflictError, NotFoundError, StaleVersionError
from fairshare.registry.models import (
    SERVICE_COLUMNS,
    Capacity,
    Case,
    CaseEvent,
    LedgerEntry,
    Person,
    Screening,
    Transfer,
    utcnow,
)
from fairshare.registry.scopes import Actor, capacities_query, case_scope_filter, cases_query
from fairshare.registry.snapshot import domain_case
from fairshare.screening import screen_case
from fairshare.workflow import check_transition, is_overdue

__all__ = [
    "ScreeningResult",
    "confirm_arrival",
    "confirm_transferred",
    "get_capacity",
    "get_case",
    "list_capacities",
    "list_cases",
    "overdue_transfers",
    "persons_of_case",
    "record_screening",
    "schedule_transfer",
    "set_capacity",
    "transition",
]

TRAFFICKING_CATEGORY = "trafficking_victim"


def get_case(session: Session, actor: Actor, case_id: str, scope: str = "all") -> Case:
    """The case ``case_id`` if ``actor`` may see it under ``scope``, else ``NotFoundError``."""
    case = session.scalar(select(Case).where(Case.id == case_id, case_scope_filter(actor, scope)))
    if case is None:
        raise NotFoundError("case", case_id)
    return case


def _locked_case(session: Session, actor: Actor, case_id: str, scope: str) -> Case:
    case = session.scalar(
        select(Case)
        .where(Case.id == case_id, case_scope_filter(actor, scope))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if case is None:
        raise NotFoundError("case", case_id)
    return case


def list_cases(
    session: Session,
    actor: Actor,
    scope: str = "all",
    *,
    status: str | None = None,
    entry_state: str | None = None,
    allocated_state: str | None = None,
    tier: int | None = None,
    after_id: str | None = None,
    limit: int = 100,
) -> Sequence[Case]:
    """Cases ``actor`` may see, filtered, ordered by id, keyset-paginated (``after_id``)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit {limit} is out of range; use 1 to {MAX_PAGE}")
    query = cases_query(actor, scope).limit(limit)
    if status is not None:
        query = query.where(Case.status == status)
    if entry_state is not None:
        query = query.where(Case.entry_state == entry_state)
    if allocated_state is not None:
        query = query.where(Case.allocated_state == allocated_state)
    if tier is not None:
        query = query.where(Case.tier == tier)
    if after_id is not None:
        query = query.where(Case.id > after_id)
    return session.scalars(query).all()


def persons_of_case(
    session: Session, actor: Actor, case_id: str, scope: str = "all"
) -> Sequence[Person]:
    """The members of a case ``actor`` may see (``NotFoundError`` otherwise)."""
    get_case(session, actor, case_id, scope)
    return session.scalars(
        select(Person).where(Person.case_id == case_id).order_by(Person.id)
    ).all()


def _bump(session: Session, case: Case, expected_version: int | None, **values: Any) -> None:
    """Guarded update: only if the version is still the one read (and the expected one)."""
    if expected_version is not None and expected_version != case.version:
        raise StaleVersionError("case", case.id, expected_version, case.version)
    done = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.version == case.version)
        .values(version=case.version + 1, **values)
        .returning(Case.version)
    ).all()
    if not done:
        current = session.scalar(select(Case.version).where(Case.id == case.id)) or 0
        raise StaleVersionError("case", case.id, case.version, current)
    session.refresh(case)


def transition(
    session: Session,
    actor: Actor,
    case_id: str,
    target: str,
    *,
    reason: str | None = None,
    expected_version: int | None = None,
    scope: str = "all",
) -> Case:
    """Move a case to ``target`` (validated by :func:`fairshare.workflow.check_transition`).

    Stamps who, when and why (``case_events``), bumps the version and audits. Allocation
    (``ready -> allocated``) is only done by :func:`fairshare.registry.batches.commit_batch`.
    Revoking an allocation (``allocated -> ready``, e.g. a lapsed transfer under Regulation
    (EU) No 604/2013 Art. 29(2)) gives the places (and the service places the case needed)
    back to the destination and takes the persons back out of the ledger.
    """
    case = _locked_case(session, actor, case_id, scope)
    if expected_version is not None and expected_version != case.version:
        raise StaleVersionError("case", case.id, expected_version, case.version)
    step = check_transition(case.status, target, actor.role, reason)
    if target == "allocated" and case.status == "ready":
        raise ConflictError(
            f"case '{case_id}' is allocated by committing an allocation batch, not one by one; "
            "preview and commit a batch"
        )
    now = utcnow()
    values: dict[str, Any] = {"status": target, "status_changed_at": now}
    detail: dict[str, Any] = {"from": case.status, "to": target, "reference": step.reference}
    if case.status == "allocated" and target == "ready" and case.allocated_to:
        persons = len(persons_of_case(session, actor, case_id))
        back: dict[str, Any] = {"free": Capacity.free + persons, "version": Capacity.version + 1}
        for service, places in (case.needs or {}).items():
            if service in SERVICE_COLUMNS and places:
                column = getattr(Capacity, SERVICE_COLUMNS[service])
                back[SERVICE_COLUMNS[service]] = column + int(places)
        session.execute(
            update(Capacity).where(Capacity.destination_id == case.allocated_to).values(**back)
        )
        # The ledger counts persons received: the revoked allocation is taken back out.
        received, largest = current_ledger(session)
        session.add(
            LedgerEntry(
                batch_id=None,
                destination_id=case.allocated_to,
                placed=-persons,
                received=max(received.get(case.allocated_to, 0) - persons, 0),
                largest_case=largest,
                at=now,
            )
        )
        detail["released"] = {"destination": case.allocated_to, "persons": persons}
        values.update(
            allocated_to=None,
            allocated_state=None,
            batch_id=None,
            allocated_on=None,
            transfer_deadline=None,
        )
    previous = case.status
    _bump(session, case, expected_version, **values)
    session.add(
        CaseEvent(
            case_id=case_id,
            from_status=previous,
            to_status=target,
            by=actor.username,
            role=actor.role,
            at=now,
            reason=reason,
        )
    )
    if reason:
        detail["reason_given"] = True
    record_event(
        session, actor, "case.transition", "case", case_id, state=case.entry_state, detail=detail
    )
    return case


# --------------------------------------------------------------------------------------------
# Screening


@dataclass(frozen=True)
class ScreeningResult:
    """The outcome of recording a screening: the case's new tier, needs and version."""

    screening_id: int
    case_id: str
    tier: int
    needs: dict[str, int]
    place_of_safety_referral: bool
    counts_as_minor: bool
    case_version: int


def record_screening(
    session: Session,
    actor: Actor,
    person_id: str,
    *,
    categories: Sequence[str] = (),
    unhcr: Sequence[str] = (),
    trafficking_indicators: Sequence[str] = (),
    advice_and_support: str | None = None,
    age_assessed: int | None = None,
    expected_version: int | None = None,
    scope: str = "all",
) -> ScreeningResult:
    """Record a vulnerability assessment of one person and re-screen their case.

    * ``categories`` and ``unhcr`` replace the person's declared ones (Directive 2013/33/EU
      Art. 21 and 22).
    * An uncertain age counts as a minor until assessed; ``age_assessed`` records the
      assessed age and clears the uncertainty (Regulation (EU) 2024/1358; Directive
      2013/32/EU Art. 25(5)).
    * Any ``trafficking_indicators`` add the ``trafficking_victim`` category, refer the
      person to a place of safety and make the case priority tier 1, with
      ``advice_and_support`` notes (Directive 2011/36/EU Art. 11; Council of Europe
      Convention on Action against Trafficking Art. 12).
    """
    person = session.get(Person, person_id)
    if person is None or person.erased_at is not None:
        raise NotFoundError("person", person_id)
    case = _locked_case(session, actor, person.case_id, scope)
    known = vulnerability_categories()
    codes = unhcr_codes()
    problems = [f"unknown category '{c}'" for c in categories if c not in known]
    problems += [f"unknown UNHCR code '{c}'" for c in unhcr if c.upper() not in codes]
    if age_assessed is not None and (
        isinstance(age_assessed, bool)
        or not isinstance(age_assessed, int)
        or not 0 <= age_assessed <= 130
    ):
        problems.append(f"assessed age {age_assessed!r} is not a whole number from 0 to 130")
    indicators = [str(t).strip() for t in trafficking_indicators if str(t).strip()]
    if problems:
        raise InputError(
            "; ".join(problems) + f". Categories: {', '.join(known)}; UNHCR codes as in the "
            "bundled table (e.g. SC-UC)"
        )
    declared = list(dict.fromkeys(categories))
    if indicators and TRAFFICKING_CATEGORY not in declared:
        declared.append(TRAFFICKING_CATEGORY)
    person.vulnerabilities = declared
    person.unhcr_codes = list(dict.fromkeys(c.upper() for c in unhcr))
    if age_assessed is not None:
        person.age = age_assessed
        person.age_uncertain = False
    session.flush()
    members = session.scalars(select(Person).where(Person.case_id == case.id)).all()
    result = screen_case(domain_case(case, members, (), (), today=None))
    tier = 1 if indicators else result.tier
    referral = bool(indicators)
    row = Screening(
        person_id=person_id,
        categories=list(result.categories.get(person_id, ())),
        unhcr_codes=person.unhcr_codes,
        trafficking_indicators=indicators,
        place_of_safety_referral=referral,
        advice_and_support=advice_and_support,
        age_assessed=age_assessed,
        assessed_by=actor.username,
        assessed_at=utcnow(),
    )
    session.add(row)
    values: dict[str, Any] = {"tier": tier, "needs": dict(result.needs)}
    if referral:
        values["priority_reason"] = (
            "trafficking indicators: referred to a place of safety; priority transfer "
            "(Directive 2011/36/EU Art. 11)"
        )
    _bump(session, case, expected_version, **values)
    session.flush()
    record_event(
        session,
        actor,
        "person.screened",
        "person",
        person_id,
        state=case.entry_state,
        detail={
            "case": case.id,
            "tier": tier,
            "place_of_safety_referral": referral,
            "age_assessed": age_assessed is not None,
        },
    )
    minor = "minor" in result.categories.get(person_id, ()) or (
        "unaccompanied_minor" in result.categories.get(person_id, ())
    )
    return ScreeningResult(
        screening_id=row.id,
        case_id=case.id,
        tier=tier,
        needs=dict(result.needs),
        place_of_safety_referral=referral,
        counts_as_minor=minor,
        case_version=case.version,
    )


# --------------------------------------------------------------------------------------------
# Transfers (Regulation (EU) No 604/2013 Art. 29)


def schedule_transfer(
    session: Session,
    actor: Actor,
    case_id: str,
    scheduled_for: date,
    *,
    expected_version: int | None = None,
    scope: str = "all",
) -> Transfer:
    """Fix the transfer date of an allocated case (``allocated -> transfer_scheduled``)."""
    case = _locked_case(session, actor, case_id, scope)
    if case.allocated_to is None or case.transfer_deadline is None:
        raise ConflictError(f"case '{case_id}' is not allocated; commit a batch first")
    if scheduled_for > case.transfer_deadline:
        raise ConflictError(
            f"{scheduled_for} is after the transfer deadline {case.transfer_deadline} "
            "(Regulation (EU) No 604/2013 Art. 29(1)); choose an earlier date"
        )
    transition(
        session,
        actor,
        case_id,
        "transfer_scheduled",
        expected_version=expected_version,
        scope=scope,
    )
    transfer = Transfer(
        case_id=case_id,
        destination=case.allocated_to,
        scheduled_for=scheduled_for,
        deadline=case.transfer_deadline,
        status="scheduled",
        created_by=actor.username,
        created_at=utcnow(),
    )
    session.add(transfer)
    session.flush()
    record_event(
        session,
        actor,
        "transfer.scheduled",
        "transfer",
        str(transfer.id),
        state=case.entry_state,
        detail={"case": case_id, "scheduled_for": scheduled_for.isoformat()},
    )
    return transfer


def _open_transfer(session: Session, case_id: str) -> Transfer:
    transfer = session.scalar(
        select(Transfer).where(Transfer.case_id == case_id).order_by(Transfer.id.desc()).limit(1)
    )
    if transfer is None:
        raise ConflictError(f"case '{case_id}' has no scheduled transfer; schedule one first")
    return transfer


def _transfer_step(
    session: Session,
    actor: Actor,
    case_id: str,
    step: str,
    expected_version: int | None,
    scope: str,
) -> Transfer:
    """Move the case and its open transfer to ``step`` (``transferred`` or ``arrived``)."""
    case = transition(session, actor, case_id, step, expected_version=expected_version, scope=scope)
    transfer = _open_transfer(session, case_id)
    transfer.status = step
    setattr(transfer, f"{step}_at", utcnow())
    record_event(
        session,
        actor,
        f"transfer.{step}",
        "transfer",
        str(transfer.id),
        # the state that confirms: the entry state for a departure, the receiving one on arrival
        state=case.entry_state if step == "transferred" else case.allocated_state,
        detail={"case": case_id},
    )
    return transfer


def confirm_transferred(
    session: Session,
    actor: Actor,
    case_id: str,
    *,
    expected_version: int | None = None,
    scope: str = "all",
) -> Transfer:
    """The entry state confirms the departure (``transfer_scheduled -> transferred``)."""
    return _transfer_step(session, actor, case_id, "transferred", expected_version, scope)


def confirm_arrival(
    session: Session,
    actor: Actor,
    case_id: str,
    *,
    expected_version: int | None = None,
    scope: str = "all",
) -> Transfer:
    """The receiving state's caseworker confirms arrival (``transferred -> arrived``)."""
    return _transfer_step(session, actor, case_id, "arrived", expected_version, scope)


def overdue_transfers(
    session: Session, actor: Actor, today: date, scope: str = "all", *, months: int | None = None
) -> list[Case]:
    """Allocated cases not yet transferred whose deadline has passed on ``today``.

    Uses :func:`fairshare.workflow.is_overdue` (6 months by default, Regulation (EU)
    No 604/2013 Art. 29(1); pass ``months`` for the Art. 29(2) extensions).
    """
    rows = session.scalars(
        cases_query(actor, scope).where(
            Case.status.in_(("allocated", "transfer_scheduled")), Case.allocated_on.is_not(None)
        )
    ).all()
    return [
        c for c in rows if c.allocated_on is not None and is_overdue(c.allocated_on, today, months)
    ]


# --------------------------------------------------------------------------------------------
# Capacities


def get_capacity(
    session: Session, actor: Actor, destination_id: str, scope: str = "all"
) -> Capacity:
    """One destination's capacity, if ``actor`` may see it."""
    row = session.scalar(
        capacities_query(actor, scope).where(Capacity.destination_id == destination_id)
    )
    if row is None:
        raise NotFoundError("capacity", destination_id)
    return row


def list_capacities(session: Session, actor: Actor, scope: str = "all") -> Sequence[Capacity]:
    """Every capacity ``actor`` may see, by destination id."""
    return session.scalars(capacities_query(actor, scope)).all()


def set_capacity(
    session: Session,
    actor: Actor,
    destination_id: str,
    *,
    free: int,
    services: dict[str, int] | None = None,
    parent: str | None = None,
    participating: bool = True,
    languages: Sequence[str] = (),
    nationalities: Sequence[str] = (),
    expected_version: int | None = None,
    scope: str = "all",
) -> Capacity:
    """Create or update a destination's free places and service places (all absolute).

    ``destination_id`` is a state code (``DE``) or a region with its ``parent`` state
    (``DE-BY``). Updating needs the version read (``expected_version``) or it may overwrite
    a batch's decrement; creating needs ``expected_version`` ``None`` or ``0``.
    """
    services = dict(services or {})
    problems: list[str] = []
    for name, value in (("free", free), *services.items()):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f"{name} must be a whole number of 0 or more, not {value!r}")
    for name in services:
        if name not in SERVICES:
            problems.append(f"unknown service '{name}'; use one of {', '.join(SERVICES)}")
        elif isinstance(services[name], int) and services[name] > free:
            problems.append(f"{services[name]} {name} places exceed the {free} free places")
    if parent is None and destination_id not in states():
        problems.append(
            f"'{destination_id}' is not a known state code; a region needs its parent state"
        )
    if parent is not None and parent not in states():
        problems.append(f"parent '{parent}' is not a known state code")
    if problems:
        raise InputError("; ".join(problems))
    row = session.scalar(
        select(Capacity)
        .where(Capacity.destination_id == destination_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    now = utcnow()
    columns = {SERVICE_COLUMNS[s]: services.get(s, 0) for s in SERVICES}
    if row is None:
        if expected_version not in (None, 0):
            raise NotFoundError("capacity", destination_id)
        if actor.state is not None and scope != "all" and (parent or destination_id) != actor.state:
            raise NotFoundError("capacity", destination_id)
        row = Capacity(
            destination_id=destination_id,
            parent=parent,
            free=free,
            participating=participating,
            languages=list(languages),
            nationalities=list(nationalities),
            version=1,
            updated_by=actor.username,
            updated_at=now,
            **columns,
        )
        session.add(row)
        action = "capacity.created"
    else:
        get_capacity(session, actor, destination_id, scope)
        if expected_version is not None and expected_version != row.version:
            raise StaleVersionError("capacity", destination_id, expected_version, row.version)
        done = session.execute(
            update(Capacity)
            .where(Capacity.destination_id == destination_id, Capacity.version == row.version)
            .values(
                free=free,
                parent=parent,
                participating=participating,
                languages=list(languages),
                nationalities=list(nationalities),
                version=row.version + 1,
                updated_by=actor.username,
                updated_at=now,
                **columns,
            )
            .returning(Capacity.version)
        ).all()
        if not done:
            raise StaleVersionError("capacity", destination_id, row.version, row.version + 1)
        session.refresh(row)
        action = "capacity.updated"
    session.flush()
    record_event(
        session,
        actor,
        action,
        "capacity",
        destination_id,
        state=parent or destination_id,
        detail={
            "free": free,
            "services": services,
            "participating": participating,
            "version": row.version,
        },
    )
    return row
