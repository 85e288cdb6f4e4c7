"""Bad input, concurrency headers, idempotency, login, logout, imports, audit, docs."""

# ruff: noqa: F811  (the api and world fixtures are imported from app_support)
from __future__ import annotations

import re
from pathlib import Path

from app_support import PASSWORD, Api, World, api, family, make_settings, world  # noqa: F401  (fixtures)
from sqlalchemy import func, select

from fairshare.api.app import create_app
from fairshare.registry.db import session_scope
from fairshare.registry.models import AuditEvent, Case

H = "reg-el"


def test_malformed_json_is_400_problem(api: Api) -> None:
    r = api.client.post(
        "/api/v1/cases",
        content=b'{"entry_state": "EL",',
        headers={**api.headers(H), "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert set(r.json()) >= {"type", "title", "status", "detail", "errors"}


def test_impossible_date_and_wrong_type_name_the_field(api: Api) -> None:
    body = family()
    body["members"][0]["birth_date"] = "2031-02-30"
    body["members"][1]["age"] = "six"
    r = api.client.post("/api/v1/cases", json=body, headers=api.headers(H))
    assert r.status_code == 422
    pointers = {e["pointer"] for e in r.json()["errors"]}
    assert "/members/0/birth_date" in pointers
    assert "/members/1/age" in pointers


def test_unknown_state_and_other_state_are_422(api: Api) -> None:
    r = api.client.post("/api/v1/cases", json=family("XX"), headers=api.headers(H))
    assert r.status_code == 422
    assert any(e["pointer"] == "/entry_state" for e in r.json()["errors"])
    r = api.client.post("/api/v1/cases", json=family("IT"), headers=api.headers(H))
    assert r.status_code == 422


def test_oversized_body_is_413(api: Api) -> None:
    big = b'{"x": "' + b"a" * (api.settings.max_body_bytes + 10) + b'"}'
    r = api.client.post(
        "/api/v1/cases",
        content=big,
        headers={**api.headers(H), "Content-Type": "application/json"},
    )
    assert r.status_code == 413


def test_if_match_missing_stale_and_fresh(api: Api, world: World) -> None:
    url = f"/api/v1/cases/{world.el_case}"
    r = api.client.patch(url, json={"reception_place": "B"}, headers=api.headers(H))
    assert r.status_code == 428
    r = api.client.patch(
        url, json={"reception_place": "B"}, headers=api.headers(H, **{"If-Match": '"7"'})
    )
    assert r.status_code == 412
    r = api.client.patch(
        url, json={"reception_place": "B"}, headers=api.headers(H, **{"If-Match": '"1"'})
    )
    assert r.status_code == 200
    assert r.headers["ETag"] == '"2"'


def test_invalid_transition_is_409_with_explanation(api: Api, world: World) -> None:
    r = api.client.post(
        f"/api/v1/cases/{world.el_case}/transitions",
        json={"to": "arrived"},
        headers=api.headers(H, **{"If-Match": '"1"'}),
    )
    assert r.status_code == 409
    assert "screened" in r.json()["allowed"]
    r = api.client.post(
        f"/api/v1/cases/{world.el_case}/transitions",
        json={"to": "nowhere"},
        headers=api.headers(H, **{"If-Match": '"1"'}),
    )
    assert r.status_code == 422


def test_idempotent_registration_creates_nothing_twice(api: Api) -> None:
    headers = api.headers(H, **{"Idempotency-Key": "k-1"})
    first = api.client.post("/api/v1/cases", json=family(), headers=headers)
    again = api.client.post("/api/v1/cases", json=family(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["case_id"] == again.json()["case_id"]
    assert first.headers["Location"].endswith(first.json()["case_id"])
    with session_scope(api.engine(), readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 1


def test_login_throttle_and_logout(api: Api) -> None:
    ok = api.client.post("/api/v1/auth/token", data={"username": H, "password": PASSWORD})
    assert ok.status_code == 200, ok.text
    token = ok.json()["access_token"]
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "registrar"
    for _ in range(api.settings.login_max_failures):
        bad = api.client.post("/api/v1/auth/token", data={"username": H, "password": "wrong" * 3})
        assert bad.status_code == 401
    locked = api.client.post("/api/v1/auth/token", data={"username": H, "password": PASSWORD})
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    for _ in range(api.settings.login_max_failures):
        api.client.post("/api/v1/auth/token", data={"username": "ghost", "password": "x" * 12})
    ghost = api.client.post("/api/v1/auth/token", data={"username": "ghost", "password": "y" * 12})
    assert ghost.status_code == 429
    out = api.client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert out.status_code == 204
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401


def test_no_token_is_401(api: Api) -> None:
    r = api.client.get("/api/v1/cases")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_import_is_atomic_and_names_the_row(api: Api) -> None:
    bad = family()
    bad["members"][0]["age"] = -3
    r = api.client.post("/api/v1/imports", json=[family(), bad], headers=api.headers(H))
    assert r.status_code == 422
    assert r.json()["errors"][0]["row"] == 1
    assert r.json()["errors"][0]["pointer"].startswith("/1/members/0")
    with session_scope(api.engine(), readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 0
    r = api.client.post(
        "/api/v1/imports", json={"cases": [family(), family()]}, headers=api.headers(H)
    )
    assert r.status_code == 201, r.text
    assert r.json()["count"] == 2
    csv_text = (
        "case,entry_state,registered_on,member_id,given_name,age\n"
        "A,EL,2026-02-01,p1,Ana,30\n"
        "A,EL,2026-02-01,p2,Bo,abc\n"
    )
    r = api.client.post(
        "/api/v1/imports",
        content=csv_text.encode(),
        headers=api.headers(H, **{"Content-Type": "text/csv"}),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["line"] == 2


def test_reads_are_audited_in_the_same_transaction(api: Api, world: World) -> None:
    api.client.get(f"/api/v1/cases/{world.el_case}/persons", headers=api.headers("auditor"))
    with session_scope(api.engine(), readonly=True) as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.actor == "auditor")).all()
    assert any(e.action == "person.read" for e in events)


def test_health_and_docs_need_no_network(api: Api) -> None:
    assert api.client.get("/api/v1/health").json() == {"status": "ok"}
    page = api.client.get("/api/docs").text
    assert not re.search(r"""(src|href)=["']?https?://""", page)
    assert "cdn" not in page.lower()
    assert api.client.get("/api/v1/openapi.json").status_code == 200


def test_create_app_touches_nothing(tmp_path: Path) -> None:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'never.db'}", tmp_path))
    app.state.fairshare.engine.dispose()
    assert not (tmp_path / "never.db").exists()


def test_a_nul_byte_in_a_login_is_a_wrong_login_not_a_server_error(api: Api) -> None:
    # Found by schemathesis on PostgreSQL (text cannot hold NUL).
    for name in ("reg\x00el", "\x00"):
        response = api.client.post(
            "/api/v1/auth/token", data={"username": name, "password": "x" * 12}
        )
        assert response.status_code == 401, response.text
