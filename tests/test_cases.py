"""Domain types and input validation: every problem reported at once, with its JSON Pointer."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairshare.cases import (
    AllocationInput,
    Case,
    Destination,
    FamilyLink,
    Person,
    ValidationError,
    parse_cases,
    parse_destinations,
    parse_problem_input,
    parse_problem_json,
)
from fairshare.errors import InputError

EXAMPLE: dict[str, Any] = {
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


def example() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLE)


def problems(doc: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        parse_problem_input(doc)
    return dict(info.value.problems)


# ---------------------------------------------------------------------------------------------
# The example parses


def test_the_example_input_parses() -> None:
    result = parse_problem_input(example())
    assert isinstance(result, AllocationInput)
    assert result.key == {"name": "population", "year": 2015}
    assert result.received == {"DE": 10234, "SE": 2100}
    assert result.seed is None
    de, se = result.destinations
    assert de == Destination(
        "DE",
        capacity=12000,
        services={
            "unaccompanied_minor": 300,
            "medical": 150,
            "maternity": 80,
            "accessible": 60,
            "trafficking_shelter": 20,
        },
    )
    assert se.services == {"maternity": 10}
    assert se.participating
    c1, c2 = result.cases
    assert c1.size == 2
    assert c1.members[0] == Person("p1", age=34, sex="F", vulnerabilities=("pregnant",))
    assert c1.registered_on == date(2015, 10, 2)
    assert c1.family_links == (FamilyLink("SE", "spouse", "beneficiary"),)
    assert c1.linked_cases == ("c2",)
    assert c1.preferences == ("SE", "DE")
    assert c1.scores == {"DE": 0.41, "SE": 0.55}
    assert c2.members == (Person("p3", age=16, sex="M", age_uncertain=True),)
    assert c2.size == 1


def test_seed_region_and_exclusion_parse() -> None:
    doc = example()
    doc["seed"] = 7
    doc["destinations"].append(
        {"id": "FR-IDF", "parent": "FR", "capacity": 500, "participating": False}
    )
    doc["cases"][1]["excluded"] = [{"state": "FR-IDF", "reason": "safety"}]
    result = parse_problem_input(doc)
    assert result.seed == 7
    assert result.destinations[2] == Destination(
        "FR-IDF", parent="FR", capacity=500, participating=False
    )
    assert result.cases[1].excluded[0].state == "FR-IDF"


def test_a_state_is_given_whole_or_as_regions_and_regions_have_their_own_ids() -> None:
    doc = example()
    doc["destinations"] += [
        {"id": "DE-BY", "parent": "DE", "capacity": 5},
        {"id": "SE", "parent": "DE", "capacity": 5},
        {"id": "AT", "participating": False},
    ]
    doc["key"] = {"yaer": 2015}
    doc["cases"][0]["linked_cases"] = ["c2", "c2"]
    doc["cases"][0]["excluded"] = [{"state": "DE", "reason": "a"}, {"state": "DE", "reason": "b"}]
    doc["cases"][0]["members"][0] = {"age": -1, "sex": 3}
    with pytest.raises(ValidationError) as err:
        parse_problem_input(doc)
    where = {pointer for pointer, _ in err.value.problems}
    assert where >= {
        "/destinations/0/id",  # DE whole and as DE-BY
        "/destinations/3/id",  # a region named like a state
        "/key",  # no name
        "/key/yaer",
        "/cases/0/linked_cases/1",
        "/cases/0/excluded/1/state",
        "/cases/0/members/0",  # no id, and still
        "/cases/0/members/0/age",
        "/cases/0/members/0/sex",
    }
    assert not any(p.startswith("/destinations/4") for p in where)  # capacity optional


def test_unhcr_codes_and_categories_are_kept_apart() -> None:
    (case,) = parse_cases(
        [
            {
                "id": "c",
                "entry_state": "IT",
                "registered_on": "2016-01-05",
                "members": [{"id": "p", "vulnerabilities": ["SC-UC", "sm-mi", "disability"]}],
            }
        ]
    )
    person = case.members[0]
    assert person.vulnerabilities == ("disability",)
    assert person.unhcr_codes == ("SC-UC", "SM-MI")


def test_validation_error_is_an_input_error_and_lists_everything() -> None:
    doc = example()
    doc["cases"][0]["members"][0]["age"] = -2
    doc["cases"][1]["registered_on"] = "2015-02-30"
    with pytest.raises(InputError) as info:
        parse_problem_input(doc)
    error = info.value
    assert isinstance(error, ValidationError)
    assert error.problems == [
        ("/cases/0/members/0/age", "-2 is not a valid age (0–130)"),
        ("/cases/1/registered_on", "2015-02-30 is not a date; use YYYY-MM-DD"),
    ]
    assert str(error).startswith("2 problems in the input: /cases/0/members/0/age: -2 is not")
    assert "/cases/1/registered_on: 2015-02-30 is not a date" in str(error)


# ---------------------------------------------------------------------------------------------
# One worked example per validation error


def test_wrong_types() -> None:
    doc = example()
    doc["cases"][0]["members"][1]["age"] = "six"
    doc["cases"][0]["members"][1]["age_uncertain"] = "yes"
    doc["cases"][0]["linked_cases"] = "c2"
    doc["cases"][0]["scores"]["DE"] = "high"
    doc["destinations"][1]["capacity"] = 3000.5
    doc["seed"] = True
    found = problems(doc)
    assert found == {
        "/cases/0/members/1/age": "expected a whole number, got a string",
        "/cases/0/members/1/age_uncertain": "expected true or false, got a string",
        "/cases/0/linked_cases": "expected a list, got a string",
        "/cases/0/scores/DE": "expected a number, got a string",
        "/destinations/1/capacity": "expected a whole number, got 3000.5",
        "/seed": "expected a whole number, got a boolean",
    }


def test_not_an_object_at_all() -> None:
    assert problems([1, 2]) == {"": "expected an object, got a list"}
    with pytest.raises(ValidationError) as info:
        parse_cases({"id": "c1"})
    assert info.value.problems == [("", "expected a list, got an object")]


def test_missing_and_unknown_fields() -> None:
    doc = example()
    del doc["cases"][1]["entry_state"]
    doc["cases"][1]["members"][0]["vulnerabilites"] = ["pregnant"]
    del doc["key"]
    found = problems(doc)
    assert found["/cases/1"] == "a case needs 'entry_state'"
    assert found["/cases/1/members/0/vulnerabilites"].startswith("unknown field 'vulnerabilites'")
    assert found[""].startswith("the input needs a 'key'")


def test_unknown_state_codes() -> None:
    doc = example()
    doc["cases"][0]["entry_state"] = "GR"
    doc["cases"][1]["entry_state"] = "XX"
    doc["cases"][0]["family_links"][0]["state"] = "se"
    doc["destinations"].append({"id": "DE-BY", "parent": "ZZ", "capacity": 1})
    doc["destinations"].append({"id": "DE-HE", "capacity": 1})
    doc["ledger"]["received"]["QQ"] = 3
    found = problems(doc)
    assert found["/cases/0/entry_state"] == (
        "unknown state 'GR' (fairshare uses Eurostat codes: EL for GR)"
    )
    assert found["/cases/1/entry_state"].startswith("unknown state 'XX'; known states: AT, BE")
    assert found["/cases/0/family_links/0/state"] == "unknown state 'se' (did you mean SE?)"
    assert found["/destinations/2/parent"].startswith("unknown state 'ZZ'")
    assert found["/destinations/3/id"].startswith(
        "unknown state 'DE-HE'; a region needs a 'parent' state"
    )
    assert found["/ledger/received/QQ"].startswith("unknown state 'QQ'")


def test_negative_capacity_and_service_places() -> None:
    doc = example()
    doc["destinations"][0]["capacity"] = -1
    doc["destinations"][1]["services"]["maternity"] = -5
    doc["ledger"]["received"]["SE"] = -3
    found = problems(doc)
    assert found == {
        "/destinations/0/capacity": "-1 capacity is negative; use 0 or more",
        "/destinations/1/services/maternity": "-5 places is negative; use 0 or more",
        "/ledger/received/SE": "-3 persons received is negative; use 0 or more",
    }


def test_service_places_above_capacity_and_unknown_service() -> None:
    doc = example()
    doc["destinations"][1]["services"] = {"maternity": 3001, "dentist": 2}
    found = problems(doc)
    assert found == {
        "/destinations/1/services/maternity": (
            "3001 maternity places exceed the destination's capacity of 3000"
        ),
        "/destinations/1/services/dentist": (
            "unknown service 'dentist'; use one of unaccompanied_minor, medical, maternity, "
            "accessible, trafficking_shelter"
        ),
    }


def test_duplicate_case_ids() -> None:
    doc = example()
    doc["cases"][1]["id"] = "c1"
    doc["cases"][0]["linked_cases"] = []
    assert problems(doc) == {"/cases/1/id": "case id 'c1' is already used by /cases/0"}


def test_duplicate_destination_ids() -> None:
    doc = example()
    doc["destinations"].append({"id": "SE", "capacity": 1})
    assert problems(doc) == {
        "/destinations/2/id": "destination id 'SE' is already used by /destinations/1"
    }


def test_a_person_in_two_cases() -> None:
    doc = example()
    doc["cases"][1]["members"].append({"id": "p1", "age": 34})
    assert problems(doc) == {
        "/cases/1/members/1/id": (
            "person 'p1' is already in /cases/0/members/0; a person belongs to exactly one case"
        )
    }


def test_link_to_an_unknown_case_or_to_itself() -> None:
    doc = example()
    doc["cases"][0]["linked_cases"] = ["c9", "c1"]
    assert problems(doc) == {
        "/cases/0/linked_cases/0": "linked case 'c9' is not in the input",
        "/cases/0/linked_cases/1": "case 'c1' is linked to itself",
    }


def test_unknown_vulnerability_code() -> None:
    doc = example()
    doc["cases"][0]["members"][0]["vulnerabilities"] = ["pregnant", "XX-YY"]
    doc["cases"][0]["members"][1]["unhcr_codes"] = ["pregnant"]
    found = problems(doc)
    assert found["/cases/0/members/0/vulnerabilities/1"].startswith(
        "unknown vulnerability 'XX-YY'; use a category (minor, unaccompanied_minor"
    )
    assert found["/cases/0/members/1/unhcr_codes/0"] == (
        "unknown UNHCR specific-needs code 'pregnant'"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2015-02-30", "2015-02-30 is not a date; use YYYY-MM-DD"),
        ("2015-13-01", "2015-13-01 is not a date; use YYYY-MM-DD"),
        ("20151002", "20151002 is not a date; use YYYY-MM-DD"),
        ("02/10/2015", "02/10/2015 is not a date; use YYYY-MM-DD"),
        (20151002, "expected a date as text YYYY-MM-DD, got a number"),
    ],
)
def test_impossible_dates(value: object, message: str) -> None:
    doc = example()
    doc["cases"][0]["registered_on"] = value
    assert problems(doc) == {"/cases/0/registered_on": message}


def test_unknown_relation_and_status() -> None:
    doc = example()
    doc["cases"][0]["family_links"] = [
        {"state": "SE", "relation": "cousin", "status": "beneficiary"},
        {"state": "DE", "relation": "spouse", "status": "refugee"},
    ]
    assert problems(doc) == {
        "/cases/0/family_links/0/relation": (
            "unknown relation 'cousin'; use one of spouse, partner, child, parent, sibling, "
            "relative"
        ),
        "/cases/0/family_links/1/status": (
            "unknown status 'refugee'; use one of beneficiary, applicant, resident"
        ),
    }


def test_family_link_to_a_non_destination_state_is_fine() -> None:
    doc = example()
    doc["cases"][0]["family_links"][0]["state"] = "UK"
    assert parse_problem_input(doc).cases[0].family_links[0].state == "UK"


def test_preferences_scores_and_exclusions_must_name_destinations() -> None:
    doc = example()
    doc["cases"][0]["preferences"] = ["SE", "FR", "SE"]
    doc["cases"][0]["scores"] = {"DE": 0.4, "NL": 0.2}
    doc["cases"][1]["excluded"] = [{"state": "AT", "reason": "family violence risk"}]
    found = problems(doc)
    assert found == {
        "/cases/0/preferences/1": "unknown destination 'FR'; destinations: DE, SE",
        "/cases/0/preferences/2": "'SE' is listed twice",
        "/cases/0/scores/NL": "unknown destination 'NL'; destinations: DE, SE",
        "/cases/1/excluded/0/state": "unknown destination 'AT'; destinations: DE, SE",
    }


def test_json_pointer_escapes_slash_and_tilde() -> None:
    doc = example()
    doc["cases"][0]["scores"] = {"a/b~c": 1.0}
    assert "/cases/0/scores/a~1b~0c" in problems(doc)


def test_ages_out_of_range_and_empty_members() -> None:
    doc = example()
    doc["cases"][0]["members"][1]["age"] = 131
    doc["cases"][1]["members"] = []
    assert problems(doc) == {
        "/cases/0/members/1/age": "131 is not a valid age (0–130)",
        "/cases/1/members": "a case needs at least one member",
    }


def test_every_problem_in_every_section_at_once() -> None:
    doc = example()
    doc["destinations"][0]["capacity"] = -1
    doc["cases"][0]["members"][0]["age"] = -2
    doc["cases"][1]["members"][0]["id"] = "p1"
    doc["ledger"]["received"]["DE"] = "many"
    assert set(problems(doc)) == {
        "/destinations/0/capacity",
        "/cases/0/members/0/age",
        "/cases/1/members/0/id",
        "/ledger/received/DE",
    }


def test_parse_destinations_alone() -> None:
    (dest,) = parse_destinations([{"id": "CH", "capacity": 10, "languages": ["de", "fr"]}])
    assert dest.languages == ("de", "fr")
    with pytest.raises(ValidationError) as info:
        parse_destinations([{"id": "CH"}])
    assert info.value.problems == [("/0", "a destination needs 'capacity'")]


def test_parse_cases_without_destinations_does_not_check_names() -> None:
    (case,) = parse_cases([{**EXAMPLE["cases"][1], "preferences": ["anything"]}])
    assert case.preferences == ("anything",)


def test_case_size_counts_members() -> None:
    case = Case("c", (Person("a"), Person("b"), Person("c")), "IT", date(2016, 1, 1))
    assert case.size == 3


# ---------------------------------------------------------------------------------------------
# Properties


@given(st.integers(-1000, 1000))
def test_any_integer_age_is_accepted_or_rejected_with_its_pointer(age: int) -> None:
    doc = example()
    doc["cases"][1]["members"][0]["age"] = age
    if 0 <= age <= 130:
        assert parse_problem_input(doc).cases[1].members[0].age == age
    else:
        assert problems(doc) == {"/cases/1/members/0/age": f"{age} is not a valid age (0–130)"}


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2040, 12, 31)))
def test_every_real_date_round_trips(day: date) -> None:
    doc = example()
    doc["cases"][0]["registered_on"] = day.isoformat()
    assert parse_problem_input(doc).cases[0].registered_on == day


@given(st.lists(st.integers(0, 5), min_size=1, max_size=8))
def test_duplicate_person_ids_are_each_reported(owners: list[int]) -> None:
    # person ids drawn from a small pool: every repeat is reported, first use is not
    cases = [
        {
            "id": f"c{i}",
            "entry_state": "IT",
            "registered_on": "2016-01-01",
            "members": [{"id": f"p{owner}"}],
        }
        for i, owner in enumerate(owners)
    ]
    repeats = len(owners) - len(set(owners))
    if repeats == 0:
        assert len(parse_cases(cases)) == len(owners)
    else:
        with pytest.raises(ValidationError) as info:
            parse_cases(cases)
        assert len(info.value.problems) == repeats


# --------------------------------------------------------------------------------------------
# The fast path for plainly valid cases gives exactly what the full checks give.


def _mostly(valid: list[object], invalid: list[object]) -> st.SearchStrategy[object]:
    """Valid values most of the time, so that the fast path is taken often."""
    return st.sampled_from(valid * 4 + invalid)


_PERSON_VALUES = {
    "age": _mostly([0, 17, 18, 130, None], [131, -1, True, 5.0]),
    "sex": _mostly(["F", None], ["", 3]),
    "age_uncertain": _mostly([True, False], [1, None, "yes"]),
    "nationality": _mostly(["SY", None], ["", []]),
    "languages": _mostly([["ar"], []], [[""], "ar", [1]]),
    "vulnerabilities": _mostly(
        [[], ["pregnant"], ["SC-UC", "minor"], ["sc-uc", "sc-uc"]], [["bogus"], [""], ["Pregnant"]]
    ),
    "unhcr_codes": _mostly([[], ["SC-UC"], ["sm-ci"]], [["bogus"], [7], ["pregnant"]]),
}

_CASE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", " ", "DE", "SE", "GR", "x", "2015-10-02", "2015-02-30", "c0", "c1"]),
    st.lists(st.sampled_from(["DE", "SE", "FR", "", "c0", "c1", "c1"]), max_size=3),
    st.dictionaries(st.sampled_from(["DE", "SE", "FR", ""]), st.floats(-1, 1), max_size=2),
    st.dictionaries(st.sampled_from(["DE", "SE"]), st.sampled_from([True, "0.5", 1]), max_size=1),
)


@st.composite
def _raw_case(draw: st.DrawFn, index: int) -> dict[str, object]:
    values = dict(_PERSON_VALUES)
    values["id"] = _mostly([f"p{index}-0"], ["", 5, "p0-0"])
    person = draw(st.fixed_dictionaries({}, optional=values))
    person.setdefault("id", f"p{index}-0")
    members: list[object] = [person]
    if draw(st.booleans()):
        members.append({"id": f"p{index}-1", "age": draw(_mostly([4, 40], [-4]))})
    case: dict[str, object] = {
        "id": f"c{index}",
        "entry_state": "EL",
        "registered_on": "2015-10-02",
        "members": members,
    }
    case.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "preferences": _mostly(
                        [["DE"], ["SE", "DE"], []], [["DE", "DE"], ["FR"], [""], [" "]]
                    ),
                    "scores": _mostly(
                        [{"DE": 0.5}, {"SE": 1, "DE": -0.25}, {}],
                        [{"DE": True}, {"FR": 1.0}, {"DE": "0.5"}, {"SE": float("nan")}],
                    ),
                    "linked_cases": _mostly([["c0"], [], ["c1"]], [["c1", "c1"], [""], [4]]),
                    "entry_state": _mostly(["EL", "IT"], ["GR", "", 3]),
                    "registered_on": _mostly(["2015-10-02"], ["2015-02-30", "2015-1-2", 5]),
                    "family_links": _mostly(
                        [
                            [],
                            [{"state": "SE", "relation": "sibling", "status": "resident"}],
                            [{"state": "FR", "relation": "spouse", "status": "beneficiary"}],
                        ],
                        [
                            [{"state": "SE"}],
                            {},
                            [{"state": "GR", "relation": "spouse", "status": "applicant"}],
                            [{"state": "SE", "relation": "cousin", "status": "resident"}],
                            [{"state": "SE", "relation": "child", "status": "resident", "x": 1}],
                        ],
                    ),
                    "excluded": _mostly(
                        [[], [{"state": "SE", "reason": "x"}]],
                        [
                            [{"state": "FR", "reason": "x"}],
                            [{"state": "SE", "reason": " "}],
                            [{"state": "SE", "reason": "x"}, {"state": "SE", "reason": "y"}],
                            "SE",
                        ],
                    ),
                    "id": _mostly([f"c{index}"], ["c0", " "]),
                },
            )
        )
    )
    return case


def _fast_and_slow(raw: Sequence[object]) -> tuple[object, object]:
    import fairshare.cases as cases_module

    def parse() -> object:
        try:
            return parse_cases(list(raw), destinations=["DE", "SE"])
        except ValidationError as err:
            return err.problems

    fast = parse()
    cases_module.FAST_PATH = False
    try:
        slow = parse()
    finally:
        cases_module.FAST_PATH = True
    return fast, slow


@settings(max_examples=400)
@given(st.integers(1, 4).flatmap(lambda n: st.tuples(*(_raw_case(i) for i in range(n)))))
def test_fast_path_agrees_with_the_full_checks(raw: tuple[dict[str, object], ...]) -> None:
    fast, slow = _fast_and_slow(raw)
    assert fast == slow


def _plain_case(cid: str, pid: str, **extra: object) -> dict[str, object]:
    case: dict[str, object] = {
        "id": cid,
        "entry_state": "EL",
        "registered_on": "2015-10-02",
        "members": [{"id": pid, "age": 30}],
    }
    case.update(extra)
    return case


@pytest.mark.parametrize(
    "raw",
    [
        [_plain_case("c0", "p0"), _plain_case("c0", "p1")],  # a case id twice
        [_plain_case("c0", "p0"), _plain_case("c1", "p0")],  # a person in two cases
        [_plain_case("c0", "p0", linked_cases=["c0"])],  # linked to itself
        [_plain_case("c0", "p0", linked_cases=["c9"])],  # linked to a case not in the input
        [_plain_case("c0", "p0", linked_cases=["c1"]), _plain_case("c1", "p1")],  # valid
        [{**_plain_case("c0", "p0"), "members": [{"id": "p0", "unhcr_codes": ["SC-UC"] * 2}]}],
        [{**_plain_case("c0", "p0"), "members": [{"id": "p0", "vulnerabilities": ["lgbti"] * 2}]}],
        [{**_plain_case("c0", "p0"), "members": [{"id": "p0", "vulnerabilities": ["SC-UC"]}]}],
    ],
)
def test_fast_path_agrees_on_ids_and_links_between_cases(raw: list[object]) -> None:
    fast, slow = _fast_and_slow(raw)
    assert fast == slow


# The CLI's JSON fast path (cases decoded straight into their structs) gives what the JSON
# parser and the full checks give, and falls back to them whenever a case has a problem.

_DOC_VALUES = {
    "key": _mostly([{"name": "population", "year": 2015}], [{"name": "nope"}, {}, 3]),
    "ledger": _mostly([{"received": {"DE": 4}}, None], [{"received": {"XX": 1}}, []]),
    "seed": _mostly([7, None], [-1, "7", 1.5]),
    "destinations": _mostly(
        [[{"id": "DE", "capacity": 5}, {"id": "SE", "capacity": 3}]],
        [
            [{"id": "DE", "capacity": -5}, {"id": "SE", "capacity": 3}],
            [{"id": " ", "capacity": 5}, {"id": "SE", "capacity": 3}],
            "DE",
        ],
    ),
    "extra": _mostly([None], ["unknown field"]),
}


def _through_json(doc: dict[str, object]) -> tuple[object, object, bool]:
    import orjson

    import fairshare.cases as cases_module

    raw = orjson.dumps({k: v for k, v in doc.items() if k != "extra" or v is not None})
    taken = False

    def fast() -> object:
        nonlocal taken
        try:
            problem = parse_problem_json(raw)
            taken = problem is not None
            return problem if problem is not None else parse_problem_input(orjson.loads(raw))
        except ValidationError as err:
            return err.problems

    def slow() -> object:
        cases_module.FAST_PATH = False
        try:
            return parse_problem_input(orjson.loads(raw))
        except ValidationError as err:
            return err.problems
        finally:
            cases_module.FAST_PATH = True

    return fast(), slow(), taken


@settings(max_examples=300)
@given(
    st.integers(1, 4).flatmap(lambda n: st.tuples(*(_raw_case(i) for i in range(n)))),
    st.fixed_dictionaries(_DOC_VALUES),
)
def test_json_fast_path_agrees_with_the_full_checks(
    raw: tuple[dict[str, object], ...], top: dict[str, object]
) -> None:
    doc = {**top, "cases": list(raw)}
    fast, slow, _ = _through_json(doc)
    assert fast == slow


def test_json_fast_path_is_taken_for_plain_documents() -> None:
    doc: dict[str, object] = {
        "key": {"name": "population", "year": 2015},
        "destinations": [{"id": "DE", "capacity": 5}, {"id": "SE", "capacity": 3}],
        "cases": [
            _plain_case("c0", "p0", preferences=["SE"], scores={"DE": 1}, linked_cases=["c1"]),
            {
                **_plain_case("c1", "p1"),
                "members": [{"id": "p1", "age": 15, "vulnerabilities": ["pregnant"]}],
                "family_links": [{"state": "SE", "relation": "spouse", "status": "resident"}],
            },
        ],
        "seed": 3,
    }
    fast, slow, taken = _through_json(doc)
    assert taken
    assert fast == slow
    # One unknown vocabulary word anywhere: the document is read the ordinary way.
    doc["cases"][1]["members"][0]["vulnerabilities"] = ["pregnant", "Pregnant"]  # type: ignore[index]
    fast, slow, taken = _through_json(doc)
    assert not taken
    assert fast == slow
    assert isinstance(fast, list)
    assert "/cases/1/members/0/vulnerabilities/1" in fast[0][0]


@pytest.mark.parametrize("doc", ["docs/allocation.md", "docs/screening.md"])
def test_the_documented_inputs_are_valid(doc: str) -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / doc).read_text("utf-8")
    blocks = [b.split("```")[0] for b in text.split("```json")[1:]]
    inputs = [json.loads(b) for b in blocks if '"cases"' in b]
    assert inputs, f"{doc} shows no input"
    for data in inputs:
        assert parse_problem_input(data).cases
