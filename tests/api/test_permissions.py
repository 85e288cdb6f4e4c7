"""The permission table: default deny, scopes, least privilege, and the doc that shows it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairshare.api.permissions import (
    FIELDS,
    GRANTS,
    SPECIAL_CATEGORY_FIELDS,
    ForbiddenError,
    NotVisibleError,
    Permission,
    Role,
    Scope,
    authorize,
    authorize_object,
    generated_block,
    is_allowed,
    main,
    object_allowed,
    permissions_of,
    replace_generated_block,
    requires_state,
    resources,
    scope_of,
    visible_fields,
)
from fairshare.errors import InputError
from fairshare.workflow import workflow_rules

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
STATES = st.sampled_from(["EL", "IT", "HU", "DE", "SE", "MT"])
OPTIONAL_STATES = st.none() | STATES
IDENTITY = {"given_names", "family_name", "birth_date", "documents", "contact"}
READ_ACTIONS = {"read", "list", "special"}  # persons:special is a read


# -- the names ---------------------------------------------------------------------------------


def test_roles_are_the_roles_of_the_workflow_rules_in_the_same_order() -> None:
    assert tuple(r.value for r in Role) == workflow_rules().roles


def test_transition_rights_agree_with_the_workflow_rules() -> None:
    in_rules = {role for t in workflow_rules().transitions for role in t.roles}
    granted = {r.value for r in Role if is_allowed(r, Permission.transitions_create)}
    assert granted == in_rules


def test_permissions_are_named_resource_colon_action_and_unique() -> None:
    values = [p.value for p in Permission]
    assert len(values) == len(set(values))
    for p in Permission:
        assert re.fullmatch(r"[a-z_]+:[a-z_]+", p.value), p
        assert p.name == p.value.replace(":", "_")
        assert f"{p.resource}:{p.action}" == p.value


def test_the_grant_table_uses_only_known_names_and_cannot_be_changed() -> None:
    assert set(GRANTS) <= set(Role)
    for grants in GRANTS.values():
        assert all(isinstance(p, Permission) for p in grants)
        assert all(isinstance(s, Scope) for s in grants.values())
    with pytest.raises(TypeError):
        GRANTS[Role.admin] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        GRANTS[Role.admin][Permission.audit_read] = Scope.eu_wide  # type: ignore[index]


# -- default deny ------------------------------------------------------------------------------


@given(st.sampled_from(list(Role)), st.sampled_from(list(Permission)))
def test_default_deny_absent_means_forbidden(role: Role, permission: Permission) -> None:
    granted = permission in GRANTS.get(role, {})
    assert is_allowed(role, permission) is granted
    assert (scope_of(role, permission) is not None) is granted
    assert (permission in permissions_of(role)) is granted
    if granted:
        assert authorize(role, permission) is GRANTS[role][permission]
    else:
        with pytest.raises(ForbiddenError, match=f"may not {permission.value}"):
            authorize(role, permission)


@given(st.text(max_size=20).filter(lambda s: s not in {r.value for r in Role}))
def test_an_unknown_role_is_never_allowed(name: str) -> None:
    for permission in Permission:
        with pytest.raises(InputError, match="unknown role"):
            is_allowed(name, permission)


def test_an_unknown_permission_is_an_error() -> None:
    with pytest.raises(InputError, match="unknown permission"):
        is_allowed(Role.auditor, "cases:delete")


def test_strings_are_accepted_for_roles_and_permissions() -> None:
    assert is_allowed("registrar", "cases:create")
    assert scope_of("caseworker", "cases:read") is Scope.allocated_to_own_state


# -- least privilege, role by role ------------------------------------------------------------


def test_only_roles_that_need_them_see_special_category_fields() -> None:
    seeing = {r for r in Role if visible_fields(r, "persons") & SPECIAL_CATEGORY_FIELDS}
    assert seeing == {Role.registrar, Role.caseworker, Role.auditor}
    assert set(FIELDS["persons"]) >= SPECIAL_CATEGORY_FIELDS
    for r in seeing:
        assert visible_fields(r, "persons") >= SPECIAL_CATEGORY_FIELDS


def test_special_category_grants_are_scoped_to_the_records_that_need_them() -> None:
    assert scope_of(Role.registrar, Permission.persons_special) is Scope.own_entry_state
    assert scope_of(Role.caseworker, Permission.persons_special) is Scope.allocated_to_own_state


def test_coordinator_allocates_without_names_documents_or_medical_detail() -> None:
    persons = visible_fields(Role.coordinator, "persons")
    assert persons == {"id", "case_id", "age", "age_uncertain", "languages", "nationality"}
    assert not persons & (IDENTITY | SPECIAL_CATEGORY_FIELDS)
    cases = visible_fields(Role.coordinator, "cases")
    assert {"needs", "tier", "members", "entry_state", "excluded"} <= cases
    assert {"state", "relation", "status"} <= visible_fields(Role.coordinator, "family_links")
    assert not visible_fields(Role.coordinator, "family_links") & {"relative_name"}
    for p in (Permission.batches_preview, Permission.batches_commit):
        assert scope_of(Role.coordinator, p) is Scope.eu_wide


def test_only_the_coordinator_commits_batches() -> None:
    assert {r for r in Role if is_allowed(r, Permission.batches_commit)} == {Role.coordinator}


def test_auditor_reads_everything_and_changes_nothing() -> None:
    auditor = permissions_of(Role.auditor)
    assert all(p.action in READ_ACTIONS for p in auditor)
    assert {r for r in Role if is_allowed(r, Permission.audit_read)} == {Role.auditor}
    for resource in ("cases", "persons", "family_links", "capacities", "batches", "transfers"):
        assert visible_fields(Role.auditor, resource) == frozenset(FIELDS[resource])


def test_analyst_sees_aggregates_only_and_never_a_record() -> None:
    assert set(GRANTS[Role.analyst].values()) == {Scope.aggregates_only}
    for resource in resources():
        if resource != "exports":
            assert visible_fields(Role.analyst, resource) == frozenset(), resource
    export = visible_fields(Role.analyst, "exports")
    assert not export & (IDENTITY | SPECIAL_CATEGORY_FIELDS | {"id", "case_id", "birth_date"})


def test_admin_manages_users_and_sees_no_case_data() -> None:
    assert permissions_of(Role.admin) == {Permission.users_manage}
    for resource in resources():
        if resource != "users":
            assert visible_fields(Role.admin, resource) == frozenset(), resource
    assert "password_hash" not in FIELDS["users"]


def test_capacity_manager_keeps_only_its_own_capacities() -> None:
    assert scope_of(Role.capacity_manager, Permission.capacities_update) is Scope.own_state
    assert visible_fields(Role.capacity_manager, "persons") == frozenset()
    assert visible_fields(Role.capacity_manager, "cases") == frozenset()


def test_aggregates_are_the_same_view_for_every_role_that_has_them() -> None:
    scopes = {s for g in GRANTS.values() for p, s in g.items() if p is Permission.aggregates_read}
    assert scopes == {Scope.aggregates_only}


def test_no_role_reads_identity_fingerprints() -> None:
    assert all("fingerprint" not in name for fields in FIELDS.values() for name in fields)


def test_every_field_needs_a_read_permission_of_its_kind() -> None:
    for resource, fields in FIELDS.items():
        for name, needed in fields.items():
            assert needed.action in {"read", "special", "manage", "pseudonymised"}, (
                resource,
                name,
            )


def test_state_bound_roles() -> None:
    assert {r for r in Role if requires_state(r)} == {
        Role.registrar,
        Role.caseworker,
        Role.capacity_manager,
    }


def test_visible_fields_refuses_an_unknown_resource() -> None:
    with pytest.raises(InputError, match="unknown resource 'person'"):
        visible_fields(Role.registrar, "person")


# -- object-level checks -----------------------------------------------------------------------


@given(STATES, OPTIONAL_STATES, OPTIONAL_STATES)
def test_registrar_reaches_only_its_own_entry_states_cases(
    actor: str, entry: str | None, allocated: str | None
) -> None:
    ok = object_allowed(Role.registrar, Scope.own_entry_state, actor, entry, allocated)
    assert ok is (entry == actor)


@given(STATES, OPTIONAL_STATES, OPTIONAL_STATES)
def test_caseworker_reaches_only_cases_allocated_to_its_state(
    actor: str, entry: str | None, allocated: str | None
) -> None:
    ok = object_allowed(Role.caseworker, Scope.allocated_to_own_state, actor, entry, allocated)
    assert ok is (allocated == actor)


@given(STATES, OPTIONAL_STATES)
def test_capacity_manager_reaches_only_its_own_state(actor: str, record: str | None) -> None:
    ok = object_allowed(Role.capacity_manager, Scope.own_state, actor, record_state=record)
    assert ok is (record == actor)


@given(
    st.sampled_from(list(Role)),
    st.sampled_from(list(Scope)),
    OPTIONAL_STATES,
    OPTIONAL_STATES,
    OPTIONAL_STATES,
    OPTIONAL_STATES,
)
def test_object_checks_fail_closed(
    role: Role,
    scope: Scope,
    actor: str | None,
    entry: str | None,
    allocated: str | None,
    record: str | None,
) -> None:
    ok = object_allowed(role, scope, actor, entry, allocated, record)
    if scope not in GRANTS[role].values() or scope is Scope.aggregates_only:
        assert not ok
    elif scope is Scope.eu_wide:
        assert ok
    elif actor is None:
        assert not ok


def test_authorize_object_answers_403_or_404() -> None:
    assert (
        authorize_object(Role.registrar, Permission.cases_read, "EL", record_entry_state="EL")
        is Scope.own_entry_state
    )
    with pytest.raises(NotVisibleError):
        authorize_object(Role.registrar, Permission.cases_read, "EL", record_entry_state="IT")
    with pytest.raises(NotVisibleError):
        authorize_object(Role.caseworker, Permission.cases_read, "DE", record_entry_state="DE")
    with pytest.raises(ForbiddenError):
        authorize_object(Role.analyst, Permission.cases_read, None, record_entry_state="EL")
    assert (
        authorize_object(Role.coordinator, Permission.cases_read, None, record_entry_state="EL")
        is Scope.eu_wide
    )


# -- the generated documentation ---------------------------------------------------------------


def test_the_security_doc_shows_the_current_table() -> None:
    text = DOC.read_text("utf-8")
    assert generated_block() in text, (
        "docs/security.md is out of date: run "
        "'.venv/bin/python -m fairshare.api.permissions docs/security.md'"
    )


def test_the_table_has_one_row_per_permission_and_a_cell_per_role() -> None:
    block = generated_block()
    for p in Permission:
        (row,) = [line for line in block.splitlines() if line.startswith(f"| `{p.value}` |")]
        assert row.count("|") == len(Role) + 2


def test_the_doc_can_be_regenerated(tmp_path: Path) -> None:
    doc = tmp_path / "security.md"
    doc.write_text(replace_generated_block(DOC.read_text("utf-8")).replace("EU-wide", "x"), "utf-8")
    assert main([str(doc)]) == 0
    assert generated_block() in doc.read_text("utf-8")
    with pytest.raises(InputError, match="BEGIN GENERATED"):
        replace_generated_block("no markers here")


@given(st.sampled_from(list(Role)))
def test_a_role_missing_from_the_table_is_denied_everything(role: Role) -> None:
    from types import MappingProxyType

    import fairshare.api.permissions as permissions

    without = MappingProxyType({r: g for r, g in GRANTS.items() if r is not role})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(permissions, "GRANTS", without)
        assert permissions.permissions_of(role) == frozenset()
        for permission in Permission:
            assert not permissions.is_allowed(role, permission)
            with pytest.raises(ForbiddenError):
                permissions.authorize(role, permission)
        for scope in Scope:
            assert not permissions.object_allowed(role, scope, "EL", "EL", "EL", "EL")
        for resource in permissions.resources():
            assert permissions.visible_fields(role, resource) == frozenset()
