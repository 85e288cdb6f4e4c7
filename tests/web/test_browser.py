"""Every role's main flow in a real browser (Debian's chromium via Playwright).

Each test also asserts (in the ``visit`` fixture) that no request left 127.0.0.1 and that the
page logged no console error, and keeps a screenshot of every page in build/screenshots/.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from fairshare.registry.dashboard import capacity_totals
from fairshare.registry.db import make_engine, session_scope
from fairshare.registry.models import Case
from fairshare.registry.scopes import Actor
from fairshare.registry.services import aggregates, confirm_transferred, schedule_transfer
from fairshare.web.views import overview_rows


def test_registrar_registers_and_screens_a_family(visit: Any) -> None:
    v = visit("registrar")
    v.login("registrar.el")
    page = v.page
    v.shot("overview")
    page.click("text=Register a family")
    v.shot("register")
    # An impossible date is refused at the field, and nothing is stored.
    page.fill("#m0-given_name", "Amal")
    page.fill("#m0-family_name", "Example")
    page.fill("#m0-birth_date", "2031-02-30")
    page.click("#register-submit")
    error = page.locator("#m0-birth_date[aria-invalid=true]")
    assert error.count() == 1
    assert "date" in page.inner_text("#err-m0-birth_date").lower()
    v.shot("register-error")
    page.fill("#m0-birth_date", "1994-05-02")
    page.check("input[name=m0-vulnerabilities][value=pregnant]")
    page.click("[data-add-member]")
    page.fill("#m1-given_name", "Noor")
    page.fill("#m1-family_name", "Example")
    page.fill("#m1-birth_date", "2019-03-14")
    page.click("#register-submit")
    page.wait_for_url(re.compile(r"/cases/EL-"))
    assert "registered" in page.inner_text(".flash.ok")
    case_id = page.url.rsplit("/", 1)[1].split("?")[0]
    assert page.locator("#members-table tbody tr").count() == 2
    v.shot("case-registered")
    page.click("text=Screen " + case_id + "-P1")
    v.shot("screen")
    page.check("input[name=categories][value=pregnant]")
    page.fill("#advice", "Antenatal appointment booked; interpreter in Arabic.")
    page.click("#screen-submit")
    page.wait_for_url(re.compile(rf"/cases/{case_id}\?done=screened"))
    page.click("button:has-text('Mark as screened')")
    page.wait_for_load_state()
    page.click("button:has-text('Mark as ready')")
    page.wait_for_load_state()
    assert "ready" in page.inner_text(".badge.status")
    assert "tier 1" in page.inner_text("main")
    assert "maternity" in page.inner_text("main")
    v.shot("case-ready")


def test_coordinator_previews_and_commits_a_batch(visit: Any, live_server: Any) -> None:
    v = visit("coordinator")
    v.login("coordinator")
    page = v.page
    page.click("text=Allocation batches")
    v.shot("batches")
    page.click("#preview-button")
    page.wait_for_selector("#preview-result")
    heading = page.inner_text("#result-heading")
    assert "placed" in heading
    assert page.locator("#fairness-table tbody tr").count() > 0
    assert page.locator("#decisions-table tbody tr").count() > 0
    v.shot("preview")
    page.click("#commit-button")
    page.wait_for_url(re.compile(r"/batches\?done=committed"))
    assert "committed" in page.inner_text(".flash.ok")
    v.shot("committed")
    # The coordinator allocates from needs and tiers, not from names.
    page.click("text=Queue")
    v.shot("queue")
    first = page.locator("#queue-table tbody a").first
    first.click()
    page.wait_for_load_state()
    headers = page.locator("#members-table thead").inner_text()
    assert "Name" not in headers
    assert "Synthetic" not in page.inner_text("main")
    v.shot("case")


def test_caseworker_confirms_an_arrival(visit: Any, live_server: Any) -> None:
    engine = make_engine(live_server.database_url)
    try:
        with session_scope(engine) as session:
            case = session.scalar(
                select(Case)
                .where(Case.allocated_state == "DE", Case.status == "allocated")
                .order_by(Case.id)
                .limit(1)
            )
            assert case is not None, "the demo data allocates cases to DE"
            registrar = Actor(
                f"registrar.{case.entry_state.lower()}", "registrar", case.entry_state
            )
            schedule_transfer(session, registrar, case.id, date.today() + timedelta(days=3))
            confirm_transferred(session, registrar, case.id)
            case_id = case.id
    finally:
        engine.dispose()
    v = visit("caseworker")
    v.login("caseworker.de")
    page = v.page
    page.click("text=Arrivals")
    v.shot("arrivals")
    page.select_option("#f-status", "transferred")
    page.wait_for_selector(f"#queue-table a:has-text('{case_id}')")
    page.click(f"#queue-table a:has-text('{case_id}')")
    page.wait_for_load_state()
    v.shot("case")
    page.click("#confirm-arrival")
    page.wait_for_url(re.compile(rf"/cases/{case_id}\?done=arrived"))
    assert "arrived" in page.inner_text(".badge.status")
    v.shot("arrived")


def test_analyst_sees_aggregates_and_no_names(visit: Any) -> None:
    v = visit("analyst")
    v.login("analyst")
    page = v.page
    assert page.locator("#states-table tbody tr").count() >= 27
    text = page.inner_text("main")
    assert "Synthetic" not in text
    assert "Demo" not in text
    v.shot("overview")
    nav = page.inner_text("header nav")
    assert "Queue" not in nav
    v.expect_console("status of 403")  # the refusal below, opened on purpose
    response = page.goto(v.server.url + "/queue")
    assert response.status == 403
    assert "Synthetic" not in page.content()
    v.shot("queue-refused")


def test_the_map_shows_every_participating_state_in_its_class(visit: Any, live_server: Any) -> None:
    engine = make_engine(live_server.database_url)
    try:
        with session_scope(engine, readonly=True) as session:
            rows = overview_rows(aggregates(session), capacity_totals(session))
    finally:
        engine.dispose()
    assert len(rows) >= 27
    v = visit("map")
    v.login("auditor")
    page = v.page
    for row in rows:
        element = page.locator(f"#map-{row['state']}")
        assert element.count() == 1, row["state"]
        classes = element.get_attribute("class").split()
        assert row["class"] in classes, (row["state"], classes, row["class"])
    # Details on focus, for keyboard users.
    page.focus(f"#map-{rows[0]['state']}")
    assert rows[0]["name"] in page.inner_text("#map-detail")
    v.shot("map")


def test_every_page_of_the_auditor_and_capacity_manager(visit: Any) -> None:
    v = visit("auditor")
    v.login("auditor")
    for path in ("/", "/queue", "/capacities", "/audit"):
        response = v.go(path)
        assert response is not None
        v.shot(path.strip("/") or "overview")
    assert v.page.locator("#audit-table tbody tr").count() > 0
    w = visit("capacity")
    w.login("capacity.de")
    w.go("/capacities")
    rows = w.page.locator("#capacity-table tbody tr")
    assert rows.count() >= 1
    assert "Germany" in rows.first.inner_text()
    w.page.fill("#capacity-table input[name=free]", "321")
    w.page.click("#capacity-table button[type=submit]")
    w.page.wait_for_url(re.compile(r"/capacities\?done=capacity"))
    assert w.page.locator("#capacity-table input[name=free]").first.input_value() == "321"
    w.shot("capacities")
    a = visit("admin")
    a.login("admin")
    assert a.page.url.endswith("/users")
    a.shot("users")


def test_a_tablet_and_the_keyboard(visit: Any) -> None:
    v = visit("tablet")
    v.page.set_viewport_size({"width": 768, "height": 1024})
    v.login("coordinator")
    page = v.page
    for path in ("/", "/queue", "/batches"):
        v.go(path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (path, overflow)  # the page reflows: no sideways scrolling
        v.shot(path.strip("/") or "overview")
    # The keyboard reaches the skip link first, then the navigation.
    v.go("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    # ... and from the skip link's target the next Tab lands inside the page's content (the
    # first state of the map).
    assert page.evaluate("document.activeElement.closest('main') !== null")
    assert page.evaluate("document.activeElement.tagName.toLowerCase()") in ("a", "g")
