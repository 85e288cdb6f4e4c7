"""Distribution keys: who should carry which share, computed exactly and auditable.

A key is policy, so it is data (``rules/keys.yaml``, or a user's own YAML/JSON file) with its
legal reference; this module only evaluates it. The built-in keys:

* ``population`` — the petition's key: population share of the participating states.
* ``eu2015`` — the relocation key of Council Decision (EU) 2015/1601 (COM(2015) 450/451):
  40% population, 40% GDP, 10% inverse asylum applications per million (2010–2014 mean),
  10% inverse unemployment; each inverse term capped at 0.30 × (population share + GDP
  share), the capped remainder redistributed 50/50 by population and GDP.
* ``eu2015-may`` — the uncapped May 2015 key (COM(2015) 286; GDP of 2013).
* ``pact2024`` — 50% population, 50% GDP (Regulation (EU) 2024/1351, Art. 66).

Shares are :class:`~fractions.Fraction` objects that sum to exactly 1 over the participants
actually used, and every result lists the inputs (value, year, source) it was computed from.

>>> result = compute_key("population", year=2015, participants="DE,FR")
>>> result.shares["DE"]
Fraction(81197537, 147655690)
>>> sum(result.shares.values())
Fraction(1, 1)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from fairshare.errors import DataNotAvailableError, InputError
from fairshare.reference import Datum, Indicators, bundled_indicators, resolve_states

__all__ = [
    "KeyDefinition",
    "KeyResult",
    "Term",
    "builtin_keys",
    "compute_key",
    "load_key",
    "parse_key",
]

MILLION = Fraction(1_000_000)


@dataclass(frozen=True)
class Term:
    """One weighted component of a key."""

    name: str
    indicator: str
    weight: Fraction
    inverse: bool = False
    per_million: bool = False
    offset: int = 0
    span: int = 1
    cap: Fraction | None = None


@dataclass(frozen=True)
class KeyDefinition:
    """A distribution key as policy data: terms, default participants and legal reference."""

    name: str
    title: str
    description: str
    reference: str
    terms: tuple[Term, ...]
    participants: str = "EU28"
    exclude: tuple[str, ...] = ()
    participants_note: str = ""
    reference_year: int | None = None  # None = the latest year with all inputs
    missing_years: str = "error"  # or "zero": a year without data counts as zero
    missing_years_note: str = ""
    cap_basis: tuple[str, ...] = ()
    redistribution: Mapping[str, Fraction] = field(default_factory=dict)
    adopted: date | None = None
    origin: str = "built-in"

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON-ready data (weights as exact strings)."""
        return {
            "name": self.name,
            "title": self.title,
            "reference": self.reference,
            "adopted": self.adopted.isoformat() if self.adopted else None,
            "origin": self.origin,
            "default_participants": self.participants,
            "default_exclude": list(self.exclude),
            "terms": [
                {
                    "name": t.name,
                    "indicator": t.indicator,
                    "weight": str(t.weight),
                    "inverse": t.inverse,
                    "per_million": t.per_million,
                    "offset": t.offset,
                    "span": t.span,
                    "cap": None if t.cap is None else str(t.cap),
                }
                for t in self.terms
            ],
        }


@dataclass(frozen=True)
class KeyResult:
    """A key evaluated for concrete participants and year."""

    key: KeyDefinition
    year: int
    states: tuple[str, ...]
    shares: dict[str, Fraction]
    components: dict[str, dict[str, Fraction]]
    inputs: tuple[Datum, ...]
    capped: dict[str, tuple[str, ...]]  # state -> names of terms whose cap bound

    def sources(self) -> list[str]:
        """The distinct sources of the inputs, in first-use order."""
        seen: list[str] = []
        for datum in self.inputs:
            if datum.source not in seen:
                seen.append(datum.source)
        return seen


# --------------------------------------------------------------------------------------------
# Parsing key definitions


def _fraction(value: Any, where: str) -> Fraction:
    if isinstance(value, bool) or value is None:
        raise InputError(f"{where}: expected a number, got {value!r}")
    try:
        # str() of a float is its shortest repr: 0.4 -> "0.4" -> 2/5 exactly.
        return Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise InputError(f"{where}: '{value}' is not a number") from None


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where}: expected a whole number, got {value!r}")
    return value


_TERM_FIELDS = {"name", "indicator", "weight", "inverse", "per_million", "offset", "span", "cap"}
_KEY_FIELDS = {
    "title",
    "description",
    "reference",
    "adopted",
    "proposed",
    "participants",
    "exclude",
    "participants_note",
    "reference_year",
    "missing_years",
    "missing_years_note",
    "terms",
    "cap_basis",
    "redistribution",
}


def parse_key(name: str, spec: Mapping[str, Any], origin: str = "built-in") -> KeyDefinition:
    """Validate one key definition (a mapping as in ``rules/keys.yaml``)."""
    where = f"{origin}: key '{name}'"
    if not isinstance(spec, Mapping):
        raise InputError(f"{where}: expected a mapping of fields")
    unknown = set(spec) - _KEY_FIELDS
    if unknown:
        raise InputError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(_KEY_FIELDS))}"
        )
    raw_terms = spec.get("terms")
    if not isinstance(raw_terms, list) or not raw_terms:
        raise InputError(f"{where}: 'terms' must be a non-empty list")
    terms: list[Term] = []
    for i, raw in enumerate(raw_terms):
        tw = f"{where}, terms[{i}]"
        if not isinstance(raw, Mapping):
            raise InputError(f"{tw}: expected a mapping with indicator and weight")
        bad = set(raw) - _TERM_FIELDS
        if bad:
            raise InputError(f"{tw}: unknown field(s) {', '.join(sorted(bad))}")
        indicator = raw.get("indicator")
        if not isinstance(indicator, str) or not indicator:
            raise InputError(f"{tw}: 'indicator' is required (e.g. population)")
        weight = _fraction(raw.get("weight"), f"{tw}.weight")
        if weight <= 0:
            raise InputError(f"{tw}.weight must be positive, got {raw.get('weight')}")
        span = _int(raw.get("span", 1), f"{tw}.span")
        if span < 1:
            raise InputError(f"{tw}.span must be at least 1")
        cap = raw.get("cap")
        terms.append(
            Term(
                name=str(raw.get("name", indicator)),
                indicator=indicator,
                weight=weight,
                inverse=bool(raw.get("inverse", False)),
                per_million=bool(raw.get("per_million", False)),
                offset=_int(raw.get("offset", 0), f"{tw}.offset"),
                span=span,
                cap=None if cap is None else _fraction(cap, f"{tw}.cap"),
            )
        )
    names = [t.name for t in terms]
    if len(set(names)) != len(names):
        raise InputError(f"{where}: term names must be unique, got {', '.join(names)}")
    total = sum((t.weight for t in terms), Fraction(0))
    if total != 1:
        raise InputError(f"{where}: term weights must sum to 1, they sum to {total}")
    cap_basis = tuple(str(x) for x in spec.get("cap_basis", ()) or ())
    redistribution = {
        str(k): _fraction(v, f"{where}.redistribution.{k}")
        for k, v in (spec.get("redistribution") or {}).items()
    }
    for ref in (*cap_basis, *redistribution):
        if ref not in names:
            raise InputError(f"{where}: '{ref}' in cap_basis/redistribution is not a term name")
    has_cap = any(t.cap is not None for t in terms)
    if has_cap and (not cap_basis or sum(redistribution.values(), Fraction(0)) != 1):
        raise InputError(
            f"{where}: a capped term needs cap_basis and redistribution weights summing to 1"
        )
    ref_year = spec.get("reference_year", "latest")
    if ref_year in (None, "latest"):
        reference_year = None
    else:
        reference_year = _int(ref_year, f"{where}.reference_year")
    missing = spec.get("missing_years", "error")
    if missing not in ("error", "zero"):
        raise InputError(f"{where}.missing_years must be 'error' or 'zero'")
    adopted = spec.get("adopted")
    if isinstance(adopted, str):
        adopted = date.fromisoformat(adopted)
    participants = spec.get("participants", "EU28")
    if isinstance(participants, list):
        participants = ",".join(str(p) for p in participants)
    return KeyDefinition(
        name=name,
        title=str(spec.get("title", name)),
        description=" ".join(str(spec.get("description", "")).split()),
        reference=" ".join(str(spec.get("reference", "")).split()),
        terms=tuple(terms),
        participants=str(participants),
        exclude=tuple(str(x) for x in spec.get("exclude", ()) or ()),
        participants_note=" ".join(str(spec.get("participants_note", "")).split()),
        reference_year=reference_year,
        missing_years=str(missing),
        missing_years_note=" ".join(str(spec.get("missing_years_note", "")).split()),
        cap_basis=cap_basis,
        redistribution=redistribution,
        adopted=adopted if isinstance(adopted, date) else None,
        origin=origin,
    )


@cache
def builtin_keys() -> dict[str, KeyDefinition]:
    """The keys shipped in ``rules/keys.yaml``, by name."""
    text = resources.files("fairshare.rules").joinpath("keys.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    return {name: parse_key(name, spec) for name, spec in raw.items()}


def load_key(name_or_path: str) -> KeyDefinition:
    """A built-in key by name, or a custom key from a YAML or JSON file.

    A custom file holds one key: the same fields as an entry of ``rules/keys.yaml``, plus an
    optional ``name``.
    """
    keys = builtin_keys()
    if name_or_path in keys:
        return keys[name_or_path]
    path = Path(name_or_path)
    if not path.suffix or not path.exists():
        raise InputError(
            f"unknown key '{name_or_path}'; use one of {', '.join(keys)} "
            "or the path of a key file (.yaml or .json)"
        )
    try:
        text = path.read_text("utf-8")
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a valid key file ({first})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a key file must hold a mapping with 'terms'")
    raw = dict(raw)
    name = str(raw.pop("name", path.stem))
    return parse_key(name, raw, origin=str(path))


# --------------------------------------------------------------------------------------------
# Evaluating a key


def _normalise(values: Mapping[str, Fraction]) -> dict[str, Fraction]:
    total = sum(values.values(), Fraction(0))
    return {s: v / total for s, v in values.items()}


def _term_values(
    term: Term,
    key: KeyDefinition,
    year: int,
    states: Sequence[str],
    indicators: Indicators,
    inputs: list[Datum],
) -> dict[str, Fraction]:
    end = year + term.offset
    years = list(range(end - term.span + 1, end + 1))
    values: dict[str, Fraction] = {}
    for state in states:
        acc = Fraction(0)
        for y in years:
            try:
                datum = indicators.get(term.indicator, state, y)
            except DataNotAvailableError:
                if key.missing_years == "zero" and term.span > 1:
                    continue
                raise
            inputs.append(datum)
            value = datum.value
            if term.per_million:
                population = indicators.get("population", state, y)
                inputs.append(population)
                value = value * MILLION / population.value
            acc += value
        values[state] = acc / len(years)
    if term.inverse:
        zero = [s for s, v in values.items() if v == 0]
        if zero:
            raise InputError(
                f"key '{key.name}', term '{term.name}': {term.indicator} is zero for "
                f"{', '.join(zero)} in {years[0]}–{years[-1]}; an inverse term needs a "
                "positive value (exclude the state or supply data with --indicators)"
            )
        values = {s: 1 / v for s, v in values.items()}
    elif sum(values.values(), Fraction(0)) == 0:
        raise InputError(f"key '{key.name}', term '{term.name}': all values are zero")
    return values


def _resolve_year(key: KeyDefinition, states: Sequence[str], indicators: Indicators) -> int:
    if key.reference_year is not None:
        return key.reference_year
    # The latest year in which every term's (offset) input exists for every participant.
    return min(
        indicators.latest_common_year(term.indicator, states) - term.offset for term in key.terms
    )


def compute_key(
    key: KeyDefinition | str,
    *,
    year: int | None = None,
    participants: str | Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    indicators: Indicators | None = None,
) -> KeyResult:
    """Evaluate a key exactly for the given participants and reference year.

    ``participants`` defaults to the key's own (e.g. the 23 receiving states for ``eu2015``);
    ``exclude`` removes states after that. ``year`` defaults to the key's reference year (for
    ``eu2015`` the year of the act's inputs, 2014; for ``population`` the latest bundled year).
    Shares are renormalised over the participants actually used, so they always sum to 1.

    The capping rule (Decision (EU) 2015/1601, following COM(2015) 450): a capped term's share
    for state d is at most ``cap × Σ_b share_{b,d}`` over the ``cap_basis`` terms b; the total
    weight the caps remove is redistributed as ``Σ_b redistribution_b × share_{b,d}``.
    """
    definition = load_key(key) if isinstance(key, str) else key
    table = indicators if indicators is not None else bundled_indicators()
    extra = table.units()
    if participants is None:
        states = resolve_states(
            definition.participants,
            year or definition.reference_year or 2015,
            exclude=[*definition.exclude, *exclude],
            extra_units=extra,
        )
    else:
        states = resolve_states(
            participants,
            year or definition.reference_year or 2015,
            exclude=exclude,
            extra_units=extra,
        )
    ref_year = year if year is not None else _resolve_year(definition, states, table)
    inputs: list[Datum] = []
    components: dict[str, dict[str, Fraction]] = {}
    for term in definition.terms:
        values = _term_values(term, definition, ref_year, states, table, inputs)
        components[term.name] = _normalise(values)
    shares = {s: Fraction(0) for s in states}
    capped: dict[str, list[str]] = {s: [] for s in states}
    removed = Fraction(0)
    for term in definition.terms:
        comp = components[term.name]
        for state in states:
            value = comp[state]
            if term.cap is not None:
                limit = term.cap * sum(
                    (components[b][state] for b in definition.cap_basis), Fraction(0)
                )
                if value > limit:
                    removed += term.weight * (value - limit)
                    capped[state].append(term.name)
                    value = limit
            shares[state] += term.weight * value
    if removed:
        for state in states:
            shares[state] += removed * sum(
                (w * components[b][state] for b, w in definition.redistribution.items()),
                Fraction(0),
            )
    # Deduplicate inputs (a population value may serve two terms) keeping first-use order.
    seen: set[tuple[str, str, int]] = set()
    unique: list[Datum] = []
    for datum in inputs:
        ident = (datum.indicator, datum.state, datum.year)
        if ident not in seen:
            seen.add(ident)
            unique.append(datum)
    assert sum(shares.values()) == 1
    return KeyResult(
        key=definition,
        year=ref_year,
        states=tuple(states),
        shares=shares,
        components=components,
        inputs=tuple(unique),
        capped={s: tuple(v) for s, v in capped.items() if v},
    )
