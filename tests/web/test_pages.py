"""The dashboard's pages without a browser: access, CSRF, fields per role, audit of reads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fairshare.maps import europe_shapes
from fairshare.registry.db import make_engine, session_scope
from fairshare.registry.models import AuditEvent, Case
from fairshare.web.views import FULFILMENT_CLASSES, fulfilment_class

PASSWORD = "synthetic-data-only"


@pytest.fixture
def client(web_app: Any) -> Iterator[TestClient]:
    with TestClient(web_app, base_url="http://127.0.0.1", follow_redirects=False) as c:
        yield c


def _login(client: TestClient, username: str) -> None:
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 303, response.text
    assert "fairshare_session" in response.cookies or client.cookies.get("fairshare_session")


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def test_pages_need_a_login(client: TestClient) -> None:
    for path in ("/", "/queue", "/batches", "/audit", "/cases/EL-2026-000001"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def test_a_wrong_password_is_refused_at_the_field(client: TestClient) -> None:
    response = client.post("/login", data={"username": "coordinator", "password": "wrong"})
    assert response.status_code == 401
    assert 'aria-invalid="true"' in response.text
    assert "wrong username or password" in response.text


def test_the_login_only_returns_to_this_site(client: TestClient) -> None:
    response = client.post(
        "/login",
        data={"username": "analyst", "password": PASSWORD, "next": "//evil.example/x"},
    )
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


@pytest.mark.parametrize(
    ("username", "shown", "hidden"),
    [
        ("registrar.el", ["Queue", "Register a family"], ["Allocation batches", "Audit log"]),
        ("coordinator", ["Queue", "Allocation batches", "Capacities"], ["Register", "Audit"]),
        ("caseworker.de", ["Queue", "Arrivals"], ["Allocation batches", "Register"]),
        ("capacity.de", ["Capacities"], ["Queue", "Allocation batches"]),
        ("auditor", ["Queue", "Audit log", "Capacities"], ["Register", "Allocation batches"]),
        ("analyst", ["Overview"], ["Queue", "Capacities", "Audit log"]),
    ],
)
def test_navigation_follows_the_permission_table(
    client: TestClient, username: str, shown: list[str], hidden: list[str]
) -> None:
    _login(client, username)
    nav = client.get("/").text.split("<nav", 1)[1].split("</nav>", 1)[0]
    for label in shown:
        assert label in nav, (username, label)
    for label in hidden:
        assert label not in nav, (username, label)


def test_the_overview_map_has_every_participating_state_in_a_legend_class(
    client: TestClient,
) -> None:
    _login(client, "analyst")
    html = client.get("/").text
    classes = {name for name, _, _ in FULFILMENT_CLASSES} | {"ful-none"}
    found = dict(re.findall(r'id="map-([A-Z]{2})" class="state (ful-[a-z0-9]+)"', html))
    assert len(found) >= 27
    assert set(found.values()) <= classes
    assert set(found) <= {s.code for s in europe_shapes()}
    assert "Synthetic" not in html


def test_fulfilment_classes() -> None:
    assert fulfilment_class(0, None) == "ful-none"
    assert fulfilment_class(49, 100.0) == "ful-0"
    assert fulfilment_class(50, 100.0) == "ful-1"
    assert fulfilment_class(100, 100.0) == "ful-3"
    assert fulfilment_class(151, 100.0) == "ful-6"


def test_a_form_without_its_csrf_token_or_from_another_site_is_refused(
    client: TestClient,
) -> None:
    _login(client, "coordinator")
    page = client.get("/batches")
    token = _csrf(page.text)
    assert client.post("/batches/preview", data={"seed": "1"}).status_code == 403
    assert client.post("/batches/preview", data={"seed": "1", "csrf": "0" * 64}).status_code == 403
    other = client.post(
        "/batches/preview",
        data={"seed": "1", "csrf": token},
        headers={"Origin": "http://evil.example"},
    )
    assert other.status_code == 403
    ok = client.post("/batches/preview", data={"seed": "1", "csrf": token})
    assert ok.status_code == 200
    assert "preview-result" in ok.text


def _a_case(web_app: Any, state: str) -> str:
    engine = make_engine(web_app.state.fairshare.settings.database_url)
    try:
        with session_scope(engine, readonly=True) as s:
            cid = s.scalar(select(Case.id).where(Case.entry_state == state).limit(1))
    finally:
        engine.dispose()
    assert cid
    return cid


def test_names_only_for_roles_that_need_them_and_every_read_is_audited(
    client: TestClient, web_app: Any
) -> None:
    case_id = _a_case(web_app, "EL")
    _login(client, "registrar.el")
    html = client.get(f"/cases/{case_id}").text
    assert "Synthetic" in html  # the demo's fictional names
    engine = make_engine(web_app.state.fairshare.settings.database_url)
    try:
        with session_scope(engine, readonly=True) as s:
            reads = s.scalars(
                select(AuditEvent).where(
                    AuditEvent.actor == "registrar.el",
                    AuditEvent.action == "person.read",
                )
            ).all()
    finally:
        engine.dispose()
    assert reads
    assert "Synthetic" not in str([r.detail for r in reads])  # ids only, no personal data
    client.cookies.clear()
    _login(client, "coordinator")
    html = client.get(f"/cases/{case_id}").text
    assert "Synthetic" not in html
    assert '<th scope="col">Name</th>' not in html


def test_a_scoped_role_gets_404_for_another_states_case(client: TestClient, web_app: Any) -> None:
    case_id = _a_case(web_app, "IT")
    _login(client, "registrar.el")
    response = client.get(f"/cases/{case_id}")
    assert response.status_code == 404
    queue = client.get("/queue?entry_state=IT").text
    assert case_id not in queue
    assert "0 cases" in queue


def test_a_role_without_the_permission_gets_403(client: TestClient) -> None:
    _login(client, "analyst")
    assert client.get("/batches").status_code == 403
    assert client.get("/audit").status_code == 403
    assert client.get("/register").status_code == 403


def test_registration_errors_are_shown_at_the_field_and_nothing_is_stored(
    client: TestClient, web_app: Any
) -> None:
    _login(client, "registrar.el")
    token = _csrf(client.get("/register").text)
    response = client.post(
        "/register",
        data={
            "csrf": token,
            "member_count": "1",
            "m0-given_name": "Test",
            "m0-birth_date": "2031-02-30",
        },
    )
    assert response.status_code == 200  # the form again, with its problems at the fields
    assert 'id="m0-birth_date"' in response.text
    field = response.text.split('id="m0-birth_date"', 1)[1].split(">", 1)[0]
    assert 'aria-invalid="true"' in field
    assert "err-m0-birth_date" in response.text


def test_static_assets_are_served_by_the_package(client: TestClient) -> None:
    for name in ("app.css", "app.js", "htmx-2.0.11.min.js"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200, name
    html = client.get("/login").text
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html


# --------------------------------------------------------------------------------------------
# The pages' authorization matrix, generated from the permission table the code uses.

ROLE_USERS = {
    "registrar": "registrar.el",
    "caseworker": "caseworker.de",
    "capacity_manager": "capacity.de",
    "coordinator": "coordinator",
    "auditor": "auditor",
    "analyst": "analyst",
    "admin": "admin",
}


def _page_routes(app: Any) -> list[tuple[str, str, str | None]]:
    from fairshare.api.app import api_routes, route_permission

    out = []
    for path, route in api_routes(app):
        if path.startswith("/api/"):
            continue
        for method in sorted(route.methods):
            out.append((method, path, route_permission(route)))
    return out


def test_every_page_declares_a_permission(web_app: Any) -> None:
    routes = _page_routes(web_app)
    assert len(routes) >= 15
    missing = [(m, p) for m, p, perm in routes if perm is None]
    assert missing == []
    public = {p for _, p, perm in routes if perm == "public"}
    assert public == {"/login", "/logout"}


@pytest.mark.parametrize("role", sorted(ROLE_USERS))
def test_page_matrix(client: TestClient, web_app: Any, role: str) -> None:
    from fairshare.api.permissions import is_allowed

    _login(client, ROLE_USERS[role])
    for method, path, permission in _page_routes(web_app):
        if method != "GET" or "{" in path or permission in (None, "public"):
            continue
        response = client.get(path)
        allowed = is_allowed(role, permission)
        if path == "/" and not allowed:
            assert response.status_code == 303, (role, path)  # sent to the role's own page
        elif allowed:
            assert response.status_code == 200, (role, path, response.status_code)
        else:
            assert response.status_code == 403, (role, path, response.status_code)
