"""The registry's service functions in one place (the API builds on these).

Every function takes a :class:`~sqlalchemy.orm.Session` (one transaction, from
:func:`fairshare.registry.db.session_scope`) and an :class:`Actor`; each change writes its
audit event in that same transaction. See docs/registry.md for the signatures.
"""

from __future__ import annotations

from fairshare.registry.audit import audit_log, audit_read, record_event
from fairshare.registry.batches import (
    DEFAULT_KEY,
    BatchCommit,
    BatchPreview,
    commit_batch,
    current_ledger,
    preview_batch,
    set_ledger_baseline,
)
from fairshare.registry.casework import (
    ScreeningResult,
    confirm_arrival,
    confirm_transferred,
    get_capacity,
    get_case,
    list_capacities,
    list_cases,
    overdue_transfers,
    persons_of_case,
    record_screening,
    schedule_transfer,
    set_capacity,
    transition,
)
from fairshare.registry.exports import age_band, aggregates, pseudonymised_export
from fairshare.registry.registration import (
    DEFAULT_RETENTION_YEARS,
    BulkImportReport,
    RegistrationResult,
    bulk_import,
    erase_person,
    parse_registration,
    purge_expired,
    register_case,
)
from fairshare.registry.scopes import (
    SCOPES,
    Actor,
    capacities_query,
    capacity_scope_filter,
    case_scope_filter,
    cases_query,
    persons_query,
)
from fairshare.registry.users import (
    create_user,
    failed_logins_since,
    get_user,
    record_login_attempt,
    set_user_active,
)

__all__ = [
    "DEFAULT_KEY",
    "DEFAULT_RETENTION_YEARS",
    "SCOPES",
    "Actor",
    "BatchCommit",
    "BatchPreview",
    "BulkImportReport",
    "RegistrationResult",
    "ScreeningResult",
    "age_band",
    "aggregates",
    "audit_log",
    "audit_read",
    "bulk_import",
    "capacities_query",
    "capacity_scope_filter",
    "case_scope_filter",
    "cases_query",
    "commit_batch",
    "confirm_arrival",
    "confirm_transferred",
    "create_user",
    "current_ledger",
    "erase_person",
    "failed_logins_since",
    "get_capacity",
    "get_case",
    "get_user",
    "list_capacities",
    "list_cases",
    "overdue_transfers",
    "parse_registration",
    "persons_of_case",
    "persons_query",
    "preview_batch",
    "pseudonymised_export",
    "purge_expired",
    "record_event",
    "record_login_attempt",
    "record_screening",
    "register_case",
    "schedule_transfer",
    "set_capacity",
    "set_ledger_baseline",
    "set_user_active",
    "transition",
]
