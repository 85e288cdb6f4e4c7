"""Request and response schemas, one per direction (``CaseCreate`` in, ``CasePublic`` out).

Requests are validated by pydantic first (types, formats, impossible dates such as
2031-02-30, unknown fields) and then by the registry (the allocation rules: states,
categories, family links), both answering with field-level JSON Pointers.

Responses: a record is built as a plain dict and *projected* onto
:func:`fairshare.api.permissions.visible_fields` of the caller's role before it is
serialised, so a field the role may not see is absent (not ``null``). The response models
below therefore declare every field optional; which ones a role gets is the grant table's
decision (``docs/security.md``), e.g. names need ``persons:read`` and vulnerabilities,
screening, medical needs and trafficking indicators need ``persons:special``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fairshare.api.permissions import Role, visible_fields

__all__ = [
    "BatchRequest",
    "CapacityPut",
    "CaseCreate",
    "CasePublic",
    "CaseUpdate",
    "Page",
    "PersonPublic",
    "ScreeningCreate",
    "TokenOut",
    "TransferSchedule",
    "TransitionRequest",
    "UserCreate",
    "project",
]

StateCode = Field(min_length=2, max_length=8, pattern=r"^[A-Z]{2}$")
Text200 = Field(min_length=1, max_length=200)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DocumentIn(_In):
    """An identity or travel document; only its keyed fingerprint is used for matching."""

    kind: str = Field(min_length=1, max_length=32, examples=["passport"])
    issuing_state: str = Field(min_length=2, max_length=3, examples=["SYR"])
    number: str = Field(min_length=1, max_length=64)


class MemberCreate(_In):
    """One person of a family case (the allocation fields plus registration fields)."""

    id: str | None = Field(default=None, min_length=1, max_length=64)
    age: int | None = Field(default=None, ge=0, le=130)
    age_uncertain: bool | None = None
    sex: str | None = Field(default=None, min_length=1, max_length=16)
    nationality: str | None = Field(default=None, min_length=2, max_length=3)
    languages: list[str] | None = Field(default=None, max_length=20)
    vulnerabilities: list[str] | None = Field(default=None, max_length=20)
    unhcr_codes: list[str] | None = Field(default=None, max_length=20)
    given_name: str | None = Text200
    family_name: str | None = Text200
    birth_date: date | None = None
    documents: list[DocumentIn] | None = Field(default=None, max_length=10)
    biometric: str | None = Field(default=None, min_length=1, max_length=4096)


class FamilyLinkCreate(_In):
    """A family member outside the case (Regulation (EU) No 604/2013 Art. 8 to 11)."""

    state: str = Field(min_length=2, max_length=16)
    relation: str = Field(min_length=1, max_length=16)
    status: str = Field(min_length=1, max_length=16)
    desired: bool | None = None
    member_name: str | None = Text200


class CareIn(_In):
    """Contact with the care system at the entry state."""

    reception_place: str | None = Text200
    medical_needs: str | None = Field(default=None, min_length=1, max_length=4000)
    child_protection_referral: bool | None = None


class CaseCreate(_In):
    """A registration: the case JSON of ``fairshare allocate`` plus registration fields."""

    id: str | None = Field(default=None, min_length=1, max_length=64)
    entry_state: str = Field(min_length=2, max_length=8)
    registered_on: date | None = None
    members: list[MemberCreate] = Field(min_length=1, max_length=50)
    family_links: list[FamilyLinkCreate] | None = Field(default=None, max_length=50)
    linked_cases: list[str] | None = Field(default=None, max_length=20)
    preferences: list[str] | None = Field(default=None, max_length=50)
    scores: dict[str, float] | None = None
    excluded: list[dict[str, Any]] | None = Field(default=None, max_length=50)
    care: CareIn | None = None

    def registry_body(self) -> dict[str, Any]:
        """The body as the registry reads it (JSON types, unset fields left out)."""
        return self.model_dump(mode="json", exclude_unset=True, exclude_none=False)


class CaseUpdate(_In):
    """Care fields a registrar or the receiving caseworker may change."""

    reception_place: str | None = Text200
    medical_needs: str | None = Field(default=None, min_length=1, max_length=4000)
    child_protection_referral: bool | None = None


class TransitionRequest(_In):
    """Move a case to another workflow state (``rules/workflow.yaml``)."""

    to: str = Field(min_length=1, max_length=32, examples=["screened"])
    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class ScreeningCreate(_In):
    """A vulnerability assessment of one person."""

    categories: list[str] = Field(default_factory=list, max_length=30)
    unhcr_codes: list[str] = Field(default_factory=list, max_length=30)
    trafficking_indicators: list[str] = Field(default_factory=list, max_length=30)
    advice_and_support: str | None = Field(default=None, min_length=1, max_length=4000)
    age_assessed: int | None = Field(default=None, ge=0, le=130)


class TransferSchedule(_In):
    """The date a transfer is planned for (on or before the deadline)."""

    scheduled_for: date


class CapacityPut(_In):
    """A destination's free places and service places (absolute numbers)."""

    free: int = Field(ge=0, le=10_000_000)
    services: dict[str, int] = Field(default_factory=dict)
    parent: str | None = Field(default=None, min_length=2, max_length=8)
    participating: bool = True
    languages: list[str] = Field(default_factory=list, max_length=50)
    nationalities: list[str] = Field(default_factory=list, max_length=300)


class BatchRequest(_In):
    """A batch to preview or commit: the seed of the engine's lottery and which cases."""

    seed: int | None = Field(default=None, ge=0, le=2**62)
    case_ids: list[str] | None = Field(default=None, max_length=100_000)
    key: dict[str, Any] | None = None
    deadline_months: int | None = Field(default=None, ge=1, le=18)


class UserCreate(_In):
    """A new account (the admin sets a first password; the policy applies)."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    role: Role
    state: str | None = Field(default=None, min_length=2, max_length=8)


# ------------------------------------------------------------------------------------------
# Responses


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenOut(_Out):
    """A bearer token (OAuth2 password flow)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class Me(_Out):
    """Who the caller is and what the grant table lets them do."""

    username: str
    role: str
    state: str | None
    permissions: dict[str, str]
    expires_at: datetime


class Health(_Out):
    """The service is up and its database answers."""

    status: Literal["ok"]


class PersonPublic(_Out):
    """A person as one role may see them; fields outside the role's view are absent."""

    id: str | None = None
    case_id: str | None = None
    age: int | None = None
    age_uncertain: bool | None = None
    languages: list[str] | None = None
    nationality: str | None = None
    given_names: str | None = None
    family_name: str | None = None
    birth_date: date | None = None
    sex: str | None = None
    documents: list[dict[str, Any]] | None = None
    contact: str | None = None
    reception_place: str | None = None
    child_protection_referral: bool | None = None
    vulnerabilities: list[str] | None = Field(default=None, description="Art. 9 data")
    unhcr_codes: list[str] | None = Field(default=None, description="Art. 9 data")
    screening: list[dict[str, Any]] | None = Field(default=None, description="Art. 9 data")
    medical_needs: str | None = Field(default=None, description="Art. 9 data")
    trafficking_indicators: list[str] | None = Field(default=None, description="Art. 9 data")
    support_notes: list[str] | None = Field(default=None, description="Art. 9 data")


class CasePublic(_Out):
    """A case as one role may see it."""

    id: str | None = None
    entry_state: str | None = None
    registered_on: date | None = None
    status: str | None = None
    size: int | None = None
    needs: dict[str, int] | None = None
    tier: int | None = None
    linked_cases: list[str] | None = None
    preferences: list[Any] | None = None
    excluded: list[Any] | None = None
    allocated_to: str | None = None
    allocated_on: date | None = None
    transfer_deadline: date | None = None
    overdue: bool | None = None
    history: list[dict[str, Any]] | None = None
    version: int | None = None
    members: list[PersonPublic] | None = None


class Page(_Out):
    """One page of a list."""

    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class CasePage(_Out):
    """One page of cases."""

    items: list[CasePublic]
    total: int
    limit: int
    offset: int


def project(record: dict[str, Any], role: Role | str, resource: str) -> dict[str, Any]:
    """``record`` restricted to the fields ``role`` may see of ``resource``.

    >>> project({"id": "p1", "given_names": "A", "vulnerabilities": []}, "coordinator",
    ...         "persons")
    {'id': 'p1'}
    """
    allowed = visible_fields(role, resource)
    return {k: v for k, v in record.items() if k in allowed}
