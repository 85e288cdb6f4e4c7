"""Seeded synthetic allocation instances, for tests and benchmarks (never for decisions).

Two generators share one person-level model:

* :func:`synthetic_document` builds the JSON input document of ``fairshare allocate``
  (key, ledger, destinations, cases) as plain dicts and lists;
* :func:`synthetic_columns` builds a :class:`fairshare.engine.ColumnarProblem` directly with
  numpy, with no Python object per case, so that a million cases over a thousand regions take
  seconds and a few hundred megabytes.

Both are pure functions of their arguments: the same arguments and ``seed`` give the same
instance.

**Every mix in this module is an ASSUMPTION**, chosen to produce plausible, hard instances (many
single adults, a tail of large families up to nine persons, a modest share of urgent cases,
scarce service places). None of them is a statistic about real people; they are the defaults of
:class:`Assumptions` and can be replaced. For scale only, and not used as a default: Eurostat
(news release 87/2016) counted 88,300 unaccompanied minors among the asylum applicants in the
EU in 2015.

>>> doc = synthetic_document(5, states=("DE", "SE"), seed=1)
>>> sorted(doc), [d["id"] for d in doc["destinations"]]
(['cases', 'destinations', 'key', 'ledger'], ['DE', 'SE'])
>>> doc == synthetic_document(5, states=("DE", "SE"), seed=1)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

import numpy as np

from fairshare.cases import SERVICES, vulnerability_categories
from fairshare.engine import BINDING_UNAVAILABLE, F64, I64, NO_BINDING, BoolArr, ColumnarProblem
from fairshare.keys import compute_key
from fairshare.reference import group_members

__all__ = [
    "DEFAULT_ASSUMPTIONS",
    "EU28_STATES",
    "VULNERABILITIES",
    "Assumptions",
    "People",
    "draw_people",
    "synthetic_columns",
    "synthetic_document",
]

#: The EU-28 member states of 2015, by Eurostat code (EL for Greece, UK for the United Kingdom).
EU28_STATES: tuple[str, ...] = tuple(group_members("EU28"))

#: The vulnerability categories the generators may declare (Directive 2013/33/EU Art. 21,
#: the bundled table).
VULNERABILITIES: tuple[str, ...] = tuple(vulnerability_categories())

# Person roles in a case.
ADULT, ELDERLY, CHILD, UNACCOMPANIED = 0, 1, 2, 3

# Screening (rules/screening.yaml): the categories of tier 1; every other category is tier 2.
_TIER1 = ("unaccompanied_minor", "trafficking_victim", "violence_survivor", "pregnant")
_FIRST_DAY = date(2015, 9, 1)
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Assumptions:
    """The mixes the generators draw from. ASSUMPTIONS, not statistics.

    Every default below is an assumption made to get plausible and demanding instances; none
    is a measured figure. Probabilities are per case, per person, per adult or per adult woman
    as stated.

    * ``family_sizes``: probability of a case of 1, 2, ..., 9 persons (mean about 2.6 persons,
      so 10,000 cases hold about 25,000 persons; families of nine occur in about 1% of cases).
    * ``unaccompanied_minor``: share of one-person cases that are unaccompanied minors (aged
      ``uam_min_age``–17, male with probability ``uam_male``, an uncertain age with probability
      ``age_uncertain``; the category is declared explicitly with probability
      ``uam_declared``, otherwise screening derives it).
    * ``single_parent``: share of families (2+ persons) with one adult (a woman with
      probability ``single_parent_female``); the others have two adults (a man and a woman).
    * ``elderly_member``: share of families of four or more with a member aged 65+ (declared
      ``elderly``).
    * ``single_female``: share of one-adult cases that are women.
    * ``pregnant`` (per woman aged 18–45), ``trafficking_victim``, ``violence_survivor``,
      ``lgbti`` (per adult), ``gender_violence`` (per adult woman), ``disability``,
      ``serious_illness``, ``mental_disorder`` (per person).
    * Case attributes: ``family_link`` (a family member in a state), ``linked_pair`` (share
      of cases in a pair of linked cases), ``preferences``, ``scores``, ``excluded`` (shares of
      cases), ``link_outside`` (share of family links to a state that is not a destination).
    * ``capacity_noise`` and ``prior_noise``: log-normal spread (sigma) of the capacity and of
      the persons received before, around the key's shares; ``service_zero``: probability that
      a destination offers no places of a service.
    """

    family_sizes: tuple[float, ...] = (0.45, 0.15, 0.12, 0.11, 0.08, 0.04, 0.025, 0.015, 0.01)
    unaccompanied_minor: float = 0.08
    uam_min_age: int = 12
    uam_male: float = 0.85
    uam_declared: float = 0.5
    age_uncertain: float = 0.3
    single_parent: float = 0.2
    single_parent_female: float = 0.75
    elderly_member: float = 0.15
    single_female: float = 0.25
    pregnant: float = 0.035
    trafficking_victim: float = 0.006
    violence_survivor: float = 0.008
    lgbti: float = 0.01
    gender_violence: float = 0.01
    disability: float = 0.02
    serious_illness: float = 0.015
    mental_disorder: float = 0.02
    family_link: float = 0.05
    link_outside: float = 0.1
    linked_pair: float = 0.03
    preferences: float = 0.3
    scores: float = 0.2
    excluded: float = 0.02
    capacity_noise: float = 0.5
    prior_noise: float = 0.6
    service_zero: float = 0.2


#: The default mixes: ASSUMPTIONS (see :class:`Assumptions`), not statistics.
DEFAULT_ASSUMPTIONS = Assumptions()


@dataclass(frozen=True)
class People:
    """Persons drawn for ``n`` cases, as flat columns (one row per person, cases contiguous).

    ``size`` (int64[n]) and ``start`` (int64[n], first row of each case); per person:
    ``case`` (int64), ``role`` (ADULT, ELDERLY, CHILD, UNACCOMPANIED), ``age`` (int64),
    ``female`` (bool), ``age_uncertain`` (bool) and ``flags`` (bool[persons, 12], the declared
    categories in the order of :data:`VULNERABILITIES`).
    """

    size: I64
    start: I64
    case: I64
    role: I64
    age: I64
    female: BoolArr
    age_uncertain: BoolArr
    flags: BoolArr

    def needs(self) -> I64:
        """Service places needed per case (int64[n, S], S in the order of ``SERVICES``).

        The screening rules: an unaccompanied minor needs an ``unaccompanied_minor`` place,
        pregnancy ``maternity``, serious illness or a mental disorder ``medical``, a disability
        ``accessible``, a victim of trafficking a ``trafficking_shelter`` place.
        """
        f = self.flags
        v = VULNERABILITIES.index
        per_service = {
            "unaccompanied_minor": (self.role == UNACCOMPANIED) | f[:, v("unaccompanied_minor")],
            "maternity": f[:, v("pregnant")],
            "medical": f[:, v("serious_illness")] | f[:, v("mental_disorder")],
            "accessible": f[:, v("disability")],
            "trafficking_shelter": f[:, v("trafficking_victim")],
        }
        out = np.zeros((self.size.size, len(SERVICES)), dtype=np.int64)
        for s, service in enumerate(SERVICES):
            who = per_service[service]
            out[:, s] = np.bincount(self.case[who], minlength=self.size.size)
        return out

    def tiers(self) -> I64:
        """The case tiers (int64[n]): the most urgent member's tier under the screening rules."""
        f = self.flags
        tier1 = (self.role == UNACCOMPANIED) | f[:, [VULNERABILITIES.index(c) for c in _TIER1]].any(
            axis=1
        )
        minor = (self.age < 18) | self.age_uncertain
        tier2 = minor | f.any(axis=1)
        person_tier = np.where(tier1, 1, np.where(tier2, 2, 3)).astype(np.int64)
        return np.minimum.reduceat(person_tier, self.start).astype(np.int64)


def draw_people(
    n_cases: int, rng: np.random.Generator, assumptions: Assumptions = DEFAULT_ASSUMPTIONS
) -> People:
    """Draw the members of ``n_cases`` cases under ``assumptions`` (vectorised).

    A one-person case is an unaccompanied minor or a single adult; a family has one or two
    adults, perhaps an elderly member, and children; members are ordered adults, elderly,
    children.
    """
    a = assumptions
    probs = np.asarray(a.family_sizes, dtype=np.float64)
    probs = probs / probs.sum()
    size = (rng.choice(probs.size, size=n_cases, p=probs) + 1).astype(np.int64)
    single = size == 1
    uam = single & (rng.random(n_cases) < a.unaccompanied_minor)
    family = ~single
    lone_parent = family & (rng.random(n_cases) < a.single_parent)
    adults = np.where(single, np.where(uam, 0, 1), np.where(lone_parent, 1, 2)).astype(np.int64)
    elderly = (family & (size >= 4) & (rng.random(n_cases) < a.elderly_member)).astype(np.int64)
    lone_female = rng.random(n_cases) < np.where(lone_parent, a.single_parent_female, 0.0)
    lone_female |= single & ~uam & (rng.random(n_cases) < a.single_female)

    start = np.zeros(n_cases, dtype=np.int64)
    if n_cases:
        np.cumsum(size[:-1], out=start[1:])
    persons = int(size.sum())
    case = np.repeat(np.arange(n_cases, dtype=np.int64), size)
    pos = np.arange(persons, dtype=np.int64) - start[case]
    n_adults = adults[case]
    role = np.where(
        uam[case],
        UNACCOMPANIED,
        np.where(pos < n_adults, ADULT, np.where(pos < n_adults + elderly[case], ELDERLY, CHILD)),
    ).astype(np.int64)
    is_adult = role == ADULT
    # Two adults: a man (position 0) and a woman (position 1); one adult: as drawn per case.
    female = np.where(
        is_adult,
        np.where(n_adults == 2, pos == 1, lone_female[case]),
        rng.random(persons) < np.where(role == UNACCOMPANIED, 1.0 - a.uam_male, 0.5),
    )
    age = np.select(
        [is_adult, role == ELDERLY, role == CHILD],
        [
            rng.integers(18, 56, persons),
            rng.integers(65, 86, persons),
            rng.integers(0, 18, persons),
        ],
        default=rng.integers(a.uam_min_age, 18, persons),
    ).astype(np.int64)
    age_uncertain = (role == UNACCOMPANIED) & (rng.random(persons) < a.age_uncertain)

    flags = np.zeros((persons, len(VULNERABILITIES)), dtype=np.bool_)

    def draw(category: str, who: BoolArr, p: float) -> None:
        flags[:, VULNERABILITIES.index(category)] = who & (rng.random(persons) < p)

    draw("unaccompanied_minor", role == UNACCOMPANIED, a.uam_declared)
    everyone = np.ones(persons, dtype=np.bool_)
    draw("disability", everyone, a.disability)
    flags[:, VULNERABILITIES.index("elderly")] = role == ELDERLY
    draw("pregnant", is_adult & female & (age <= 45), a.pregnant)
    flags[:, VULNERABILITIES.index("single_parent")] = is_adult & lone_parent[case]
    draw("trafficking_victim", is_adult | (role == UNACCOMPANIED), a.trafficking_victim)
    draw("serious_illness", everyone, a.serious_illness)
    draw("mental_disorder", everyone, a.mental_disorder)
    draw("violence_survivor", is_adult, a.violence_survivor)
    draw("lgbti", is_adult, a.lgbti)
    draw("gender_violence", is_adult & female, a.gender_violence)
    return People(
        size=size,
        start=start,
        case=case,
        role=role,
        age=age,
        female=female.astype(np.bool_),
        age_uncertain=age_uncertain,
        flags=flags,
    )


# --------------------------------------------------------------------------------------------
# Helpers


def _shares(states: Sequence[str], year: int) -> dict[str, Fraction]:
    """The population key's shares over ``states`` (exact, summing to 1)."""
    return compute_key("population", year=year, participants=list(states)).shares


def _split(total: int, weights: F64, minimum: int = 0) -> I64:
    """``total`` whole units in proportion to ``weights`` (largest remainders), each ≥ minimum."""
    n = weights.size
    base = np.full(n, minimum, dtype=np.int64)
    rest = total - minimum * n
    if rest <= 0 or n == 0:
        return base
    w = weights / weights.sum() if weights.sum() > 0 else np.full(n, 1.0 / n)
    exact = w * rest
    floor = np.floor(exact).astype(np.int64)
    left = rest - int(floor.sum())
    order = np.argsort(-(exact - floor), kind="stable")
    floor[order[:left]] += 1
    out: I64 = base + floor
    return out


def _regions_per_state(weights: F64, n_regions: int) -> I64:
    """How many regions each state has: at least one, the rest in proportion to ``weights``."""
    return _split(max(n_regions, weights.size), weights, minimum=1)


def _layout(
    states: Sequence[str], weights: F64, n_regions: int
) -> tuple[tuple[str, ...], tuple[str, ...], F64]:
    """Destination ids, their states and population weights: the states themselves, or
    ``n_regions`` regions (``DE-001``, ...; at least one per state, the rest by ``weights``,
    a state's weight split equally over its regions)."""
    if n_regions <= 0:
        return tuple(states), tuple(states), weights
    counts = _regions_per_state(weights, n_regions)
    width = max(3, len(str(int(counts.max()))))
    ids: list[str] = []
    owner: list[str] = []
    for state, count in zip(states, counts.tolist(), strict=True):
        ids.extend(f"{state}-{k + 1:0{width}d}" for k in range(count))
        owner.extend([state] * count)
    return tuple(ids), tuple(owner), np.repeat(weights / counts, counts)


def _distinct_destinations(rng: np.random.Generator, rows: int, n_dest: int, k: int) -> I64:
    """``rows`` × ``k`` destination indices, distinct within each row (k ≤ 3, k < n_dest)."""
    out = np.zeros((rows, k), dtype=np.int64)
    if rows == 0 or k == 0:
        return out
    first = rng.integers(0, n_dest, rows)
    out[:, 0] = first
    if k >= 2:
        step1 = rng.integers(1, n_dest, rows)
        out[:, 1] = (first + step1) % n_dest
    if k >= 3:
        step2 = rng.integers(1, n_dest - 1, rows)
        step2 = np.where(step2 >= step1, step2 + 1, step2)
        out[:, 2] = (first + step2) % n_dest
    return out


def _service_places(
    rng: np.random.Generator,
    capacity: I64,
    total_needs: I64,
    service_scarcity: float,
    service_zero: float,
) -> I64:
    """Places per destination and service: ``service_scarcity`` × the batch's needs in total,
    spread in proportion to capacity with noise, some destinations offering none."""
    n_dest = capacity.size
    out = np.zeros((n_dest, len(SERVICES)), dtype=np.int64)
    for s in range(len(SERVICES)):
        total = round(service_scarcity * int(total_needs[s]))
        weights = capacity * rng.lognormal(0.0, 0.5, n_dest)
        weights = np.where(rng.random(n_dest) < service_zero, 0.0, weights)
        if weights.sum() <= 0:
            weights = capacity.astype(np.float64)
        out[:, s] = np.minimum(_split(total, weights), capacity)
    return out


# --------------------------------------------------------------------------------------------
# The JSON document


def _iso(day: int) -> str:
    return (_FIRST_DAY + timedelta(days=day)).isoformat()


def synthetic_document(
    n_cases: int,
    *,
    states: Sequence[str] = EU28_STATES,
    seed: int,
    scarcity: float = 0.8,
    service_scarcity: float = 0.8,
    with_regions: int = 0,
    non_participating: int = 0,
    prior_persons: int | None = None,
    key_year: int = 2015,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
) -> dict[str, Any]:
    """A seeded allocation input document (the JSON shape of ``fairshare allocate``).

    * ``states``: the receiving states (Eurostat codes); the key is the population key of
      ``key_year`` (``{"name": "population", "year": key_year}``).
    * ``scarcity``: total capacity / total persons of the batch (0.8 = places for 80% of the
      persons). Capacity is spread over the destinations by the key's shares with log-normal
      noise (``assumptions.capacity_noise``), so capacity does not follow the key.
    * ``service_scarcity``: for each service, total places / total places needed by the batch;
      places are spread with noise, and some destinations offer none of a service.
    * ``with_regions``: if positive, the destinations are that many regions (at least one per
      state, the rest by population share), ids like ``DE-001`` with ``parent`` ``DE``.
    * ``non_participating``: how many destinations (chosen by the seed) have
      ``participating: false``.
    * ``prior_persons``: persons received before the batch (``ledger.received``, per state;
      default: as many as the batch holds), spread by the key's shares with noise
      (``assumptions.prior_noise``), so some states start above their share.

    Cases draw their members from :func:`draw_people`; some have family links (a tenth of
    them to a state that is not a destination), some come in linked pairs (same entry state and
    registration day), some have ranked preferences, scores or an excluded destination. Case
    ids are ``c000001``..., person ids ``c000001-1``... All mixes are ASSUMPTIONS
    (:class:`Assumptions`).
    """
    a = assumptions
    rng = np.random.default_rng(seed)
    state_list = list(states)
    shares = _shares(state_list, key_year)
    weights = np.array([float(shares[s]) for s in state_list], dtype=np.float64)
    people = draw_people(n_cases, rng, a)
    persons = int(people.size.sum())

    # Destinations.
    dest_ids, dest_state, dest_weight = _layout(state_list, weights, with_regions)
    parents = [s if with_regions > 0 else None for s in dest_state]
    n_dest = len(dest_ids)
    cap_weight = dest_weight * rng.lognormal(0.0, a.capacity_noise, n_dest)
    capacity = _split(round(scarcity * persons), cap_weight)
    services = _service_places(
        rng, capacity, people.needs().sum(axis=0), service_scarcity, a.service_zero
    )
    off = set(rng.choice(n_dest, size=min(non_participating, n_dest), replace=False).tolist())
    destinations: list[dict[str, Any]] = []
    for d, did in enumerate(dest_ids):
        dest: dict[str, Any] = {"id": did}
        if parents[d] is not None:
            dest["parent"] = parents[d]
        dest["capacity"] = int(capacity[d])
        dest["services"] = {
            service: int(services[d, s]) for s, service in enumerate(SERVICES) if services[d, s]
        }
        if d in off:
            dest["participating"] = False
        destinations.append(dest)

    # The ledger before the batch.
    prior = persons if prior_persons is None else prior_persons
    received = _split(prior, weights * rng.lognormal(0.0, a.prior_noise, weights.size))
    ledger = {"received": {s: int(r) for s, r in zip(state_list, received, strict=True)}}

    # Case attributes, drawn as columns.
    n = n_cases
    entry_codes = np.array(["EL", "IT", "HU", "ES", "BG"])
    # ASSUMPTION: states of first entry, mostly the Mediterranean arrival states.
    entry = rng.choice(entry_codes.size, size=n, p=[0.55, 0.25, 0.1, 0.05, 0.05])
    day = rng.integers(0, 92, n)
    pair_first = np.zeros(n, dtype=np.bool_)
    if n >= 2:
        candidates = np.arange(0, n - 1, 2)
        pair_first[candidates[rng.random(candidates.size) < a.linked_pair]] = True
    both_ways = rng.random(n) < 0.5
    has_link = rng.random(n) < a.family_link
    outside = rng.random(n) < a.link_outside
    others = [s for s in (*EU28_STATES, "NO", "CH") if s not in set(state_list)] or ["NO"]
    link_state = rng.choice(len(state_list), size=n, p=weights / weights.sum())
    link_other = rng.integers(0, len(others), n)
    link_status = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])  # ASSUMPTION
    relation_draw = rng.integers(0, 1 << 30, n)
    n_prefs = np.where(rng.random(n) < a.preferences, rng.integers(1, 4, n), 0)
    n_prefs = np.minimum(n_prefs, max(n_dest - 1, 1))
    prefs = _distinct_destinations(rng, n, n_dest, min(3, max(n_dest - 1, 1)))
    has_scores = rng.random(n) < a.scores
    n_scores = rng.integers(1, min(5, n_dest) + 1, n)
    has_excluded = rng.random(n) < a.excluded
    excluded_dest = rng.integers(0, n_dest, n)
    score_values = rng.random((n, min(5, n_dest)))
    score_offsets = rng.integers(0, n_dest, n)

    statuses = ("beneficiary", "applicant", "resident")
    uam_relations = ("sibling", "parent", "relative")
    adult_relations = ("spouse", "partner", "child", "parent", "sibling")
    family_relations = ("spouse", "child", "parent", "relative")
    sex = np.where(people.female, "F", "M")
    cases: list[dict[str, Any]] = []
    for i in range(n):
        cid = f"c{i + 1:06d}"
        first = int(people.start[i])
        members: list[dict[str, Any]] = []
        for j in range(int(people.size[i])):
            p = first + j
            member: dict[str, Any] = {
                "id": f"{cid}-{j + 1}",
                "age": int(people.age[p]),
                "sex": str(sex[p]),
            }
            if people.age_uncertain[p]:
                member["age_uncertain"] = True
            vulnerabilities = [
                v for v, f in zip(VULNERABILITIES, people.flags[p], strict=True) if f
            ]
            if vulnerabilities:
                member["vulnerabilities"] = vulnerabilities
            members.append(member)
        paired_with_previous = i > 0 and pair_first[i - 1]
        src = i - 1 if paired_with_previous else i
        case: dict[str, Any] = {
            "id": cid,
            "entry_state": str(entry_codes[entry[src]]),
            "registered_on": _iso(int(day[src])),
            "members": members,
        }
        if has_link[i]:
            role = int(people.role[first])
            relations = (
                uam_relations
                if role == UNACCOMPANIED
                else adult_relations
                if people.size[i] == 1
                else family_relations
            )
            target = others[link_other[i]] if outside[i] else state_list[link_state[i]]
            case["family_links"] = [
                {
                    "state": target,
                    "relation": relations[int(relation_draw[i]) % len(relations)],
                    "status": statuses[int(link_status[i])],
                }
            ]
        if pair_first[i]:
            case["linked_cases"] = [f"c{i + 2:06d}"]
        elif paired_with_previous and both_ways[i]:
            case["linked_cases"] = [f"c{i:06d}"]
        if n_prefs[i] and n_dest > 1:
            case["preferences"] = [dest_ids[int(d)] for d in prefs[i, : int(n_prefs[i])]]
        if has_scores[i]:
            k = int(n_scores[i])
            case["scores"] = {
                dest_ids[(int(score_offsets[i]) + t) % n_dest]: round(float(score_values[i, t]), 3)
                for t in range(k)
            }
        if has_excluded[i]:
            case["excluded"] = [
                {
                    "state": dest_ids[int(excluded_dest[i])],
                    "reason": "synthetic: a safety concern declared by the applicant",
                }
            ]
        cases.append(case)

    return {
        "key": {"name": "population", "year": key_year},
        "ledger": ledger,
        "destinations": destinations,
        "cases": cases,
    }


# --------------------------------------------------------------------------------------------
# Columns


def synthetic_columns(
    n_cases: int,
    n_regions: int,
    *,
    seed: int,
    scarcity: float = 0.8,
    service_scarcity: float = 0.8,
    states: Sequence[str] = EU28_STATES,
    key_year: int = 2015,
    prior_persons: int | None = None,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
) -> ColumnarProblem:
    """A seeded :class:`~fairshare.engine.ColumnarProblem`, built with numpy only.

    ``n_regions`` destinations (at least one per state, the rest by population share; ids like
    ``DE-001``, ``dest_state`` ``DE``), or the states themselves when ``n_regions`` is 0.
    ``shares`` is the population key of ``key_year`` over ``states`` (exact).
    ``scarcity``, ``service_scarcity`` and ``prior_persons`` (here ``before`` per destination)
    mean what they mean for :func:`synthetic_document`; members are drawn by
    :func:`draw_people`, so tiers and needs follow the same ASSUMPTIONS.

    Case columns: ``registered`` is a day number (days since 1970-01-01, within 92 days from
    2015-09-01); ``draw`` a seeded permutation (distinct lottery numbers); ``group`` the
    case's own index, except that linked pairs share the first case's index;
    ``binding_states`` is ``states`` and ``binding`` an index into it for about 60% of the
    cases with a family link (ASSUMPTION: the share of links that bind), of which a tenth are
    :data:`~fairshare.engine.BINDING_UNAVAILABLE`; linked pairs share their binding. Sparse
    rows: one excluded destination, 1–3 ranked preferences, and scores for 1–3 destinations
    for the shares of cases set by ``assumptions``. ``largest_unit`` is the largest case of
    the batch (prior batches are taken to have had the same mix).
    """
    a = assumptions
    rng = np.random.default_rng(seed)
    state_list = tuple(states)
    shares = _shares(state_list, key_year)
    weights = np.array([float(shares[s]) for s in state_list], dtype=np.float64)

    people = draw_people(n_cases, rng, a)
    size = people.size
    tier = people.tiers()
    needs = people.needs()
    del people
    persons = int(size.sum())

    dest_ids, dest_state, dest_weight = _layout(state_list, weights, n_regions)
    n_dest = len(dest_ids)
    capacity = _split(
        round(scarcity * persons), dest_weight * rng.lognormal(0.0, a.capacity_noise, n_dest)
    )
    services = _service_places(rng, capacity, needs.sum(axis=0), service_scarcity, a.service_zero)
    prior = persons if prior_persons is None else prior_persons
    before = _split(prior, dest_weight * rng.lognormal(0.0, a.prior_noise, n_dest))

    n = n_cases
    registered = (_FIRST_DAY - _EPOCH).days + rng.integers(0, 92, n, dtype=np.int64)
    draw = rng.permutation(n).astype(np.int64)

    group = np.arange(n, dtype=np.int64)
    if n >= 2:
        candidates = np.arange(0, n - 1, 2, dtype=np.int64)
        firsts = candidates[rng.random(candidates.size) < a.linked_pair]
        group[firsts + 1] = firsts
        registered[firsts + 1] = registered[firsts]
    else:
        firsts = np.zeros(0, dtype=np.int64)

    binding = np.full(n, NO_BINDING, dtype=np.int64)
    bound = rng.random(n) < a.family_link * 0.6
    binding[bound] = rng.choice(len(state_list), size=int(bound.sum()), p=weights / weights.sum())
    unavailable = bound & (rng.random(n) < a.link_outside)
    binding[unavailable] = BINDING_UNAVAILABLE
    binding[firsts + 1] = binding[firsts]

    def sparse_cases(p: float) -> I64:
        return np.flatnonzero(rng.random(n) < p).astype(np.int64)

    ex_cases = sparse_cases(a.excluded)
    excluded = np.stack([ex_cases, rng.integers(0, n_dest, ex_cases.size)], axis=1).astype(np.int64)

    k_max = min(3, n_dest - 1)
    pref_cases = sparse_cases(a.preferences) if k_max >= 1 else np.zeros(0, dtype=np.int64)
    pref_k = rng.integers(1, k_max + 1, pref_cases.size) if k_max >= 1 else pref_cases
    pref_dest = _distinct_destinations(rng, pref_cases.size, n_dest, max(k_max, 0))
    preferences = _sparse_rows(pref_cases, pref_dest, pref_k, with_rank=True)

    score_cases = sparse_cases(a.scores) if k_max >= 1 else np.zeros(0, dtype=np.int64)
    score_k = rng.integers(1, k_max + 1, score_cases.size) if k_max >= 1 else score_cases
    score_dest = _distinct_destinations(rng, score_cases.size, n_dest, max(k_max, 0))
    score_rows = _sparse_rows(score_cases, score_dest, score_k, with_rank=False)
    score_value = np.round(rng.random(score_rows.shape[0]), 3)

    return ColumnarProblem(
        dest_ids=dest_ids,
        dest_state=dest_state,
        capacity=capacity,
        services=services,
        participating=np.ones(n_dest, dtype=np.bool_),
        before=before,
        shares=dict(shares),
        size=size,
        tier=tier,
        needs=needs,
        registered=registered,
        draw=draw,
        group=group,
        binding_states=state_list,
        binding=binding,
        excluded=excluded,
        preferences=preferences,
        score_at=score_rows,
        score_value=score_value,
        largest_unit=int(size.max()) if n else 0,
    )


def _sparse_rows(cases: I64, dests: I64, k: I64, *, with_rank: bool) -> I64:
    """Rows (case, destination[, rank]) for the first ``k[i]`` destinations of each case."""
    width = dests.shape[1] if dests.ndim == 2 else 0
    if cases.size == 0 or width == 0:
        return np.zeros((0, 3 if with_rank else 2), dtype=np.int64)
    rank = np.broadcast_to(np.arange(width, dtype=np.int64), dests.shape)
    keep = rank < k[:, None]
    case_col = np.broadcast_to(cases[:, None], dests.shape)[keep]
    columns = [case_col, dests[keep]]
    if with_rank:
        columns.append(rank[keep])
    return np.stack(columns, axis=1).astype(np.int64)
