"""Who may do what to which records: roles, permissions, scopes and one grant table.

Access control for special-category personal data of people at risk (Regulation (EU)
2016/679 Art. 9) follows data protection by design and by default (Art. 25: "only personal
data which are necessary for each specific purpose … are processed") and the integrity and
confidentiality principle (Art. 5(1)(f), Art. 32(1)(b)):

* **Default deny.** :data:`GRANTS` is the only table; a (role, permission) pair that is not in
  it is forbidden. The API, the dashboard (issue 5), the authorization-matrix test and the
  table in ``docs/security.md`` (:func:`permission_table_markdown`) all read it.
* **Scope.** Each grant carries a :class:`Scope` saying which records it reaches;
  :func:`object_allowed` is the object-level check on every read, list, search and export.
  A record outside the scope should be answered as *not found* (HTTP 404), so that a
  scoped user cannot learn that another state's record exists; a permission the role lacks
  is *forbidden* (HTTP 403).
* **Fields.** :data:`FIELDS` names the permission each field of each resource needs;
  :func:`visible_fields` is what a role's response schema may contain. Art. 9 data
  (vulnerabilities, UNHCR codes, screening, medical needs, trafficking indicators) needs
  ``persons:special``; identifying data (names, birth date, documents, contact) needs
  ``persons:read``. Identity fingerprints are never returned by the API at all.

Least privilege, role by role (documented with the reasons in ``docs/security.md``):
registrars work on their own entry state's cases and see everything about them (they
register, arrange care and screen); caseworkers see the cases allocated to their state,
including the special-category data they need to receive people safely; capacity managers
see and keep their own state's capacities; coordinators allocate EU-wide from needs, tier,
family links and matching attributes, without names, documents or medical detail; auditors
read everything, read-only, and the audit log; analysts see aggregates (and pseudonymised
exports) only; admins manage user accounts and no case data.

>>> is_allowed(Role.coordinator, Permission.batches_commit)
True
>>> is_allowed(Role.admin, Permission.cases_read)
False
>>> scope_of(Role.registrar, Permission.persons_special)
<Scope.own_entry_state: 'own_entry_state'>
>>> object_allowed(Role.caseworker, Scope.allocated_to_own_state, "DE",
...                record_entry_state="EL", record_allocated_to="DE", record_state=None)
True
>>> sorted(visible_fields(Role.analyst, "persons"))
[]
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Final

from fairshare.errors import FairshareError, InputError

__all__ = [
    "FIELDS",
    "GRANTS",
    "SPECIAL_CATEGORY_FIELDS",
    "AuthorizationError",
    "ForbiddenError",
    "NotVisibleError",
    "Permission",
    "Role",
    "Scope",
    "authorize",
    "authorize_object",
    "field_table_markdown",
    "generated_block",
    "is_allowed",
    "object_allowed",
    "permission_table_markdown",
    "permissions_of",
    "replace_generated_block",
    "requires_state",
    "resources",
    "scope_of",
    "visible_fields",
]


class Permission(StrEnum):
    """What a request does, named ``resource:action``."""

    cases_read = "cases:read"
    cases_list = "cases:list"
    cases_create = "cases:create"
    cases_update = "cases:update"
    persons_read = "persons:read"
    """Identifying personal data: names, birth date, documents, contact, care arrangements."""
    persons_special = "persons:special"
    """Special categories (GDPR Art. 9): vulnerabilities, screening, medical, trafficking."""
    persons_erase = "persons:erase"
    """Erasure (GDPR Art. 17) at the end of retention or on request; the audit trace stays."""
    duplicates_read = "duplicates:read"
    """Possible duplicate registrations flagged by identity fingerprints, for review."""
    screenings_create = "screenings:create"
    transitions_create = "transitions:create"
    """Move a case through the workflow; *which* steps is rules/workflow.yaml's decision."""
    family_links_read = "family_links:read"
    family_links_create = "family_links:create"
    family_links_update = "family_links:update"
    capacities_read = "capacities:read"
    capacities_update = "capacities:update"
    batches_preview = "batches:preview"
    batches_commit = "batches:commit"
    batches_read = "batches:read"
    transfers_read = "transfers:read"
    transfers_update = "transfers:update"
    ledger_read = "ledger:read"
    aggregates_read = "aggregates:read"
    audit_read = "audit:read"
    exports_pseudonymised = "exports:pseudonymised"
    users_manage = "users:manage"
    import_bulk = "import:bulk"

    @property
    def resource(self) -> str:
        """The part before the colon (``cases`` of ``cases:read``)."""
        return self.value.split(":", 1)[0]

    @property
    def action(self) -> str:
        """The part after the colon (``read`` of ``cases:read``)."""
        return self.value.split(":", 1)[1]


class Role(StrEnum):
    """The roles of issue 4; the same names, in the same order, as rules/workflow.yaml."""

    registrar = "registrar"
    caseworker = "caseworker"
    capacity_manager = "capacity_manager"
    coordinator = "coordinator"
    auditor = "auditor"
    analyst = "analyst"
    admin = "admin"


class Scope(StrEnum):
    """Which records a grant reaches."""

    own_entry_state = "own_entry_state"
    """Records whose entry state is the user's state (registrars)."""
    allocated_to_own_state = "allocated_to_own_state"
    """Cases allocated to the user's state, from allocation on (caseworkers)."""
    own_state = "own_state"
    """Records that belong to the user's state, e.g. its capacities (capacity managers)."""
    eu_wide = "eu_wide"
    """Every state's records."""
    aggregates_only = "aggregates_only"
    """No individual record at all: only aggregates over all states, with counts below
    ``Settings.aggregate_min_count`` suppressed, or pseudonymised export rows limited to
    :func:`visible_fields` of ``exports``. ``aggregates:read`` has this scope for every role
    that holds it (one overview for all); it is the analyst's only scope."""


_R = Role
_P = Permission
_S = Scope

_OWN_ENTRY = _S.own_entry_state
_ALLOCATED = _S.allocated_to_own_state


def _grants(
    table: dict[Role, dict[Permission, Scope]],
) -> Mapping[Role, Mapping[Permission, Scope]]:
    return MappingProxyType({role: MappingProxyType(dict(g)) for role, g in table.items()})


GRANTS: Final[Mapping[Role, Mapping[Permission, Scope]]] = _grants(
    {
        # Entry state: registers, arranges care, screens, schedules and carries out the
        # transfer; needs the full record of its own cases and nothing of other states'.
        _R.registrar: {
            _P.cases_read: _OWN_ENTRY,
            _P.cases_list: _OWN_ENTRY,
            _P.cases_create: _OWN_ENTRY,
            _P.cases_update: _OWN_ENTRY,
            _P.persons_read: _OWN_ENTRY,
            _P.persons_special: _OWN_ENTRY,
            _P.persons_erase: _OWN_ENTRY,
            _P.duplicates_read: _OWN_ENTRY,
            _P.screenings_create: _OWN_ENTRY,
            _P.transitions_create: _OWN_ENTRY,
            _P.family_links_read: _OWN_ENTRY,
            _P.family_links_create: _OWN_ENTRY,
            _P.family_links_update: _OWN_ENTRY,
            _P.transfers_read: _OWN_ENTRY,
            _P.transfers_update: _OWN_ENTRY,
            _P.import_bulk: _OWN_ENTRY,
            _P.aggregates_read: _S.aggregates_only,
        },
        # Receiving state: prepares reception, confirms arrival; sees its allocated cases
        # with the special-category data it needs to receive people safely (Art. 9(2)(g)),
        # and nothing before a case is allocated to it.
        _R.caseworker: {
            _P.cases_read: _ALLOCATED,
            _P.cases_list: _ALLOCATED,
            _P.cases_update: _ALLOCATED,
            _P.persons_read: _ALLOCATED,
            _P.persons_special: _ALLOCATED,
            _P.transitions_create: _ALLOCATED,
            _P.family_links_read: _ALLOCATED,
            _P.transfers_read: _ALLOCATED,
            _P.transfers_update: _ALLOCATED,
            _P.aggregates_read: _S.aggregates_only,
        },
        # Keeps its own state's free places and service places current; no personal data.
        _R.capacity_manager: {
            _P.capacities_read: _S.own_state,
            _P.capacities_update: _S.own_state,
            _P.aggregates_read: _S.aggregates_only,
        },
        # Allocates EU-wide: needs, tier, family links, matching attributes; no names,
        # documents or medical detail (no persons:read, no persons:special).
        _R.coordinator: {
            _P.cases_read: _S.eu_wide,
            _P.cases_list: _S.eu_wide,
            _P.transitions_create: _S.eu_wide,
            _P.family_links_read: _S.eu_wide,
            _P.capacities_read: _S.eu_wide,
            _P.batches_preview: _S.eu_wide,
            _P.batches_commit: _S.eu_wide,
            _P.batches_read: _S.eu_wide,
            _P.transfers_read: _S.eu_wide,
            _P.ledger_read: _S.eu_wide,
            _P.aggregates_read: _S.aggregates_only,
        },
        # Reads everything, changes nothing; every read of personal data is itself audited.
        _R.auditor: {
            _P.cases_read: _S.eu_wide,
            _P.cases_list: _S.eu_wide,
            _P.persons_read: _S.eu_wide,
            _P.persons_special: _S.eu_wide,
            _P.duplicates_read: _S.eu_wide,
            _P.family_links_read: _S.eu_wide,
            _P.capacities_read: _S.eu_wide,
            _P.batches_read: _S.eu_wide,
            _P.transfers_read: _S.eu_wide,
            _P.ledger_read: _S.eu_wide,
            _P.aggregates_read: _S.aggregates_only,
            _P.audit_read: _S.eu_wide,
        },
        # Statistics only: never an individual record.
        _R.analyst: {
            _P.ledger_read: _S.aggregates_only,
            _P.aggregates_read: _S.aggregates_only,
            _P.exports_pseudonymised: _S.aggregates_only,
        },
        # Accounts, not cases (separation of duties: the admin cannot read the audit log
        # that records the admin's own actions, nor any case data).
        _R.admin: {
            _P.users_manage: _S.eu_wide,
        },
    }
)
"""Role -> permission -> scope. Absent means forbidden (default deny)."""

_STATE_SCOPES = frozenset({_S.own_entry_state, _S.allocated_to_own_state, _S.own_state})


def _field_group(permission: Permission, *names: str) -> dict[str, Permission]:
    return dict.fromkeys(names, permission)


_CASE_FIELDS = _field_group(
    _P.cases_read,
    "id",
    "entry_state",
    "registered_on",
    "status",
    "size",
    "needs",
    "tier",
    "linked_cases",
    "preferences",
    "excluded",
    "allocated_to",
    "allocated_on",
    "transfer_deadline",
    "overdue",
    "history",
    "version",
    "members",
)

# A member of a case as the allocation sees it: a record id and the attributes the engine
# matches on (age for minors, languages and nationality for destinations). Carried by
# cases:read, so that a coordinator can allocate without knowing who the person is.
_MEMBER_ALLOCATION_FIELDS = _field_group(
    _P.cases_read, "id", "case_id", "age", "age_uncertain", "languages", "nationality"
)
_PERSON_IDENTITY_FIELDS = _field_group(
    _P.persons_read,
    "given_names",
    "family_name",
    "birth_date",
    "sex",
    "documents",
    "contact",
    "reception_place",
    "child_protection_referral",
)
_PERSON_SPECIAL_FIELDS = _field_group(
    _P.persons_special,
    "vulnerabilities",
    "unhcr_codes",
    "screening",
    "medical_needs",
    "trafficking_indicators",
    "support_notes",
)

FIELDS: Final[Mapping[str, Mapping[str, Permission]]] = MappingProxyType(
    {
        "cases": MappingProxyType(_CASE_FIELDS),
        "persons": MappingProxyType(
            {**_MEMBER_ALLOCATION_FIELDS, **_PERSON_IDENTITY_FIELDS, **_PERSON_SPECIAL_FIELDS}
        ),
        "family_links": MappingProxyType(
            {
                **_field_group(
                    _P.family_links_read, "id", "case_id", "state", "relation", "status", "desired"
                ),
                # The relative is a third party: who they are is identifying personal data.
                **_field_group(_P.persons_read, "relative_name", "relative_contact"),
            }
        ),
        "capacities": MappingProxyType(
            _field_group(
                _P.capacities_read,
                "state",
                "places",
                "free_places",
                "service_places",
                "updated_at",
                "version",
            )
        ),
        "batches": MappingProxyType(
            _field_group(
                _P.batches_read,
                "id",
                "status",
                "created_at",
                "created_by",
                "committed_at",
                "assignments",
                "reasons",
                "fairness_before",
                "fairness_after",
                "seed",
            )
        ),
        "transfers": MappingProxyType(
            _field_group(
                _P.transfers_read,
                "case_id",
                "from_state",
                "to_state",
                "status",
                "scheduled_on",
                "deadline",
                "overdue",
                "transferred_on",
                "arrived_on",
                "version",
            )
        ),
        "audit": MappingProxyType(
            _field_group(
                _P.audit_read,
                "id",
                "at",
                "actor",
                "role",
                "state",
                "action",
                "resource",
                "record_id",
                "reason",
            )
        ),
        "users": MappingProxyType(
            # Never the password hash.
            _field_group(_P.users_manage, "username", "role", "state", "active", "created_at")
        ),
        # A pseudonymised row (still personal data, Recital 26): a per-export pseudonym, no
        # names, documents, fingerprints, free text or exact dates; age in bands.
        "exports": MappingProxyType(
            _field_group(
                _P.exports_pseudonymised,
                "pseudonym",
                "entry_state",
                "allocated_to",
                "registered_month",
                "status",
                "size",
                "tier",
                "needs",
                "age_band",
            )
        ),
    }
)
"""Resource -> field -> the permission a role needs to see it in a response."""

SPECIAL_CATEGORY_FIELDS: Final[frozenset[str]] = frozenset(_PERSON_SPECIAL_FIELDS)
"""The person fields that are special-category data (GDPR Art. 9)."""


class AuthorizationError(FairshareError):
    """A request is not allowed; the subclass says how the API answers."""


class ForbiddenError(AuthorizationError):
    """The role lacks the permission (HTTP 403)."""


class NotVisibleError(AuthorizationError):
    """The record is outside the role's scope (HTTP 404: its existence is not revealed)."""


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InputError(
            f"unknown role '{role}'; roles: {', '.join(r.value for r in Role)}"
        ) from None


def _permission(permission: Permission | str) -> Permission:
    try:
        return Permission(permission)
    except ValueError:
        raise InputError(f"unknown permission '{permission}'") from None


def scope_of(role: Role | str, permission: Permission | str) -> Scope | None:
    """The scope ``role`` holds ``permission`` with, or ``None`` when it does not hold it."""
    return GRANTS.get(_role(role), {}).get(_permission(permission))


def is_allowed(role: Role | str, permission: Permission | str) -> bool:
    """Whether ``role`` holds ``permission`` at all (default deny).

    >>> is_allowed("analyst", "persons:read")
    False
    """
    return scope_of(role, permission) is not None


def permissions_of(role: Role | str) -> frozenset[Permission]:
    """Every permission ``role`` holds."""
    return frozenset(GRANTS.get(_role(role), {}))


def requires_state(role: Role | str) -> bool:
    """Whether a user of ``role`` must belong to a state (some grant is state-scoped).

    ``fairshare users create NAME --role ROLE --state XX`` must refuse a missing ``--state``
    for these roles: without a state every state-scoped check fails closed.

    >>> [r.value for r in Role if requires_state(r)]
    ['registrar', 'caseworker', 'capacity_manager']
    """
    return any(scope in _STATE_SCOPES for scope in GRANTS.get(_role(role), {}).values())


def resources() -> tuple[str, ...]:
    """The resources :func:`visible_fields` knows."""
    return tuple(FIELDS)


def visible_fields(role: Role | str, resource: str) -> frozenset[str]:
    """The fields of ``resource`` that ``role`` may see (data minimisation, Art. 5(1)(c), 25).

    Empty when the role may see none. For a state-scoped role the fields apply only to
    records inside its scope (:func:`object_allowed`). An unknown resource is an error, not
    an empty set, so that a typo cannot silently hide (or show) data.

    >>> sorted(visible_fields(Role.coordinator, "persons"))
    ['age', 'age_uncertain', 'case_id', 'id', 'languages', 'nationality']
    >>> "vulnerabilities" in visible_fields(Role.caseworker, "persons")
    True
    """
    fields = FIELDS.get(resource)
    if fields is None:
        raise InputError(f"unknown resource '{resource}'; resources: {', '.join(FIELDS)}")
    r = _role(role)
    return frozenset(name for name, needed in fields.items() if is_allowed(r, needed))


def object_allowed(
    role: Role | str,
    scope: Scope | str,
    actor_state: str | None,
    record_entry_state: str | None = None,
    record_allocated_to: str | None = None,
    record_state: str | None = None,
) -> bool:
    """Whether a user of ``role`` and ``actor_state`` may reach one record under ``scope``.

    ``scope`` is the grant's (:func:`scope_of`); a scope the role holds for no permission is
    refused. The record is described by its entry state, the state it is allocated to
    (``None`` before allocation) and, for per-state records such as capacities, the state it
    belongs to (for a region's capacity: the region's state).
    Fails closed: a state-scoped check with no ``actor_state``, or a record missing the
    state it is checked against, is refused; ``aggregates_only`` never reaches a record.
    State codes are compared exactly (canonical upper-case codes).

    >>> object_allowed("registrar", "own_entry_state", "EL", record_entry_state="IT")
    False
    >>> object_allowed("registrar", "eu_wide", "EL", record_entry_state="EL")
    False
    """
    r = _role(role)
    s = Scope(scope)
    if s not in GRANTS.get(r, {}).values():
        return False
    if s is Scope.eu_wide:
        return True
    if s is Scope.aggregates_only or not actor_state:
        return False
    record = {
        Scope.own_entry_state: record_entry_state,
        Scope.allocated_to_own_state: record_allocated_to,
        Scope.own_state: record_state,
    }[s]
    return record is not None and record == actor_state


def authorize(role: Role | str, permission: Permission | str) -> Scope:
    """The scope of ``permission`` for ``role``, or :class:`ForbiddenError` (HTTP 403)."""
    scope = scope_of(role, permission)
    if scope is None:
        raise ForbiddenError(f"the {Role(role).value} role may not {Permission(permission).value}")
    return scope


def authorize_object(
    role: Role | str,
    permission: Permission | str,
    actor_state: str | None,
    *,
    record_entry_state: str | None = None,
    record_allocated_to: str | None = None,
    record_state: str | None = None,
) -> Scope:
    """:func:`authorize`, then :func:`object_allowed` on one record, else :class:`NotVisibleError`.

    >>> authorize_object("caseworker", "cases:read", "DE", record_entry_state="EL",
    ...                  record_allocated_to="SE")
    Traceback (most recent call last):
    ...
    fairshare.api.permissions.NotVisibleError: no such record
    """
    scope = authorize(role, permission)
    if not object_allowed(
        role, scope, actor_state, record_entry_state, record_allocated_to, record_state
    ):
        raise NotVisibleError("no such record")
    return scope


# ------------------------------------------------------------------------------------------
# The generated documentation

BEGIN_MARKER = "<!-- BEGIN GENERATED: permission table (python -m fairshare.api.permissions) -->"
END_MARKER = "<!-- END GENERATED: permission table -->"

_SCOPE_LABEL = {
    Scope.own_entry_state: "own entry state",
    Scope.allocated_to_own_state: "allocated to own state",
    Scope.own_state: "own state",
    Scope.eu_wide: "EU-wide",
    Scope.aggregates_only: "aggregates only",
}


def permission_table_markdown() -> str:
    """The grant table as Markdown: one row per permission, one column per role.

    A cell is the scope of the grant, or ``–`` (denied).
    """
    head = "| permission | " + " | ".join(r.value for r in Role) + " |"
    rule = "|---|" + "---|" * len(Role)
    rows = [head, rule]
    for p in Permission:
        cells = []
        for r in Role:
            s = GRANTS.get(r, {}).get(p)
            cells.append(_SCOPE_LABEL[s] if s is not None else "–")
        rows.append(f"| `{p.value}` | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def field_table_markdown() -> str:
    """The field table as Markdown: per resource and field, the permission and the roles.

    Special-category fields (GDPR Art. 9) are marked.
    """
    rows = ["| resource | field | needs | roles that see it |", "|---|---|---|---|"]
    for resource, fields in FIELDS.items():
        for name, needed in fields.items():
            roles = ", ".join(r.value for r in Role if is_allowed(r, needed)) or "–"
            label = f"{name} (Art. 9)" if needed is Permission.persons_special else name
            rows.append(f"| {resource} | {label} | `{needed.value}` | {roles} |")
    return "\n".join(rows) + "\n"


def generated_block() -> str:
    """The text between the markers in ``docs/security.md``."""
    return (
        f"{BEGIN_MARKER}\n\n### Permissions by role (scope of each grant)\n\n"
        f"{permission_table_markdown()}\n### Fields by resource\n\n"
        f"{field_table_markdown()}\n{END_MARKER}"
    )


def replace_generated_block(text: str) -> str:
    """``text`` with its generated block replaced by the current one."""
    start = text.find(BEGIN_MARKER)
    end = text.find(END_MARKER)
    if start < 0 or end < start:
        raise InputError(f"the document has no '{BEGIN_MARKER}' ... '{END_MARKER}' block")
    return text[:start] + generated_block() + text[end + len(END_MARKER) :]


def main(argv: list[str] | None = None) -> int:
    """``python -m fairshare.api.permissions [DOC]``: rewrite DOC's table (default: print it)."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.stdout.write(generated_block() + "\n")
        return 0
    path = Path(args[0])
    path.write_text(replace_generated_block(path.read_text("utf-8")), "utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
