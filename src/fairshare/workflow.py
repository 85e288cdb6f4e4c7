"""The case workflow: states, allowed transitions, who may make them, and transfer deadlines.

The workflow is data (``rules/workflow.yaml``): each transition names its source and target
state, the roles that may perform it (default deny), whether a reason must be given, and its
legal basis where one exists. The main line is

    registered -> screened -> ready -> allocated -> transfer_scheduled -> transferred -> arrived

with the side states ``withdrawn`` (Directive 2013/32/EU Art. 27 and 28), ``absconded``
(Art. 28(1)(b); Regulation (EU) No 604/2013 Art. 29(2)), ``returned`` (Directive 2008/115/EC)
and ``reunited`` (Regulation (EU) No 604/2013 Art. 8 to 11, 16 and 17(2)).

Everything here is pure: the registry stamps who/when/why and writes the audit event; this
module only decides whether a step is allowed and explains why not. Which *state's* cases a
role may touch (its scope) is the registry's check, not this module's.

>>> t = check_transition("ready", "allocated", "coordinator", None)
>>> (t.source, t.target, t.reason_required)
('ready', 'allocated', False)
>>> next_states("registered", "registrar")
('screened', 'withdrawn', 'absconded', 'returned', 'reunited')
>>> check_transition("registered", "allocated", "registrar", None)
Traceback (most recent call last):
...
fairshare.workflow.TransitionError: cannot move a case from 'registered' to 'allocated': \
there is no such transition. From 'registered' a registrar may move it to: screened, \
withdrawn, absconded, returned, reunited
>>> from datetime import date
>>> transfer_deadline(date(2015, 8, 31))
datetime.date(2016, 2, 29)
>>> is_overdue(date(2015, 8, 31), date(2016, 3, 1))
True
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import yaml

from fairshare.errors import InputError

__all__ = [
    "Transition",
    "TransitionError",
    "WorkflowRules",
    "check_transition",
    "is_overdue",
    "next_states",
    "parse_workflow_rules",
    "transfer_deadline",
    "workflow_rules",
]

_SOURCE = "rules/workflow.yaml"


class TransitionError(InputError):
    """A known case cannot make the requested step (the registry answers HTTP 409).

    The message says why and lists the states the role may move the case to instead; the
    same facts are on the attributes, for a structured response.
    """

    def __init__(
        self, message: str, *, current: str, target: str, role: str, allowed: tuple[str, ...]
    ) -> None:
        super().__init__(message)
        self.current = current
        self.target = target
        self.role = role
        self.allowed = allowed


@dataclass(frozen=True)
class Transition:
    """One allowed step of the workflow.

    ``roles``: who may perform it (in the order of the rules file); ``reference``: its legal
    basis, or ``""`` where the step is fairshare's own procedure; ``note``: what it means.
    """

    source: str
    target: str
    roles: tuple[str, ...]
    reason_required: bool
    reference: str = ""
    note: str = ""


@dataclass(frozen=True)
class WorkflowRules:
    """The workflow of ``rules/workflow.yaml``, checked.

    ``states``: name -> label, in the order of the file; ``final``: the states without a way
    out; ``transitions``: in the order of the file (which is the order of :func:`next_states`);
    ``deadline_extensions``: name -> (months, reference), Art. 29(2).
    """

    initial: str
    roles: tuple[str, ...]
    states: Mapping[str, str]
    final: frozenset[str]
    transitions: tuple[Transition, ...]
    deadline_months: int
    deadline_reference: str
    deadline_extensions: Mapping[str, tuple[int, str]]

    def transition(self, source: str, target: str) -> Transition | None:
        """The transition from ``source`` to ``target``, or ``None`` if there is none."""
        for t in self.transitions:
            if t.source == source and t.target == target:
                return t
        return None


def _error(source: str, message: str) -> InputError:
    return InputError(f"{source}: {message}")


def _mapping(value: object, what: str, source: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _error(source, f"{what} must be a mapping, not {type(value).__name__}")
    return value


def _sequence(value: object, what: str, source: str) -> list[Any]:
    if not isinstance(value, list):
        raise _error(source, f"{what} must be a list, not {type(value).__name__}")
    return value


def _text(value: object, what: str, source: str, *, empty: bool = False) -> str:
    if value is None and empty:
        return ""
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise _error(source, f"{what} must be a non-empty text, not {value!r}")
    return value.strip()


def _months(value: object, what: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _error(
            source, f"{what} must be a whole number of months of at least 1, not {value!r}"
        )
    return value


def _reachable(initial: str, transitions: tuple[Transition, ...]) -> set[str]:
    seen = {initial}
    frontier = [initial]
    while frontier:
        state = frontier.pop()
        for t in transitions:
            if t.source == state and t.target not in seen:
                seen.add(t.target)
                frontier.append(t.target)
    return seen


def _load(raw: object, source: str) -> WorkflowRules:
    doc = _mapping(raw, "the workflow rules", source)
    for key in ("initial", "roles", "states", "transitions", "transfer_deadline"):
        if key not in doc:
            raise _error(source, f"'{key}' is missing")
    roles: list[str] = []
    for role in _sequence(doc["roles"], "'roles'", source):
        name = _text(role, "a role", source)
        if name in roles:
            raise _error(source, f"role '{name}' is listed twice")
        roles.append(name)
    states: dict[str, str] = {}
    final: set[str] = set()
    for i, spec in enumerate(_sequence(doc["states"], "'states'", source), start=1):
        entry = _mapping(spec, f"state {i}", source)
        name = _text(entry.get("name"), f"the name of state {i}", source)
        if name in states:
            raise _error(source, f"state '{name}' is listed twice")
        states[name] = _text(entry.get("label"), f"the label of state '{name}'", source)
        is_final = entry.get("final", False)
        if not isinstance(is_final, bool):
            raise _error(source, f"'final' of state '{name}' must be true or false")
        if is_final:
            final.add(name)
    known = ", ".join(states)
    initial = _text(doc["initial"], "'initial'", source)
    if initial not in states:
        raise _error(source, f"the initial state '{initial}' is not a state (states: {known})")
    transitions: list[Transition] = []
    for i, spec in enumerate(_sequence(doc["transitions"], "'transitions'", source), start=1):
        entry = _mapping(spec, f"transition {i}", source)
        src = _text(entry.get("from"), f"'from' of transition {i}", source)
        dst = _text(entry.get("to"), f"'to' of transition {i}", source)
        where = f"transition {i} ({src} -> {dst})"
        for state in (src, dst):
            if state not in states:
                raise _error(source, f"{where}: unknown state '{state}' (states: {known})")
        if src == dst:
            raise _error(source, f"{where}: a state cannot move to itself")
        if any(t.source == src and t.target == dst for t in transitions):
            raise _error(source, f"{where}: duplicate transition (each pair at most once)")
        who = tuple(
            _text(r, f"a role of {where}", source)
            for r in _sequence(entry.get("roles"), f"'roles' of {where}", source)
        )
        if not who:
            raise _error(source, f"{where}: no role may perform it; remove it or name a role")
        for role in who:
            if role not in roles:
                raise _error(source, f"{where}: unknown role '{role}' (roles: {', '.join(roles)})")
        if len(set(who)) != len(who):
            raise _error(source, f"{where}: a role is listed twice")
        reason_required = entry.get("reason_required")
        if not isinstance(reason_required, bool):
            raise _error(source, f"{where}: 'reason_required' must be true or false")
        transitions.append(
            Transition(
                source=src,
                target=dst,
                roles=who,
                reason_required=reason_required,
                reference=_text(
                    entry.get("reference"), f"reference of {where}", source, empty=True
                ),
                note=_text(entry.get("note"), f"note of {where}", source, empty=True),
            )
        )
    frozen = tuple(transitions)
    unreachable = [s for s in states if s not in _reachable(initial, frozen)]
    if unreachable:
        raise _error(
            source, f"unreachable from '{initial}': {', '.join(unreachable)} (add a transition)"
        )
    for state in states:
        leaves = any(t.source == state for t in frozen)
        if state in final and leaves:
            raise _error(source, f"final state '{state}' has a transition out of it")
        if state not in final and not leaves:
            raise _error(
                source, f"state '{state}' has no transition out of it; mark it final: true"
            )
    deadline = _mapping(doc["transfer_deadline"], "'transfer_deadline'", source)
    extensions: dict[str, tuple[int, str]] = {}
    raw_ext = deadline.get("extensions") or {}
    for name, spec in _mapping(raw_ext, "'transfer_deadline.extensions'", source).items():
        ext = _mapping(spec, f"extension '{name}'", source)
        extensions[str(name)] = (
            _months(ext.get("months"), f"months of extension '{name}'", source),
            _text(ext.get("reference"), f"reference of extension '{name}'", source, empty=True),
        )
    return WorkflowRules(
        initial=initial,
        roles=tuple(roles),
        states=states,
        final=frozenset(final),
        transitions=frozen,
        deadline_months=_months(deadline.get("months"), "'transfer_deadline.months'", source),
        deadline_reference=_text(
            deadline.get("reference"), "'transfer_deadline.reference'", source, empty=True
        ),
        deadline_extensions=extensions,
    )


def parse_workflow_rules(text: str, source: str = _SOURCE) -> WorkflowRules:
    """Read and check workflow rules from YAML text (the bundled file, or a scenario's own).

    Every problem is an :class:`~fairshare.errors.InputError` naming ``source`` and what to
    fix: unknown states or roles, duplicate transitions, self-loops, states unreachable from
    the initial state, final states with a way out and other states without one.

    >>> parse_workflow_rules("initial: x")
    Traceback (most recent call last):
    ...
    fairshare.errors.InputError: rules/workflow.yaml: 'roles' is missing
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _error(source, f"not valid YAML: {exc}") from None
    return _load(raw, source)


@cache
def workflow_rules() -> WorkflowRules:
    """The bundled workflow (``rules/workflow.yaml``), checked once and cached."""
    text = resources.files("fairshare.rules").joinpath("workflow.yaml").read_text("utf-8")
    return parse_workflow_rules(text)


def _check_known(rules: WorkflowRules, *, state: str, what: str) -> None:
    if state not in rules.states:
        raise InputError(f"unknown {what} case state '{state}'; states: {', '.join(rules.states)}")


def _check_role(rules: WorkflowRules, role: str) -> None:
    if role not in rules.roles:
        raise InputError(f"unknown role '{role}'; roles: {', '.join(rules.roles)}")


def next_states(current: str, role: str, rules: WorkflowRules | None = None) -> tuple[str, ...]:
    """The states ``role`` may move a case in ``current`` to, in the order of the rules.

    Unknown states or roles are an :class:`~fairshare.errors.InputError`.

    >>> next_states("ready", "coordinator")
    ('allocated',)
    >>> next_states("ready", "analyst")
    ()
    """
    r = rules or workflow_rules()
    _check_known(r, state=current, what="current")
    _check_role(r, role)
    return tuple(t.target for t in r.transitions if t.source == current and role in t.roles)


def _article(role: str) -> str:
    return "an" if role[:1] in "aeiou" else "a"


def _allowed_text(rules: WorkflowRules, current: str, role: str, allowed: tuple[str, ...]) -> str:
    if current in rules.final:
        return f"'{current}' is a final state: no one may move the case out of it"
    if not allowed:
        return f"from '{current}' {_article(role)} {role} may not move the case at all"
    return f"From '{current}' {_article(role)} {role} may move it to: {', '.join(allowed)}"


def check_transition(
    current: str,
    target: str,
    role: str,
    reason: str | None,
    rules: WorkflowRules | None = None,
) -> Transition:
    """The transition ``current -> target`` if ``role`` may make it with this ``reason``.

    Raises :class:`TransitionError` (HTTP 409 in the registry) when the step does not exist,
    the role may not take it, or it needs a reason and none (or only blanks) was given; the
    message lists the states the role may move the case to instead. Unknown states and roles
    are a plain :class:`~fairshare.errors.InputError` (bad input, not a conflict).

    >>> check_transition("ready", "screened", "registrar", "  ")
    Traceback (most recent call last):
    ...
    fairshare.workflow.TransitionError: moving a case from 'ready' to 'screened' needs a \
reason (re-screening on new information, e.g. the result of an age assessment). From 'ready' \
a registrar may move it to: screened, withdrawn, absconded, returned, reunited
    """
    r = rules or workflow_rules()
    _check_known(r, state=current, what="current")
    _check_known(r, state=target, what="target")
    _check_role(r, role)
    allowed = next_states(current, role, r)
    tail = _allowed_text(r, current, role, allowed)

    def fail(why: str) -> TransitionError:
        return TransitionError(
            f"{why}. {tail[0].upper()}{tail[1:]}",
            current=current,
            target=target,
            role=role,
            allowed=allowed,
        )

    if current == target:
        raise fail(f"the case is already '{current}'")
    found = r.transition(current, target)
    if found is None:
        raise fail(
            f"cannot move a case from '{current}' to '{target}': there is no such transition"
        )
    if role not in found.roles:
        raise fail(
            f"{_article(role)} {role} may not move a case from '{current}' to '{target}' "
            f"(only: {', '.join(found.roles)})"
        )
    if found.reason_required and (reason is None or not reason.strip()):
        why = f" ({found.note})" if found.note else ""
        raise fail(f"moving a case from '{current}' to '{target}' needs a reason{why}")
    return found


def _positive_months(months: int | None, rules: WorkflowRules) -> int:
    if months is None:
        return rules.deadline_months
    if isinstance(months, bool) or not isinstance(months, int) or months < 1:
        raise InputError(
            f"transfer deadline months must be a whole number of at least 1, not {months!r}"
        )
    return months


def transfer_deadline(
    allocated_on: date, months: int | None = None, rules: WorkflowRules | None = None
) -> date:
    """The last day on which a case allocated on ``allocated_on`` may still be transferred.

    ``months`` defaults to the rules' 6 (Regulation (EU) No 604/2013 Art. 29(1)); pass 12 or
    18 for the Art. 29(2) extensions (imprisonment, absconding). Calendar months, as in
    Regulation (EEC, Euratom) No 1182/71 Art. 3(2)(c): the same date ``months`` later, or the
    last day of that month when it has no such date. Weekends and public holidays do not
    extend the period here (Art. 3(4) of that Regulation would; they differ by state, so the
    deadline shown is the conservative one).

    >>> transfer_deadline(date(2015, 10, 2))
    datetime.date(2016, 4, 2)
    >>> transfer_deadline(date(2015, 8, 31)), transfer_deadline(date(2016, 8, 31))
    (datetime.date(2016, 2, 29), datetime.date(2017, 2, 28))
    >>> transfer_deadline(date(2015, 8, 31), months=18)
    datetime.date(2017, 2, 28)
    """
    r = rules or workflow_rules()
    n = _positive_months(months, r)
    index = allocated_on.year * 12 + (allocated_on.month - 1) + n
    year, month = divmod(index, 12)
    month += 1
    if year > date.max.year:
        raise InputError(f"a transfer deadline {n} months after {allocated_on} is out of range")
    day = min(allocated_on.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def is_overdue(
    allocated_on: date,
    today: date,
    months: int | None = None,
    rules: WorkflowRules | None = None,
) -> bool:
    """Whether a case allocated on ``allocated_on`` and not yet transferred is overdue on ``today``.

    Overdue means the deadline day (:func:`transfer_deadline`) has passed: on the deadline day
    itself the transfer is still in time. The caller asks only for cases not yet transferred.

    >>> allocated = date(2015, 10, 2)
    >>> is_overdue(allocated, date(2016, 4, 2)), is_overdue(allocated, date(2016, 4, 3))
    (False, True)
    """
    return today > transfer_deadline(allocated_on, months, rules)
