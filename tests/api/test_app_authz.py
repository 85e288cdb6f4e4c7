"""The authorization matrix, generated from the grant table the code uses.

For every route, role and scope cell: a role without the route's permission gets 403; a
role with it gets 404 for a record outside its scope and an answer (not 403/404/5xx) for a
record inside; lists never show another state's records to a scoped role.
"""

# ruff: noqa: F811  (the api and world fixtures are imported from app_support)
from __future__ import annotations

from typing import Any

import pytest
from app_support import Api, World, api, family, world  # noqa: F401  (fixtures)

from fairshare.api.app import api_routes, create_app, route_permission
from fairshare.api.permissions import GRANTS, Permission, Role, Scope, scope_of

# method, path, the kind of record in the path, a body for the request
ENDPOINTS: list[tuple[str, str, str | None, Any]] = [
    ("GET", "/api/v1/cases", None, None),
    ("POST", "/api/v1/cases", None, "family"),
    ("GET", "/api/v1/cases/{case}", "case", None),
    ("PATCH", "/api/v1/cases/{case}", "case", {"reception_place": "Elsewhere"}),
    ("POST", "/api/v1/cases/{case}/transitions", "case", {"to": "screened"}),
    ("GET", "/api/v1/cases/{case}/persons", "case", None),
    ("GET", "/api/v1/cases/{case}/events", "case", None),
    ("POST", "/api/v1/persons/{person}/screenings", "person", {"categories": []}),
    ("DELETE", "/api/v1/persons/{person}", "person", None),
    ("GET", "/api/v1/duplicates", None, None),
    ("GET", "/api/v1/capacities", None, None),
    ("PUT", "/api/v1/capacities/{capacity}", "capacity", {"free": 2}),
    ("POST", "/api/v1/batches/preview", None, {"seed": 1}),
    ("POST", "/api/v1/batches", None, {"seed": 1}),
    ("GET", "/api/v1/batches", None, None),
    ("GET", "/api/v1/batches/{batch}", "batch", None),
    ("GET", "/api/v1/transfers", None, None),
    ("POST", "/api/v1/cases/{case}/transfer", "case", {"scheduled_for": "2026-01-01"}),
    ("POST", "/api/v1/cases/{case}/transfer/transferred", "case", None),
    ("POST", "/api/v1/cases/{case}/transfer/arrived", "case", None),
    ("GET", "/api/v1/ledger", None, None),
    ("GET", "/api/v1/aggregates", None, None),
    ("GET", "/api/v1/audit", None, None),
    ("GET", "/api/v1/exports/pseudonymised", None, None),
    ("POST", "/api/v1/imports", None, "import"),
    ("POST", "/api/v1/users", None, "user"),
]


def _app_permissions(tmp_path: Any) -> dict[tuple[str, str], str | None]:
    from app_support import make_settings

    app = create_app(make_settings(f"sqlite:///{tmp_path / 'x.db'}", tmp_path))
    out = {}
    for path, route in api_routes(app):
        for method in route.methods:
            out[(method, path)] = route_permission(route)
    app.state.fairshare.engine.dispose()
    return out


def _template(path: str) -> str:
    for name in ("case", "person", "capacity", "batch"):
        path = path.replace("{" + name + "}", "{x}")
    return path


def test_every_route_declares_a_permission(tmp_path: Any) -> None:
    perms = _app_permissions(tmp_path)
    missing = [key for key, p in perms.items() if p is None and key[1] != "/api/docs"]
    assert missing == [], f"routes without a declared permission: {missing}"
    # The dashboard's pages (tests/web) declare theirs the same way; here: the API's routes.
    public = {
        key
        for key, p in perms.items()
        if p in ("public", "authenticated") and key[1].startswith("/api/")
    }
    assert {k[1] for k in public} == {
        "/api/v1/auth/token",
        "/api/v1/auth/logout",
        "/api/v1/me",
        "/api/v1/health",
    }


def test_the_matrix_covers_every_route(tmp_path: Any) -> None:
    perms = _app_permissions(tmp_path)
    declared = {
        (m, _template_app(p))
        for (m, p), perm in perms.items()
        if perm in {x.value for x in Permission} and p.startswith("/api/")
    }
    covered = {(m, _template(p)) for m, p, _, _ in ENDPOINTS}
    assert declared == covered


def _template_app(path: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", "{x}", path)


def _permission(tmp_perms: dict[tuple[str, str], str | None], method: str, path: str) -> Permission:
    for (m, p), perm in tmp_perms.items():
        if m == method and _template_app(p) == _template(path):
            assert perm is not None
            return Permission(perm)
    raise AssertionError(f"no route {method} {path}")


def _record(world: World, kind: str, role: Role, own: bool, batch: str) -> str:
    if kind == "batch":
        return batch
    if kind == "capacity":
        return "DE" if own else "SE"
    cases = {
        "case": (world.el_case, world.it_case, world.de_case),
        "person": (world.el_person, world.it_person, world.de_person),
    }[kind]
    el, it, de = cases
    if role is Role.caseworker:
        return de if own else el
    return el if own else it


def _body(api: Api, spec: Any, role: Role) -> tuple[dict[str, Any], Any]:
    if spec == "family":
        return {"json": family("EL")}, None
    if spec == "import":
        return {"json": [family("EL")]}, None
    if spec == "user":
        return {
            "json": {"username": "new-user", "password": "a long enough phrase", "role": "analyst"}
        }, None
    return ({"json": spec} if spec is not None else {}), None


def _batch_id(api: Api) -> str:
    r = api.client.get("/api/v1/batches", headers=api.as_role(Role.coordinator))
    return str(r.json()["items"][0]["id"])


@pytest.mark.parametrize(("method", "path", "kind", "spec"), ENDPOINTS, ids=lambda v: str(v))
def test_authorization_matrix(
    api: Api, world: World, tmp_path: Any, method: str, path: str, kind: str | None, spec: Any
) -> None:
    perms = _app_permissions(tmp_path)
    permission = _permission(perms, method, path)
    batch = _batch_id(api)
    for role in Role:
        scope = scope_of(role, permission)
        headers = api.as_role(role, **{"If-Match": '"1"'})
        cells = [True] if kind is None else [False, True]
        for own in cells:
            url = path
            if kind is not None:
                url = path.replace("{" + kind + "}", _record(world, kind, role, own, batch))
            kwargs, _ = _body(api, spec, role)
            r = api.client.request(method, url, headers=headers, **kwargs)
            where = f"{role.value} {method} {url} ({'own' if own else 'other'})"
            assert r.status_code < 500, f"{where}: {r.status_code} {r.text}"
            if scope is None:
                assert r.status_code == 403, f"{where}: {r.status_code} {r.text}"
                continue
            scoped = scope in (Scope.own_entry_state, Scope.allocated_to_own_state, Scope.own_state)
            if kind is not None and not own and scoped and kind != "batch":
                assert r.status_code == 404, f"{where}: {r.status_code} {r.text}"
            else:
                assert r.status_code not in (401, 403, 404), f"{where}: {r.status_code} {r.text}"
                if method == "GET":
                    assert r.status_code == 200, f"{where}: {r.status_code} {r.text}"


def test_lists_never_show_other_states_records(api: Api, world: World) -> None:
    r = api.client.get("/api/v1/cases", headers=api.headers("reg-el"))
    ids = {c["id"] for c in r.json()["items"]}
    assert ids == {world.el_case, world.de_case}
    assert r.json()["total"] == 2
    r = api.client.get("/api/v1/cases", headers=api.headers("cw-de"))
    assert {c["id"] for c in r.json()["items"]} == {world.de_case}
    r = api.client.get("/api/v1/cases", headers=api.headers("cw-se"))
    assert r.json()["items"] == []
    r = api.client.get("/api/v1/cases?entry_state=IT", headers=api.headers("reg-el"))
    assert r.json()["items"] == []
    r = api.client.get("/api/v1/transfers", headers=api.headers("reg-it"))
    assert r.json()["items"] == []
    r = api.client.get("/api/v1/transfers", headers=api.headers("cw-de"))
    assert [t["case_id"] for t in r.json()["items"]] == [world.de_case]
    r = api.client.get("/api/v1/capacities", headers=api.headers("cap-de"))
    assert [c["state"] for c in r.json()] == ["DE"]
    r = api.client.get("/api/v1/cases", headers=api.headers("coord"))
    assert r.json()["total"] == 3


def test_fields_follow_visible_fields(api: Api, world: World) -> None:
    from fairshare.api.permissions import visible_fields

    for role in Role:
        if scope_of(role, Permission.cases_read) is None:
            continue
        case = world.de_case
        r = api.client.get(f"/api/v1/cases/{case}/persons", headers=api.as_role(role))
        assert r.status_code == 200, (role, r.text)
        for person in r.json():
            assert set(person) <= visible_fields(role, "persons"), role
            if role is Role.coordinator:
                assert "vulnerabilities" not in person
                assert "given_names" not in person
        r = api.client.get(f"/api/v1/cases/{case}", headers=api.as_role(role))
        assert set(r.json()) <= visible_fields(role, "cases")
    assert GRANTS  # the table the test is generated from
