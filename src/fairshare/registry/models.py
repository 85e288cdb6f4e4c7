"""The registry's tables (SQLAlchemy 2 declarative, typed).

Personal data (Regulation (EU) 2016/679 Art. 4(1)) is kept only in ``persons``,
``documents``, ``screenings``, ``family_links.member_name`` and the care fields of ``cases``;
special-category data (Art. 9: health, vulnerabilities) only in ``persons.vulnerabilities``,
``persons.unhcr_codes``, ``screenings`` and ``cases.medical_needs``. Those fields are emptied
by erasure (Art. 17) while ids, the status history and the audit trail stay.
``audit_events`` is append-only, enforced in the database by triggers (migration 0001).

Times are stored in UTC; :class:`UTCDateTime` gives them back timezone-aware on both
databases (SQLite has no time zones).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from fairshare.cases import SERVICES

__all__ = [
    "SERVICE_COLUMNS",
    "Assignment",
    "AuditEvent",
    "Base",
    "Batch",
    "Capacity",
    "Case",
    "CaseEvent",
    "CaseSequence",
    "Document",
    "FamilyLinkRow",
    "IdempotencyKey",
    "LedgerEntry",
    "LinkedCase",
    "LoginAttempt",
    "Person",
    "Screening",
    "Transfer",
    "UTCDateTime",
    "User",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware (use fairshare's utcnow())")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base; the constraint naming convention keeps migrations stable."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UTCDateTime,
    }


Base.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The column of each special service's free places in ``capacities``.
SERVICE_COLUMNS: dict[str, str] = {s: f"svc_{s}" for s in SERVICES}


class User(Base):
    """A person who works with the registry; ``state`` scopes state-bound roles."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(32))
    state: Mapped[str | None] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseSequence(Base):
    """The next running number of case ids per entry state and year (``EL-2026-000123``)."""

    __tablename__ = "case_sequences"

    entry_state: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    """A family unit registered at its entry state and allocated as a whole."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_cases_entry_state_status", "entry_state", "status"),
        Index("ix_cases_allocated_state_status", "allocated_state", "status"),
        Index("ix_cases_queue_priority", "tier", "registered_on", "id"),
        Index("ix_cases_registered_on_id", "registered_on", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    entry_state: Mapped[str] = mapped_column(String(8))
    registered_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(32), index=True)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    tier: Mapped[int | None] = mapped_column(Integer)
    needs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    priority_reason: Mapped[str | None] = mapped_column(Text)
    preferences: Mapped[list[Any]] = mapped_column(default=list)
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    excluded: Mapped[list[Any]] = mapped_column(default=list)
    allocated_to: Mapped[str | None] = mapped_column(String(16))
    allocated_state: Mapped[str | None] = mapped_column(String(8))
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id"))
    allocated_on: Mapped[date | None] = mapped_column(Date)
    transfer_deadline: Mapped[date | None] = mapped_column(Date)
    reception_place: Mapped[str | None] = mapped_column(String(200))
    medical_needs: Mapped[str | None] = mapped_column(Text)
    child_protection_referral: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Person(Base):
    """One member of a case. ``ref`` is the id the registering client gave the person."""

    __tablename__ = "persons"
    __table_args__ = (UniqueConstraint("case_id", "ref"),)

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    ref: Mapped[str] = mapped_column(String(64))
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    age: Mapped[int | None] = mapped_column(Integer)
    age_uncertain: Mapped[bool] = mapped_column(Boolean, default=False)
    sex: Mapped[str | None] = mapped_column(String(16))
    nationality: Mapped[str | None] = mapped_column(String(8))
    languages: Mapped[list[Any]] = mapped_column(default=list)
    vulnerabilities: Mapped[list[Any]] = mapped_column(default=list)
    unhcr_codes: Mapped[list[Any]] = mapped_column(default=list)
    fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    duplicate_flags: Mapped[list[Any]] = mapped_column(default=list)
    erased_at: Mapped[datetime | None] = mapped_column()


class Document(Base):
    """An identity or travel document of a person; ``fingerprint`` is its keyed hash."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    issuing_state: Mapped[str] = mapped_column(String(3))
    number: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)


class Screening(Base):
    """One vulnerability assessment of a person (Directive 2013/33/EU Art. 22)."""

    __tablename__ = "screenings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    categories: Mapped[list[Any]] = mapped_column(default=list)
    unhcr_codes: Mapped[list[Any]] = mapped_column(default=list)
    trafficking_indicators: Mapped[list[Any]] = mapped_column(default=list)
    place_of_safety_referral: Mapped[bool] = mapped_column(Boolean, default=False)
    advice_and_support: Mapped[str | None] = mapped_column(Text)
    age_assessed: Mapped[int | None] = mapped_column(Integer)
    assessed_by: Mapped[str] = mapped_column(String(64))
    assessed_at: Mapped[datetime] = mapped_column(default=utcnow)


class FamilyLinkRow(Base):
    """A family member of the applicant outside the case (Regulation (EU) No 604/2013 Art. 8-11)."""

    __tablename__ = "family_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    relation: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    desired: Mapped[bool] = mapped_column(Boolean, default=True)
    member_name: Mapped[str | None] = mapped_column(String(200))


class LinkedCase(Base):
    """Two cases of one family that apply separately and go together (Art. 11)."""

    __tablename__ = "linked_cases"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    other_case_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class CaseEvent(Base):
    """One status transition of a case: from, to, who (and in which role), when, why."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    by: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)


class Capacity(Base):
    """Free places of a receiving state or region, and free places per special service."""

    __tablename__ = "capacities"
    __table_args__ = (
        CheckConstraint("free >= 0", name="free_not_negative"),
        CheckConstraint("version >= 1", name="version_positive"),
        *(
            CheckConstraint(f"{col} >= 0", name=f"{col}_not_negative")
            for col in SERVICE_COLUMNS.values()
        ),
    )

    destination_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    parent: Mapped[str | None] = mapped_column(String(8))
    free: Mapped[int] = mapped_column(Integer, default=0)
    svc_unaccompanied_minor: Mapped[int] = mapped_column(Integer, default=0)
    svc_medical: Mapped[int] = mapped_column(Integer, default=0)
    svc_maternity: Mapped[int] = mapped_column(Integer, default=0)
    svc_accessible: Mapped[int] = mapped_column(Integer, default=0)
    svc_trafficking_shelter: Mapped[int] = mapped_column(Integer, default=0)
    languages: Mapped[list[Any]] = mapped_column(default=list)
    nationalities: Mapped[list[Any]] = mapped_column(default=list)
    participating: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def state(self) -> str:
        """The receiving state: the parent of a region, else the destination itself."""
        return self.parent or self.destination_id

    @property
    def services(self) -> dict[str, int]:
        """Free places per special service."""
        return {s: int(getattr(self, col)) for s, col in SERVICE_COLUMNS.items()}


class Batch(Base):
    """A committed allocation batch; ``summary`` holds fairness before/after (no personal data)."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    coordinator: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    seed: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="committed")
    key: Mapped[dict[str, Any]] = mapped_column(default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Assignment(Base):
    """One case placed by a batch, with the engine's reasons."""

    __tablename__ = "assignments"

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True, index=True)
    destination: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(8))
    persons: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list[Any]] = mapped_column(default=list)


class LedgerEntry(Base):
    """The running fair-share ledger: persons received per destination, cumulative.

    One row per destination and batch (``batch_id`` null for a baseline or a correction);
    the current state of a destination is its newest row (highest ``id``). ``largest_case``
    is M, the largest case allocated so far (docs/ledger.md).
    """

    __tablename__ = "ledger"
    __table_args__ = (Index("ix_ledger_destination_id_id", "destination_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id"))
    destination_id: Mapped[str] = mapped_column(String(16))
    placed: Mapped[int] = mapped_column(Integer)
    received: Mapped[int] = mapped_column(Integer)
    largest_case: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Transfer(Base):
    """The transfer of an allocated case (Regulation (EU) No 604/2013 Art. 29)."""

    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    destination: Mapped[str] = mapped_column(String(16))
    scheduled_for: Mapped[date] = mapped_column(Date)
    deadline: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    transferred_at: Mapped[datetime | None] = mapped_column()
    arrived_at: Mapped[datetime | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """One audit event: who did what to which record, when. Append-only; no personal data."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_resource_resource_id", "resource", "resource_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64), index=True)
    resource: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(80))
    state: Mapped[str | None] = mapped_column(String(8))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class IdempotencyKey(Base):
    """The first response to a creating request, replayed when the request is retried."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("actor", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginAttempt(Base):
    """One login attempt, for throttling (no password is ever stored)."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_username_at", "username", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    success: Mapped[bool] = mapped_column(Boolean)
