"""The case workflow (issue 4, "Workflow"): transitions, roles, reasons and transfer deadlines."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, timedelta
from importlib import resources
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fairshare.errors import InputError
from fairshare.workflow import (
    Transition,
    TransitionError,
    WorkflowRules,
    check_transition,
    is_overdue,
    next_states,
    parse_workflow_rules,
    transfer_deadline,
    workflow_rules,
)

RULES = workflow_rules()
STATES = tuple(RULES.states)
ROLES = tuple(RULES.roles)
MAIN_LINE = (
    "registered",
    "screened",
    "ready",
    "allocated",
    "transfer_scheduled",
    "transferred",
    "arrived",
)
SIDE = ("withdrawn", "absconded", "returned", "reunited")


def _article(role: str) -> str:
    return "an" if role[0] in "aeiou" else "a"


def expected_tail(current: str, role: str) -> str:
    """The end of every TransitionError message: what the role may do instead."""
    allowed = next_states(current, role)
    if current in RULES.final:
        return f"'{current}' is a final state: no one may move the case out of it"
    if not allowed:
        return f"From '{current}' {_article(role)} {role} may not move the case at all"
    return f"From '{current}' {_article(role)} {role} may move it to: {', '.join(allowed)}"


def rule(source: str, target: str) -> Transition:
    found = RULES.transition(source, target)
    assert found is not None, (source, target)
    return found


# ---------------------------------------------------------------------------------------------
# The rules as data


def test_states_are_the_main_line_and_the_side_states() -> None:
    assert tuple(RULES.states) == (*MAIN_LINE, *SIDE)
    assert RULES.initial == "registered"
    assert RULES.final == {"arrived", "withdrawn", "returned", "reunited"}


def test_roles_are_those_of_the_issue() -> None:
    assert ROLES == (
        "registrar",
        "caseworker",
        "capacity_manager",
        "coordinator",
        "auditor",
        "analyst",
        "admin",
    )


def test_main_line_steps_exist_and_need_no_reason() -> None:
    for source, target in itertools.pairwise(MAIN_LINE):
        t = RULES.transition(source, target)
        assert t is not None, (source, target)
        assert not t.reason_required


def test_every_side_and_backward_step_needs_a_reason() -> None:
    forward = set(itertools.pairwise(MAIN_LINE))
    for t in RULES.transitions:
        if (t.source, t.target) not in forward:
            assert t.reason_required, t


def test_read_only_roles_and_admin_move_no_case() -> None:
    for role in ("capacity_manager", "auditor", "analyst", "admin"):
        assert all(role not in t.roles for t in RULES.transitions), role


def test_legal_references() -> None:
    assert "604/2013 Art. 29(1)" in RULES.deadline_reference
    assert "1182/71 Art. 3(2)(c)" in RULES.deadline_reference
    assert "Art. 29(2)" in rule("registered", "absconded").reference
    assert "2013/32/EU Art. 27" in rule("ready", "withdrawn").reference
    assert "2008/115/EC" in rule("ready", "returned").reference
    assert "Art. 17(2)" in rule("ready", "reunited").reference
    assert RULES.deadline_months == 6
    assert dict(RULES.deadline_extensions) == {
        "imprisonment": (12, "Regulation (EU) No 604/2013 Art. 29(2)"),
        "absconding": (18, "Regulation (EU) No 604/2013 Art. 29(2)"),
    }


def test_rules_are_cached() -> None:
    assert workflow_rules() is workflow_rules()


# ---------------------------------------------------------------------------------------------
# Transitions


def test_happy_path_along_the_main_line() -> None:
    who = {
        "screened": "registrar",
        "ready": "registrar",
        "allocated": "coordinator",
        "transfer_scheduled": "caseworker",
        "transferred": "registrar",
        "arrived": "caseworker",
    }
    state = "registered"
    for target in MAIN_LINE[1:]:
        t = check_transition(state, target, who[target], None)
        assert isinstance(t, Transition)
        assert (t.source, t.target) == (state, target)
        state = target
    assert next_states(state, "registrar") == ()


def test_side_states_and_back_again() -> None:
    assert check_transition("ready", "absconded", "registrar", "not at reception since 3 days")
    t = check_transition("absconded", "registered", "registrar", "reappeared in Athens")
    assert t.target == "registered"
    assert check_transition("allocated", "ready", "coordinator", "deadline lapsed").reason_required


def test_next_states_by_role() -> None:
    assert next_states("registered", "registrar") == (
        "screened",
        "withdrawn",
        "absconded",
        "returned",
        "reunited",
    )
    assert next_states("registered", "caseworker") == ()
    assert next_states("ready", "coordinator") == ("allocated",)
    assert next_states("allocated", "caseworker") == (
        "transfer_scheduled",
        "withdrawn",
        "absconded",
    )
    assert next_states("allocated", "coordinator") == ("ready",)
    assert next_states("transferred", "caseworker") == ("arrived", "absconded")
    assert next_states("transferred", "registrar") == ("absconded",)
    for state in RULES.final:
        for role in ROLES:
            assert next_states(state, role) == ()


def test_no_such_transition_message() -> None:
    with pytest.raises(TransitionError) as info:
        check_transition("registered", "arrived", "registrar", "because")
    assert str(info.value) == (
        "cannot move a case from 'registered' to 'arrived': there is no such transition. "
        "From 'registered' a registrar may move it to: screened, withdrawn, absconded, "
        "returned, reunited"
    )
    err = info.value
    assert (err.current, err.target, err.role) == ("registered", "arrived", "registrar")
    assert err.allowed == next_states("registered", "registrar")
    assert isinstance(err, InputError)


def test_wrong_role_message() -> None:
    with pytest.raises(TransitionError) as info:
        check_transition("ready", "allocated", "registrar", None)
    assert str(info.value) == (
        "a registrar may not move a case from 'ready' to 'allocated' (only: coordinator). "
        "From 'ready' a registrar may move it to: screened, withdrawn, absconded, returned, "
        "reunited"
    )


def test_role_without_any_move_message() -> None:
    with pytest.raises(TransitionError) as info:
        check_transition("ready", "allocated", "analyst", None)
    assert str(info.value) == (
        "an analyst may not move a case from 'ready' to 'allocated' (only: coordinator). "
        "From 'ready' an analyst may not move the case at all"
    )
    assert info.value.allowed == ()


def test_final_state_message() -> None:
    with pytest.raises(TransitionError) as info:
        check_transition("arrived", "registered", "admin", "mistake")
    assert str(info.value) == (
        "cannot move a case from 'arrived' to 'registered': there is no such transition. "
        "'arrived' is a final state: no one may move the case out of it"
    )


def test_same_state_message() -> None:
    with pytest.raises(TransitionError) as info:
        check_transition("allocated", "allocated", "coordinator", None)
    assert str(info.value) == (
        "the case is already 'allocated'. From 'allocated' a coordinator may move it to: ready"
    )


@pytest.mark.parametrize("reason", [None, "", "   ", "\n\t"])
def test_reason_required(reason: str | None) -> None:
    with pytest.raises(TransitionError) as info:
        check_transition("allocated", "withdrawn", "caseworker", reason)
    assert str(info.value) == (
        "moving a case from 'allocated' to 'withdrawn' needs a reason. From 'allocated' a "
        "caseworker may move it to: transfer_scheduled, withdrawn, absconded"
    )
    assert check_transition("allocated", "withdrawn", "caseworker", "withdrew in writing")


def test_reason_required_message_says_what_the_step_means() -> None:
    with pytest.raises(
        TransitionError, match=r"needs a reason \(transfer cancelled or postponed\)"
    ):
        check_transition("transfer_scheduled", "allocated", "registrar", None)


def test_a_reason_may_be_given_where_none_is_needed() -> None:
    assert check_transition("registered", "screened", "registrar", "screening on arrival")


@pytest.mark.parametrize(
    ("current", "target", "role", "message"),
    [
        ("nowhere", "screened", "registrar", "unknown current case state 'nowhere'; states: "),
        ("registered", "limbo", "registrar", "unknown target case state 'limbo'; states: "),
        ("registered", "screened", "superuser", "unknown role 'superuser'; roles: registrar, "),
    ],
)
def test_unknown_states_and_roles_are_input_errors(
    current: str, target: str, role: str, message: str
) -> None:
    with pytest.raises(InputError) as info:
        check_transition(current, target, role, "x")
    assert not isinstance(info.value, TransitionError)
    assert str(info.value).startswith(message)


def test_next_states_refuses_unknown_input() -> None:
    with pytest.raises(InputError, match="unknown current case state 'x'"):
        next_states("x", "registrar")
    with pytest.raises(InputError, match="unknown role 'root'"):
        next_states("registered", "root")


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATES, STATES)))
def test_every_invalid_transition_explains_itself(current: str, target: str) -> None:
    """Every (state, state, role) triple: allowed, or a TransitionError listing the way out."""
    for role in ROLES:
        rule = RULES.transition(current, target)
        allowed = rule is not None and role in rule.roles
        for reason in (None, "a reason"):
            if rule is not None and allowed and (reason is not None or not rule.reason_required):
                assert check_transition(current, target, role, reason) == rule
                continue
            with pytest.raises(TransitionError) as info:
                check_transition(current, target, role, reason)
            message = str(info.value)
            assert message.endswith(expected_tail(current, role)), message
            assert info.value.allowed == next_states(current, role)
            assert f"'{current}'" in message


# ---------------------------------------------------------------------------------------------
# Properties


def test_every_state_is_reachable_from_registered() -> None:
    seen = {"registered"}
    frontier = ["registered"]
    while frontier:
        state = frontier.pop()
        for role in ROLES:
            for target in next_states(state, role):
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)
    assert seen == set(STATES)


def test_every_state_can_end() -> None:
    """No trap: from every state some final state can be reached."""
    for start in STATES:
        seen = {start}
        frontier = [start]
        while frontier:
            state = frontier.pop()
            for t in RULES.transitions:
                if t.source == state and t.target not in seen:
                    seen.add(t.target)
                    frontier.append(t.target)
        assert seen & RULES.final, start


@given(
    st.sampled_from(STATES),
    st.sampled_from(STATES),
    st.sampled_from(ROLES),
    st.one_of(st.none(), st.text(max_size=5)),
)
def test_next_states_is_consistent_with_check_transition(
    current: str, target: str, role: str, reason: str | None
) -> None:
    rule = RULES.transition(current, target)
    needs_reason = rule is not None and rule.reason_required
    ok = target in next_states(current, role) and not (needs_reason and not (reason or "").strip())
    if ok:
        t = check_transition(current, target, role, reason)
        assert (t.source, t.target) == (current, target)
        assert role in t.roles
    else:
        with pytest.raises(TransitionError) as info:
            check_transition(current, target, role, reason)
        assert info.value.allowed == next_states(current, role)


@given(st.lists(st.tuples(st.sampled_from(ROLES), st.integers(0, 50)), max_size=30))
def test_random_walks_stay_in_the_rules(steps: list[tuple[str, int]]) -> None:
    state = RULES.initial
    for role, pick in steps:
        options = next_states(state, role)
        if not options:
            continue
        target = options[pick % len(options)]
        t = check_transition(state, target, role, "reason given")
        assert t in RULES.transitions
        state = target
    assert state in RULES.states


# ---------------------------------------------------------------------------------------------
# Transfer deadlines


@pytest.mark.parametrize(
    ("allocated", "months", "deadline"),
    [
        (date(2015, 8, 31), None, date(2016, 2, 29)),  # leap year: clamped to 29 February
        (date(2016, 8, 31), None, date(2017, 2, 28)),
        (date(2015, 8, 29), None, date(2016, 2, 29)),
        (date(2015, 8, 30), None, date(2016, 2, 29)),
        (date(2015, 10, 2), None, date(2016, 4, 2)),
        (date(2015, 12, 31), None, date(2016, 6, 30)),
        (date(2015, 7, 15), 6, date(2016, 1, 15)),
        (date(2015, 6, 30), 6, date(2015, 12, 30)),
        (date(2015, 8, 31), 12, date(2016, 8, 31)),
        (date(2015, 8, 31), 18, date(2017, 2, 28)),
        (date(2016, 2, 29), 12, date(2017, 2, 28)),
        (date(2015, 1, 31), 1, date(2015, 2, 28)),
    ],
)
def test_transfer_deadline(allocated: date, months: int | None, deadline: date) -> None:
    assert transfer_deadline(allocated, months) == deadline


def test_overdue_boundary() -> None:
    allocated = date(2015, 8, 31)
    deadline = date(2016, 2, 29)
    assert not is_overdue(allocated, allocated)
    assert not is_overdue(allocated, deadline - timedelta(days=1))
    assert not is_overdue(allocated, deadline)  # the deadline day itself is still in time
    assert is_overdue(allocated, deadline + timedelta(days=1))
    assert not is_overdue(allocated, date(2016, 3, 1), months=18)
    assert not is_overdue(allocated, date(2015, 1, 1))  # before the allocation


@pytest.mark.parametrize("months", [0, -6, True])
def test_months_must_be_positive_whole_numbers(months: int) -> None:
    with pytest.raises(InputError, match="whole number of at least 1"):
        transfer_deadline(date(2015, 8, 31), months)
    with pytest.raises(InputError, match="whole number of at least 1"):
        is_overdue(date(2015, 8, 31), date(2016, 1, 1), months)


def test_deadline_out_of_range() -> None:
    with pytest.raises(InputError, match="out of range"):
        transfer_deadline(date(9999, 8, 31))


def test_default_months_come_from_the_rules() -> None:
    rules = rules_with(lambda raw: raw["transfer_deadline"].update(months=3))
    assert rules.deadline_months == 3
    assert transfer_deadline(date(2015, 11, 30), rules=rules) == date(2016, 2, 29)
    assert is_overdue(date(2015, 11, 30), date(2016, 3, 1), rules=rules)
    assert transfer_deadline(date(2015, 11, 30), 6, rules=rules) == date(2016, 5, 30)


@given(st.dates(max_value=date(9000, 12, 31)), st.integers(1, 120))
def test_deadline_is_that_many_calendar_months_later(allocated: date, months: int) -> None:
    deadline = transfer_deadline(allocated, months)
    assert (deadline.year - allocated.year) * 12 + deadline.month - allocated.month == months
    assert deadline.day <= allocated.day
    if deadline.day < allocated.day:  # clamped: the last day of its month
        assert (deadline + timedelta(days=1)).day == 1
    assert not is_overdue(allocated, deadline, months)
    assert is_overdue(allocated, deadline + timedelta(days=1), months)


@given(st.dates(max_value=date(9000, 12, 31)), st.dates(max_value=date(9000, 12, 31)))
def test_deadline_is_monotone(a: date, b: date) -> None:
    if a <= b:
        assert transfer_deadline(a) <= transfer_deadline(b)


# ---------------------------------------------------------------------------------------------
# Validation of the rules file


def bundled() -> dict[str, Any]:
    text = resources.files("fairshare.rules").joinpath("workflow.yaml").read_text("utf-8")
    raw: dict[str, Any] = yaml.safe_load(text)
    return raw


def rules_with(change: Callable[[dict[str, Any]], object]) -> WorkflowRules:
    raw = bundled()
    change(raw)
    return parse_workflow_rules(yaml.safe_dump(raw, sort_keys=False))


def _transition(raw: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    for t in raw["transitions"]:
        if (t["from"], t["to"]) == (source, target):
            found: dict[str, Any] = t
            return found
    raise AssertionError((source, target))


def test_bundled_text_round_trips() -> None:
    assert rules_with(lambda raw: None) == RULES


def _drop_state(raw: dict[str, Any], name: str) -> None:
    raw["states"] = [s for s in raw["states"] if s["name"] != name]


def _add_transition(raw: dict[str, Any], **fields: object) -> None:
    raw["transitions"].append(
        {"roles": ["registrar"], "reason_required": False, "reference": ""} | fields
    )


BROKEN: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    (
        "unknown state",
        lambda raw: _add_transition(raw, **{"from": "ready", "to": "limbo"}),
        "transition 28 (ready -> limbo): unknown state 'limbo' (states: registered, screened,",
    ),
    (
        "state dropped but still used",
        lambda raw: _drop_state(raw, "reunited"),
        "transition 25 (registered -> reunited): unknown state 'reunited'",
    ),
    (
        "duplicate transition",
        lambda raw: _add_transition(raw, **{"from": "ready", "to": "allocated"}),
        "transition 28 (ready -> allocated): duplicate transition (each pair at most once)",
    ),
    (
        "self-loop",
        lambda raw: _add_transition(raw, **{"from": "ready", "to": "ready"}),
        "transition 28 (ready -> ready): a state cannot move to itself",
    ),
    (
        "unreachable state",
        lambda raw: raw["states"].append({"name": "limbo", "label": "nowhere", "final": True}),
        "unreachable from 'registered': limbo (add a transition)",
    ),
    (
        "unreachable side state",
        lambda raw: raw.update(
            transitions=[t for t in raw["transitions"] if t["to"] != "returned"]
        ),
        "unreachable from 'registered': returned (add a transition)",
    ),
    (
        "unknown role",
        lambda raw: _transition(raw, "ready", "allocated").update(roles=["dictator"]),
        "transition 3 (ready -> allocated): unknown role 'dictator' (roles: registrar,",
    ),
    (
        "no role",
        lambda raw: _transition(raw, "ready", "allocated").update(roles=[]),
        "transition 3 (ready -> allocated): no role may perform it",
    ),
    (
        "role twice",
        lambda raw: _transition(raw, "ready", "allocated").update(
            roles=["coordinator", "coordinator"]
        ),
        "transition 3 (ready -> allocated): a role is listed twice",
    ),
    (
        "reason_required not a boolean",
        lambda raw: _transition(raw, "ready", "allocated").update(reason_required="yes"),
        "transition 3 (ready -> allocated): 'reason_required' must be true or false",
    ),
    (
        "duplicate state",
        lambda raw: raw["states"].append({"name": "ready", "label": "again"}),
        "state 'ready' is listed twice",
    ),
    (
        "final state with a way out",
        lambda raw: _add_transition(raw, **{"from": "arrived", "to": "registered"}),
        "final state 'arrived' has a transition out of it",
    ),
    (
        "dead end",
        lambda raw: raw.update(
            transitions=[t for t in raw["transitions"] if t["from"] != "absconded"]
        ),
        "state 'absconded' has no transition out of it; mark it final: true",
    ),
    (
        "unknown initial state",
        lambda raw: raw.update(initial="limbo"),
        "the initial state 'limbo' is not a state",
    ),
    ("missing key", lambda raw: raw.pop("transitions"), "'transitions' is missing"),
    ("duplicate role", lambda raw: raw["roles"].append("admin"), "role 'admin' is listed twice"),
    (
        "zero months",
        lambda raw: raw["transfer_deadline"].update(months=0),
        "'transfer_deadline.months' must be a whole number of months of at least 1, not 0",
    ),
    (
        "months as text",
        lambda raw: raw["transfer_deadline"].update(months="six"),
        "'transfer_deadline.months' must be a whole number of months of at least 1, not 'six'",
    ),
    (
        "bad extension",
        lambda raw: raw["transfer_deadline"]["extensions"]["absconding"].update(months=-1),
        "months of extension 'absconding' must be a whole number of months of at least 1",
    ),
    (
        "states not a list",
        lambda raw: raw.update(states={"registered": "x"}),
        "'states' must be a list, not dict",
    ),
    (
        "state without a label",
        lambda raw: raw["states"][0].pop("label"),
        "the label of state 'registered' must be a non-empty text, not None",
    ),
]


@pytest.mark.parametrize(("change", "message"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_rules_are_refused(change: Callable[[dict[str, Any]], object], message: str) -> None:
    with pytest.raises(InputError) as info:
        rules_with(change)
    assert str(info.value).startswith("rules/workflow.yaml: ")
    assert message in str(info.value)


def test_broken_yaml_text() -> None:
    with pytest.raises(InputError, match=r"^scenario.yaml: not valid YAML: "):
        parse_workflow_rules("states: [registered\n", source="scenario.yaml")
    with pytest.raises(InputError, match="the workflow rules must be a mapping, not list"):
        parse_workflow_rules("- registered\n")
    with pytest.raises(InputError, match="the workflow rules must be a mapping, not NoneType"):
        parse_workflow_rules("")


def test_a_scenario_may_use_its_own_rules() -> None:
    """A smaller workflow passed explicitly is used instead of the bundled one."""
    text = """
initial: open
roles: [clerk]
states:
  - {name: open, label: open}
  - {name: done, label: done, final: true}
transitions:
  - {from: open, to: done, roles: [clerk], reason_required: true}
transfer_deadline: {months: 2}
"""
    rules = parse_workflow_rules(text)
    assert next_states("open", "clerk", rules) == ("done",)
    with pytest.raises(TransitionError, match=r"needs a reason\. From 'open' a clerk may move"):
        check_transition("open", "done", "clerk", None, rules)
    assert transfer_deadline(date(2015, 12, 31), rules=rules) == date(2016, 2, 29)
    assert rules.deadline_extensions == {}
