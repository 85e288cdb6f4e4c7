"""Registration at the entry state: families, persons, documents, care; bulk import.

The case JSON is the one ``fairshare allocate`` reads (docs/schema/allocation-input.schema.json,
validated by :func:`fairshare.cases.parse_cases`), with registration fields added:

* per case: ``id`` is optional (generated as ``EL-2026-000123``, per entry state and year),
  ``registered_on`` defaults to today, ``care`` holds the contact with the care system
  (``reception_place``, ``medical_needs``, ``child_protection_referral``);
* per member: ``id`` is optional (``p1``, ``p2``, ...), ``given_name``, ``family_name``,
  ``birth_date`` (the age at registration is derived from it when no ``age`` is given),
  ``documents`` (``kind``, ``issuing_state``, ``number``) and ``biometric`` (a canonical
  biometric template, kept only as its keyed fingerprint);
* per family link: ``member_name``.

The same person registered twice, in one state or two, is **flagged for review and never
merged** (as Eurodac hits are checked by a person, Regulation (EU) 2024/1358): by the keyed
fingerprint of a document or biometric template (:mod:`fairshare.identity`). Retention
(:func:`purge_expired`) follows Eurodac's 10 years for applicants' data (Regulation (EU)
2024/1358 Art. 29(1)); erasure (:func:`erase_person`) implements Regulation (EU) 2016/679
Art. 17 while keeping the ids, the status history and the audit trail.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam, delete, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.orm import Session

from fairshare.cases import Case as DomainCase
from fairshare.cases import ValidationError, parse_cases
from fairshare.errors import InputError
from fairshare.identity import fingerprint, normalise_document
from fairshare.registry.audit import record_event
from fairshare.registry.errors import ConflictError, DuplicateIdempotencyError, NotFoundError
from fairshare.registry.models import (
    AuditEvent,
    Base,
    Case,
    CaseEvent,
    CaseSequence,
    Document,
    FamilyLinkRow,
    IdempotencyKey,
    LinkedCase,
    Person,
    Screening,
    utcnow,
)
from fairshare.registry.scopes import Actor
from fairshare.screening import screen_case
from fairshare.workflow import workflow_rules

__all__ = [
    "DEFAULT_RETENTION_YEARS",
    "BulkImportReport",
    "ParsedRegistration",
    "RegistrationResult",
    "age_on",
    "bulk_import",
    "erase_person",
    "parse_registration",
    "purge_expired",
    "register_case",
]

DEFAULT_RETENTION_YEARS = 10
"""Eurodac keeps an applicant's data 10 years (Regulation (EU) 2024/1358 Art. 29(1))."""

_MEMBER_EXTRAS = ("given_name", "family_name", "birth_date", "documents", "biometric")
_CARE_FIELDS = ("reception_place", "medical_needs", "child_protection_referral")
_DOCUMENT_FIELDS = ("kind", "issuing_state", "number")
_MAX_TEXT = 200


def age_on(birth: date, day: date) -> int:
    """Age in whole years on ``day``.

    >>> age_on(date(2010, 3, 1), date(2026, 2, 28)), age_on(date(2010, 3, 1), date(2026, 3, 1))
    (15, 16)
    """
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


@dataclass(frozen=True)
class ParsedMember:
    """Registration fields of one member, beside the domain :class:`~fairshare.cases.Person`."""

    ref: str
    given_name: str | None
    family_name: str | None
    birth_date: date | None
    documents: tuple[tuple[str, str, str, str], ...]  # kind, issuing state, number, fingerprint
    biometric_fingerprint: str | None


@dataclass(frozen=True)
class ParsedRegistration:
    """A validated registration: the domain case plus what only the registry keeps."""

    case: DomainCase
    client_id: str | None
    members: tuple[ParsedMember, ...]
    link_names: tuple[str | None, ...]
    reception_place: str | None
    medical_needs: str | None
    child_protection_referral: bool


@dataclass
class RegistrationResult:
    """What a registration returns (and what an idempotent retry returns again).

    ``persons`` maps the client's member id to the stored person id; ``duplicates`` lists,
    per person flagged, the persons already registered with the same fingerprint.
    """

    case_id: str
    status: str
    version: int
    persons: dict[str, str]
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    tier: int | None = None
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (also stored with the idempotency key)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, replayed: bool = False) -> RegistrationResult:
        """Rebuild a stored result."""
        values = dict(data)
        values["replayed"] = replayed
        return cls(**values)


@dataclass
class BulkImportReport:
    """The outcome of :func:`bulk_import`: all rows imported, or none and every problem.

    ``errors`` items are ``{"row": i, "pointer": "/3/members/0/age", "message": ...}``
    (``row`` counts from 0, like the JSON Pointer).
    """

    ok: bool
    imported: list[str]
    errors: list[dict[str, Any]]
    duplicates: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Validation


def _text(
    value: object, pointer: str, problems: list[tuple[str, str]], *, limit: int = _MAX_TEXT
) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append((pointer, "expected a non-empty string or null"))
        return None
    if len(value) > limit:
        problems.append((pointer, f"is {len(value)} characters long; at most {limit}"))
        return None
    return value.strip()


def _day(value: object, pointer: str, problems: list[tuple[str, str]]) -> date | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    problems.append((pointer, f"{value!r} is not a date; use YYYY-MM-DD"))
    return None


def parse_registration(
    raw: object, *, fingerprint_key: bytes, today: date, pointer: str = ""
) -> ParsedRegistration:
    """Validate one registration (see the module docstring); raises ``ValidationError``.

    The allocation fields are checked by :func:`fairshare.cases.parse_cases`, so a case the
    registry accepts is a case ``fairshare allocate`` accepts; every problem is reported
    with its JSON Pointer below ``pointer``.
    """
    problems: list[tuple[str, str]] = []
    if not isinstance(raw, Mapping):
        raise ValidationError([(pointer, "expected an object (one case)")])
    core: dict[str, Any] = {k: v for k, v in raw.items() if k not in ("care", "linked_cases")}
    client_id = None
    if "id" in core:
        client_id = core["id"] if isinstance(core["id"], str) else None
        if client_id is not None and len(client_id) > 64:
            problems.append((f"{pointer}/id", "a case id has at most 64 characters"))
    else:
        core["id"] = "new-case"
    registered_on = today
    if "registered_on" not in core:
        core["registered_on"] = today.isoformat()
    elif isinstance(core["registered_on"], str):
        day = _day(core["registered_on"], f"{pointer}/registered_on", [])
        if day is not None:
            registered_on = day
            if day > today:
                problems.append(
                    (f"{pointer}/registered_on", f"{day} is in the future (today is {today})")
                )
    if isinstance(core.get("entry_state"), str) and len(core["entry_state"]) > 8:
        problems.append((f"{pointer}/entry_state", "a state code has at most 8 characters"))
    members: list[ParsedMember] = []
    raw_members = core.get("members")
    if isinstance(raw_members, list):
        core_members: list[Any] = []
        for j, item in enumerate(raw_members):
            where = f"{pointer}/members/{j}"
            if not isinstance(item, Mapping):
                core_members.append(item)
                continue
            person = {k: v for k, v in item.items() if k not in _MEMBER_EXTRAS}
            ref = person.get("id") if "id" in person else f"p{j + 1}"
            person["id"] = ref
            if isinstance(ref, str) and len(ref) > 64:
                problems.append((f"{where}/id", "a member id has at most 64 characters"))
            birth = _day(item.get("birth_date"), f"{where}/birth_date", problems)
            if birth is not None and birth > registered_on:
                problems.append((f"{where}/birth_date", f"{birth} is after the registration"))
                birth = None
            if birth is not None and person.get("age") is None:
                person["age"] = age_on(birth, registered_on)
            documents: list[tuple[str, str, str, str]] = []
            raw_docs = item.get("documents", [])
            if not isinstance(raw_docs, list):
                problems.append((f"{where}/documents", "expected a list of documents"))
                raw_docs = []
            for k, doc in enumerate(raw_docs):
                spot = f"{where}/documents/{k}"
                if not isinstance(doc, Mapping):
                    problems.append((spot, "expected an object with kind, issuing_state, number"))
                    continue
                for name in doc:
                    if name not in _DOCUMENT_FIELDS:
                        problems.append(
                            (
                                f"{spot}/{name}",
                                f"unknown field '{name}'; known fields: "
                                f"{', '.join(_DOCUMENT_FIELDS)}",
                            )
                        )
                kind = _text(doc.get("kind"), f"{spot}/kind", problems, limit=32)
                issuer = doc.get("issuing_state")
                number = doc.get("number")
                if kind is None and doc.get("kind") is None:
                    problems.append((f"{spot}/kind", "a document needs a 'kind', e.g. passport"))
                if not isinstance(number, str) or not isinstance(issuer, str):
                    problems.append((spot, "a document needs 'issuing_state' and 'number' texts"))
                    continue
                try:
                    normal = normalise_document(number, issuer)
                except InputError as exc:
                    problems.append((spot, str(exc)))
                    continue
                if len(number) > 64:
                    problems.append(
                        (f"{spot}/number", "a document number has at most 64 characters")
                    )
                    continue
                if kind is not None:
                    documents.append(
                        (
                            kind,
                            normal.split(":", 1)[0],
                            number,
                            fingerprint(normal, fingerprint_key),
                        )
                    )
            biometric = item.get("biometric")
            bio_fp = None
            if biometric is not None:
                if isinstance(biometric, str) and biometric:
                    bio_fp = fingerprint(biometric, fingerprint_key)
                else:
                    problems.append(
                        (f"{where}/biometric", "expected the canonical template as text")
                    )
            members.append(
                ParsedMember(
                    ref=ref if isinstance(ref, str) else "",
                    given_name=_text(item.get("given_name"), f"{where}/given_name", problems),
                    family_name=_text(item.get("family_name"), f"{where}/family_name", problems),
                    birth_date=birth,
                    documents=tuple(documents),
                    biometric_fingerprint=bio_fp,
                )
            )
            core_members.append(person)
        core["members"] = core_members
    link_names: list[str | None] = []
    raw_links = core.get("family_links")
    if isinstance(raw_links, list):
        stripped: list[Any] = []
        for j, link in enumerate(raw_links):
            if isinstance(link, Mapping):
                name = _text(
                    link.get("member_name"), f"{pointer}/family_links/{j}/member_name", problems
                )
                link_names.append(name)
                stripped.append({k: v for k, v in link.items() if k != "member_name"})
            else:
                stripped.append(link)
        core["family_links"] = stripped
    linked = raw.get("linked_cases", [])
    linked_ids: list[str] = []
    if not isinstance(linked, list):
        problems.append((f"{pointer}/linked_cases", "expected a list of case ids"))
    else:
        for j, other in enumerate(linked):
            spot = f"{pointer}/linked_cases/{j}"
            if not isinstance(other, str) or not other.strip():
                problems.append((spot, "expected a case id"))
            elif other in linked_ids:
                problems.append((spot, f"'{other}' is listed twice"))
            elif client_id is not None and other == client_id:
                problems.append((spot, f"case '{other}' is linked to itself"))
            else:
                linked_ids.append(other)
    care = raw.get("care", {})
    reception = medical = None
    referral = False
    if not isinstance(care, Mapping):
        problems.append((f"{pointer}/care", "expected an object"))
    else:
        for name in care:
            if name not in _CARE_FIELDS:
                problems.append(
                    (
                        f"{pointer}/care/{name}",
                        f"unknown field '{name}'; known fields: {', '.join(_CARE_FIELDS)}",
                    )
                )
        reception = _text(care.get("reception_place"), f"{pointer}/care/reception_place", problems)
        medical = _text(
            care.get("medical_needs"), f"{pointer}/care/medical_needs", problems, limit=4000
        )
        flag = care.get("child_protection_referral", False)
        if not isinstance(flag, bool):
            problems.append((f"{pointer}/care/child_protection_referral", "expected true or false"))
        else:
            referral = flag
    try:
        parsed = parse_cases([core])
    except ValidationError as exc:
        for where, message in exc.problems:
            rest = where[2:] if where.startswith("/0") else where
            problems.append((f"{pointer}{rest}", message))
        parsed = []
    if problems or not parsed:
        raise ValidationError(problems)
    case = parsed[0]
    case = DomainCase(
        id=case.id,
        members=case.members,
        entry_state=case.entry_state,
        registered_on=case.registered_on,
        family_links=case.family_links,
        linked_cases=tuple(linked_ids),
        preferences=case.preferences,
        scores=case.scores,
        excluded=case.excluded,
    )
    return ParsedRegistration(
        case=case,
        client_id=client_id,
        members=tuple(members),
        link_names=tuple(link_names),
        reception_place=reception,
        medical_needs=medical,
        child_protection_referral=referral,
    )


# --------------------------------------------------------------------------------------------
# Storing


_SEQUENCE_STATE = re.compile(r"^[A-Za-z0-9]{1,8}$")
_PG_NEXT_NUMBER = text(
    "WITH n AS (SELECT nextval(to_regclass(:seq)) AS v) "
    "SELECT v, EXISTS (SELECT 1 FROM cases WHERE id = :prefix || "
    "CASE WHEN v < 1000000 THEN lpad(v::text, 6, '0') ELSE v::text END) FROM n"
)


def case_sequence_name(entry_state: str, year: int) -> str:
    """The PostgreSQL sequence of case numbers of one entry state and year.

    >>> case_sequence_name("EL", 2026)
    'case_number_el_2026'
    """
    return f"case_number_{entry_state.lower()}_{year}"


def _next_case_id(session: Session, entry_state: str, year: int) -> str:
    """A new case id ``EL-2026-000123`` (docs/decisions/0003-case-id-sequences.md).

    PostgreSQL: a SEQUENCE per entry state and year (created on first use), so concurrent
    registrations never wait for one another; a number taken by a transaction that rolls
    back is a gap. SQLite (writers are serialised anyway): the ``case_sequences`` row.
    Either way a number whose id a client already chose is skipped.
    """
    prefix = f"{entry_state}-{year}-"
    bind = session.get_bind()
    if bind.dialect.name == "postgresql" and _SEQUENCE_STATE.match(entry_state):
        name = case_sequence_name(entry_state, year)
        while True:
            value, taken = (
                session.connection().execute(_PG_NEXT_NUMBER, {"seq": name, "prefix": prefix}).one()
            )
            if value is None:  # the first case of this state and year: create the sequence
                _create_case_sequence(session, name, entry_state, year)
                continue
            if not taken:
                return f"{prefix}{value:06d}"
    while True:
        maker = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
        value = session.execute(
            maker(CaseSequence)
            .values(entry_state=entry_state, year=year, last_value=1)
            .on_conflict_do_update(
                index_elements=[CaseSequence.entry_state, CaseSequence.year],
                set_={"last_value": CaseSequence.last_value + 1},
            )
            .returning(CaseSequence.last_value)
        ).scalar_one()
        candidate = f"{prefix}{value:06d}"
        if session.get(Case, candidate) is None:  # a client may have taken it
            return candidate


def _create_case_sequence(session: Session, name: str, entry_state: str, year: int) -> None:
    """Create the sequence ``name`` in a savepoint of the registration's transaction.

    It continues after the ``case_sequences`` row of the state and year, if any (a
    registry that counted there before). Two first registrations at once: the second waits
    for the first to commit and then fails the catalog's unique index (or finds it there);
    its savepoint is rolled back and it takes a number from the new sequence.
    """
    last = session.scalar(
        select(CaseSequence.last_value).where(
            CaseSequence.entry_state == entry_state, CaseSequence.year == year
        )
    )
    start = int(last or 0) + 1
    with contextlib.suppress(IntegrityError, ProgrammingError), session.begin_nested():
        session.execute(text(f'CREATE SEQUENCE IF NOT EXISTS "{name}" START WITH {start}'))


def _request_hash(data: object) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _replay(existing: IdempotencyKey, request_hash: str, key: str) -> RegistrationResult:
    if existing.request_hash != request_hash:
        raise DuplicateIdempotencyError(
            f"Idempotency-Key '{key}' was already used for a different registration; use a "
            "new key for a new request"
        )
    return RegistrationResult.from_dict(existing.response_body, replayed=True)


def _find_key(session: Session, actor: Actor, key: str) -> IdempotencyKey | None:
    return session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.actor == actor.username, IdempotencyKey.key == key
        )
    )


def _table(model: type[Base]) -> Table:
    """The Core table of a model (the registration inserts rows without the ORM)."""
    return cast(Table, model.__table__)


# Statements built once (their SQL is compiled once per dialect and cached).
_INSERT: dict[type[Base], Insert] = {
    model: insert(_table(model))
    for model in (Case, Person, Document, FamilyLinkRow, LinkedCase, CaseEvent, AuditEvent)
}
_KEYS = _table(IdempotencyKey)
_RESERVE_KEY = {
    name: maker(_KEYS)
    .on_conflict_do_nothing(index_elements=[_KEYS.c.actor, _KEYS.c.key])
    .returning(_KEYS.c.id)
    for name, maker in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_KEY_DONE = (
    update(_KEYS)
    .where(_KEYS.c.id == bindparam("key_id"))
    .values(response_status=bindparam("done_status"), response_body=bindparam("done_body"))
)


def _flag_duplicates(
    session: Session, actor: Actor, rows: Sequence[tuple[dict[str, Any], ParsedMember]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Flag persons whose fingerprints match another's (never merge): the flags and audits.

    ``rows`` are the new persons (as rows about to be inserted, ``duplicate_flags`` filled in
    here) with their registration fields. Persons already registered that match get the
    flag back at once; the audit events (one per new person flagged) are returned for the
    caller to insert with the registration.
    """
    wanted: dict[str, list[tuple[str, str]]] = {}
    for person, member in rows:
        if member.biometric_fingerprint:
            wanted.setdefault(member.biometric_fingerprint, []).append((person["id"], "biometric"))
        for *_, fp in member.documents:
            wanted.setdefault(fp, []).append((person["id"], "document"))
    if not wanted:
        return [], []
    own = {person["id"] for person, _ in rows}
    found: dict[str, list[str]] = {}
    keys = list(wanted)
    for pid, hit in session.execute(
        select(Person.id, Person.fingerprint)
        .where(Person.fingerprint.in_(keys), Person.erased_at.is_(None))
        .union_all(
            select(Document.person_id, Document.fingerprint)
            .join(Person, Person.id == Document.person_id)
            .where(Document.fingerprint.in_(keys), Person.erased_at.is_(None))
        )
    ):
        if hit is not None and pid not in own:
            found.setdefault(hit, []).append(pid)
    # Within the new family, too.
    for fp, holders in wanted.items():
        ids = sorted({pid for pid, _ in holders})
        if len(ids) > 1:
            found.setdefault(fp, []).extend(ids)
    matches: dict[str, dict[str, set[str]]] = {}
    for fp, holders in wanted.items():
        for pid, via in holders:
            others = {o for o in found.get(fp, []) if o != pid}
            for other in others:
                matches.setdefault(pid, {}).setdefault(other, set()).add(via)
    flags: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    for person, _ in rows:
        hits = matches.get(person["id"])
        if not hits:
            continue
        entries = [{"person": other, "via": sorted(v)} for other, v in sorted(hits.items())]
        person["duplicate_flags"] = [*person["duplicate_flags"], *entries]
        for other_id in hits:
            if other_id in own:
                continue
            matched = session.get(Person, other_id)
            if matched is not None:
                matched.duplicate_flags = [
                    *matched.duplicate_flags,
                    {"person": person["id"], "via": sorted(hits[other_id])},
                ]
        flags.append({"person": person["id"], "matches": entries})
        audits.append(
            _audit_row(
                actor,
                "person.duplicate_flagged",
                "person",
                person["id"],
                detail={"matches": [e["person"] for e in entries], "review": "required"},
            )
        )
    return flags, audits


def _audit_row(
    actor: Actor,
    action: str,
    resource: str,
    resource_id: str | None,
    *,
    state: str | None = None,
    detail: dict[str, Any],
) -> dict[str, Any]:
    """An ``audit_events`` row, as :func:`~fairshare.registry.audit.record_event` writes it."""
    return {
        "at": utcnow(),
        "actor": actor.username,
        "role": actor.role,
        "action": action,
        "resource": resource,
        "resource_id": resource_id,
        "state": state if state is not None else actor.state,
        "detail": detail,
    }


def _store(
    session: Session, actor: Actor, parsed: ParsedRegistration, *, status: str
) -> RegistrationResult:
    """Insert one registration: a handful of statements, one per table, no ORM flush.

    Everything is computed first (the case id, the screening, the duplicate search), then
    each table gets one INSERT (several rows in one statement where there are several).
    """
    case = parsed.case
    if parsed.client_id is not None:
        if session.get(Case, parsed.client_id) is not None:
            raise ConflictError(
                f"case id '{parsed.client_id}' is already registered; leave 'id' out to get "
                "a new id, or use another"
            )
        case_id = parsed.client_id
    else:
        case_id = _next_case_id(session, case.entry_state, case.registered_on.year)
    domain = DomainCase(
        id=case_id,
        members=case.members,
        entry_state=case.entry_state,
        registered_on=case.registered_on,
        family_links=case.family_links,
    )
    screening = screen_case(domain)
    now = utcnow()
    persons: list[tuple[dict[str, Any], ParsedMember]] = [
        (
            {
                "id": f"{case_id}-P{j + 1}",
                "case_id": case_id,
                "ref": member.id,
                "given_name": extra.given_name,
                "family_name": extra.family_name,
                "birth_date": extra.birth_date,
                "age": member.age,
                "age_uncertain": member.age_uncertain,
                "sex": member.sex,
                "nationality": member.nationality,
                "languages": list(member.languages),
                "vulnerabilities": list(member.vulnerabilities),
                "unhcr_codes": list(member.unhcr_codes),
                "fingerprint": extra.biometric_fingerprint,
                "duplicate_flags": [],
                "erased_at": None,
            },
            extra,
        )
        for j, (member, extra) in enumerate(zip(case.members, parsed.members, strict=True))
    ]
    duplicates, audits = _flag_duplicates(session, actor, persons)
    docs = [
        {
            "person_id": person["id"],
            "kind": kind,
            "issuing_state": issuer,
            "number": number,
            "fingerprint": fp,
        }
        for person, extra in persons
        for kind, issuer, number, fp in extra.documents
    ]
    conn = session.connection()
    conn.execute(
        _INSERT[Case],
        {
            "id": case_id,
            "entry_state": case.entry_state,
            "registered_on": case.registered_on,
            "status": status,
            "status_changed_at": now,
            "version": 1,
            "tier": screening.tier,
            "needs": dict(screening.needs),
            "priority_reason": None,
            "preferences": list(case.preferences),
            "scores": dict(case.scores),
            "excluded": [{"state": e.state, "reason": e.reason} for e in case.excluded],
            "allocated_to": None,
            "allocated_state": None,
            "batch_id": None,
            "allocated_on": None,
            "transfer_deadline": None,
            "reception_place": parsed.reception_place,
            "medical_needs": parsed.medical_needs,
            "child_protection_referral": parsed.child_protection_referral,
            "created_by": actor.username,
            "created_at": now,
        },
    )
    conn.execute(_INSERT[Person], [person for person, _ in persons])
    if docs:
        conn.execute(_INSERT[Document], docs)
    if case.family_links:
        conn.execute(
            _INSERT[FamilyLinkRow],
            [
                {
                    "case_id": case_id,
                    "state": link.state,
                    "relation": link.relation,
                    "status": link.status,
                    "desired": link.desired,
                    "member_name": name,
                }
                for link, name in zip(case.family_links, parsed.link_names, strict=True)
            ],
        )
    if case.linked_cases:
        conn.execute(
            _INSERT[LinkedCase],
            [{"case_id": case_id, "other_case_id": other} for other in case.linked_cases],
        )
    conn.execute(
        _INSERT[CaseEvent],
        {
            "case_id": case_id,
            "from_status": None,
            "to_status": status,
            "by": actor.username,
            "role": actor.role,
            "at": now,
            "reason": None,
        },
    )
    audits.append(
        _audit_row(
            actor,
            "case.registered",
            "case",
            case_id,
            state=case.entry_state,
            detail={
                "persons": len(persons),
                "documents": len(docs),
                "family_links": len(case.family_links),
                "linked_cases": len(case.linked_cases),
                "duplicates_flagged": len(duplicates),
                "tier": screening.tier,
            },
        )
    )
    conn.execute(_INSERT[AuditEvent], audits)
    return RegistrationResult(
        case_id=case_id,
        status=status,
        version=1,
        persons={person["ref"]: person["id"] for person, _ in persons},
        duplicates=duplicates,
        tier=screening.tier,
    )


def _check_entry_state(actor: Actor, parsed: ParsedRegistration, pointer: str = "") -> None:
    if actor.state is not None and parsed.case.entry_state != actor.state:
        raise ValidationError(
            [
                (
                    f"{pointer}/entry_state",
                    f"you register for {actor.state}; a case registered in "
                    f"{parsed.case.entry_state} must be registered by that state",
                )
            ]
        )


def register_case(
    session: Session,
    actor: Actor,
    data: Mapping[str, Any],
    *,
    fingerprint_key: bytes,
    idempotency_key: str | None = None,
    today: date | None = None,
) -> RegistrationResult:
    """Register one family case at its entry state; flag possible duplicates; audit it.

    With ``idempotency_key``, a retry of the same request (same actor, key and body) returns
    the first result (``replayed=True``) and creates nothing; the same key with another body
    is a :class:`~fairshare.registry.errors.DuplicateIdempotencyError`. A state-bound actor
    registers only cases whose ``entry_state`` is their own state.
    """
    day = today or date.today()
    request_hash = _request_hash(data)
    key_id: int | None = None
    if idempotency_key is not None:
        if not idempotency_key.strip() or len(idempotency_key) > 200:
            raise InputError("an Idempotency-Key must have 1 to 200 characters")
        key_id = _reserve_key(session, actor, idempotency_key, request_hash)
        if key_id is None:
            # Used before, or by a concurrent request that committed first (PostgreSQL
            # waits for it; SQLite writers are serialised).
            existing = _find_key(session, actor, idempotency_key)
            if existing is not None and existing.response_status:
                return _replay(existing, request_hash, idempotency_key)
            raise DuplicateIdempotencyError(
                f"a request with Idempotency-Key '{idempotency_key}' is still being processed; "
                "retry in a moment"
            )
    parsed = parse_registration(data, fingerprint_key=fingerprint_key, today=day)
    _check_entry_state(actor, parsed)
    result = _store(session, actor, parsed, status=workflow_rules().initial)
    if key_id is not None:
        session.connection().execute(
            _KEY_DONE, {"key_id": key_id, "done_status": 201, "done_body": result.to_dict()}
        )
    return result


def _reserve_key(session: Session, actor: Actor, key: str, request_hash: str) -> int | None:
    """Insert the idempotency key row (one statement); ``None`` if the key is taken.

    ``INSERT ... ON CONFLICT DO NOTHING``: on PostgreSQL a concurrent insert of the same key
    makes this one wait until the other transaction ends, then do nothing (or insert, if
    the other rolled back). No savepoint needed.
    """
    dialect = session.get_bind().dialect.name
    inserted: int | None = (
        session.connection()
        .execute(
            _RESERVE_KEY["postgresql" if dialect == "postgresql" else "sqlite"],
            {
                "actor": actor.username,
                "key": key,
                "request_hash": request_hash,
                "response_status": 0,
                "response_body": {},
                "created_at": utcnow(),
            },
        )
        .scalar_one_or_none()
    )
    return inserted


def bulk_import(
    session: Session,
    actor: Actor,
    rows: object,
    *,
    fingerprint_key: bytes,
    today: date | None = None,
) -> BulkImportReport:
    """Import many cases at once: all of them, or none and a report of every bad row.

    ``rows`` is a list of cases, or an allocation input document (its ``cases``): the same
    case JSON ``fairshare allocate`` reads, registration fields allowed. Case ids in the
    file must be new; ``linked_cases`` must name a case of the file or one already
    registered. Nothing is written unless every row is valid.
    """
    day = today or date.today()
    base = ""
    items = rows
    if isinstance(rows, Mapping):
        items = rows.get("cases")
        base = "/cases"
    if not isinstance(items, list):
        return BulkImportReport(
            False, [], [{"row": None, "pointer": base, "message": "expected a list of cases"}]
        )
    errors: list[dict[str, Any]] = []
    parsed: list[ParsedRegistration] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        pointer = f"{base}/{i}"
        try:
            reg = parse_registration(
                item, fingerprint_key=fingerprint_key, today=day, pointer=pointer
            )
            _check_entry_state(actor, reg, pointer)
        except ValidationError as exc:
            errors.extend({"row": i, "pointer": p, "message": m} for p, m in exc.problems)
            continue
        cid = reg.client_id
        if cid is not None:
            if cid in seen:
                errors.append(
                    {
                        "row": i,
                        "pointer": f"{pointer}/id",
                        "message": f"case id '{cid}' is already used by row {seen[cid]}",
                    }
                )
            else:
                seen[cid] = i
        parsed.append(reg)
    if seen:
        taken = set(session.scalars(select(Case.id).where(Case.id.in_(list(seen)))))
        for cid in sorted(taken, key=seen.__getitem__):
            errors.append(
                {
                    "row": seen[cid],
                    "pointer": f"{base}/{seen[cid]}/id",
                    "message": f"case id '{cid}' is already registered",
                }
            )
    wanted = {o for reg in parsed for o in reg.case.linked_cases} - set(seen)
    known = (
        set(session.scalars(select(Case.id).where(Case.id.in_(list(wanted))))) if wanted else set()
    )
    for i, item in enumerate(items):
        links = item.get("linked_cases") if isinstance(item, Mapping) else None
        for j, other in enumerate(links if isinstance(links, list) else ()):
            if isinstance(other, str) and other not in seen and other not in known:
                errors.append(
                    {
                        "row": i,
                        "pointer": f"{base}/{i}/linked_cases/{j}",
                        "message": f"linked case '{other}' is neither in the file nor registered",
                    }
                )
    if errors:
        errors.sort(key=lambda e: e["row"] if e["row"] is not None else -1)
        return BulkImportReport(False, [], errors)
    imported: list[str] = []
    duplicates: list[dict[str, Any]] = []
    initial = workflow_rules().initial
    for reg in parsed:
        result = _store(session, actor, reg, status=initial)
        imported.append(result.case_id)
        duplicates.extend(result.duplicates)
    record_event(
        session,
        actor,
        "case.bulk_imported",
        "case",
        None,
        detail={"cases": len(imported), "duplicates_flagged": len(duplicates)},
    )
    return BulkImportReport(True, imported, [], duplicates)


# --------------------------------------------------------------------------------------------
# Erasure and retention


def erase_person(session: Session, actor: Actor, person_id: str, *, reason: str) -> None:
    """Erase a person's personal data (Regulation (EU) 2016/679 Art. 17), keeping the trace.

    Removed: names, birth date, documents, biometric and document fingerprints,
    vulnerabilities and UNHCR codes, duplicate flags, screening notes, categories and
    trafficking indicators, the case's medical needs and reception place. Kept: the ids, the
    age, sex and nationality (needed for the statistics and the ledger), the status history
    and every audit event. The erasure itself is audited (with its reason category, which
    must not contain personal data).
    """
    if not reason or not reason.strip():
        raise InputError("give the reason for the erasure (e.g. 'retention expired', 'Art. 17')")
    person = session.get(Person, person_id)
    if person is None:
        raise NotFoundError("person", person_id)
    person.given_name = None
    person.family_name = None
    person.birth_date = None
    person.vulnerabilities = []
    person.unhcr_codes = []
    person.fingerprint = None
    person.duplicate_flags = []
    person.erased_at = utcnow()
    documents = len(
        session.scalars(
            delete(Document).where(Document.person_id == person_id).returning(Document.id)
        ).all()
    )
    session.execute(
        update(Screening)
        .where(Screening.person_id == person_id)
        .values(advice_and_support=None, categories=[], unhcr_codes=[], trafficking_indicators=[])
    )
    case = session.get(Case, person.case_id)
    if case is not None:
        case.medical_needs = None
        case.reception_place = None
        session.execute(
            update(FamilyLinkRow).where(FamilyLinkRow.case_id == case.id).values(member_name=None)
        )
    record_event(
        session,
        actor,
        "person.erased",
        "person",
        person_id,
        state=case.entry_state if case else None,
        detail={"case": person.case_id, "documents_removed": documents, "reason": reason.strip()},
    )


def purge_expired(
    session: Session,
    actor: Actor,
    *,
    retention_years: int = DEFAULT_RETENTION_YEARS,
    today: date | None = None,
) -> list[str]:
    """Erase every person registered more than ``retention_years`` ago; the ids erased.

    The default of 10 years is Eurodac's for applicants (Regulation (EU) 2024/1358
    Art. 29(1)); storage limitation, Regulation (EU) 2016/679 Art. 5(1)(e).
    """
    if isinstance(retention_years, bool) or not isinstance(retention_years, int):
        raise InputError(f"retention_years must be a whole number, not {retention_years!r}")
    if retention_years < 1:
        raise InputError(f"retention_years must be at least 1, not {retention_years}")
    day = today or date.today()
    try:
        cutoff = day.replace(year=day.year - retention_years)
    except ValueError:  # 29 February
        cutoff = day.replace(year=day.year - retention_years, day=28) + timedelta(days=1)
    ids = list(
        session.scalars(
            select(Person.id)
            .join(Case, Case.id == Person.case_id)
            .where(Case.registered_on < cutoff, Person.erased_at.is_(None))
            .order_by(Person.id)
        )
    )
    for pid in ids:
        erase_person(session, actor, pid, reason=f"retention of {retention_years} years expired")
    record_event(
        session,
        actor,
        "person.purge",
        "person",
        None,
        detail={
            "erased": len(ids),
            "retention_years": retention_years,
            "cutoff": cutoff.isoformat(),
        },
    )
    return ids
