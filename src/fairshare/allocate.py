"""One allocation batch, explained: validated cases in, a destination and reasons out.

This is the Python API behind ``fairshare allocate``. It screens every case
(:mod:`fairshare.screening`), applies the Dublin III family criteria
(:mod:`fairshare.responsibility`), evaluates the key over the participating destinations
(:mod:`fairshare.keys`), turns everything into columns and solves the batch with
:func:`fairshare.engine.solve_columns`, then explains each decision in plain language with a
reason code (docs/allocation.md lists them).

>>> doc = {
...     "key": {"name": "population", "year": 2015},
...     "destinations": [{"id": "DE", "capacity": 3}, {"id": "SE", "capacity": 2}],
...     "cases": [{"id": "c1", "entry_state": "EL", "registered_on": "2015-10-02",
...                "members": [{"id": "p1", "age": 30}, {"id": "p2", "age": 4}],
...                "family_links": [{"state": "SE", "relation": "spouse",
...                                  "status": "beneficiary"}]}],
... }
>>> out = allocate_document(doc)
>>> out["assignments"][0]["destination"], [r["code"] for r in out["assignments"][0]["reasons"]]
('SE', ['priority', 'family_link', 'fair_share'])
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

from fairshare import __version__
from fairshare.apportion import apportion
from fairshare.cases import (
    SERVICES,
    AllocationInput,
    Case,
    Destination,
    ValidationError,
    parse_problem_input,
)
from fairshare.engine import (
    BINDING_UNAVAILABLE,
    NO_BINDING,
    WAIT_CAPACITY,
    WAIT_LINK,
    WAIT_SERVICE,
    ColumnarProblem,
    ColumnarResult,
    solve_columns,
)
from fairshare.errors import InputError
from fairshare.keys import KeyDefinition, compute_key, load_key
from fairshare.reference import states as known_states
from fairshare.responsibility import Binding, binding_of, linked_groups
from fairshare.screening import ScreenedCases

__all__ = [
    "FORMAT",
    "REASON_CODES",
    "Allocation",
    "allocate",
    "allocate_document",
    "case_draw",
]

FORMAT = "fairshare-allocation"
VERSION = 1

#: Every reason code an assignment can carry, in the order they are listed for a case.
REASON_CODES: tuple[str, ...] = (
    "priority",
    "needs",
    "family_link",
    "linked_case",
    "excluded",
    "fair_share",
    "preference",
    "score",
    "tie_draw",
    "waiting_capacity",
    "waiting_service",
    "waiting_link",
)


#: Whether the commonest cases are explained by a shortcut (in
#: :meth:`_Explainer.assignments`); the text is the same either way (a test compares both).
FAST_EXPLAIN = True

_SERVICE_WORDS = {
    "unaccompanied_minor": "unaccompanied-minor",
    "medical": "medical",
    "maternity": "maternity",
    "accessible": "accessible",
    "trafficking_shelter": "trafficking-protection shelter",
}


def case_draw(seed: int, case_id: str) -> int:
    """The seeded lottery number of a case (lower is drawn first among equal dates).

    A keyed hash of the seed and the case id, so that the draw does not depend on the order
    of the input and can be recomputed by anyone who knows the seed.

    >>> case_draw(0, "c1") == case_draw(0, "c1"), case_draw(0, "c1") == case_draw(1, "c1")
    (True, False)
    """
    digest = hashlib.blake2b(f"{seed}:{case_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def _case_draws(seed: int, case_ids: Sequence[str]) -> list[int]:
    """:func:`case_draw` of many cases (the same numbers, without a call per case)."""
    blake2b = hashlib.blake2b
    from_bytes = int.from_bytes
    prefix = f"{seed}:"
    return [
        from_bytes(blake2b((prefix + cid).encode(), digest_size=8).digest(), "big") >> 1
        for cid in case_ids
    ]


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def _persons(n: int) -> str:
    return f"{n} person" if n == 1 else f"{n:,} persons"


def _num(x: Fraction | float) -> str:
    value = float(x)
    return f"{value:,.0f}" if abs(value - round(value)) < 1e-9 else f"{value:,.1f}"


def _exact(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


@dataclass
class Allocation:
    """The explained result of one batch; :meth:`to_dict` is the JSON contract."""

    document: dict[str, Any]
    #: A digest of the decision (every case's destination, waiting reason and tie draw).
    digest: str = ""
    _explainer: _Explainer | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The output document (docs/schema/allocation-output.schema.json)."""
        return self.document

    def explain(self, which: range) -> list[dict[str, Any]]:
        """The assignments of the cases ``which`` (e.g. those ``allocate(..., explain=...)``
        left out), as the document has them."""
        if self._explainer is None:
            raise ValueError("this allocation cannot explain more cases")
        return self._explainer.assignments(_span(which, len(self._explainer.problem.cases)))

    @property
    def assignments(self) -> list[dict[str, Any]]:
        """One entry per case, in input order (per case explained: see ``explain=``)."""
        return list(self.document["assignments"])


def _key_result(
    problem: AllocationInput, participating: Sequence[str], definition: KeyDefinition | None
) -> tuple[KeyDefinition, dict[str, Fraction], int]:
    spec = problem.key
    if definition is None:
        name = spec.get("name")
        if not isinstance(name, str):
            raise InputError('/key/name: the key needs a name, e.g. {"name": "population"}')
        definition = load_key(name)
    year = spec.get("year")
    if not participating:
        return definition, {}, int(year) if isinstance(year, int) else 0
    try:
        result = compute_key(
            definition, year=year if isinstance(year, int) else None, participants=participating
        )
    except InputError as exc:
        where = "/key/year" if isinstance(year, int) else "/key"
        message = str(exc).replace("; pass --indicators FILE", "")
        raise ValidationError([(where, message)]) from None
    return definition, dict(result.shares), result.year


def allocate(
    problem: AllocationInput,
    *,
    seed: int | None = None,
    key_definition: KeyDefinition | None = None,
    largest_case: int | None = None,
    explain: range | None = None,
) -> Allocation:
    """Allocate one batch and explain every decision.

    ``seed`` (else the input's ``seed``, else 0) breaks ties between cases registered on the
    same day and between equally placed destinations; the same input and seed give the same
    output, byte for byte. ``largest_case`` is M recorded by the ledger (also read from the
    input's ``ledger.largest_case``). ``explain``: only these cases (by index) get their
    assignment in the document (all by default); :meth:`Allocation.explain` gives the others.
    """
    chosen_seed = seed if seed is not None else (problem.seed if problem.seed is not None else 0)
    if isinstance(chosen_seed, bool) or not isinstance(chosen_seed, int):
        raise InputError(f"seed: expected a whole number, got {chosen_seed!r}")
    if not 0 <= chosen_seed < 2**63:
        raise InputError(f"seed: {chosen_seed} is out of range; use 0 to 2^63 - 1")
    dests = problem.destinations
    if not dests:
        raise InputError("/destinations: give at least one destination")
    dest_state = [d.parent or d.id for d in dests]
    participating = list(
        dict.fromkeys(s for s, d in zip(dest_state, dests, strict=True) if d.participating)
    )
    definition, shares, key_year = _key_result(problem, participating, key_definition)
    cases = problem.cases
    screened = ScreenedCases(cases)
    # A family link may name a state or one of the regions given as destinations.
    reachable = set(participating) | {d.id for d in dests if d.participating}
    bindings: list[Binding | None] = [
        binding_of(c, screened.categories_of(i), reachable) if c.family_links else None
        for i, c in enumerate(cases)
    ]
    groups = linked_groups(cases)
    if len(groups) == len(cases):  # no linked cases: group g is case g
        group = np.arange(len(cases), dtype=np.int64)
    else:
        group_of = {cid: g for g, ids in enumerate(groups) for cid in ids}
        group = np.fromiter((group_of[c.id] for c in cases), dtype=np.int64, count=len(cases))
    _family_procedure(cases, bindings, groups)
    n = len(cases)
    index_of_dest = {d.id: i for i, d in enumerate(dests)}
    matches: dict[str, list[int]] = {}

    def matching(name: str) -> list[int]:
        found = matches.get(name)
        if found is None:
            if name in index_of_dest:
                found = [index_of_dest[name]]
            else:
                found = [i for i, s in enumerate(dest_state) if s == name]
            matches[name] = found
        return found

    def state_of(name: str) -> str:
        return dest_state[index_of_dest[name]] if name in index_of_dest else name

    bound = [i for i, b in enumerate(bindings) if b is not None]
    binding_states = tuple(dict.fromkeys(state_of(b.state) for b in bindings if b is not None))
    binding_code = np.full(n, NO_BINDING, dtype=np.int64)
    excluded: list[tuple[int, int]] = []
    for i in bound:
        b = bindings[i]
        assert b is not None
        bound_state = state_of(b.state)
        binding_code[i] = binding_states.index(bound_state) if b.available else BINDING_UNAVAILABLE
        if b.available and b.state != bound_state:
            # Bound to one region: the state's other destinations are ruled out.
            excluded.extend((i, d) for d in matching(bound_state) if dests[d].id != b.state)
    for i, case in enumerate(cases):
        for ex in case.excluded:
            excluded.extend((i, d) for d in matching(ex.state))
    # Case by case (a region's exclusions by binding first), as one pass over the cases gives.
    excluded.sort(key=lambda pair: pair[0])
    prefs, score_at, score_value, one_to_one = _wishes(cases, index_of_dest, matching)
    received = dict(problem.received)
    before = _region_before(dests, dest_state, received, chosen_seed)
    columns = ColumnarProblem(
        dest_ids=tuple(d.id for d in dests),
        dest_state=tuple(dest_state),
        capacity=np.array([d.capacity for d in dests], dtype=np.int64),
        services=np.array(
            [[d.services.get(s, 0) for s in SERVICES] for d in dests], dtype=np.int64
        ).reshape(len(dests), len(SERVICES)),
        participating=np.array([d.participating for d in dests], dtype=bool),
        before=np.array(before, dtype=np.int64),
        shares=shares,
        size=np.fromiter((len(c.members) for c in cases), dtype=np.int64, count=n),
        tier=screened.tier,
        needs=screened.needs.reshape(n, len(SERVICES)),
        registered=np.fromiter(
            (c.registered_on.toordinal() for c in cases), dtype=np.int64, count=n
        ),
        draw=np.array(_case_draws(chosen_seed, [c.id for c in cases]), dtype=np.int64),
        group=group,
        binding_states=binding_states,
        binding=binding_code,
        excluded=np.array(excluded, dtype=np.int64).reshape(-1, 2),
        preferences=prefs,
        score_at=score_at,
        score_value=score_value,
        largest_unit=problem.largest_case if largest_case is None else largest_case,
    )
    explainer = _Explainer(problem, columns, screened, bindings, groups, chosen_seed, one_to_one)
    explainer.prepare()
    result = solve_columns(columns, seed=chosen_seed)
    explainer.set_result(result)
    document = {
        "format": FORMAT,
        "version": VERSION,
        "fairshare_version": __version__,
        "seed": chosen_seed,
        "key": {
            "name": definition.name,
            "title": definition.title,
            "reference": definition.reference,
            "year": key_year,
            "participants": participating,
        },
        "assignments": explainer.assignments(None if explain is None else _span(explain, n)),
        "destinations": explainer.destinations(),
        "states": explainer.states(),
        "objective": explainer.objective(),
        "waiting": explainer.waiting(),
    }
    digest = hashlib.blake2b(digest_size=16)
    for part in (result.destination, result.wait, result.tie_draw):
        digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
    return Allocation(document, digest.hexdigest(), explainer)


def _span(which: range, n: int) -> range:
    if not isinstance(which, range) or which.step != 1 or not 0 <= which.start <= which.stop <= n:
        raise ValueError(f"explain: give a range of cases within 0..{n}, got {which!r}")
    return which


def _wishes(
    cases: Sequence[Case],
    index_of_dest: Mapping[str, int],
    matching: Callable[[str], list[int]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64], bool]:
    """The preferences (case, destination, rank) and scores ((case, destination), value) as
    rows, case by case in input order and each case's in its own order; and whether every
    name is one destination.

    A name may stand for several destinations (a state given as regions: ``matching``);
    when every name is one destination, the rows are made in bulk.
    """
    wishing = [i for i, c in enumerate(cases) if c.preferences or c.scores]
    named = [cases[i].preferences for i in wishing]
    scored = [cases[i].scores for i in wishing]
    try:
        at = index_of_dest.__getitem__
        pref_dest = np.fromiter(map(at, chain.from_iterable(named)), dtype=np.int64)
        score_dest = np.fromiter(map(at, chain.from_iterable(scored)), dtype=np.int64)
    except KeyError:  # a state given as regions: name by name
        prefs = [
            (i, d, rank)
            for i in wishing
            for rank, name in enumerate(cases[i].preferences)
            for d in matching(name)
        ]
        scores = [
            (i, d, float(value))
            for i in wishing
            for name, value in cases[i].scores.items()
            for d in matching(name)
        ]
        return (
            np.array(prefs, dtype=np.int64).reshape(-1, 3),
            np.array([row[:2] for row in scores], dtype=np.int64).reshape(-1, 2),
            np.array([row[2] for row in scores], dtype=np.float64),
            False,
        )
    rows = np.array(wishing, dtype=np.int64)
    per_case = np.fromiter(map(len, named), dtype=np.int64, count=len(named))
    first = np.cumsum(per_case) - per_case
    rank = np.arange(int(per_case.sum()), dtype=np.int64) - np.repeat(first, per_case)
    prefs_rows = np.stack([np.repeat(rows, per_case), pref_dest, rank], axis=1).reshape(-1, 3)
    per_case = np.fromiter(map(len, scored), dtype=np.int64, count=len(scored))
    score_rows = np.stack([np.repeat(rows, per_case), score_dest], axis=1).reshape(-1, 2)
    values = np.fromiter(
        chain.from_iterable(s.values() for s in scored),
        dtype=np.float64,
        count=score_dest.size,
    )
    return prefs_rows, score_rows, values, True


def _family_procedure(
    cases: Sequence[Case], bindings: list[Binding | None], groups: Sequence[tuple[str, ...]]
) -> None:
    """Regulation (EU) No 604/2013, Art. 11: linked cases bound to different destinations.

    Family members who apply together are not separated: the state (or region) responsible
    for the largest number of them is responsible for all (Art. 11(a)); failing that, the one
    responsible for the oldest of them (Art. 11(b)). Updates ``bindings`` in place; a tie that
    neither rule breaks is left for a caseworker: the bindings are marked unavailable with
    ``rule="art11_tie"`` and the group waits (``waiting_link``).
    """
    index: dict[str, int] | None = None
    for group in groups:
        if len(group) < 2:
            continue
        if index is None:
            index = {c.id: i for i, c in enumerate(cases)}
        members = [index[cid] for cid in group]
        bound: dict[int, Binding] = {}
        for i in members:
            link = bindings[i]
            if link is not None and link.available:
                bound[i] = link
        states = {b.state for b in bound.values()}
        if len(states) < 2:
            continue
        count: dict[str, int] = {}
        oldest: dict[str, int] = {}
        for i, b in bound.items():
            count[b.state] = count.get(b.state, 0) + cases[i].size
            ages = [p.age for p in cases[i].members if p.age is not None]
            oldest[b.state] = max(oldest.get(b.state, -1), max(ages, default=-1))
        top = max(count.values())
        leaders = [st for st in states if count[st] == top]
        rule = "Art. 11(a): the state responsible for the largest number of them"
        if len(leaders) > 1:
            eldest = max(oldest[st] for st in leaders)
            leaders = [st for st in leaders if oldest[st] == eldest]
            rule = "Art. 11(b): the state responsible for the oldest of them"
        if len(leaders) > 1:
            tied = ", ".join(sorted(leaders))
            for i, b in bound.items():
                bindings[i] = replace(
                    b,
                    available=False,
                    rule="art11_tie",
                    text=(
                        f"Linked family members are bound to different destinations ({tied}) "
                        "and neither the largest number nor the oldest decides (Regulation (EU) "
                        "No 604/2013, Art. 11): a caseworker must decide."
                    ),
                )
            continue
        chosen = leaders[0]
        model = next(b for b in bound.values() if b.state == chosen)
        for i in members:
            own = bindings[i]
            if own is not None and own.available and own.state == chosen:
                continue
            before = f" (its own link pointed to {own.state}, {own.article})" if own else ""
            bindings[i] = replace(
                model,
                article="Art. 11",
                text=(
                    f"Linked family members were bound to different destinations; {chosen} takes "
                    f"them all under Regulation (EU) No 604/2013, {rule}{before}."
                ),
            )


def _region_before(
    dests: Sequence[Destination], dest_state: Sequence[str], received: Mapping[str, int], seed: int
) -> list[int]:
    """Persons received so far per destination.

    A count given for a state whose destinations are its regions is attributed to the regions
    in proportion to their free capacity (Hamilton, ties by the seeded draw): an assumption,
    made so that each region's deviation adds up to its state's; give per-region counts in
    ``ledger.received`` to avoid it.
    """
    before = [received.get(d.id, 0) for d in dests]
    ids = {d.id for d in dests}
    for state in dict.fromkeys(dest_state):
        if state in ids or not received.get(state):
            continue
        regions = [i for i, s in enumerate(dest_state) if s == state and dests[i].participating]
        if not regions:
            continue
        weights = {dests[i].id: Fraction(max(dests[i].capacity, 0)) for i in regions}
        if not any(weights.values()):
            weights = dict.fromkeys(weights, Fraction(1))
        split = apportion(weights, received[state], "hamilton", seed=seed).seats
        for i in regions:
            before[i] += split[dests[i].id]
    return before


def allocate_document(
    doc: Mapping[str, Any],
    *,
    seed: int | None = None,
    key_definition: KeyDefinition | None = None,
) -> dict[str, Any]:
    """Validate an input document (docs/schema/allocation-input.schema.json) and allocate it."""
    problem = parse_problem_input(doc)
    return allocate(problem, seed=seed, key_definition=key_definition).to_dict()


# --------------------------------------------------------------------------------------------
# Explanations


class _Explainer:
    def __init__(
        self,
        problem: AllocationInput,
        columns: ColumnarProblem,
        screened: ScreenedCases,
        bindings: Sequence[Binding | None],
        groups: Sequence[tuple[str, ...]],
        seed: int,
        one_to_one: bool = False,
    ) -> None:
        """``one_to_one``: every name a case prefers or scores is one destination."""
        self.problem = problem
        self.one_to_one = one_to_one
        self._best: dict[int, tuple[str, float]] | None = None
        self.cols = columns
        self.screened = screened
        self.bindings = bindings
        # Linked cases only: every other case is a group of its own.
        self.groups = {cid: g for g in groups if len(g) > 1 for cid in g}
        self.seed = seed
        self.state_names = known_states()
        self.dest_index = {x: i for i, x in enumerate(columns.dest_ids)}
        #: Where a case without exclusions and family links may go (see _allowed).
        self._open: list[int] = [
            d for d in range(len(columns.dest_ids)) if columns.participating[d]
        ]
        self._tier: list[int] = screened.tier.tolist()
        self._priority: dict[str, str] = {}
        self._priority_of_kind: dict[int, str | None] = {}
        self._plain: list[bool] = []
        self._destination: list[int] | None = None

    def prepare(self) -> None:
        """Which cases the shortcut in :meth:`assignments` explains (it does not depend on
        what the solver decides)."""
        c = self.cols
        n = len(self.problem.cases)
        # The commonest case: alone (no linked case), no family link, service need,
        # exclusion, preference or score.
        alone = np.bincount(c.group, minlength=n)[c.group] == 1 if n else np.zeros(0, bool)
        simple = alone & (c.binding == NO_BINDING) & ~c.needs.any(axis=1)
        # From the cases themselves: a name that is no destination given has no column row
        # (a registry batch may hold such names) but still gets its reason.
        wishes = np.fromiter(
            (bool(k.excluded or k.preferences or k.scores) for k in self.problem.cases),
            dtype=bool,
            count=n,
        )
        self._plain = (simple & ~wishes).tolist()

    def set_result(self, result: ColumnarResult) -> None:
        """The solver's decision, which the rest of the explanations depend on."""
        self.result = result
        d = self.cols
        self.placed = result.placed
        used = np.zeros_like(d.services)
        dest = result.destination
        np.add.at(used, dest[dest >= 0], d.needs[dest >= 0])
        self.free = d.capacity - self.placed
        self.free_services = d.services - used
        placed_sizes = d.size[dest >= 0]
        self.M = max(int(d.largest_unit), int(placed_sizes.max()) if placed_sizes.size else 0)
        self.state_rows = self._state_rows()

    # -- per destination / state -------------------------------------------------------------

    def _dev(self, d: int) -> Fraction | None:
        fs = self.result.fair_share[d]
        if fs is None:
            return None
        return int(self.cols.before[d] + self.placed[d]) - fs

    def _state_rows(self) -> dict[str, dict[str, Any]]:
        c = self.cols
        rows: dict[str, dict[str, Any]] = {}
        for d, state in enumerate(c.dest_state):
            row = rows.setdefault(
                state,
                {"before": c.state_before.get(state, 0), "placed": 0, "dests": [], "bound": 0},
            )
            row["before"] += int(c.before[d])
            row["placed"] += int(self.placed[d])
            row["dests"].append(d)
        total = sum(
            r["before"] + r["placed"] for s, r in rows.items() if self._share(s) is not None
        )
        for state, row in rows.items():
            share = self._share(state)
            row["share"] = share
            row["fair"] = None if share is None else share * total
            row["after"] = row["before"] + row["placed"]
        cases = self.problem.cases
        for i, b in enumerate(self.bindings):
            if b is not None and self.result.destination[i] >= 0:
                rows[self.cols.dest_state[int(self.result.destination[i])]]["bound"] += len(
                    cases[i].members
                )
        return rows

    def _share(self, state: str) -> Fraction | None:
        c = self.cols
        keyed = [
            s
            for s in dict.fromkeys(c.dest_state)
            if s in c.shares
            and any(p and ds == s for p, ds in zip(c.participating, c.dest_state, strict=True))
        ]
        if state not in keyed:
            return None
        total = sum((c.shares[s] for s in keyed), Fraction(0))
        return c.shares[state] / total if total else None

    def _bound_note(self, state: str) -> str | None:
        row = self.state_rows[state]
        if row["fair"] is None:
            return None
        dev = row["after"] - row["fair"]
        if abs(dev) <= self.M:
            return None
        if dev > 0:
            over_before = row["before"] - row["fair"]
            if over_before > self.M:
                return (
                    f"it had already received {_num(over_before)} more than its fair share "
                    "before this batch; a batch can only add persons"
                )
            general = (
                "placing the most persons came first: the other destinations were full, "
                "excluded for the waiting cases or lacked their service places"
            )
            if row["bound"] and row["bound"] >= dev - self.M:
                return f"binding family links (Dublin III) brought {_persons(row['bound'])} here"
            if row["bound"]:
                return f"{general}; binding family links brought {_persons(row['bound'])}"
            return general
        free = int(sum(self.free[d] for d in row["dests"] if self.cols.participating[d]))
        if free == 0:
            return "its free capacity is used up: it has no places left"
        return (
            f"{_persons(free)} of free capacity are left, but no waiting case can use them "
            "(family links, exclusions, service needs or family size)"
        )

    def _region_note(self, d: int, dev: Fraction | None) -> str | None:
        if dev is None or abs(dev) <= self.M:
            return None
        state = self.cols.dest_state[d]
        note = self._bound_note(state)
        if note:
            return f"{state}: {note}"
        if self.free[d] == 0 and dev < 0:
            return "its free capacity is used up: it has no places left"
        return (
            f"{state} as a whole is within M; between its regions, whole families and the "
            "places where the service needs could be met decided"
        )

    def destinations(self) -> list[dict[str, Any]]:
        c = self.cols
        out = []
        total = self._total_for_share()
        for d, did in enumerate(c.dest_ids):
            fs = self.result.fair_share[d]
            dev = self._dev(d)
            state = c.dest_state[d]
            region = did != state
            out.append(
                {
                    "id": did,
                    "state": state,
                    "participating": bool(c.participating[d]),
                    "share": None if fs is None or not total else float(fs / total),
                    "fair_share": None if fs is None else float(fs),
                    "fair_share_exact": None if fs is None else _exact(fs),
                    "before": int(c.before[d]),
                    "placed": int(self.placed[d]),
                    "after": int(c.before[d] + self.placed[d]),
                    "deviation": None if dev is None else float(dev),
                    "deviation_exact": None if dev is None else _exact(dev),
                    "capacity": int(c.capacity[d]),
                    "free_after": int(self.free[d]),
                    "services_free_after": {
                        s: int(self.free_services[d, k])
                        for k, s in enumerate(SERVICES)
                        if c.services[d, k] > 0
                    },
                    "within_bound": None if dev is None else bool(abs(dev) <= self.M),
                    "bound_note": self._region_note(d, dev) if region else self._bound_note(state),
                }
            )
        return out

    def _total_for_share(self) -> int:
        return int(
            sum(
                r["before"] + r["placed"] for r in self.state_rows.values() if r["fair"] is not None
            )
        )

    def states(self) -> list[dict[str, Any]]:
        if all(c == s for c, s in zip(self.cols.dest_ids, self.cols.dest_state, strict=True)):
            return []
        out = []
        for state, row in self.state_rows.items():
            fair = row["fair"]
            dev = None if fair is None else row["after"] - fair
            out.append(
                {
                    "id": state,
                    "share": None if row["share"] is None else float(row["share"]),
                    "fair_share": None if fair is None else float(fair),
                    "fair_share_exact": None if fair is None else _exact(fair),
                    "before": row["before"],
                    "placed": row["placed"],
                    "after": row["after"],
                    "deviation": None if dev is None else float(dev),
                    "deviation_exact": None if dev is None else _exact(dev),
                    "within_bound": None if dev is None else bool(abs(dev) <= self.M),
                    "bound_note": self._bound_note(state),
                }
            )
        return out

    # -- objective --------------------------------------------------------------------------

    def objective(self) -> dict[str, Any]:
        r = self.result
        names = ("tier1", "tier2", "total")
        levels = {
            name: {"placed": lv.placed, "bound": lv.bound, "gap": lv.gap}
            for name, lv in zip(names, r.tiers, strict=True)
        }
        cases = self.problem.cases
        with_prefs = [i for i, c in enumerate(cases) if c.preferences]
        first = 0
        any_choice = 0
        for i in with_prefs:
            d = int(r.destination[i])
            if d < 0:
                continue
            rank = self._rank(cases[i], d)
            if rank == 0:
                first += 1
            if rank is not None:
                any_choice += 1
        within = all(
            abs(dev) <= self.M
            for dev in (self._dev(d) for d in range(len(self.cols.dest_ids)))
            if dev is not None
        )
        return {
            **levels,
            "max_abs_deviation": {
                "value": r.max_abs_deviation[0],
                "bound": r.max_abs_deviation[1],
            },
            "sum_abs_deviation": {
                "value": r.sum_abs_deviation[0],
                "bound": r.sum_abs_deviation[1],
            },
            "preferences": {
                "cases_with_preferences": len(with_prefs),
                "first_choice": first,
                "any_choice": any_choice,
            },
            "scores": {"sum": round(float(sum(self._placed_scores())), 9)},
            "M": self.M,
            "within_M": within,
            "gap": r.gap,
            "gaps": {name: lv.gap for name, lv in zip(names, r.tiers, strict=True)},
            "solver": dict(r.stats),
        }

    def _placed_scores(self) -> list[float]:
        """The score of every placed case that has scores, at its destination (0.0 if it has
        none there), case by case: summed in this order, as a loop over the cases would."""
        r = self.result
        c = self.cols
        cases = self.problem.cases
        if not self.one_to_one:
            return [
                case.scores.get(c.dest_ids[int(r.destination[i])], 0.0)
                for i, case in enumerate(cases)
                if case.scores and r.destination[i] >= 0
            ]
        rows, dests = c.score_at[:, 0], c.score_at[:, 1]
        scored = np.zeros(len(cases), dtype=bool)
        scored[rows] = True
        at_destination = np.zeros(len(cases), dtype=np.float64)
        here = dests == r.destination[rows]  # a name is one destination: one row at most
        at_destination[rows[here]] = c.score_value[here]
        placed = scored & (r.destination >= 0)
        values: list[float] = at_destination[placed].tolist()
        return values

    def waiting(self) -> dict[str, Any]:
        r = self.result
        codes = {
            WAIT_CAPACITY: "waiting_capacity",
            WAIT_SERVICE: "waiting_service",
            WAIT_LINK: "waiting_link",
        }
        out = r.destination < 0
        found = np.unique(r.wait[out], return_counts=True)
        by_code = {codes[int(w)]: int(k) for w, k in zip(*found, strict=True)}
        return {
            "cases": int(out.sum()),
            "persons": int(self.cols.size[out].sum()),
            "by_code": dict(sorted(by_code.items())),
        }

    # -- per case ---------------------------------------------------------------------------

    def _rank(self, case: Case, d: int) -> int | None:
        did = self.cols.dest_ids[d]
        state = self.cols.dest_state[d]
        for rank, name in enumerate(case.preferences):
            if name in (did, state):
                return rank
        return None

    def _name(self, code: str) -> str:
        known = self.state_names.get(code)
        return f"{known.name} ({code})" if known else code

    def _ready(self) -> None:
        """The decision as plain lists (indexing numpy arrays one case at a time is slow)."""
        if self._destination is not None:
            return
        r = self.result
        self._tie_draw: list[bool] = r.tie_draw.tolist()
        self._wait: list[int] = r.wait.tolist()
        self._waiting_text: dict[tuple[int, int], tuple[str, str]] = {}
        self._service_text: dict[tuple[int, str | None, int], tuple[str, str]] = {}
        self._why_not_text: dict[tuple[int, tuple[str, ...]], str] = {}
        if not self._plain and self.problem.cases:
            self.prepare()
        self._destination = r.destination.tolist()  # last: it marks the lists ready

    def assignments(self, which: range | None = None) -> list[dict[str, Any]]:
        """The assignments of the cases ``which`` (all by default), in input order."""
        self._ready()
        cases = self.problem.cases
        span = range(len(cases)) if which is None else which
        if not FAST_EXPLAIN:
            return [self._assignment(i, cases[i]) for i in span]
        # The commonest case (see prepare) by a shortcut; the same text as the general path
        # (tests/test_allocate_properties.py compares them).
        plain = self._plain
        destination = self._destination
        assert destination is not None
        dest_ids, dest_state = self.cols.dest_ids, self.cols.dest_state
        fair: dict[int, tuple[str, str] | None] = {}
        room: dict[int, tuple[str, str]] = {}
        out: list[dict[str, Any]] = []
        append = out.append
        for i in span:
            case = cases[i]
            d = destination[i]
            if not plain[i] or (d < 0 and self._wait[i] != WAIT_CAPACITY):
                append(self._assignment(i, case))
                continue
            reasons = [{"code": "priority", "text": self._priority_text(i)}]
            size = len(case.members)
            if d >= 0:
                if d not in fair:
                    words = self._fair_share_text(dest_state[d])
                    fair[d] = None if words is None else ("fair_share", words)
                reason = fair[d]
                if reason is not None:
                    reasons.append({"code": reason[0], "text": reason[1]})
            else:
                if size not in room:
                    room[size] = self._waiting_reasons(i, case, None)[0]
                code, words = room[size]
                reasons.append({"code": code, "text": words})
            if self._tie_draw[i]:
                code, words = self._tie_reason(case, d)
                # tie_draw comes after fair_share and before the waiting codes.
                if d >= 0:
                    reasons.append({"code": code, "text": words})
                else:
                    reasons.insert(1, {"code": code, "text": words})
            append(
                {
                    "case": case.id,
                    "destination": dest_ids[d] if d >= 0 else None,
                    "state": dest_state[d] if d >= 0 else None,
                    "tier": self._tier[i],
                    "persons": size,
                    "reasons": reasons,
                }
            )
        return out

    def _priority_of(self, tier_text: str, tier: int) -> str:
        known = self._priority.get(tier_text)
        if known is None:
            text = tier_text
            if tier < 3:
                text += "; it ranks before every lower tier"
            known = self._priority[tier_text] = text[0].upper() + text[1:]
        return known

    def _priority_text(self, i: int) -> str:
        k = self.screened.kind_of[i]
        known = self._priority_of_kind.get(k, "")
        if known == "":
            shared = self.screened.shared_tier_text(k)
            known = self._priority_of_kind[k] = (
                None if shared is None else self._priority_of(shared, self._tier[i])
            )
        if known is None:  # the text names members of the case
            return self._priority_of(self.screened.tier_text(i), self._tier[i])
        return known

    def _tie_reason(self, case: Case, d: int) -> tuple[str, str]:
        day = case.registered_on.isoformat()
        fate = "a place" if d >= 0 else "no place"
        return (
            "tie_draw",
            f"Cases registered on the same day ({day}) competed for the last places "
            f"of their kind; the seeded draw (seed {self.seed}) gave this case {fate}",
        )

    def _assignment(self, i: int, case: Case) -> dict[str, Any]:
        assert self._destination is not None
        d = self._destination[i]
        reasons: list[tuple[str, str]] = [("priority", self._priority_text(i))]
        case_needs = self.screened.needs_of(i)
        if case_needs:
            needs = ", ".join(
                f"{k} {_SERVICE_WORDS[s]} place{'s' if k > 1 else ''}"
                for s, k in case_needs.items()
            )
            where = f"; {self.cols.dest_ids[d]} had them free" if d >= 0 else ""
            detail = "; ".join(self.screened.need_texts(i))
            reasons.append(("needs", f"Needs {needs}: {detail}{where}"))
        b = self.bindings[i]
        if b is not None:
            reasons.append(("family_link", b.text))
        group = self.groups.get(case.id, (case.id,))
        if len(group) > 1:
            others = ", ".join(g for g in group if g != case.id)
            fate = "go" if d >= 0 else "wait"
            reasons.append(
                (
                    "linked_case",
                    f"Linked with {others}: they {fate} together (family members applying "
                    "together are kept together, Regulation (EU) No 604/2013, Art. 11)",
                )
            )
        for ex in case.excluded:
            reasons.append(("excluded", f"Never sent to {self._name(ex.state)}: {ex.reason}"))
        # The rest in the order of REASON_CODES, as above.
        if d >= 0:
            reasons.extend(self._placed_reasons(i, case, d, b))  # fair_share, preference, score
            if self._tie_draw[i]:
                reasons.append(self._tie_reason(case, d))
        else:
            if case.preferences:
                reasons.append(
                    (
                        "preference",
                        f"Its preferences ({', '.join(case.preferences)}) are kept for when it "
                        "can be placed",
                    )
                )
            if self._tie_draw[i]:
                reasons.append(self._tie_reason(case, d))
            reasons.extend(self._waiting_reasons(i, case, b))  # the waiting_* codes
        return {
            "case": case.id,
            "destination": self.cols.dest_ids[d] if d >= 0 else None,
            "state": self.cols.dest_state[d] if d >= 0 else None,
            "tier": self._tier[i],
            "persons": len(case.members),
            "reasons": [{"code": code, "text": text} for code, text in reasons],
        }

    def _placed_reasons(
        self, i: int, case: Case, d: int, b: Binding | None
    ) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        did = self.cols.dest_ids[d]
        state = self.cols.dest_state[d]
        text = self._fair_share_text(state)
        if text is not None:
            out.append(("fair_share", text))
        if case.preferences:
            rank = self._rank(case, d)
            if rank is not None:
                out.append(("preference", f"{did} was its {_ordinal(rank + 1)} preference"))
            else:
                out.append(
                    (
                        "preference",
                        f"Its preferences ({', '.join(case.preferences)}) could not be met: "
                        f"{self._why_not(i, case, case.preferences, b)}",
                    )
                )
        if case.scores:
            value = case.scores.get(did, case.scores.get(state))
            best = self._best_score(i, case)
            if value is None:
                text = f"No outcome score for {did}; its best score was {best[1]:g} for {best[0]}"
            elif value >= best[1]:
                text = f"Outcome score {value:g} for {did}, its highest"
            else:
                text = (
                    f"Outcome score {value:g} for {did} (highest: {best[1]:g} for {best[0]}: "
                    f"{self._why_not(i, case, (best[0],), b)})"
                )
            out.append(("score", text))
        return out

    def _best_score(self, i: int, case: Case) -> tuple[str, float]:
        """The case's highest score and where (the greater name among equal scores)."""
        if self._best is None:
            self._best = self._best_scores()
        known = self._best.get(i)
        if known is not None:
            return known
        return max(case.scores.items(), key=lambda kv: (kv[1], kv[0]))

    def _best_scores(self) -> dict[int, tuple[str, float]]:
        """:meth:`_best_score` of every case at once, from the score rows, when every name
        scored is one destination (the rows then come case by case; else case by case)."""
        c = self.cols
        if not self.one_to_one or c.score_at.size == 0:
            return {}
        ids = c.dest_ids
        by_name = sorted(range(len(ids)), key=ids.__getitem__)
        name_rank = np.empty(len(ids), dtype=np.int64)
        name_rank[by_name] = np.arange(len(ids))
        rows, dests, values = c.score_at[:, 0], c.score_at[:, 1], c.score_value
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        per_case = np.diff(np.r_[starts, rows.size])
        # The highest value, and among rows with it (-0.0 equals 0.0) the greatest name.
        top = np.repeat(np.maximum.reduceat(values, starts), per_case)
        rank = np.where(values == top, name_rank[dests], -1)
        best_rank = np.repeat(np.maximum.reduceat(rank, starts), per_case)
        chosen = np.flatnonzero(rank == best_rank)  # one row per case: names are distinct
        return {
            int(k): (ids[d], v)
            for k, d, v in zip(
                rows[chosen].tolist(), dests[chosen].tolist(), values[chosen].tolist(), strict=True
            )
        }

    def _why_not(self, i: int, case: Case, wanted: Sequence[str], b: Binding | None) -> str:
        """Why a placed case is not at the destinations it wanted (the first cause found)."""
        group = self.groups.get(case.id)
        members = [i] if group is None else [self._case_index(g) for g in group]
        if b is None:
            b = next((self.bindings[k] for k in members if self.bindings[k] is not None), None)
        if b is not None:
            whose = "its" if self.bindings[i] is b else "its linked cases'"
            return f"{whose} family link ({b.article}) decides where it goes"
        if group is None:  # alone: the answer depends only on where it may go and its wishes
            mine = self._allowed(i, None)
            key = (id(mine), tuple(wanted))
            known = self._why_not_text.get(key)
            if known is None:
                known = self._why_not_text[key] = self._why_not_open(set(mine), wanted)
            return known
        allowed = set(self._allowed(i, None))
        for k in members:
            allowed &= set(self._allowed(k, None))
        return self._why_not_open(allowed, wanted)

    def _why_not_open(self, allowed: set[int], wanted: Sequence[str]) -> str:
        c = self.cols
        open_ids = {
            d
            for d in range(len(c.dest_ids))
            if c.dest_ids[d] in wanted or c.dest_state[d] in wanted
        }
        if not open_ids & allowed:
            return "they are excluded for it, or not participating in this batch"
        return (
            "places there went to more urgent or earlier-registered cases, or would have taken "
            "a state further from its fair share"
        )

    def _fair_share_text(self, state: str) -> str | None:
        cache: dict[str, str | None] = self.__dict__.setdefault("_fair_text", {})
        if state not in cache:
            row = self.state_rows[state]
            if row["fair"] is None:
                cache[state] = None
            else:
                dev = row["after"] - row["fair"]
                where = "above" if dev > 0 else "below"
                gap = f"{_num(abs(dev))} {where}" if dev else "exactly"
                cache[state] = (
                    f"{self._name(state)} ends the batch with {_persons(row['after'])} against "
                    f"a fair share of {_num(row['fair'])} ({gap}); the batch "
                    "keeps every state as close to its fair share as the places allow "
                    "(largest deviation first, then the sum)"
                )
        return cache[state]

    def _waiting_reasons(self, i: int, case: Case, b: Binding | None) -> list[tuple[str, str]]:
        code = self._wait[i]
        c = self.cols
        if code == WAIT_LINK:
            group = self.groups.get(case.id, (case.id,))
            tie = next(
                (
                    self.bindings[self._case_index(g)]
                    for g in group
                    if (link := self.bindings[self._case_index(g)]) is not None
                    and link.rule == "art11_tie"
                ),
                None,
            )
            if tie is not None:
                return [("waiting_link", f"Waits: {tie.text}")]
            if b is not None and not b.available:
                text = (
                    f"Waits for its family link: {self._name(b.state)} is bound by "
                    f"{b.article} but is not a participating destination in this batch"
                )
            else:
                text = (
                    "Waits: its linked cases have family links binding different states; a "
                    "caseworker must decide which one applies (Regulation (EU) No 604/2013, "
                    "Art. 11)"
                )
            return [("waiting_link", text)]
        group = self.groups.get(case.id, (case.id,))
        if len(group) == 1:
            members = [i]
            allowed = self._allowed(i, b)
        else:
            members = [self._case_index(g) for g in group]
            if b is None:
                b = next((self.bindings[k] for k in members if self.bindings[k] is not None), None)
            allowed = sorted(set.intersection(*(set(self._allowed(k, b)) for k in members)))
        if code == WAIT_SERVICE and len(members) == 1:
            # The text depends only on where the case may go and its kind (its needs).
            kind = (id(allowed), None if b is None else b.state, self.screened.kind_of[i])
            known = self._service_text.get(kind)
            if known is None:
                known = self._service_text[kind] = self._service_wait(members, group, allowed, b)
            return [known]
        if code == WAIT_SERVICE:
            return [self._service_wait(members, group, allowed, b)]
        if not allowed:
            return [
                (
                    "waiting_capacity",
                    "Waits: every participating destination is excluded for this case",
                )
            ]
        if len(members) == 1:  # ``allowed`` is the cached list of _allowed
            key = (id(allowed), case.size)
            known = self._waiting_text.get(key)
            if known is None:
                largest = int(self.free[allowed].max())
                known = self._waiting_text[key] = self._room_text(case.size, largest)
            return [known]
        persons = sum(int(c.size[k]) for k in members)
        return [self._room_text(persons, int(self.free[allowed].max()))]

    def _service_wait(
        self,
        members: Sequence[int],
        group: Sequence[str],
        allowed: Sequence[int],
        b: Binding | None,
    ) -> tuple[str, str]:
        """Why a case (with its linked cases) waits for service places."""
        needs: dict[str, int] = {}
        for k in members:
            for s, n in self.screened.needs_of(k).items():
                needs[s] = needs.get(s, 0) + n
        most_free = self.free_services[allowed].max(axis=0) if allowed else None
        lacking = [
            s for s, n in needs.items() if most_free is None or most_free[SERVICES.index(s)] < n
        ]
        words = " or ".join(
            f"{needs[s]} free {_SERVICE_WORDS[s]} place{'s' if needs[s] > 1 else ''}"
            for s in lacking or needs
        )
        scope = "participating state" if b is None else f"destination in {b.state}"
        if len(members) == 1:
            text = f"Waits: no {scope} it may go to has {words} left"
        else:
            text = (
                f"Waits with its linked cases ({', '.join(group)}), which together need "
                f"{words}: no {scope} they may go to has them"
            )
        return ("waiting_service", text)

    @staticmethod
    def _room_text(persons: int, largest: int) -> tuple[str, str]:
        return (
            "waiting_capacity",
            f"Waits: no destination it may go to has room for {_persons(int(persons))}"
            f"{' together' if persons > 1 else ''} (largest free: {largest}) after more "
            "urgent and earlier-registered cases were placed",
        )

    def _case_index(self, cid: str) -> int:
        if not hasattr(self, "_ids"):
            self._ids = {c.id: k for k, c in enumerate(self.problem.cases)}
        return self._ids[cid]

    def _allowed(self, i: int, b: Binding | None) -> list[int]:
        given = self.problem.cases[i].excluded
        if not given and b is None:
            return self._open
        excluded = frozenset(e.state for e in given) if given else frozenset()
        key = (excluded, None if b is None else b.state)
        cache: dict[tuple[frozenset[str], str | None], list[int]] = self.__dict__.setdefault(
            "_allowed_cache", {}
        )
        if key not in cache:
            c = self.cols
            cache[key] = [
                d
                for d in range(len(c.dest_ids))
                if c.participating[d]
                and c.dest_state[d] not in excluded
                and c.dest_ids[d] not in excluded
                and (b is None or b.state in (c.dest_state[d], c.dest_ids[d]))
            ]
        return cache[key]
