"""Domain types of the allocation problem, and the validation of its input.

A **case** is a family unit that moves together (a person alone is a case of one); a
**destination** is a receiving state, or a region of one (``DE-BY`` with ``parent: DE``), with
a capacity and a number of places for special services. The types are frozen; cases and their
parts are msgspec structs, so that a large batch of plainly valid cases is checked and built in
compiled code (anything else goes through the full checks, which report every problem). This
module does no I/O: :func:`parse_problem_input` turns JSON-like data (already read by an
adapter) into an :class:`AllocationInput`.

Bad input is rejected whole: every problem found is collected, with the JSON Pointer
(RFC 6901) of the offending value, into one :class:`ValidationError`.

>>> cases = parse_cases([{"id": "c1", "entry_state": "EL", "registered_on": "2015-10-02",
...                       "members": [{"id": "p1", "age": 34}, {"id": "p2", "age": 6}]}])
>>> cases[0].size, cases[0].registered_on.isoformat()
(2, '2015-10-02')
>>> parse_cases([{"id": "c1", "entry_state": "GR", "registered_on": "2015-02-30",
...               "members": [{"id": "p1", "age": -2}]}])
Traceback (most recent call last):
...
fairshare.cases.ValidationError: 3 problems in the input: /0/entry_state: unknown state 'GR' \
(fairshare uses Eurostat codes: EL for GR); /0/registered_on: 2015-02-30 is not a date; use \
YYYY-MM-DD; /0/members/0/age: -2 is not a valid age (0–130)
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from itertools import chain
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

import msgspec
import numpy as np

from fairshare.errors import InputError
from fairshare.keys import builtin_keys
from fairshare.reference import read_data_file, states

__all__ = [
    "LINK_STATUSES",
    "RELATIONS",
    "SERVICES",
    "AllocationInput",
    "Case",
    "Destination",
    "Exclusion",
    "FamilyLink",
    "Person",
    "ValidationError",
    "parse_cases",
    "parse_destinations",
    "parse_problem_input",
    "parse_problem_json",
    "unhcr_codes",
    "vulnerability_categories",
]

#: The special services a destination may offer, counted in places (one place per person).
SERVICES: tuple[str, ...] = (
    "unaccompanied_minor",
    "medical",
    "maternity",
    "accessible",
    "trafficking_shelter",
)

#: How a family member relates to the applicant (the family member is the applicant's ...).
RELATIONS: tuple[str, ...] = ("spouse", "partner", "child", "parent", "sibling", "relative")

#: The family member's status in the state where they are: a beneficiary of international
#: protection, an applicant whose first-instance decision is pending, or otherwise legally
#: resident.
LINK_STATUSES: tuple[str, ...] = ("beneficiary", "applicant", "resident")

MAX_AGE = 130
#: Whole numbers (capacities, places, persons received, seeds) are bounded so that they fit
#: the solver's 64-bit arithmetic with room to add.
MAX_COUNT = 2**53

_ISO_HINTS = {"GR": "EL", "GB": "UK"}


# --------------------------------------------------------------------------------------------
# Vocabularies (bundled data)


def _csv_rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read_data_file(name))))


@cache
def vulnerability_categories() -> dict[str, tuple[str, str]]:
    """The categories of vulnerable persons: name -> (description, legal instrument).

    Directive 2013/33/EU Art. 21 and Directive (EU) 2024/1346 Art. 24, bundled as
    ``reference/data/vulnerable_persons_rcd.csv``.

    >>> list(vulnerability_categories())[:3]
    ['minor', 'unaccompanied_minor', 'disability']
    """
    return {
        row["category"]: (row["text"], row["instrument"])
        for row in _csv_rows("vulnerable_persons_rcd.csv")
    }


@cache
def unhcr_codes() -> dict[str, str]:
    """UNHCR standardized specific-needs codes: code -> meaning (bundled table).

    >>> unhcr_codes()["SC-UC"]
    'Unaccompanied child'
    """
    out = {row["code"]: row["meaning"] for row in _csv_rows("unhcr_specific_needs_codes.csv")}
    for row in _csv_rows("unhcr_code_to_rcd_category.csv"):
        out.setdefault(row["unhcr_code"], row["note"])
    return out


# --------------------------------------------------------------------------------------------
# Domain types


#: A string that is not empty. The full checks also refuse a string of spaces (what
#: ``str.strip()`` empties); the fast path checks that in bulk (:func:`_blank`), which is an
#: order of magnitude cheaper than a pattern that msgspec would match string by string.
NonBlank = Annotated[str, msgspec.Meta(min_length=1)]
Age = Annotated[int, msgspec.Meta(ge=0, le=MAX_AGE)]

# The vocabularies as the shapes of the structs, so that msgspec checks them while it decodes
# (a value outside them sends the case to the full checks, which say what is wrong).
if TYPE_CHECKING:
    Category: TypeAlias = str
    Code: TypeAlias = str
    StateCode: TypeAlias = str
    Relation: TypeAlias = str
    LinkStatus: TypeAlias = str
else:
    Category = Literal[tuple(vulnerability_categories())]
    Code = Literal[tuple(unhcr_codes())]
    StateCode = Literal[tuple(states())]
    Relation = Literal[RELATIONS]
    LinkStatus = Literal[LINK_STATUSES]


class Person(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One member of a case.

    ``vulnerabilities`` holds the declared categories of :func:`vulnerability_categories`,
    ``unhcr_codes`` the declared UNHCR specific-needs codes, both as given (screening maps the
    codes onto categories and derives minors; see :mod:`fairshare.screening`).
    """

    id: NonBlank
    age: Age | None = None
    sex: NonBlank | None = None
    age_uncertain: bool = False
    nationality: NonBlank | None = None
    languages: tuple[NonBlank, ...] = ()
    vulnerabilities: tuple[Category, ...] = ()
    unhcr_codes: tuple[Code, ...] = ()


class FamilyLink(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A family member of the applicant outside the case: where they are, who, and their status.

    ``desired`` records the applicant's wish to be brought together, which Dublin III
    Arts. 9, 10 and 16 require ("if the persons concerned so desire in writing"); it defaults
    to ``True`` (declaring the link is read as the wish).
    """

    state: str
    relation: Relation
    status: LinkStatus
    desired: bool = True


class Exclusion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A destination the case must not go to, and why (e.g. a safety concern)."""

    state: NonBlank
    reason: NonBlank


class Case(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A family unit that is allocated as a whole."""

    id: NonBlank
    members: Annotated[tuple[Person, ...], msgspec.Meta(min_length=1)]
    entry_state: StateCode
    registered_on: date
    family_links: tuple[FamilyLink, ...] = ()
    linked_cases: tuple[NonBlank, ...] = ()
    preferences: tuple[NonBlank, ...] = ()
    scores: dict[NonBlank, float] = msgspec.field(default_factory=dict)
    excluded: tuple[Exclusion, ...] = ()

    @property
    def size(self) -> int:
        """The number of persons in the case."""
        return len(self.members)


@dataclass(frozen=True)
class Destination:
    """A receiving state or region: capacity (persons) and places per special service."""

    id: str
    parent: str | None = None
    capacity: int = 0
    services: Mapping[str, int] = field(default_factory=dict)
    languages: tuple[str, ...] = ()
    nationalities: tuple[str, ...] = ()
    participating: bool = True


@dataclass(frozen=True)
class AllocationInput:
    """Everything an allocation batch starts from, validated."""

    key: Mapping[str, Any]
    received: Mapping[str, int]
    destinations: tuple[Destination, ...]
    cases: tuple[Case, ...]
    seed: int | None = None
    largest_case: int = 0  # M: the largest case the ledger has allocated so far


# --------------------------------------------------------------------------------------------
# Validation


class ValidationError(InputError):
    """The input has one or more problems; ``problems`` lists (JSON Pointer, message) pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems: list[tuple[str, str]] = list(problems)
        count = len(self.problems)
        listed = "; ".join(f"{pointer or '/'}: {message}" for pointer, message in self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} {noun} in the input: {listed}")


def _escape(token: str | int) -> str:
    text = str(token)
    if "~" in text or "/" in text:
        return text.replace("~", "~0").replace("/", "~1")
    return text


#: A JSON Pointer under construction: a string, or (parent, token) pairs built lazily so that
#: validating a large input does not format a pointer for every value it checks.
Pointer = str | tuple[Any, str | int]


def _ptr(base: Pointer, *tokens: str | int) -> Pointer:
    """The JSON Pointer (RFC 6901) of ``tokens`` below ``base`` (rendered on demand)."""
    for token in tokens:
        base = (base, token)
    return base


def _render(pointer: Pointer) -> str:
    parts: list[str] = []
    while isinstance(pointer, tuple):
        pointer, token = pointer
        parts.append(_escape(token))
    return pointer + "".join("/" + part for part in reversed(parts))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Checker:
    """Collects problems; every helper returns a usable value or ``None``."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def add(self, pointer: Pointer, message: str) -> None:
        self.problems.append((_render(pointer), message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise ValidationError(self.problems)

    def mapping(
        self, value: object, pointer: Pointer, allowed: Collection[str] | None = None
    ) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.add(pointer, f"expected an object, got {_kind(value)}")
            return None
        if allowed is not None:
            for name in value:
                if name not in allowed:
                    self.add(
                        _ptr(pointer, str(name)),
                        f"unknown field '{name}'; known fields: {', '.join(allowed)}",
                    )
        return value

    def sequence(self, value: object, pointer: Pointer) -> Sequence[Any] | None:
        if not isinstance(value, list | tuple):
            self.add(pointer, f"expected a list, got {_kind(value)}")
            return None
        return value

    def text(self, value: object, pointer: Pointer) -> str | None:
        if not isinstance(value, str) or not value.strip():
            got = "an empty string" if isinstance(value, str) else _kind(value)
            self.add(pointer, f"expected a non-empty string, got {got}")
            return None
        return value

    def optional_text(self, obj: Mapping[str, Any], name: str, pointer: Pointer) -> str | None:
        value = obj.get(name)
        return None if value is None else self.text(value, _ptr(pointer, name))

    def boolean(self, obj: Mapping[str, Any], name: str, pointer: Pointer, default: bool) -> bool:
        value = obj.get(name, default)
        if not isinstance(value, bool):
            self.add(_ptr(pointer, name), f"expected true or false, got {_kind(value)}")
            return default
        return value

    def integer(self, value: object, pointer: Pointer) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            got = repr(value) if isinstance(value, float) else _kind(value)
            self.add(pointer, f"expected a whole number, got {got}")
            return None
        if abs(value) > MAX_COUNT:
            self.add(pointer, f"{value} is too large (at most {MAX_COUNT:,})")
            return None
        return value

    def count(self, value: object, pointer: Pointer, what: str) -> int | None:
        number = self.integer(value, pointer)
        if number is not None and number < 0:
            self.add(pointer, f"{number} {what} is negative; use 0 or more")
            return None
        return number

    def texts(self, obj: Mapping[str, Any], name: str, pointer: Pointer) -> tuple[str, ...]:
        items = self.sequence(obj.get(name, []), _ptr(pointer, name))
        if items is None:
            return ()
        out: list[str] = []
        for i, item in enumerate(items):
            value = self.text(item, _ptr(pointer, name, i))
            if value is not None:
                out.append(value)
        return tuple(out)

    def state(self, value: object, pointer: Pointer) -> str | None:
        code = self.text(value, pointer)
        if code is None:
            return None
        if code not in states():
            hint = _ISO_HINTS.get(code.upper())
            if hint:
                extra = f" (fairshare uses Eurostat codes: {hint} for {code.upper()})"
            elif code.upper() in states():
                extra = f" (did you mean {code.upper()}?)"
            else:
                extra = f"; known states: {', '.join(states())}"
            self.add(pointer, f"unknown state '{code}'{extra}")
            return None
        return code

    def day(self, value: object, pointer: Pointer) -> date | None:
        if isinstance(value, date):
            return value
        if not isinstance(value, str):
            self.add(pointer, f"expected a date as text YYYY-MM-DD, got {_kind(value)}")
            return None
        if _DATE.match(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.add(pointer, f"{value} is not a date; use YYYY-MM-DD")
        return None


_PERSON_FIELDS = (
    "id",
    "age",
    "sex",
    "age_uncertain",
    "nationality",
    "languages",
    "vulnerabilities",
    "unhcr_codes",
)
_CASE_FIELDS = (
    "id",
    "members",
    "entry_state",
    "registered_on",
    "family_links",
    "linked_cases",
    "preferences",
    "scores",
    "excluded",
)
_LINK_FIELDS = ("state", "relation", "status", "desired")
_EXCLUSION_FIELDS = ("state", "reason")
_DESTINATION_FIELDS = (
    "id",
    "parent",
    "capacity",
    "services",
    "languages",
    "nationalities",
    "participating",
)
_INPUT_FIELDS = ("key", "ledger", "destinations", "cases", "seed")


def _person(check: _Checker, raw: object, pointer: Pointer) -> Person | None:
    obj = check.mapping(raw, pointer, _PERSON_FIELDS)
    if obj is None:
        return None
    if "id" not in obj:
        check.add(pointer, "a person needs an 'id'")
    pid = check.text(obj.get("id"), _ptr(pointer, "id")) if "id" in obj else None
    age = None
    if obj.get("age") is not None:
        age = check.integer(obj["age"], _ptr(pointer, "age"))
        if age is not None and not 0 <= age <= MAX_AGE:
            check.add(_ptr(pointer, "age"), f"{age} is not a valid age (0–{MAX_AGE})")
            age = None
    categories = vulnerability_categories()
    codes = unhcr_codes()
    declared: list[str] = []
    coded: list[str] = []
    entries = check.sequence(obj.get("vulnerabilities", []), _ptr(pointer, "vulnerabilities"))
    for i, item in enumerate(entries or ()):
        where = _ptr(pointer, "vulnerabilities", i)
        value = check.text(item, where)
        if value is None:
            continue
        if value in categories:
            if value not in declared:
                declared.append(value)
        elif value.upper() in codes:
            if value.upper() not in coded:
                coded.append(value.upper())
        else:
            check.add(
                where,
                f"unknown vulnerability '{value}'; use a category "
                f"({', '.join(categories)}) or a UNHCR specific-needs code such as SC-UC",
            )
    entries = check.sequence(obj.get("unhcr_codes", []), _ptr(pointer, "unhcr_codes"))
    for i, item in enumerate(entries or ()):
        where = _ptr(pointer, "unhcr_codes", i)
        value = check.text(item, where)
        if value is None:
            continue
        if value.upper() in codes:
            if value.upper() not in coded:
                coded.append(value.upper())
        else:
            check.add(where, f"unknown UNHCR specific-needs code '{value}'")
    sex = check.optional_text(obj, "sex", pointer)
    age_uncertain = check.boolean(obj, "age_uncertain", pointer, False)
    nationality = check.optional_text(obj, "nationality", pointer)
    languages = check.texts(obj, "languages", pointer)
    if pid is None:
        return None
    return Person(
        id=pid,
        age=age,
        sex=sex,
        age_uncertain=age_uncertain,
        nationality=nationality,
        languages=languages,
        vulnerabilities=tuple(declared),
        unhcr_codes=tuple(coded),
    )


def _link(
    check: _Checker, raw: object, pointer: Pointer, destination_ids: Collection[str]
) -> FamilyLink | None:
    obj = check.mapping(raw, pointer, _LINK_FIELDS)
    if obj is None:
        return None
    state_value = obj.get("state")
    state: str | None
    if isinstance(state_value, str) and state_value in destination_ids:
        state = state_value
    else:
        state = check.state(state_value, _ptr(pointer, "state"))
    relation = check.text(obj.get("relation"), _ptr(pointer, "relation"))
    if relation is not None and relation not in RELATIONS:
        check.add(
            _ptr(pointer, "relation"),
            f"unknown relation '{relation}'; use one of {', '.join(RELATIONS)}",
        )
        relation = None
    status = check.text(obj.get("status"), _ptr(pointer, "status"))
    if status is not None and status not in LINK_STATUSES:
        check.add(
            _ptr(pointer, "status"),
            f"unknown status '{status}'; use one of {', '.join(LINK_STATUSES)}",
        )
        status = None
    desired = check.boolean(obj, "desired", pointer, True)
    if state is None or relation is None or status is None:
        return None
    return FamilyLink(state=state, relation=relation, status=status, desired=desired)


def _destination_ref(
    check: _Checker, value: object, pointer: Pointer, destination_ids: Collection[str] | None
) -> str | None:
    ref = check.text(value, pointer)
    if ref is not None and destination_ids is not None and ref not in destination_ids:
        known = ", ".join(destination_ids) or "none given"
        check.add(pointer, f"unknown destination '{ref}'; destinations: {known}")
        return None
    return ref


def _case(
    check: _Checker, raw: object, pointer: Pointer, destination_ids: Collection[str] | None
) -> Case | None:
    obj = check.mapping(raw, pointer, _CASE_FIELDS)
    if obj is None:
        return None
    for name in ("id", "members", "entry_state", "registered_on"):
        if name not in obj:
            check.add(pointer, f"a case needs '{name}'")
    cid = check.text(obj["id"], _ptr(pointer, "id")) if "id" in obj else None
    entry = (
        check.state(obj["entry_state"], _ptr(pointer, "entry_state"))
        if "entry_state" in obj
        else None
    )
    registered = (
        check.day(obj["registered_on"], _ptr(pointer, "registered_on"))
        if "registered_on" in obj
        else None
    )
    members: list[Person] = []
    raw_members = check.sequence(obj.get("members", []), _ptr(pointer, "members"))
    if raw_members is not None and "members" in obj and not raw_members:
        check.add(_ptr(pointer, "members"), "a case needs at least one member")
    for i, item in enumerate(raw_members or ()):
        person = _person(check, item, _ptr(pointer, "members", i))
        if person is not None:
            members.append(person)
    links: list[FamilyLink] = []
    raw_links = check.sequence(obj.get("family_links", []), _ptr(pointer, "family_links"))
    for i, item in enumerate(raw_links or ()):
        link = _link(check, item, _ptr(pointer, "family_links", i), destination_ids or ())
        if link is not None:
            links.append(link)
    linked = check.texts(obj, "linked_cases", pointer)
    for j, other in enumerate(linked):
        if other in linked[:j]:
            check.add(_ptr(pointer, "linked_cases", j), f"'{other}' is listed twice")
    preferences: list[str] = []
    raw_prefs = check.sequence(obj.get("preferences", []), _ptr(pointer, "preferences"))
    for i, item in enumerate(raw_prefs or ()):
        where = _ptr(pointer, "preferences", i)
        ref = _destination_ref(check, item, where, destination_ids)
        if ref is not None:
            if ref in preferences:
                check.add(where, f"'{ref}' is listed twice")
            else:
                preferences.append(ref)
    scores: dict[str, float] = {}
    raw_scores = check.mapping(obj.get("scores", {}), _ptr(pointer, "scores"))
    for name, value in (raw_scores or {}).items():
        where = _ptr(pointer, "scores", str(name))
        ref = _destination_ref(check, name, where, destination_ids)
        if isinstance(value, bool) or not isinstance(value, int | float):
            check.add(where, f"expected a number, got {_kind(value)}")
        elif isinstance(value, int) and abs(value) > MAX_COUNT:
            check.add(where, f"{value} is too large for a score")
        elif not math.isfinite(value):
            check.add(where, f"{value} is not a finite number")
        elif ref is not None:
            scores[ref] = float(value)
    excluded: list[Exclusion] = []
    raw_excluded = check.sequence(obj.get("excluded", []), _ptr(pointer, "excluded"))
    for i, item in enumerate(raw_excluded or ()):
        where = _ptr(pointer, "excluded", i)
        ex = check.mapping(item, where, _EXCLUSION_FIELDS)
        if ex is None:
            continue
        ref = _destination_ref(check, ex.get("state"), _ptr(where, "state"), destination_ids)
        reason = check.text(ex.get("reason"), _ptr(where, "reason"))
        if ref is not None and any(e.state == ref for e in excluded):
            check.add(_ptr(where, "state"), f"'{ref}' is excluded twice")
        elif ref is not None and reason is not None:
            excluded.append(Exclusion(state=ref, reason=reason))
    if cid is None or entry is None or registered is None or not members:
        return None
    return Case(
        id=cid,
        members=tuple(members),
        entry_state=entry,
        registered_on=registered,
        family_links=tuple(links),
        linked_cases=linked,
        preferences=tuple(preferences),
        scores=scores,
        excluded=tuple(excluded),
    )


#: Whether plainly valid cases take the fast path (:func:`_fast_case`); the full checks
#: run for every case the fast path declines, so the result is the same either way
#: (``tests/test_cases.py`` compares both).
FAST_PATH = True
_CASES = list[Case]


def _unique_codes(person: Person) -> bool:
    """Whether a person's declared categories and codes are each listed once."""
    declared = person.vulnerabilities
    coded = person.unhcr_codes
    return (len(declared) < 2 or len(set(declared)) == len(declared)) and (
        len(coded) < 2 or len(set(coded)) == len(coded)
    )


def _blank(texts: Iterable[str | None]) -> bool:
    """Whether any of the texts is only whitespace (``None`` and ``""`` are not)."""
    return any(map(str.isspace, {text for text in texts if text is not None}))


def _blank_members(persons: Sequence[Person], ids: Collection[str] | None = None) -> bool:
    """Whether a person's id (``ids``: the set of them, if made already), sex, nationality or
    a language is only whitespace."""
    return (
        any(map(str.isspace, ids if ids is not None else [p.id for p in persons]))
        or _blank(p.sex for p in persons)
        or _blank(p.nationality for p in persons)
        or _blank(language for p in persons if p.languages for language in p.languages)
    )


def _blank_wishes(cases: Iterable[Case]) -> bool:
    """Whether a linked case, preference, score or exclusion is only whitespace."""
    return _blank(
        text
        for case in cases
        for texts in (
            case.linked_cases,
            case.preferences,
            case.scores,
            [t for e in case.excluded for t in (e.state, e.reason)],
        )
        for text in texts
    )


def _plain(case: Case, known: frozenset[str] | None) -> bool:
    """Whether a case that has the right shape (checked by msgspec, vocabularies included)
    also passes every check of :func:`_case` that the shape cannot express; ``False`` sends
    it to the full checks."""
    if case.id.isspace() or _blank_members(case.members) or _blank_wishes([case]):
        return False
    for person in case.members:
        if (person.vulnerabilities or person.unhcr_codes) and not _unique_codes(person):
            return False
    if case.family_links or case.linked_cases or case.preferences or case.scores or case.excluded:
        return _plain_wishes(case, known)
    return True  # the commonest case: nothing else to check


def _plain_scores(scored: Sequence[Mapping[str, float]], known: frozenset[str] | None) -> bool:
    """Whether the scores are finite, not too large, and name known destinations."""
    values = np.fromiter(chain.from_iterable(s.values() for s in scored), dtype=np.float64)
    if not bool(np.isfinite(values).all()) or bool((np.abs(values) > MAX_COUNT).any()):
        return False
    return known is None or known.issuperset(chain.from_iterable(scored))


def _plain_wishes(case: Case, known: frozenset[str] | None, scores: bool = True) -> bool:
    """:func:`_plain` for links, linked cases, preferences, scores (unless ``scores`` is
    false: :func:`_plain_scores` checks many at once) and exclusions (blank texts apart)."""
    for link in case.family_links:
        if not (link.state in states() or (known is not None and link.state in known)):
            return False
    linked = case.linked_cases
    if len(linked) > 1 and len(set(linked)) != len(linked):
        return False
    preferences = case.preferences
    if preferences:
        if len(preferences) > 1 and len(set(preferences)) != len(preferences):
            return False
        if known is not None and not known.issuperset(preferences):
            return False
    if scores and case.scores and not _plain_scores([case.scores], known):
        return False
    if case.excluded:
        excluded = [e.state for e in case.excluded]
        if len(set(excluded)) != len(excluded):
            return False
        if known is not None and not known.issuperset(excluded):
            return False
    return True


def _fast_case(raw: object, known: frozenset[str] | None) -> Case | None:
    """A case whose every field is plainly valid, else ``None`` (for the full checks)."""
    try:
        case = msgspec.convert(raw, Case)
    except msgspec.ValidationError:
        return None
    return case if _plain(case, known) else None


def _fast_cases(items: Sequence[Any], known: frozenset[str] | None) -> list[Case] | None:
    """All cases at once when every one is plainly valid and no id is used twice, else
    ``None`` (for the case-by-case checks, which say what is wrong and where)."""
    try:
        cases = msgspec.convert(items, _CASES)
    except msgspec.ValidationError:
        return None
    # _plain for every case, unrolled (this runs for each of 100,000s of cases).
    persons = [p for case in cases for p in case.members]
    for person in persons:
        if (person.vulnerabilities or person.unhcr_codes) and not _unique_codes(person):
            return None
    wishing = [
        case
        for case in cases
        if case.family_links
        or case.linked_cases
        or case.preferences
        or case.scores
        or case.excluded
    ]
    if known is not None:
        # Names that must be destinations then cannot be blank either (see below).
        known = frozenset(name for name in known if not name.isspace())
    if not all(_plain_wishes(case, known, scores=False) for case in wishing):
        return None
    if not _plain_scores([case.scores for case in wishing if case.scores], known):
        return None
    if known is None:
        if _blank_wishes(wishing):
            return None
    elif _blank(reason for case in wishing for e in case.excluded for reason in (e.reason,)):
        # Preferences, scores and exclusions name known destinations, which are not blank;
        # a linked case names a case id, which is checked below.
        return None
    ids = {case.id for case in cases}
    person_ids = {p.id for p in persons}
    if len(ids) != len(cases) or len(person_ids) != len(persons):
        return None
    if any(map(str.isspace, ids)) or _blank_members(persons, person_ids):
        return None
    for case in cases:
        for other in case.linked_cases:
            if other == case.id or other not in ids:
                return None
    return cases


class _NotPlainError(Exception):
    """Cases decoded straight from JSON failed a check that the shape cannot express."""


def _cases(
    check: _Checker,
    data: object,
    pointer: Pointer,
    destination_ids: Collection[str] | None,
    decoded: bool = False,
) -> list[Case]:
    items = check.sequence(data, pointer)
    if items is None:
        return []
    known = None if destination_ids is None else frozenset(destination_ids)
    if decoded:  # already Case structs (parse_problem_json): only the checks left to run
        fast = _fast_cases(items, known)
        if fast is None:
            raise _NotPlainError
        return fast
    if FAST_PATH:
        fast = _fast_cases(items, known)
        if fast is not None:
            return fast
    cases: list[Case] = []
    case_at: dict[str, int] = {}
    person_at: dict[str, tuple[int, int]] = {}
    for i, item in enumerate(items):
        where = _ptr(pointer, i)
        case = _fast_case(item, known) if FAST_PATH else None
        if case is None:
            case = _case(check, item, where, destination_ids)
        # Duplicate ids are checked on the raw data, so they are found even in a broken case.
        if type(item) is dict or isinstance(item, Mapping):
            cid = item.get("id")
            if isinstance(cid, str):
                if cid in case_at:
                    check.add(
                        _ptr(where, "id"),
                        f"case id '{cid}' is already used by "
                        f"{_render(_ptr(pointer, case_at[cid]))}",
                    )
                else:
                    case_at[cid] = i
            members = item.get("members")
            for j, member in enumerate(members if isinstance(members, list | tuple) else ()):
                pid = member.get("id") if isinstance(member, Mapping) else None
                if isinstance(pid, str):
                    if pid in person_at:
                        first = _ptr(pointer, person_at[pid][0], "members", person_at[pid][1])
                        check.add(
                            _ptr(where, "members", j, "id"),
                            f"person '{pid}' is already in {_render(first)}; "
                            "a person belongs to exactly one case",
                        )
                    else:
                        person_at[pid] = (i, j)
        if case is not None:
            cases.append(case)
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        links = item.get("linked_cases")
        for j, other in enumerate(links if isinstance(links, list | tuple) else ()):
            if not isinstance(other, str):
                continue
            where = _ptr(pointer, i, "linked_cases", j)
            if other == item.get("id"):
                check.add(where, f"case '{other}' is linked to itself")
            elif other not in case_at:
                check.add(where, f"linked case '{other}' is not in the input")
    return cases


def _destinations(check: _Checker, data: object, pointer: Pointer) -> list[Destination]:
    items = check.sequence(data, pointer)
    if items is None:
        return []
    out: list[Destination] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        where = _ptr(pointer, i)
        obj = check.mapping(item, where, _DESTINATION_FIELDS)
        if obj is None:
            continue
        participating = check.boolean(obj, "participating", where, True)
        for name in ("id", "capacity"):
            if name not in obj and (name == "id" or participating):
                check.add(where, f"a destination needs '{name}'")
        did = check.text(obj["id"], _ptr(where, "id")) if "id" in obj else None
        parent: str | None = None
        if obj.get("parent") is not None:
            parent = check.state(obj["parent"], _ptr(where, "parent"))
            if parent is None:
                did = None
            elif did is not None and did in states():
                check.add(
                    _ptr(where, "id"),
                    f"'{did}' is a state code; give the region an id of its own "
                    f"(e.g. '{parent}-1')",
                )
                did = None
        elif did is not None and did not in states():
            hint = _ISO_HINTS.get(did.upper())
            check.add(
                _ptr(where, "id"),
                f"unknown state '{did}' (fairshare uses Eurostat codes: {hint} for {did.upper()})"
                if hint
                else f"unknown state '{did}'; a region needs a 'parent' state "
                '(e.g. {"id": "DE-BY", "parent": "DE"})',
            )
            did = None
        if did is not None:
            if did in seen:
                check.add(
                    _ptr(where, "id"),
                    f"destination id '{did}' is already used by "
                    f"{_render(_ptr(pointer, seen[did]))}",
                )
            else:
                seen[did] = i
        capacity = None if participating else 0
        if "capacity" in obj:
            capacity = check.count(obj["capacity"], _ptr(where, "capacity"), "capacity")
        services: dict[str, int] = {}
        raw_services = check.mapping(obj.get("services", {}), _ptr(where, "services"))
        for name, value in (raw_services or {}).items():
            spot = _ptr(where, "services", str(name))
            if name not in SERVICES:
                check.add(spot, f"unknown service '{name}'; use one of {', '.join(SERVICES)}")
                continue
            places = check.count(value, spot, "places")
            if places is None:
                continue
            if capacity is not None and places > capacity:
                check.add(
                    spot,
                    f"{places} {name} places exceed the destination's capacity of {capacity}",
                )
                continue
            services[name] = places
        languages = check.texts(obj, "languages", where)
        nationalities = check.texts(obj, "nationalities", where)
        if did is not None and capacity is not None:
            out.append(
                Destination(
                    id=did,
                    parent=parent,
                    capacity=capacity,
                    services=services,
                    languages=languages,
                    nationalities=nationalities,
                    participating=participating,
                )
            )
    # A state is given whole or as regions, not both.
    regions_of = {d.parent for d in out if d.parent is not None}
    for d in out:
        if d.parent is None and d.id in regions_of:
            check.add(
                _ptr(pointer, seen[d.id], "id"),
                f"'{d.id}' is given both as a destination and through its regions; give "
                "either the state or its regions",
            )
    return out


def parse_cases(data: object, *, destinations: Iterable[str] | None = None) -> list[Case]:
    """Validate and build the cases of a JSON-like list.

    ``destinations`` (ids) is what preferences, scores and exclusions may name; without it
    those names are only checked to be non-empty strings. Raises :class:`ValidationError`
    listing every problem.
    """
    check = _Checker()
    ids = None if destinations is None else list(destinations)
    cases = _cases(check, data, "", ids)
    check.raise_if_any()
    return cases


def parse_destinations(data: object) -> list[Destination]:
    """Validate and build the destinations of a JSON-like list (states, or regions of one)."""
    check = _Checker()
    out = _destinations(check, data, "")
    check.raise_if_any()
    return out


class _Document(msgspec.Struct, forbid_unknown_fields=True):
    """The input document with its cases typed, for :func:`parse_problem_json`."""

    key: Any
    destinations: Any
    cases: list[Case]
    ledger: Any = None
    seed: Any = None


def parse_problem_json(raw: bytes) -> AllocationInput | None:
    """The input document from its JSON text, when every case is plainly valid.

    The cases are decoded straight into their structs (msgspec checks their shape and
    vocabularies while it decodes: 100,000 cases in a third of a second); key, ledger and
    destinations are then checked as :func:`parse_problem_input` checks them, and may raise
    its :class:`ValidationError`. Returns ``None`` when the text is not such a document (bad
    JSON, a case with any problem): read it with a JSON parser and call
    :func:`parse_problem_input`, which reports every problem where it is.
    """
    if not FAST_PATH:
        return None
    try:
        top = msgspec.json.decode(raw, type=_Document)
    except (msgspec.DecodeError, ValueError, RecursionError):
        # Not such a document (invalid JSON or UTF-8, nested too deeply, a case with a
        # problem: msgspec.ValidationError is a ValueError): the ordinary reading says what.
        return None
    doc: dict[str, Any] = {"key": top.key, "destinations": top.destinations, "cases": top.cases}
    # Absent and null are the same to parse_problem_input for these two.
    if top.ledger is not None:
        doc["ledger"] = top.ledger
    if top.seed is not None:
        doc["seed"] = top.seed
    try:
        return _parse_input(doc, decoded=True)
    except _NotPlainError:
        return None


def parse_problem_input(doc: Mapping[str, Any]) -> AllocationInput:
    """Validate a whole allocation input document (key, ledger, destinations, cases, seed).

    Every problem in every section is reported at once, in one :class:`ValidationError`.
    """
    return _parse_input(doc)


def _parse_input(doc: Mapping[str, Any], decoded: bool = False) -> AllocationInput:
    check = _Checker()
    top = check.mapping(doc, "", _INPUT_FIELDS)
    if top is None:
        check.raise_if_any()
        return AllocationInput({}, {}, (), ())  # pragma: no cover - unreachable
    key: dict[str, Any] = {}
    if "key" not in top:
        check.add("", 'the input needs a \'key\', e.g. {"name": "population"}')
    else:
        raw_key = check.mapping(top["key"], "/key", ("name", "year"))
        if raw_key is not None:
            key = dict(raw_key)
            if "name" not in key:
                check.add("/key", 'the key needs a \'name\', e.g. {"name": "population"}')
            else:
                name = check.text(key["name"], "/key/name")
                keys = builtin_keys()
                if name is not None and name not in keys:
                    check.add("/key/name", f"unknown key '{name}'; use one of {', '.join(keys)}")
            if key.get("year") is not None:
                check.integer(key["year"], "/key/year")
    for name in ("destinations", "cases"):
        if name not in top:
            check.add("", f"the input needs '{name}'")
    destinations = _destinations(check, top.get("destinations", []), "/destinations")
    raw_dests = top.get("destinations")
    ids = [
        d["id"]
        for d in (raw_dests if isinstance(raw_dests, list | tuple) else ())
        if isinstance(d, Mapping) and isinstance(d.get("id"), str)
    ]
    # A preference, score or exclusion may also name a state given as regions.
    ids += [
        d["parent"]
        for d in (raw_dests if isinstance(raw_dests, list | tuple) else ())
        if isinstance(d, Mapping) and isinstance(d.get("parent"), str) and d["parent"] not in ids
    ]
    ids = list(dict.fromkeys(ids))
    cases = _cases(check, top.get("cases", []), "/cases", ids, decoded)
    received: dict[str, int] = {}
    largest_case = 0
    if top.get("ledger") is not None:
        ledger = check.mapping(top["ledger"], "/ledger", ("received", "largest_case"))
        if ledger is not None and ledger.get("largest_case") is not None:
            largest_case = (
                check.count(ledger["largest_case"], "/ledger/largest_case", "persons") or 0
            )
        raw_received = check.mapping((ledger or {}).get("received", {}), "/ledger/received")
        for name, value in (raw_received or {}).items():
            where = _ptr("/ledger/received", str(name))
            known = name in ids or check.state(name, where) is not None
            count = check.count(value, where, "persons received")
            if known and count is not None:
                received[str(name)] = count
    seed = None
    if top.get("seed") is not None:
        seed = check.integer(top["seed"], "/seed")
    check.raise_if_any()
    return AllocationInput(
        key=key,
        received=received,
        destinations=tuple(destinations),
        cases=tuple(cases),
        seed=seed,
        largest_case=largest_case,
    )
