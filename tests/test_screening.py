"""Screening: categories, needs and tiers from the rules in rules/screening.yaml."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairshare.cases import SERVICES, Case, Person, unhcr_codes, vulnerability_categories
from fairshare.errors import InputError
from fairshare.screening import (
    ScreenedCases,
    category_of_unhcr_code,
    counts_as_minor,
    screen_case,
    screen_cases,
    screening_rules,
)

DAY = date(2015, 10, 2)
CATEGORIES = tuple(vulnerability_categories())


def case_of(*members: Person) -> Case:
    return Case("c", members, "EL", DAY)


# ---------------------------------------------------------------------------------------------
# The rules as data


def test_the_twelve_categories_of_art21_and_art24() -> None:
    assert CATEGORIES == (
        "minor",
        "unaccompanied_minor",
        "disability",
        "elderly",
        "pregnant",
        "single_parent",
        "trafficking_victim",
        "serious_illness",
        "mental_disorder",
        "violence_survivor",
        "lgbti",
        "gender_violence",
    )


def test_every_category_has_exactly_one_tier() -> None:
    rules = screening_rules()
    assert set(rules.tier_of) == set(CATEGORIES)
    tier1 = {c for c, t in rules.tier_of.items() if t == 1}
    assert tier1 == {"unaccompanied_minor", "trafficking_victim", "violence_survivor", "pregnant"}
    assert all(t == 2 for c, t in rules.tier_of.items() if c not in tier1)
    assert rules.default_tier == 3


def test_needs_table() -> None:
    assert dict(screening_rules().needs) == {
        "unaccompanied_minor": "unaccompanied_minor",
        "pregnant": "maternity",
        "serious_illness": "medical",
        "mental_disorder": "medical",
        "disability": "accessible",
        "trafficking_victim": "trafficking_shelter",
    }


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("SC-UC", "unaccompanied_minor"),
        ("SC", "unaccompanied_minor"),
        ("SC-SC", "minor"),
        ("CR-TP", "pregnant"),
        ("SM-DP", "pregnant"),
        ("SM-MI", "mental_disorder"),
        ("SM-CI", "serious_illness"),  # inherits SM
        ("DS-PS", "disability"),  # inherits DS
        ("SV-FM", "gender_violence"),
        ("TR-PI", "violence_survivor"),  # inherits TR
        ("FU", None),
        ("FU-TR", None),
        ("LP-ND", None),
    ],
)
def test_unhcr_codes_map_onto_categories(code: str, category: str | None) -> None:
    assert category_of_unhcr_code(code) == category


def test_every_bundled_unhcr_code_maps_to_a_category_or_none() -> None:
    for code in unhcr_codes():
        assert category_of_unhcr_code(code) in (*CATEGORIES, None)


def test_unknown_unhcr_code_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown UNHCR specific-needs code 'XX'"):
        category_of_unhcr_code("XX")


# ---------------------------------------------------------------------------------------------
# Worked examples


def test_pregnant_mother_with_child() -> None:
    s = screen_case(
        case_of(Person("p1", age=34, sex="F", vulnerabilities=("pregnant",)), Person("p2", age=6))
    )
    assert s.case_id == "c"
    assert s.categories == {"p1": ("pregnant",), "p2": ("minor",)}
    assert s.tier == 1
    assert dict(s.needs) == {"maternity": 1}
    codes = [code for code, _ in s.reasons]
    assert codes == ["category.declared", "category.age", "need.maternity", "tier"]
    assert s.reasons[1][1] == "p2 is a minor: age 6 is below 18"
    assert s.reasons[-1][1] == (
        "tier 1 (urgent) because of p1 (pregnant); all 2 members count at tier 1"
    )


def test_uncertain_age_alone_is_an_unaccompanied_minor() -> None:
    s = screen_case(case_of(Person("p3", age=16, sex="M", age_uncertain=True)))
    assert s.categories == {"p3": ("minor", "unaccompanied_minor")}
    assert s.tier == 1
    assert dict(s.needs) == {"unaccompanied_minor": 1}
    assert s.reasons[0] == (
        "category.age_uncertain",
        "p3 is treated as a minor: age 16 is uncertain and not yet assessed "
        "(Regulation (EU) 2024/1358)",
    )
    assert s.reasons[1][0] == "category.unaccompanied"
    assert s.reasons[1][1].startswith(
        "p3 is treated as an unaccompanied minor (age uncertain): a minor alone in the case"
    )


def test_uncertain_age_counts_as_minor_even_when_the_stated_age_is_adult() -> None:
    s = screen_case(case_of(Person("p", age=19, age_uncertain=True)))
    assert "minor" in s.categories["p"]


def test_uncertain_age_with_an_adult_is_a_minor_but_not_unaccompanied() -> None:
    s = screen_case(case_of(Person("a", age=40), Person("b", age_uncertain=True)))
    assert s.categories == {"a": (), "b": ("minor",)}
    assert s.tier == 2
    assert dict(s.needs) == {}
    assert "b is treated as a minor: age is uncertain" in s.reasons[0][1]


def test_siblings_without_an_adult_are_unaccompanied() -> None:
    s = screen_case(case_of(Person("a", age=15), Person("b", age=12)))
    assert s.categories == {
        "a": ("minor", "unaccompanied_minor"),
        "b": ("minor", "unaccompanied_minor"),
    }
    assert dict(s.needs) == {"unaccompanied_minor": 2}
    assert "in a case without an adult" in s.reasons[1][1]


def test_a_person_of_unknown_age_is_not_taken_for_a_minor() -> None:
    s = screen_case(case_of(Person("a")))
    assert s.categories == {"a": ()}
    assert s.tier == 3
    assert s.reasons == (
        ("tier", "tier 3 (no special needs identified): no member has a vulnerability category"),
    )


def test_a_minor_with_a_person_of_unknown_age_is_not_derived_unaccompanied() -> None:
    s = screen_case(case_of(Person("a", age=10), Person("b")))
    assert s.categories == {"a": ("minor",), "b": ()}


def test_single_parent_and_elderly_are_never_derived() -> None:
    s = screen_case(case_of(Person("a", age=80), Person("b", age=3)))
    assert s.categories == {"a": (), "b": ("minor",)}


def test_unhcr_codes_in_screening_with_reasons() -> None:
    s = screen_case(case_of(Person("a", age=30, unhcr_codes=("SM-MI", "FU")), Person("b", age=28)))
    assert s.categories == {"a": ("mental_disorder",), "b": ()}
    assert dict(s.needs) == {"medical": 1}
    assert s.tier == 2
    texts = [text for code, text in s.reasons if code == "category.unhcr"]
    assert texts[0] == (
        "a has UNHCR code SM-MI (Mental illness), read as mental_disorder "
        "(fairshare's own mapping, for review by a protection officer)"
    )
    assert texts[1].startswith("a has UNHCR code FU (Family unity): no vulnerability category")


def test_one_place_per_member_even_with_two_medical_categories() -> None:
    s = screen_case(
        case_of(
            Person("a", age=30, vulnerabilities=("serious_illness", "mental_disorder")),
            Person("b", age=30, vulnerabilities=("serious_illness",)),
            Person("c", age=30, vulnerabilities=("disability", "trafficking_victim")),
        )
    )
    assert dict(s.needs) == {"medical": 2, "accessible": 1, "trafficking_shelter": 1}
    assert s.tier == 1
    assert "need.medical" in {code for code, _ in s.reasons}


def test_declared_unaccompanied_minor_with_code() -> None:
    s = screen_case(case_of(Person("a", age=15, unhcr_codes=("SC-UC",))))
    assert s.categories == {"a": ("unaccompanied_minor",)}
    assert s.has("unaccompanied_minor")
    assert not s.has("minor")
    assert dict(s.needs) == {"unaccompanied_minor": 1}


def test_counts_as_minor() -> None:
    assert counts_as_minor(Person("a", age=17))
    assert not counts_as_minor(Person("a", age=18))
    assert counts_as_minor(Person("a", age_uncertain=True))
    assert counts_as_minor(Person("a", unhcr_codes=("SC-SC",)))
    assert not counts_as_minor(Person("a"))


# ---------------------------------------------------------------------------------------------
# Properties

people = st.builds(
    Person,
    id=st.just(""),
    age=st.none() | st.integers(0, 100),
    age_uncertain=st.booleans(),
    vulnerabilities=st.lists(st.sampled_from(CATEGORIES), max_size=3, unique=True).map(tuple),
    unhcr_codes=st.lists(st.sampled_from(sorted(unhcr_codes())), max_size=2, unique=True).map(
        tuple
    ),
)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    members = draw(st.lists(people, min_size=1, max_size=6))
    named = tuple(
        Person(f"p{i}", m.age, None, m.age_uncertain, None, (), m.vulnerabilities, m.unhcr_codes)
        for i, m in enumerate(members)
    )
    return Case("c", named, "EL", DAY)


@given(cases())
def test_case_tier_is_the_most_urgent_member_tier(case: Case) -> None:
    s = screen_case(case)
    rules = screening_rules()
    per_member = [
        min((rules.tier_of[c] for c in s.categories[m.id]), default=3) for m in case.members
    ]
    assert s.tier == min(per_member)
    assert s.tier in (1, 2, 3)
    tier_text = [text for code, text in s.reasons if code == "tier"]
    assert tier_text == [tier_text[0]]
    assert tier_text[0].startswith(f"tier {s.tier} ")


@given(cases())
def test_needs_count_members_and_never_exceed_the_case_size(case: Case) -> None:
    s = screen_case(case)
    rules = screening_rules()
    for service in SERVICES:
        expected = sum(
            1 for cats in s.categories.values() if any(rules.needs.get(c) == service for c in cats)
        )
        assert s.needs.get(service, 0) == expected <= case.size
    assert all(n > 0 for n in s.needs.values())


@given(cases())
def test_minors_and_uncertain_ages_are_always_minors(case: Case) -> None:
    s = screen_case(case)
    for person in case.members:
        cats = s.categories[person.id]
        if person.age_uncertain or (person.age is not None and person.age < 18):
            assert {"minor", "unaccompanied_minor"} & set(cats)
        assert list(cats) == [c for c in CATEGORIES if c in cats]  # Art. 21 order, no repeats
    assert [code for code, _ in s.reasons][-1] == "tier"


@given(cases())
def test_screening_is_deterministic(case: Case) -> None:
    assert screen_case(case) == screen_case(case)


@given(
    st.lists(cases(), min_size=1, max_size=8),
    st.sampled_from(["", "x", "\x00", "-", "0", "{0}", "}{"]),
)
def test_screening_many_cases_at_once_is_screening_each(batch: list[Case], prefix: str) -> None:
    renamed = [
        Case(
            f"c{k}",
            tuple(
                Person(
                    f"{prefix}{k}-{m.id}",
                    m.age,
                    None,
                    m.age_uncertain,
                    None,
                    (),
                    m.vulnerabilities,
                    m.unhcr_codes,
                )
                for m in case.members
            ),
            "EL",
            DAY,
        )
        for k, case in enumerate(batch)
    ]
    # Twice the batch, so that the second half is screened from the templates of the first.
    doubled = renamed + [Case(c.id + "b", c.members, "IT", DAY) for c in renamed]
    assert screen_cases(doubled) == [screen_case(c) for c in doubled]
    # The parts the allocation reads without the whole screening are the same too.
    batch_of = ScreenedCases(doubled)
    for i, case in enumerate(doubled):
        alone = screen_case(case)
        assert batch_of.tier[i] == alone.tier
        assert batch_of.needs_of(i) == alone.needs
        assert batch_of.needs[i].tolist() == [alone.needs.get(s, 0) for s in SERVICES]
        assert batch_of.tier_text(i) == alone.reasons[-1][1]
        assert batch_of.categories_of(i) == alone.categories
        assert batch_of.need_texts(i) == [t for c, t in alone.reasons if c.startswith("need.")]
