"""The FastAPI application: ``create_app(settings)``.

Nothing happens at import: :func:`create_app` builds the engine from
``settings.database_url`` (it does not migrate; run ``fairshare db upgrade``). The API lives
under ``/api/v1``; its OpenAPI document is ``/api/v1/openapi.json`` and the interactive
documentation ``/api/docs`` is a self-contained page served by this application (no CDN, no
request leaves the machine).
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts

from fairshare.api.deps import AUTHENTICATED, PUBLIC, AppState, Require
from fairshare.api.errors import install_error_handlers
from fairshare.api.routers import allocation, auth, cases, data, imports
from fairshare.api.settings import Settings, get_settings
from fairshare.registry.db import make_engine

__all__ = ["API_PREFIX", "api_routes", "create_app", "route_permission"]

API_PREFIX = "/api/v1"


def route_permission(route: APIRoute) -> str | None:
    """The permission a route declares (``cases:read``), ``public``, ``authenticated`` or None."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        call = dep.call
        if isinstance(call, Require):
            return call.permission.value
        if call is PUBLIC or call is AUTHENTICATED:
            return repr(call)
        stack.extend(dep.dependencies)
    return None


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """Every API route of ``app`` with its full path, including those of included routers."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            yield str(context.path or route.path), route


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for ``settings`` (default: from the environment, fail-closed).

    Request bodies are limited by FastAPI itself (413 before the body is read whole):
    ``settings.max_body_bytes``, and ``settings.max_import_bytes`` for bulk imports.
    """
    settings = settings or get_settings()
    engine = make_engine(settings.database_url)
    app = FastAPI(
        title="fairshare",
        version="1",
        summary="Case registry and fair allocation of people seeking protection",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        max_body_size=settings.max_body_bytes,
    )
    app.state.fairshare = AppState(settings=settings, engine=engine)
    install_error_handlers(app)
    for module in (auth, cases, allocation, data, imports):
        for route in module.router.routes:
            if isinstance(route, APIRoute):
                extra = {**(route.openapi_extra or {}), "x-permission": route_permission(route)}
                route.openapi_extra = extra
    for module in (auth, cases, allocation, data):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(imports.router, prefix=API_PREFIX, max_body_size=settings.max_import_bytes)
    page = resources.files("fairshare.api").joinpath("docs.html").read_text("utf-8")

    @app.get("/api/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        return HTMLResponse(page)

    # The dashboard (server-rendered pages and their packaged assets) on the same app.
    from fairshare.web import mount_web

    mount_web(app)

    return app
