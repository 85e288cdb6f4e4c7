"""A live dashboard for the browser tests: uvicorn in a thread, a seeded SQLite registry.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright for Python; Playwright's
own browser download is never used. Without chromium or Playwright these tests are skipped
with a loud reason, and with ``FAIRSHARE_REQUIRE_SERVICES=1`` (CI) that is a failure.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
PASSWORD = "synthetic-data-only"


@dataclass
class LiveServer:
    url: str
    database_url: str
    settings: Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    """A migrated SQLite registry with the synthetic demo data, and its settings."""
    from fairshare.api.security import hash_password
    from fairshare.api.settings import explicit_settings
    from fairshare.registry import db
    from fairshare.registry.demo import seed_demo

    data = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{data / 'registry.db'}"
    settings = explicit_settings(
        env="test",
        data_dir=data,
        database_url=url,
        secret_key=secrets.token_hex(32),
        fingerprint_key=secrets.token_hex(32),
    )
    db.upgrade(url)
    seed_demo(
        url,
        fingerprint_key=settings.fingerprint_key_bytes(),
        hash_password=hash_password,
        cases=240,
        seed=7,
    )
    return url, settings


@pytest.fixture(scope="session")
def live_server(seeded: tuple[str, Any]) -> Iterator[LiveServer]:
    import uvicorn

    from fairshare.api.app import create_app

    url, settings = seeded
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", url, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.fairshare.engine.dispose()


@pytest.fixture(scope="session")
def web_app(seeded: tuple[str, Any]) -> Iterator[Any]:
    """The application in-process (for tests without a browser)."""
    from fairshare.api.app import create_app

    app = create_app(seeded[1])
    try:
        yield app
    finally:
        app.state.fairshare.engine.dispose()


class Visit:
    """A browser page that records requests leaving 127.0.0.1, console errors, screenshots."""

    def __init__(self, browser: Any, server: LiveServer, role: str) -> None:
        self.server = server
        self.role = role
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1366, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.shots = 0
        self.expected: list[str] = []

    def expect_console(self, text: str) -> None:
        """A console message this test provokes on purpose (e.g. a 403 page it opens)."""
        self.expected.append(text)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "data:", "about:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def go(self, path: str) -> Any:
        self.page.goto(self.server.url + path)
        return self.page

    def login(self, username: str) -> None:
        self.go("/login")
        self.page.fill("#username", username)
        self.page.fill("#password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        self.page.screenshot(
            path=str(SCREENSHOTS / f"{self.role}-{self.shots:02d}-{name}.png"), full_page=True
        )

    def close(self) -> None:
        self.context.close()
        assert self.outside == [], f"requests left 127.0.0.1: {self.outside}"
        errors = [e for e in self.errors if not any(x in e for x in self.expected)]
        assert errors == [], f"console errors: {errors}"


@pytest.fixture
def visit(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    opened: list[Visit] = []

    def start(role: str) -> Visit:
        v = Visit(browser, live_server, role)
        opened.append(v)
        return v

    yield start
    for v in opened:
        v.close()
