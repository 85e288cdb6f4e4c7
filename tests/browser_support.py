"""Debian's chromium for the browser tests, driven by Playwright for Python.

Playwright's own browser download is never used (`executable_path` points at the `chromium`
package). Without chromium or Playwright a browser test is skipped with a loud reason; with
``FAIRSHARE_REQUIRE_SERVICES=1`` (as `.ci/run` sets) that is a failure instead.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("FAIRSHARE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: Started as root in CI (no sandbox), and quiet: no background requests of its own.
ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
]


def require_browser() -> None:
    """Skip (or, when services are required, fail) if chromium or Playwright is missing."""
    if importlib.util.find_spec("playwright") is None:
        reason = "Playwright for Python is not installed (pip install -e '.[dev]')"
    elif not Path(CHROMIUM).exists():
        reason = f"Debian's chromium is not at {CHROMIUM} (apt-get install chromium)"
    else:
        return
    message = f"BROWSER TESTS NOT RUN: {reason}"
    if os.environ.get("FAIRSHARE_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (FAIRSHARE_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def launch(playwright: Any) -> Any:
    """A headless chromium of the `chromium` package."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
