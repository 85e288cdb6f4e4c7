"""The dashboard: server-rendered pages for every role, served by the API's FastAPI app.

Every asset (CSS, htmx, the map geometry) is shipped in this package; nothing is loaded from
another site, so the dashboard works with no internet at all.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

__all__ = ["mount_web"]


def mount_web(app: FastAPI) -> None:
    """Add the dashboard's pages and static files to ``app``."""
    from fairshare.web.pages import refused_page, router
    from fairshare.web.session import LoginRequiredError, PageRefusedError

    app.mount("/static", StaticFiles(packages=[("fairshare.web", "static")]), name="static")
    app.include_router(router)

    async def to_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequiredError)
        return RedirectResponse(exc.target, status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageRefusedError)
        return refused_page(request, exc.principal, str(exc))

    app.add_exception_handler(LoginRequiredError, to_login)
    app.add_exception_handler(PageRefusedError, refused)
