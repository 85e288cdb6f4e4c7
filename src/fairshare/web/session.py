"""Who is using the dashboard: the login cookie, the CSRF token, role-aware navigation.

The dashboard keeps the same signed bearer token as the API (:mod:`fairshare.api.security`)
in a cookie that scripts cannot read (``HttpOnly``) and that no other site can make the
browser send (``SameSite=Strict``); it is checked exactly as the API checks a bearer token
(:func:`fairshare.api.deps.principal_from_token`: signature, expiry, logout, account still
active with the same role and state). Every form that changes something carries a CSRF token
bound to the login (an HMAC of the token's id under the server's secret), checked on POST,
and a POST from another origin is refused (OWASP CSRF Prevention Cheat Sheet).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from fastapi import Request

from fairshare.api.deps import AppState, Grant, Principal, Require, principal_from_token
from fairshare.api.errors import ApiError
from fairshare.api.permissions import AuthorizationError, Permission, authorize, is_allowed
from fairshare.api.security import InvalidToken

__all__ = [
    "COOKIE",
    "NavItem",
    "PageHome",
    "PagePermission",
    "PageRefusedError",
    "check_csrf",
    "csrf_token",
    "login_redirect",
    "navigation",
    "web_principal",
]

COOKIE = "fairshare_session"


class LoginRequiredError(Exception):
    """No valid login: the page answers with a redirect to the login form."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


def login_redirect(request: Request) -> str:
    """The login page, coming back to this page afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(here, safe='')}"


def web_principal(request: Request) -> Principal:
    """The logged-in user of this request, or :class:`LoginRequiredError`."""
    state: AppState = request.app.state.fairshare
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequiredError(login_redirect(request))
    try:
        return principal_from_token(state, token)
    except InvalidToken:
        raise LoginRequiredError(login_redirect(request)) from None


class PageRefusedError(Exception):
    """The logged-in user may not open this page (403): answered with an HTML page."""

    def __init__(self, principal: Principal, message: str) -> None:
        super().__init__(message)
        self.principal = principal


class PagePermission(Require):
    """The permission a page declares and checks (the same grant table as the API's routes).

    It reads the login cookie instead of a bearer token; a page without a login redirects
    to the login form, a page the role may not open answers 403. The grant is left in
    ``request.state.grant`` for the page.
    """

    def __call__(self, request: Request) -> Grant:  # type: ignore[override]
        principal = web_principal(request)
        try:
            scope = authorize(principal.role, self.permission)
        except AuthorizationError as exc:
            raise PageRefusedError(principal, str(exc)) from None
        grant = Grant(principal, self.permission, scope)
        request.state.grant = grant
        return grant


class PageHome(PagePermission):
    """The overview: a role without its permission is sent to its own first page instead."""

    def __call__(self, request: Request) -> Grant:  # type: ignore[override]
        principal = web_principal(request)
        if not is_allowed(principal.role, self.permission):
            pages = [item.href for item in navigation(principal, "")]
            if pages:
                raise LoginRequiredError(pages[0])
        return super().__call__(request)


def csrf_token(request: Request, principal: Principal) -> str:
    """The CSRF token of this login (the same for every form of the session)."""
    state: AppState = request.app.state.fairshare
    key = state.settings.secret_key_bytes()
    message = f"csrf:{principal.claims.jti}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def check_csrf(request: Request, principal: Principal, submitted: str | None) -> None:
    """Refuse a form that lacks this login's CSRF token or comes from another origin."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        here = f"{request.url.scheme}://{request.url.netloc}"
        if origin.rstrip("/") != here:
            raise ApiError(403, "the form was sent from another site; reload the page")
    elif (referer := request.headers.get("referer")) and urlsplit(referer).netloc not in (
        "",
        request.url.netloc,
    ):
        raise ApiError(403, "the form was sent from another site; reload the page")
    expected = csrf_token(request, principal)
    if not submitted or not hmac.compare_digest(submitted, expected):
        raise ApiError(403, "the form has expired or is not ours; reload the page and send again")


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    permission: Permission | None
    current: bool = False


_NAV: tuple[tuple[str, str, Permission | None], ...] = (
    ("/", "Overview", Permission.aggregates_read),
    ("/queue", "Queue", Permission.cases_list),
    ("/register", "Register a family", Permission.cases_create),
    ("/arrivals", "Arrivals", Permission.transfers_update),
    ("/batches", "Allocation batches", Permission.batches_preview),
    ("/capacities", "Capacities", Permission.capacities_read),
    ("/audit", "Audit log", Permission.audit_read),
    ("/users", "Users", Permission.users_manage),
)


def navigation(principal: Principal, path: str) -> list[NavItem]:
    """The pages this role may open (default deny: a page not granted is not shown)."""
    items = []
    for href, label, permission in _NAV:
        if permission is not None and not is_allowed(principal.role, permission):
            continue
        if href == "/arrivals" and principal.role.value != "caseworker":
            continue  # registrars also update transfers, from the case page
        current = path == href or (href != "/" and path.startswith(href + "/"))
        items.append(NavItem(href, label, permission, current))
    return items
