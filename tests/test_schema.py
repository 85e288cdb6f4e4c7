"""The published JSON Schemas (docs/schema) agree with the parser and with the engine's output."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from fairshare.cases import (
    LINK_STATUSES,
    RELATIONS,
    SERVICES,
    ValidationError,
    parse_problem_input,
    unhcr_codes,
    vulnerability_categories,
)
from fairshare.reference import states
from test_scenarios import SCENARIO_IDS, SCENARIO_PATHS, allocate, load_scenario

SCHEMA_DIR = Path(__file__).parents[1] / "docs" / "schema"
Validator = jsonschema.Draft202012Validator


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text("utf-8"))
    return schema


INPUT_SCHEMA = _schema("allocation-input")
OUTPUT_SCHEMA = _schema("allocation-output")


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return Validator(schema, format_checker=Validator.FORMAT_CHECKER)


INPUT = _validator(INPUT_SCHEMA)
OUTPUT = _validator(OUTPUT_SCHEMA)

#: The example of issue 3, which must keep working.
ISSUE_EXAMPLE: dict[str, Any] = {
    "key": {"name": "population", "year": 2015},
    "ledger": {"received": {"DE": 10234, "SE": 2100}},
    "destinations": [
        {
            "id": "DE",
            "capacity": 12000,
            "services": {
                "unaccompanied_minor": 300,
                "medical": 150,
                "maternity": 80,
                "accessible": 60,
                "trafficking_shelter": 20,
            },
        },
        {"id": "SE", "capacity": 3000, "services": {"maternity": 10}},
    ],
    "cases": [
        {
            "id": "c1",
            "entry_state": "EL",
            "registered_on": "2015-10-02",
            "members": [
                {"id": "p1", "age": 34, "sex": "F", "vulnerabilities": ["pregnant"]},
                {"id": "p2", "age": 6, "sex": "M"},
            ],
            "family_links": [{"state": "SE", "relation": "spouse", "status": "beneficiary"}],
            "linked_cases": ["c2"],
            "preferences": ["SE", "DE"],
            "scores": {"DE": 0.41, "SE": 0.55},
        },
        {
            "id": "c2",
            "entry_state": "EL",
            "registered_on": "2015-10-02",
            "members": [{"id": "p3", "age": 16, "age_uncertain": True, "sex": "M"}],
        },
    ],
}


def _parser_accepts(doc: Any) -> bool:
    try:
        parse_problem_input(doc)
    except ValidationError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# The schemas themselves


@pytest.mark.parametrize("schema", [INPUT_SCHEMA, OUTPUT_SCHEMA], ids=["input", "output"])
def test_schema_is_a_valid_draft_2020_12_schema(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Validator.check_schema(schema)


def test_input_schema_vocabularies_are_the_parsers() -> None:
    defs = INPUT_SCHEMA["$defs"]
    assert defs["state_code"]["enum"] == list(states())
    assert defs["family_link"]["properties"]["relation"]["enum"] == list(RELATIONS)
    assert defs["family_link"]["properties"]["status"]["enum"] == list(LINK_STATUSES)
    services = defs["destination"]["properties"]["services"]
    assert services["propertyNames"]["enum"] == list(SERVICES)
    assert list(services["properties"]) == list(SERVICES)
    vulnerability = defs["person"]["properties"]["vulnerabilities"]["items"]["anyOf"]
    assert vulnerability[0]["enum"] == list(vulnerability_categories())
    assert OUTPUT_SCHEMA["$defs"]["state_code"]["enum"] == list(states())


def test_unhcr_code_pattern_is_exactly_the_codes_in_any_case() -> None:
    code = _validator(INPUT_SCHEMA["$defs"]["unhcr_code"])
    for known in unhcr_codes():
        for variant in (known, known.lower(), known.title()):
            assert code.is_valid(variant), variant
            assert _parser_accepts(_with_vulnerability(variant)), variant
    for unknown in ("XX", "SC-XX", "SC-", "-UC", "SC_UC", " SC-UC", "SC-UC ", "SCUC", ""):
        assert not code.is_valid(unknown), unknown
        assert not _parser_accepts(_with_vulnerability(unknown)), unknown


def _with_vulnerability(value: str) -> dict[str, Any]:
    doc = copy.deepcopy(ISSUE_EXAMPLE)
    doc["cases"][0]["members"][0]["vulnerabilities"] = [value]
    return doc


# --------------------------------------------------------------------------------------------
# Valid input


@pytest.mark.parametrize("path", SCENARIO_PATHS, ids=SCENARIO_IDS)
def test_every_scenario_input_validates(path: Path) -> None:
    doc = load_scenario(path)["input"]
    INPUT.validate(doc)
    assert _parser_accepts(doc)


Edit = Callable[[dict[str, Any]], None]


def _set(pointer: str, value: Any) -> Edit:
    """An edit that sets the value at a JSON Pointer (the last token may be new)."""

    def edit(doc: dict[str, Any]) -> None:
        *path, last = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
        target: Any = doc
        for token in path:
            target = target[int(token)] if isinstance(target, list) else target[token]
        if isinstance(target, list) and int(last) == len(target):
            target.append(value)
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return edit


def _delete(pointer: str) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        *path, last = pointer.split("/")[1:]
        target: Any = doc
        for token in path:
            target = target[int(token)] if isinstance(target, list) else target[token]
        del target[int(last) if isinstance(target, list) else last]

    return edit


ACCEPTED: dict[str, Edit] = {
    "issue example": lambda doc: None,
    "no ledger": _delete("/ledger"),
    "null ledger": _set("/ledger", None),
    "ledger without received": _set("/ledger", {}),
    "largest case": _set("/ledger/largest_case", 4),
    "null largest case": _set("/ledger/largest_case", None),
    "received names a state that is not a destination": _set("/ledger/received/FR", 3),
    "null seed": _set("/seed", None),
    "seed": _set("/seed", 7),
    "key without year": _set("/key", {"name": "population"}),
    "key with null year": _set("/key/year", None),
    "region": _set("/destinations/2", {"id": "FR-IDF", "parent": "FR", "capacity": 900}),
    "non-participating without capacity": _set(
        "/destinations/2", {"id": "AT", "participating": False}
    ),
    "null parent": _set("/destinations/1/parent", None),
    "non-participating": _set("/destinations/1/participating", False),
    "languages": _set("/destinations/1/languages", ["sv", "en"]),
    "no services": _delete("/destinations/1/services"),
    "zero places": _set("/destinations/1/services/medical", 0),
    "no cases": _set("/cases", []),
    "age 0": _set("/cases/0/members/1/age", 0),
    "age 130": _set("/cases/0/members/1/age", 130),
    "null age": _set("/cases/0/members/1/age", None),
    "null sex": _set("/cases/0/members/1/sex", None),
    "lower-case UNHCR code": _set("/cases/0/members/1/vulnerabilities", ["sc-ch"]),
    "UNHCR code without category": _set("/cases/0/members/1/unhcr_codes", ["FU-TR"]),
    "link to a state that is not a destination": _set("/cases/0/family_links/0/state", "AT"),
    "link not desired": _set("/cases/0/family_links/0/desired", False),
    "exclusion": _set("/cases/0/excluded", [{"state": "DE", "reason": "safety"}]),
    "negative score": _set("/cases/0/scores/DE", -1.5),
}

REJECTED: dict[str, Edit] = {
    "unknown top-level field": _set("/extra", 1),
    "no key": _delete("/key"),
    "no cases": _delete("/cases"),
    "no destinations": _delete("/destinations"),
    "key not an object": _set("/key", "population"),
    "empty key name": _set("/key/name", " "),
    "key year as text": _set("/key/year", "2015"),
    "seed as text": _set("/seed", "7"),
    "seed a boolean": _set("/seed", True),
    "unknown ledger field": _set("/ledger/batches", []),
    "negative received": _set("/ledger/received/DE", -1),
    "received null": _set("/ledger/received", None),
    "negative largest case": _set("/ledger/largest_case", -1),
    "largest case as text": _set("/ledger/largest_case", "4"),
    "ISO code GR": _set("/destinations/2", {"id": "GR", "capacity": 5}),
    "key with other fields": _set("/key/participants", "EU28"),
    "key without a name": _delete("/key/name"),
    "duplicate linked case": _set("/cases/0/linked_cases", ["c2", "c2"]),
    "region without parent": _set("/destinations/2", {"id": "DE-BY", "capacity": 900}),
    "region with an unknown parent": _set(
        "/destinations/2", {"id": "DE-BY", "parent": "XX", "capacity": 900}
    ),
    "no capacity": _delete("/destinations/1/capacity"),
    "negative capacity": _set("/destinations/0/capacity", -5),
    "capacity as text": _set("/destinations/0/capacity", "12000"),
    "fractional capacity": _set("/destinations/0/capacity", 12.5),
    "unknown service": _set("/destinations/1/services/dentist", 3),
    "negative places": _set("/destinations/1/services/maternity", -1),
    "participating null": _set("/destinations/1/participating", None),
    "unknown destination field": _set("/destinations/1/colour", "blue"),
    "unknown case field": _set("/cases/0/notes", "x"),
    "case without members": _set("/cases/1/members", []),
    "case without registration": _delete("/cases/1/registered_on"),
    "case without entry state": _delete("/cases/1/entry_state"),
    "entry state GR": _set("/cases/1/entry_state", "GR"),
    "date in another format": _set("/cases/1/registered_on", "02.10.2015"),
    "date that does not exist": _set("/cases/1/registered_on", "2015-02-30"),
    "empty case id": _set("/cases/1/id", ""),
    "person without id": _delete("/cases/1/members/0/id"),
    "unknown person field": _set("/cases/1/members/0/height", 170),
    "age -2": _set("/cases/1/members/0/age", -2),
    "age 131": _set("/cases/1/members/0/age", 131),
    "age as text": _set("/cases/1/members/0/age", "16"),
    "age_uncertain null": _set("/cases/1/members/0/age_uncertain", None),
    "unknown vulnerability": _set("/cases/1/members/0/vulnerabilities", ["sad"]),
    "category in capitals": _set("/cases/1/members/0/vulnerabilities", ["Pregnant"]),
    "unknown UNHCR code": _set("/cases/1/members/0/unhcr_codes", ["XX-YY"]),
    "category given as a UNHCR code": _set("/cases/1/members/0/unhcr_codes", ["pregnant"]),
    "unknown relation": _set("/cases/0/family_links/0/relation", "cousin"),
    "unknown status": _set("/cases/0/family_links/0/status", "citizen"),
    "link without status": _delete("/cases/0/family_links/0/status"),
    "desired as text": _set("/cases/0/family_links/0/desired", "yes"),
    "unknown link field": _set("/cases/0/family_links/0/since", 2014),
    "preference listed twice": _set("/cases/0/preferences", ["SE", "SE"]),
    "score as text": _set("/cases/0/scores/DE", "high"),
    "score a boolean": _set("/cases/0/scores/DE", True),
    "exclusion without reason": _set("/cases/0/excluded", [{"state": "DE"}]),
    "exclusion with an empty reason": _set("/cases/0/excluded", [{"state": "DE", "reason": ""}]),
    "unknown exclusion field": _set(
        "/cases/0/excluded", [{"state": "DE", "reason": "safety", "until": "2016"}]
    ),
    "linked cases not a list": _set("/cases/0/linked_cases", "c2"),
}


def _edited(edit: Edit) -> dict[str, Any]:
    doc = copy.deepcopy(ISSUE_EXAMPLE)
    edit(doc)
    return doc


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_schema_accepts_what_the_parser_accepts(name: str) -> None:
    doc = _edited(ACCEPTED[name])
    assert _parser_accepts(doc), name
    errors = [e.message for e in INPUT.iter_errors(doc)]
    assert not errors, errors


@pytest.mark.parametrize("name", list(REJECTED))
def test_schema_rejects_what_the_parser_rejects(name: str) -> None:
    doc = _edited(REJECTED[name])
    assert not _parser_accepts(doc), name
    assert not INPUT.is_valid(doc), name


# --------------------------------------------------------------------------------------------
# Output


@pytest.mark.parametrize("path", SCENARIO_PATHS, ids=SCENARIO_IDS)
def test_every_scenario_output_validates(path: Path) -> None:
    result = allocate(load_scenario(path))
    OUTPUT.validate(json.loads(json.dumps(result)))


def test_issue_example_output_validates() -> None:
    from fairshare.allocate import allocate_document

    result = allocate_document(ISSUE_EXAMPLE, seed=0)
    OUTPUT.validate(json.loads(json.dumps(result)))
    assert [a["case"] for a in result["assignments"]] == ["c1", "c2"]


#: A hand-written output of the documented shape, for the issue example: c1 is bound to SE
#: (Art. 9) and linked to c2, an unaccompanied minor (uncertain age) who needs a place SE
#: does not have, so both wait.
EXAMPLE_OUTPUT: dict[str, Any] = {
    "format": "fairshare-allocation",
    "version": 1,
    "fairshare_version": "0.1.0",
    "seed": 0,
    "key": {"name": "population", "year": 2015, "participants": ["DE", "SE"]},
    "assignments": [
        {
            "case": "c1",
            "destination": None,
            "state": None,
            "tier": 1,
            "persons": 2,
            "reasons": [
                {"code": "family_link", "text": "The applicant's spouse ... (Art. 9)."},
                {"code": "linked_case", "text": "c1 and c2 go together (Art. 11)."},
                {"code": "waiting_service", "text": "No unaccompanied-minor place in SE."},
            ],
        },
        {
            "case": "c2",
            "destination": None,
            "state": None,
            "tier": 1,
            "persons": 1,
            "reasons": [
                {"code": "linked_case", "text": "c1 and c2 go together (Art. 11)."},
                {"code": "waiting_service", "text": "No unaccompanied-minor place in SE."},
            ],
        },
    ],
    "destinations": [
        {
            "id": "DE",
            "state": "DE",
            "participating": True,
            "share": 0.8928213032569218,
            "fair_share": 11012.057954370874,
            "fair_share_exact": "500745210679/45472446",
            "before": 10234,
            "placed": 0,
            "after": 10234,
            "deviation": -778.0579543708733,
            "deviation_exact": "-35380198315/45472446",
            "capacity": 12000,
            "free_after": 12000,
            "services_free_after": {
                "unaccompanied_minor": 300,
                "medical": 150,
                "maternity": 80,
                "accessible": 60,
                "trafficking_shelter": 20,
            },
            "within_bound": False,
            "bound_note": "The only cases of the batch are bound to SE (Art. 9).",
        },
        {
            "id": "SE",
            "state": "SE",
            "participating": True,
            "share": 0.10717869674307821,
            "fair_share": 1321.9420456291266,
            "fair_share_exact": "60111938285/45472446",
            "before": 2100,
            "placed": 0,
            "after": 2100,
            "deviation": 778.0579543708733,
            "deviation_exact": "35380198315/45472446",
            "capacity": 3000,
            "free_after": 3000,
            "services_free_after": {"maternity": 10},
            "within_bound": False,
            "bound_note": "SE had received 2,100 before the batch.",
        },
    ],
    "objective": {
        "tier1": {"placed": 0, "bound": 0},
        "tier2": {"placed": 0, "bound": 0},
        "total": {"placed": 0, "bound": 0},
        "max_abs_deviation": {"value": 778.0579543708733, "bound": 778.0579543708733},
        "sum_abs_deviation": {"value": 1556.1159087417466, "bound": 1556.1159087417466},
        "preferences": {"cases_with_preferences": 1, "first_choice": 0, "any_choice": 0},
        "M": 2,
        "within_M": False,
        "gap": 0.0,
        "gaps": {"tier1": 0.0, "tier2": 0.0, "total": 0.0},
    },
    "waiting": {"cases": 2, "persons": 3, "by_code": {"waiting_service": 2}},
}


def test_example_output_validates() -> None:
    OUTPUT.validate(EXAMPLE_OUTPUT)
    # A non-participating destination has no fair share.
    doc = copy.deepcopy(EXAMPLE_OUTPUT)
    row = doc["destinations"][1]
    row["participating"] = False
    for name in ("share", "fair_share", "fair_share_exact", "deviation", "deviation_exact"):
        row[name] = None
    row["within_bound"] = None
    OUTPUT.validate(doc)


@pytest.mark.parametrize(
    ("pointer", "value"),
    [
        ("/format", "fairshare-ledger"),
        ("/seed", None),
        ("/assignments/0/tier", 4),
        ("/assignments/0/persons", 0),
        ("/assignments/0/reasons", []),
        ("/assignments/0/reasons/0/code", "because"),
        ("/assignments/0/state", "GR"),
        ("/destinations/0/fair_share_exact", "1316.4.1"),
        ("/destinations/0/placed", -1),
        ("/destinations/0/share", None),
        ("/destinations/0/within_bound", None),
        ("/destinations/0/services_free_after/dentist", 1),
        ("/objective/gap", -0.1),
        ("/waiting/by_code/fair_share", 1),
    ],
)
def test_output_schema_rejects(pointer: str, value: Any) -> None:
    doc = copy.deepcopy(EXAMPLE_OUTPUT)
    _set(pointer, value)(doc)
    assert not OUTPUT.is_valid(doc)


@pytest.mark.parametrize(
    "field",
    ["format", "seed", "key", "assignments", "destinations", "objective", "waiting"],
)
def test_output_schema_requires(field: str) -> None:
    doc = copy.deepcopy(EXAMPLE_OUTPUT)
    del doc[field]
    assert not OUTPUT.is_valid(doc)
