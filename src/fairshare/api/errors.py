"""Exceptions to HTTP answers: one ``application/problem+json`` shape for every error.

Every error body is ``{"type", "title", "status", "detail", "errors": [{"pointer",
"message"}]}`` (RFC 9457 "Problem Details", with a list of field-level problems). Body
fields are named by a JSON Pointer (RFC 6901, ``/members/0/birth_date``); query, path and
header parameters by ``/<name>`` with ``"in": "query"`` (or ``path``, ``header``).

The mapping (the registry's errors are documented in :mod:`fairshare.registry.errors`):

=============================================  ======
malformed JSON, unreadable form or header         400
invalid token / no token                          401
permission the role lacks                         403
record missing *or* outside the caller's scope    404
workflow step not allowed, conflicts              409
``If-Match`` stale                                412
body larger than the configured limit             413
``If-Match`` missing                              428
invalid fields (pydantic, registry validation)    422
login throttled                                   429
=============================================  ======

Nothing caused by input is ever a 5xx; an unexpected error is a bare 500 with no detail
(the detail goes to the log, never to the client).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fairshare.api.permissions import ForbiddenError, NotVisibleError
from fairshare.api.security import InvalidToken
from fairshare.cases import ValidationError
from fairshare.errors import InputError
from fairshare.registry.errors import (
    ConflictError,
    DuplicateIdempotencyError,
    NotFoundError,
    ScopeError,
    StaleVersionError,
)
from fairshare.workflow import TransitionError

__all__ = [
    "PROBLEM_JSON",
    "ApiError",
    "install_error_handlers",
    "pointer_of",
    "problem",
]

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("fairshare.api")

_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
}


class ApiError(Exception):
    """An error raised by the API layer itself, answered as a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = [dict(e) for e in errors]
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def _escape(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer_of(parts: Iterable[object]) -> str:
    """The JSON Pointer of a path of keys and indexes (``("a", 0)`` -> ``/a/0``)."""
    return "".join(f"/{_escape(p)}" for p in parts)


def problem(
    status: int,
    detail: str,
    errors: Sequence[Mapping[str, Any]] = (),
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """A problem document response."""
    title = _TITLES.get(status, "Error")
    body: dict[str, Any] = {
        "type": f"https://fairshare.invalid/problems/{status}",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": [dict(e) for e in errors],
        **dict(extra or {}),
    }
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def _validation_errors(exc: RequestValidationError) -> tuple[int, str, list[dict[str, Any]]]:
    errors: list[dict[str, Any]] = []
    malformed = False
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        where = str(loc[0]) if loc else "body"
        rest = loc[1:] if loc else []
        if err.get("type") == "json_invalid":
            malformed = True
            ctx = err.get("ctx") or {}
            message = f"the body is not valid JSON: {ctx.get('error', 'syntax error')}"
            errors.append({"pointer": "", "message": message})
            continue
        entry: dict[str, Any] = {"pointer": pointer_of(rest), "message": str(err.get("msg"))}
        if where != "body":
            entry["in"] = where
        errors.append(entry)
    if malformed:
        return 400, "the request body is not valid JSON", errors
    return 422, f"{len(errors)} invalid field(s); see errors", errors


def install_error_handlers(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return problem(exc.status, exc.detail, exc.errors, headers=exc.headers, extra=exc.extra)

    async def on_request_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        status, detail, errors = _validation_errors(exc)
        return problem(status, detail, errors)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem(exc.status_code, str(exc.detail), headers=exc.headers)

    async def on_fairshare(_: Request, exc: Exception) -> JSONResponse:
        return _map_domain_error(exc)

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        _log.exception("unexpected error", exc_info=exc)
        return problem(500, "an unexpected error occurred; it has been logged")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for cls in (InvalidToken, ForbiddenError, NotVisibleError, InputError):
        app.add_exception_handler(cls, on_fairshare)
    app.add_exception_handler(Exception, on_unexpected)


def _map_domain_error(exc: Exception) -> JSONResponse:
    if isinstance(exc, InvalidToken):
        return problem(401, str(exc), headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, ForbiddenError | ScopeError):
        return problem(403, str(exc))
    if isinstance(exc, NotVisibleError):
        return problem(404, "no such record, or it is outside your scope")
    if isinstance(exc, NotFoundError):
        return problem(404, str(exc))
    if isinstance(exc, ValidationError):
        errors = [{"pointer": p, "message": m} for p, m in exc.problems]
        return problem(422, str(exc), errors)
    if isinstance(exc, TransitionError):
        return problem(
            409,
            str(exc),
            extra={"current": exc.current, "target": exc.target, "allowed": list(exc.allowed)},
        )
    if isinstance(exc, StaleVersionError):
        return problem(412, str(exc), extra={"current_version": exc.current})
    if isinstance(exc, DuplicateIdempotencyError):
        busy = "still being processed" in str(exc)
        return problem(409 if busy else 422, str(exc))
    if isinstance(exc, ConflictError):
        return problem(409, str(exc))
    return problem(422, str(exc))
