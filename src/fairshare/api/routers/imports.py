"""Bulk import of registrations (JSON or CSV): all rows or none, every bad row named.

Included with its own body limit (``Settings.max_import_bytes``); FastAPI refuses a larger
body with 413 before reading it whole.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import JSONResponse

from fairshare.api.deps import Grant, Require, StateDep
from fairshare.api.errors import ApiError
from fairshare.api.permissions import Permission
from fairshare.registry.services import bulk_import

router = APIRouter()
P = Permission

# ------------------------------------------------------------------------------------------
# Bulk import

_CSV_LIST = ("languages", "vulnerabilities", "unhcr_codes")
_CSV_CARE = ("reception_place", "medical_needs", "child_protection_referral")
_CSV_MEMBER = (
    "member_id",
    "given_name",
    "family_name",
    "birth_date",
    "age",
    "sex",
    "nationality",
    "age_uncertain",
    *_CSV_LIST,
)


def cases_from_csv(text: str) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """Cases from CSV (one row per person, grouped by the ``case`` column).

    Columns: ``case`` (the client's case reference), ``entry_state``, ``registered_on``,
    the member columns (``member_id``, ``given_name``, ``family_name``, ``birth_date``,
    ``age``, ``sex``, ``nationality``, ``age_uncertain``, and ``;``-separated ``languages``,
    ``vulnerabilities``, ``unhcr_codes``) and the care columns. Returns the cases and, per
    case index, the CSV line of its first row (for error reports).
    """
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in ("case", "entry_state") if c not in header]
    if missing:
        raise ApiError(
            422,
            f"the CSV needs the columns {', '.join(missing)}",
            errors=[{"pointer": "/header", "message": f"missing column {c}"} for c in missing],
        )
    cases: dict[str, dict[str, Any]] = {}
    lines: dict[int, int] = {}
    for line_no, row in enumerate(reader, start=2):
        ref = (row.get("case") or "").strip()
        if ref not in cases:
            lines[len(cases)] = line_no
            care: dict[str, Any] = {}
            for c in _CSV_CARE:
                value = (row.get(c) or "").strip()
                if value:
                    care[c] = value.lower() == "true" if c == "child_protection_referral" else value
            cases[ref] = {
                "entry_state": (row.get("entry_state") or "").strip(),
                "members": [],
                **(
                    {"registered_on": row["registered_on"].strip()}
                    if row.get("registered_on")
                    else {}
                ),
                **({"care": care} if care else {}),
            }
        member: dict[str, Any] = {}
        for c in _CSV_MEMBER:
            value = (row.get(c) or "").strip()
            if not value:
                continue
            if c in _CSV_LIST:
                member[c] = [v.strip() for v in value.split(";") if v.strip()]
            elif c == "age":
                member[c] = int(value) if value.isdigit() else value
            elif c == "age_uncertain":
                member[c] = value.lower() == "true"
            elif c == "member_id":
                member["id"] = value
            else:
                member[c] = value
        cases[ref]["members"].append(member)
    return list(cases.values()), lines


@router.post(
    "/imports",
    tags=["imports"],
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "description": "a list of cases, or an allocation input document "
                        '({"cases": [...]}), as `fairshare allocate` reads',
                        "oneOf": [{"type": "array"}, {"type": "object"}],
                    }
                },
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def import_cases(
    request: Request,
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.import_bulk))],
) -> JSONResponse:
    """Import many registrations at once: all of them, or none and every bad row named."""
    raw = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    lines: dict[int, int] | None = None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "the import is not UTF-8 text") from None
    if kind in ("text/csv", "application/csv"):
        data: Any
        data, lines = cases_from_csv(text)
    elif kind in ("application/json", ""):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ApiError(
                400,
                f"the import is not valid JSON: {exc}",
                errors=[{"pointer": "", "message": str(exc)}],
            ) from None
    else:
        raise ApiError(415, "send application/json or text/csv")
    with app.tx() as session:
        report = bulk_import(
            session, grant.actor, data, fingerprint_key=app.settings.fingerprint_key_bytes()
        )
    if not report.ok:  # bulk_import wrote nothing
        errors = []
        for e in report.errors:
            entry = {"pointer": e["pointer"], "message": e["message"], "row": e["row"]}
            if lines is not None and e["row"] is not None:
                entry["line"] = lines.get(int(e["row"]))
            errors.append(entry)
        first = errors[0] if errors else {"row": None}
        detail = (
            f"nothing was imported: {len(errors)} problem(s), the first in row {first['row']}"
            f" ({first.get('pointer', '')}: {first.get('message', '')})"
        )
        raise ApiError(422, detail, errors=errors)
    return JSONResponse(
        {"imported": report.imported, "count": len(report.imported)}, status_code=201
    )
