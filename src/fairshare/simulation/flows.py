"""Arrivals for the simulator, built from the bundled real data plus labelled assumptions.

**Data** (bundled, Eurostat ``migr_asyappctzm``, 2019 vintage): first-time asylum applicants per
month and per state where they applied. For the EU-28 in 2015 and 2016 together these are
2,464,095 persons (1,257,580 in 2015); :func:`build_flows` checks the total it read.

**Assumptions** (each a parameter of :class:`FlowAssumptions`, never presented as data):

* the **entry state** (Dublin III, Regulation (EU) No 604/2013, Art. 13(1): the state whose
  border was first crossed irregularly). Applicants who applied in a state with sea arrivals
  entered there; everyone else entered through the sea-arrival states in proportion to their
  2015 sea arrivals (UNHCR statement of 30 December 2015; Cyprus, absent from it, from the IOM
  DTM of 17 December 2015). Using 2015 shares for 2016 and for land routes is an assumption;
  a CSV file (``entry_state,share``) replaces it;
* **family composition**: the probability of a case (family) of 1–9 persons;
* the **vulnerability mix**: unaccompanied minors as a share of persons (default: Eurostat news
  release 87/2016 counted 88,300 unaccompanied minors among the 2015 applicants; divided by the
  bundled 2015 first-time total, 1,257,580 — an approximation, as the 88,300 are not all
  first-time applicants — and used for 2016 as well), other urgent cases (tier 1), and which
  cases are vulnerable (tier 2; families of three or more are assumed to include a child).

The persons per state and month are exact; only the way they are cut into families, their
tiers, days and entry states are drawn (seeded: the same seed gives the same flows).
"""

from __future__ import annotations

import calendar
import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import numpy.typing as npt

from fairshare.errors import InputError
from fairshare.reference import group_members, monthly_applicants, read_data_file

__all__ = [
    "DEFAULT_FLOW_ASSUMPTIONS",
    "EU28_FIRST_TIME_2015_2016",
    "MAX_FAMILY",
    "FlowAssumptions",
    "Flows",
    "build_flows",
    "parse_entry_shares",
    "sea_arrival_shares",
]

I64 = npt.NDArray[np.int64]

#: Eurostat migr_asyappctzm (bundled): first-time applicants, EU-28, 2015-01 to 2016-12.
EU28_FIRST_TIME_2015_2016 = 2_464_095
#: Eurostat news release 87/2016: unaccompanied minors among the 2015 asylum applicants (EU).
UNACCOMPANIED_MINORS_2015 = 88_300
#: The largest family the flows draw.
MAX_FAMILY = 9
#: The scenarios the simulator knows: name -> (first month, last month).
SCENARIOS: dict[str, tuple[str, str]] = {
    "2015-2016": ("2015-01", "2016-12"),
    "2015": ("2015-01", "2015-12"),
    "2016": ("2016-01", "2016-12"),
}


@dataclass(frozen=True)
class FlowAssumptions:
    """How the real monthly totals are cut into cases. ASSUMPTIONS, each a parameter.

    * ``family_sizes``: probability that a case has 1, 2, …, 9 persons (the synthetic
      generator's default mix, ``fairshare.synthetic.Assumptions``; an assumption, not a
      statistic).
    * ``unaccompanied_minors``: share of persons who are unaccompanied minors (single-person
      cases, tier 1). Default 88,300 / 1,257,580 (see the module docstring).
    * ``urgent``: share of the other cases with an urgent need (tier 1: pregnancy, trafficking,
      violence — rules/screening.yaml). Assumption.
    * ``vulnerable_single``, ``vulnerable_pair``: share of single adults and of two-person
      cases that are vulnerable (tier 2). Cases of three or more persons are assumed to include
      a minor, hence tier 2 at least. Assumptions.
    * ``direct_entry``: share of applicants in a state without sea arrivals who entered that
      state directly (by air or a land border). Assumption; default 0.
    * ``entry_shares``: state -> weight of the entry states; ``None`` = 2015 sea arrivals.
    """

    family_sizes: tuple[float, ...] = (0.45, 0.15, 0.12, 0.11, 0.08, 0.04, 0.025, 0.015, 0.01)
    unaccompanied_minors: float = UNACCOMPANIED_MINORS_2015 / 1_257_580
    urgent: float = 0.03
    vulnerable_single: float = 0.10
    vulnerable_pair: float = 0.30
    direct_entry: float = 0.0
    entry_shares: Mapping[str, float] | None = field(default=None, hash=False)

    def with_(self, **changes: object) -> FlowAssumptions:
        """A copy with some parameters changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def describe(self) -> dict[str, object]:
        """The parameters, for a report (each labelled an assumption)."""
        return {
            "family_sizes": list(self.family_sizes),
            "unaccompanied_minors": self.unaccompanied_minors,
            "urgent": self.urgent,
            "vulnerable_single": self.vulnerable_single,
            "vulnerable_pair": self.vulnerable_pair,
            "direct_entry": self.direct_entry,
            "entry_shares": dict(self.entry_shares or sea_arrival_shares()),
            "label": "ASSUMPTIONS (see docs/simulation.md), not statistics",
        }


#: The default assumptions.
DEFAULT_FLOW_ASSUMPTIONS = FlowAssumptions()


def sea_arrival_shares() -> dict[str, float]:
    """2015 sea arrivals by state (UNHCR statement of 30 Dec 2015; CY from the IOM DTM).

    >>> shares = sea_arrival_shares()
    >>> sorted(shares), shares["EL"]
    (['CY', 'EL', 'ES', 'IT', 'MT'], 844176.0)
    """
    rows = list(csv.DictReader(io.StringIO(read_data_file("sea_arrivals_2015.csv"))))
    out = {
        r["geo"]: float(r["sea_arrivals_2015"]) for r in rows if r["source"] == "UNHCR statement"
    }
    for r in rows:
        if r["geo"] not in out:
            out[r["geo"]] = float(r["sea_arrivals_2015"])
    return dict(sorted(out.items()))


def parse_entry_shares(text: str, origin: str) -> dict[str, float]:
    """Entry-state weights from a CSV with columns ``entry_state,share`` (any scale)."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or {"entry_state", "share"} - set(reader.fieldnames):
        raise InputError(f"{origin}: expected the columns entry_state,share")
    out: dict[str, float] = {}
    for lineno, row in enumerate(reader, start=2):
        code = (row.get("entry_state") or "").strip()
        try:
            value = float(row.get("share") or "")
        except ValueError:
            raise InputError(f"{origin}, line {lineno}: share is not a number") from None
        if not code or value < 0 or not np.isfinite(value):
            raise InputError(f"{origin}, line {lineno}: give a state code and a share ≥ 0")
        out[code] = out.get(code, 0.0) + value
    if not out or sum(out.values()) <= 0:
        raise InputError(f"{origin}: no positive share; add lines like EL,0.84")
    return out


@dataclass(frozen=True)
class Flows:
    """Arrivals as cohorts of cases, per day.

    ``states``: the participating states (EU-28 codes, sorted); ``days``: the calendar days;
    ``cases``: int64[days, entry state, family size 1..9, tier 1..3] — cases arriving;
    ``applied``: int64[days, state] — persons who applied there that day (the observed flow,
    exact per month); ``entry_applied``: int64[entry state, state] — persons by entry state and
    state of application (for secondary movements); ``assumptions`` and ``seed``.
    """

    states: tuple[str, ...]
    days: tuple[date, ...]
    cases: I64
    applied: I64
    entry_applied: I64
    assumptions: FlowAssumptions
    seed: int

    @property
    def persons(self) -> int:
        """All persons in the flows."""
        return int(self.applied.sum())

    def persons_per_day(self) -> I64:
        """Persons arriving per day (all states)."""
        sizes = np.arange(1, MAX_FAMILY + 1, dtype=np.int64)
        return np.asarray(np.einsum("tekr,k->t", self.cases, sizes), dtype=np.int64)


def _months(first: str, last: str) -> list[str]:
    y, m = int(first[:4]), int(first[5:7])
    out = []
    while f"{y}-{m:02d}" <= last:
        out.append(f"{y}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def build_flows(
    scenario: str = "2015-2016",
    *,
    assumptions: FlowAssumptions = DEFAULT_FLOW_ASSUMPTIONS,
    seed: int = 0,
    states: Sequence[str] | None = None,
) -> Flows:
    """The arrivals of a scenario (``2015-2016``, ``2015`` or ``2016``), seeded.

    >>> flows = build_flows("2015", seed=1)
    >>> flows.persons, int(flows.applied[:, flows.states.index("DE")].sum())
    (1257580, 441895)
    """
    if scenario not in SCENARIOS:
        raise InputError(f"unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}")
    a = assumptions
    probs = np.asarray(a.family_sizes, dtype=np.float64)
    if probs.size != MAX_FAMILY or (probs < 0).any() or probs.sum() <= 0:
        raise InputError(f"family_sizes: give {MAX_FAMILY} probabilities ≥ 0 (sizes 1..9)")
    probs = probs / probs.sum()
    for name in ("unaccompanied_minors", "urgent", "vulnerable_single", "vulnerable_pair"):
        value = getattr(a, name)
        if not 0 <= value <= 1:
            raise InputError(f"{name}: a share between 0 and 1, got {value}")
    if not 0 <= a.direct_entry <= 1:
        raise InputError(f"direct_entry: a share between 0 and 1, got {a.direct_entry}")
    codes = tuple(sorted(states if states is not None else group_members("EU28")))
    index = {c: i for i, c in enumerate(codes)}
    entry = dict(a.entry_shares) if a.entry_shares is not None else sea_arrival_shares()
    unknown = sorted(set(entry) - set(codes))
    if unknown:
        raise InputError(f"entry shares name {', '.join(unknown)}, not among the states")
    entry_w = np.zeros(len(codes))
    for code, w in entry.items():
        entry_w[index[code]] = w
    entry_p = entry_w / entry_w.sum()
    first, last = SCENARIOS[scenario]
    months = _months(first, last)
    days: list[date] = []
    month_first_day: list[int] = []
    for m in months:
        y, mo = int(m[:4]), int(m[5:7])
        month_first_day.append(len(days))
        days.extend(date(y, mo, d) for d in range(1, calendar.monthrange(y, mo)[1] + 1))
    n_days, n_states = len(days), len(codes)
    counts = np.array(
        [[monthly_applicants(s, m) for s in codes] for m in months], dtype=np.int64
    )  # [month, state]
    if (
        scenario == "2015-2016"
        and states is None
        and int(counts.sum()) != EU28_FIRST_TIME_2015_2016
    ):
        raise InputError(
            f"the bundled monthly data give {int(counts.sum()):,} first-time applicants for the "
            f"EU-28 in 2015-2016, not {EU28_FIRST_TIME_2015_2016:,}; the data file is damaged"
        )
    rng = np.random.default_rng(seed)
    # ---- cut each (month, state) total into whole families (the last one truncated to fit)
    cell_n = counts.reshape(-1)
    mean = float((probs * np.arange(1, MAX_FAMILY + 1)).sum())
    draws = np.ceil(cell_n / mean * 1.3).astype(np.int64) + 30
    cell_of = np.repeat(np.arange(cell_n.size, dtype=np.int64), draws)
    size = (rng.choice(MAX_FAMILY, size=cell_of.size, p=probs) + 1).astype(np.int64)
    starts = np.zeros(cell_n.size, dtype=np.int64)
    np.cumsum(draws[:-1], out=starts[1:])
    csum = np.cumsum(size)
    base = np.where(starts > 0, csum[starts - 1], 0)
    begin = csum - size - base[cell_of]  # persons before this case in its cell
    keep = begin < cell_n[cell_of]
    short = cell_n - np.bincount(cell_of[keep], weights=size[keep], minlength=cell_n.size)
    size = np.minimum(size, cell_n[cell_of] - begin)
    size, begin, cell_of = size[keep], begin[keep], cell_of[keep]
    if (short > 0).any():  # not enough draws (never with the margin above): singles fill up
        extra = np.flatnonzero(short > 0)
        reps = short[extra].astype(np.int64)
        add_cell = np.repeat(extra, reps)
        add_begin = cell_n[add_cell] - np.concatenate([np.arange(r, 0, -1) for r in reps])
        cell_of = np.concatenate([cell_of, add_cell])
        begin = np.concatenate([begin, add_begin])
        size = np.concatenate([size, np.ones(add_cell.size, dtype=np.int64)])
    month = cell_of // n_states
    state = cell_of % n_states
    n_in_month = np.array(
        [calendar.monthrange(int(m[:4]), int(m[5:7]))[1] for m in months], dtype=np.int64
    )
    day = np.asarray(month_first_day, dtype=np.int64)[month] + (
        begin * n_in_month[month] // np.maximum(cell_n[cell_of], 1)
    )
    # ---- tiers
    n_cases = size.size
    single = size == 1
    singles_per_cell = np.bincount(cell_of[single], minlength=cell_n.size)
    uam_p = np.minimum(1.0, a.unaccompanied_minors * cell_n / np.maximum(singles_per_cell, 1))[
        cell_of
    ]
    u = rng.random(n_cases)
    uam = single & (u < uam_p)
    urgent = ~uam & (rng.random(n_cases) < a.urgent)
    v = rng.random(n_cases)
    vulnerable = (
        (size >= 3) | (single & (v < a.vulnerable_single)) | ((size == 2) & (v < a.vulnerable_pair))
    )
    tier = np.where(uam | urgent, 1, np.where(vulnerable, 2, 3)).astype(np.int64)
    # ---- entry states
    is_entry = entry_w > 0
    via_share = rng.choice(n_states, size=n_cases, p=entry_p)
    direct = is_entry[state] | (rng.random(n_cases) < a.direct_entry)
    entry_state = np.where(direct, state, via_share).astype(np.int64)
    # ---- aggregate
    flat = ((day * n_states + entry_state) * MAX_FAMILY + (size - 1)) * 3 + (tier - 1)
    cases = np.bincount(flat, minlength=n_days * n_states * MAX_FAMILY * 3).astype(np.int64)
    applied = np.bincount(day * n_states + state, weights=size, minlength=n_days * n_states)
    entry_applied = np.bincount(
        entry_state * n_states + state, weights=size, minlength=n_states * n_states
    )
    flows = Flows(
        states=codes,
        days=tuple(days),
        cases=cases.reshape(n_days, n_states, MAX_FAMILY, 3),
        applied=applied.astype(np.int64).reshape(n_days, n_states),
        entry_applied=entry_applied.astype(np.int64).reshape(n_states, n_states),
        assumptions=a,
        seed=seed,
    )
    assert flows.persons == int(counts.sum())
    return flows
