"""Responsibility: Dublin III family criteria as data, and linked cases kept together."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from fairshare.cases import Case, FamilyLink, Person
from fairshare.responsibility import (
    Binding,
    binding_destination,
    linked_groups,
    responsibility_rules,
)
from fairshare.screening import screen_case

DAY = date(2015, 10, 2)
ALL = {"AT", "BE", "DE", "FR", "NL", "SE"}
ADULT = Person("a", age=34)
UAM = Person("m", age=15)
CHILD = Person("k", age=6)


def bind(
    members: tuple[Person, ...], *links: FamilyLink, participating: set[str] = ALL
) -> Binding | None:
    case = Case("c", members, "EL", DAY, family_links=links)
    return binding_destination(case, screen_case(case), participating)


def test_rules_are_in_dublin_order() -> None:
    rules = responsibility_rules()
    assert [r.article for r in rules.rules] == [
        "Art. 8(1)",
        "Art. 8(2)",
        "Art. 9",
        "Art. 10",
        "Art. 16(1)",
    ]
    assert rules.family_procedure_article == "Art. 11"


def test_no_links_no_binding() -> None:
    assert bind((ADULT,)) is None


# Art. 8 ------------------------------------------------------------------------------------


def test_art8_1_unaccompanied_minor_with_sibling() -> None:
    b = bind((UAM,), FamilyLink("NL", "sibling", "resident"))
    assert b is not None
    assert (b.state, b.article, b.available, b.rule) == ("NL", "Art. 8(1)", True, "art8_1")
    assert b.text.startswith("m is an unaccompanied minor whose sibling is legally present in")
    assert "Netherlands" in b.text
    assert b.text.endswith("(Regulation (EU) No 604/2013 (Dublin III), Art. 8(1)).")


def test_art8_1_parent_beats_a_relative_listed_first() -> None:
    b = bind(
        (UAM,),
        FamilyLink("AT", "relative", "resident"),
        FamilyLink("FR", "parent", "applicant"),
    )
    assert b is not None
    assert (b.state, b.article) == ("FR", "Art. 8(1)")


def test_art8_2_relative() -> None:
    b = bind((UAM,), FamilyLink("AT", "relative", "beneficiary"))
    assert b is not None
    assert (b.state, b.article) == ("AT", "Art. 8(2)")


def test_art8_does_not_need_a_declared_wish() -> None:
    b = bind((UAM,), FamilyLink("AT", "sibling", "resident", desired=False))
    assert b is not None
    assert b.article == "Art. 8(1)"


def test_art8_applies_to_an_uncertain_age_person_alone() -> None:
    b = bind((Person("p3", age=19, age_uncertain=True),), FamilyLink("SE", "sibling", "resident"))
    assert b is not None
    assert b.article == "Art. 8(1)"


def test_art8_not_for_a_minor_with_an_adult() -> None:
    # the sibling of a child travelling with a parent: no family criterion applies
    assert bind((ADULT, CHILD), FamilyLink("SE", "sibling", "resident")) is None


# Art. 9 and 10 -----------------------------------------------------------------------------


def test_art9_spouse_beneficiary() -> None:
    b = bind((ADULT, CHILD), FamilyLink("SE", "spouse", "beneficiary"))
    assert b is not None
    assert (b.state, b.article) == ("SE", "Art. 9")
    assert b.text.startswith(
        "The applicant's spouse is a beneficiary of international protection in Sweden: SE is "
        "responsible, as the applicant so desires"
    )


def test_art9_needs_the_wish() -> None:
    assert bind((ADULT,), FamilyLink("SE", "spouse", "beneficiary", desired=False)) is None


def test_art9_before_art10_whatever_the_link_order() -> None:
    b = bind(
        (ADULT,),
        FamilyLink("DE", "partner", "applicant"),
        FamilyLink("SE", "child", "beneficiary"),
    )
    assert b is not None
    assert (b.state, b.article) == ("SE", "Art. 9")


def test_art10_applicant_family_member() -> None:
    b = bind((ADULT,), FamilyLink("DE", "partner", "applicant"))
    assert b is not None
    assert (b.state, b.article) == ("DE", "Art. 10")
    assert "awaits a first-instance decision" in b.text


def test_parent_is_a_family_member_only_of_a_minor() -> None:
    # an adult's parent is not a family member (Art. 2(g)) ...
    assert bind((ADULT,), FamilyLink("DE", "parent", "beneficiary")) is None
    # ... a minor's is; an unaccompanied minor is bound under Art. 8 first
    b = bind((UAM,), FamilyLink("DE", "parent", "beneficiary"))
    assert b is not None
    assert b.article == "Art. 8(1)"


def test_sibling_or_relative_is_not_a_family_member_for_art9() -> None:
    assert bind((ADULT,), FamilyLink("SE", "sibling", "beneficiary")) is None
    assert bind((ADULT,), FamilyLink("SE", "relative", "beneficiary")) is None


# Art. 16 -----------------------------------------------------------------------------------


def test_art16_pregnant_applicant_dependent_on_her_parent() -> None:
    b = bind(
        (Person("p1", age=34, vulnerabilities=("pregnant",)),),
        FamilyLink("BE", "parent", "resident"),
    )
    assert b is not None
    assert (b.state, b.article) == ("BE", "Art. 16(1)")
    assert b.text.startswith("p1 depends on the assistance of the applicant's parent")
    assert "(pregnant)" in b.text


def test_art16_new_born_child() -> None:
    b = bind((ADULT, Person("baby", age=0)), FamilyLink("BE", "sibling", "beneficiary"))
    assert b is not None
    assert b.article == "Art. 16(1)"
    assert "baby is a new-born child" in b.text


def test_art16_needs_a_dependency() -> None:
    assert bind((ADULT, CHILD), FamilyLink("BE", "sibling", "resident")) is None


def test_art16_not_for_a_family_member_who_is_only_an_applicant() -> None:
    link = FamilyLink("BE", "sibling", "applicant")
    assert bind((Person("o", age=80, vulnerabilities=("elderly",)),), link) is None


# Availability and ties ---------------------------------------------------------------------


def test_bound_state_not_participating_waits() -> None:
    b = bind((ADULT,), FamilyLink("UK", "spouse", "beneficiary"))
    assert b is not None
    assert (b.state, b.article, b.available) == ("UK", "Art. 9", False)
    assert b.text.endswith(
        "UK is not a participating destination: the case waits for its family link (waiting_link)."
    )


def test_two_states_under_one_article_first_link_wins_and_says_so() -> None:
    b = bind(
        (ADULT,),
        FamilyLink("FR", "spouse", "beneficiary"),
        FamilyLink("SE", "child", "beneficiary"),
    )
    assert b is not None
    assert b.state == "FR"
    assert "Links under Art. 9 also point to SE; the link given first (FR) was chosen." in b.text
    reverse = bind(
        (ADULT,),
        FamilyLink("SE", "child", "beneficiary"),
        FamilyLink("FR", "spouse", "beneficiary"),
    )
    assert reverse is not None
    assert reverse.state == "SE"


# Art. 11: linked groups --------------------------------------------------------------------


def case(cid: str, *links: str) -> Case:
    return Case(cid, (Person("p" + cid),), "EL", DAY, linked_cases=links)


def test_linked_groups_worked_example() -> None:
    cases = [case("a", "c"), case("b"), case("c"), case("d", "c"), case("e", "f"), case("f")]
    assert linked_groups(cases) == [("a", "c", "d"), ("b",), ("e", "f")]


def test_linked_groups_are_symmetric_and_transitive() -> None:
    assert linked_groups([case("x"), case("y", "z"), case("z", "x")]) == [("x", "y", "z")]


@st.composite
def linked_cases(draw: st.DrawFn) -> list[Case]:
    n = draw(st.integers(0, 12))
    ids = [f"c{i}" for i in range(n)]
    return (
        [case(cid, *draw(st.lists(st.sampled_from(ids), max_size=3, unique=True))) for cid in ids]
        if ids
        else []
    )


@given(linked_cases())
def test_linked_groups_is_a_partition_that_keeps_every_link(cases: list[Case]) -> None:
    groups = linked_groups(cases)
    flat = [cid for group in groups for cid in group]
    assert sorted(flat) == sorted(c.id for c in cases)
    assert len(flat) == len(set(flat))
    group_of = {cid: i for i, group in enumerate(groups) for cid in group}
    for c in cases:
        for other in c.linked_cases:
            assert group_of[c.id] == group_of[other]
    # input order: groups by first member, members in input order
    position = {c.id: i for i, c in enumerate(cases)}
    assert [position[g[0]] for g in groups] == sorted(position[g[0]] for g in groups)
    for group in groups:
        assert [position[cid] for cid in group] == sorted(position[cid] for cid in group)


@given(linked_cases())
def test_linked_groups_are_minimal(cases: list[Case]) -> None:
    # no group splits into two parts without a link between them
    groups = linked_groups(cases)
    links = {(c.id, o) for c in cases for o in c.linked_cases}
    for group in groups:
        reached = {group[0]}
        changed = True
        while changed:
            changed = False
            for a, b in links:
                if (a in reached) != (b in reached) and a in group and b in group:
                    reached |= {a, b}
                    changed = True
        assert reached == set(group)
