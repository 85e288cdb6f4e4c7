"""Distribution keys: who should carry which share, computed exactly and auditable.

A key is policy, so it is data (``rules/keys.yaml``, or a user's own YAML/JSON file) with its
legal reference; this module only evaluates it. The built-in keys:

* ``population`` — the petition's key: population share of the participating states.
* ``eu2015`` — the relocation key of Council Decision (EU) 2015/1601 (adopted on the
  Commission proposal COM(2015) 451); the key's formula as set out in the Annex of COM(2015) 450
  (the proposed permanent crisis relocation mechanism amending Dublin III):
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
from datetime import date, datetime
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any

import yaml

from fairshare.errors import DataNotAvailableError, InputError
from fairshare.reference import Datum, Indicators, bundled_indicators, parse_number, resolve_states
from fairshare.reference import states as known_states

__all__ = [
    "KeyDefinition",
    "KeyResult",
    "Term",
    "builtin_keys",
    "compute_key",
    "key_from_text",
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
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{where}: expected a number, got {value!r}")
    try:
        # str() of a float is its shortest repr: 0.4 -> "0.4" -> 2/5 exactly. Bounded parsing:
        # a typo such as 1e999999999 is an error, not a billion-digit number.
        return parse_number(str(value))
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{where}: expected true or false, got {value!r}")
    return value


def _text(spec: Mapping[str, Any], name: str, default: str, where: str) -> str:
    value = spec.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise InputError(f"{where}.{name}: expected text, got {value!r}")
    return " ".join(value.split())


def _codes(value: Any, where: str) -> list[str]:
    """A comma list (``"DE, FR"``) or a list of strings, as stripped codes."""
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, list) and all(isinstance(p, str) and p.strip() for p in value):
        return [p.strip() for p in value]
    raise InputError(f"{where}: expected a comma list or a list of state codes, got {value!r}")


def _date_field(value: Any, where: str) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if value is None or isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InputError(f"{where}: expected a date (YYYY-MM-DD) or null, got {value!r}")


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
    unknown = {str(k) for k in spec} - _KEY_FIELDS
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
        bad = {str(k) for k in raw} - _TERM_FIELDS
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
        term_name = raw.get("name", indicator)
        if not isinstance(term_name, str) or not term_name.strip():
            raise InputError(f"{tw}.name: expected a non-empty text, got {term_name!r}")
        cap = None if raw.get("cap") is None else _fraction(raw.get("cap"), f"{tw}.cap")
        if cap is not None and cap <= 0:
            raise InputError(f"{tw}.cap must be positive, got {raw.get('cap')!r}")
        terms.append(
            Term(
                name=term_name,
                indicator=indicator,
                weight=weight,
                inverse=_bool(raw.get("inverse", False), f"{tw}.inverse"),
                per_million=_bool(raw.get("per_million", False), f"{tw}.per_million"),
                offset=_int(raw.get("offset", 0), f"{tw}.offset"),
                span=span,
                cap=cap,
            )
        )
    names = [t.name for t in terms]
    if len(set(names)) != len(names):
        raise InputError(f"{where}: term names must be unique, got {', '.join(names)}")
    total = sum((t.weight for t in terms), Fraction(0))
    if total != 1:
        raise InputError(f"{where}: term weights must sum to 1, they sum to {total}")
    raw_basis = spec.get("cap_basis") or []
    if not isinstance(raw_basis, list) or not all(isinstance(x, str) for x in raw_basis):
        raise InputError(f"{where}.cap_basis: expected a list of term names, got {raw_basis!r}")
    cap_basis = tuple(raw_basis)
    raw_redistribution = spec.get("redistribution") or {}
    if not isinstance(raw_redistribution, Mapping):
        raise InputError(
            f"{where}.redistribution: expected a mapping of term names to weights, "
            f"got {raw_redistribution!r}"
        )
    redistribution: dict[str, Fraction] = {}
    for k, v in raw_redistribution.items():
        weight = _fraction(v, f"{where}.redistribution.{k}")
        if weight < 0:
            raise InputError(f"{where}.redistribution.{k} must not be negative, got {v!r}")
        redistribution[str(k)] = weight
    if redistribution and sum(redistribution.values(), Fraction(0)) != 1:
        raise InputError(
            f"{where}.redistribution: weights must sum to 1, "
            f"they sum to {sum(redistribution.values(), Fraction(0))}"
        )
    for ref in (*cap_basis, *redistribution):
        if ref not in names:
            raise InputError(f"{where}: '{ref}' in cap_basis/redistribution is not a term name")
    has_cap = any(t.cap is not None for t in terms)
    if has_cap and (not cap_basis or not redistribution):
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
    adopted = _date_field(spec.get("adopted"), f"{where}.adopted")
    _date_field(spec.get("proposed"), f"{where}.proposed")
    participants = _codes(spec.get("participants", "EU28"), f"{where}.participants")
    if not participants:
        raise InputError(f"{where}.participants: no participating states given")
    exclude = _codes(spec.get("exclude") or [], f"{where}.exclude")
    return KeyDefinition(
        name=name,
        title=_text(spec, "title", name, where) or name,
        description=_text(spec, "description", "", where),
        reference=_text(spec, "reference", "", where),
        terms=tuple(terms),
        participants=",".join(participants),
        exclude=tuple(exclude),
        participants_note=_text(spec, "participants_note", "", where),
        reference_year=reference_year,
        missing_years=str(missing),
        missing_years_note=_text(spec, "missing_years_note", "", where),
        cap_basis=cap_basis,
        redistribution=redistribution,
        adopted=adopted,
        origin=origin,
    )


@cache
def builtin_keys() -> dict[str, KeyDefinition]:
    """The keys shipped in ``rules/keys.yaml``, by name."""
    text = resources.files("fairshare.rules").joinpath("keys.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    return {name: parse_key(name, spec) for name, spec in raw.items()}


def load_key(name: str) -> KeyDefinition:
    """A built-in key by name (key files: :func:`fairshare.storage.load_key`)."""
    keys = builtin_keys()
    if name in keys:
        return keys[name]
    raise InputError(
        f"unknown key '{name}'; use one of {', '.join(keys)} "
        "or the path of a key file (.yaml or .json)"
    )


def key_from_text(text: str, origin: str, *, json_format: bool, default_name: str) -> KeyDefinition:
    """A custom key from the text of a YAML or JSON key file.

    The file holds one key: the same fields as an entry of ``rules/keys.yaml``, plus an
    optional ``name`` (default ``default_name``, the file's stem).
    """
    try:
        raw = json.loads(text) if json_format else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        # ValueError covers json.JSONDecodeError and PyYAML's impossible dates
        # (``adopted: 2015-13-45``).
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{origin}: not a valid key file ({first})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{origin}: a key file must hold a mapping with 'terms'")
    raw = dict(raw)
    name = raw.pop("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{origin}: field 'name' must be a non-empty text, got {name!r}")
    return parse_key(name.strip(), raw, origin=origin)


# --------------------------------------------------------------------------------------------
# Evaluating a key


def _normalise(values: Mapping[str, Fraction]) -> dict[str, Fraction]:
    total = sum(values.values(), Fraction(0))
    return {s: v / total for s, v in values.items()}


def _before_accession(state: str, year: int) -> bool:
    """True if ``state`` was not an EU member at any time in ``year`` (it acceded later)."""
    known = known_states().get(state)
    if known is None or known.eu_from is None:
        return False
    return date(year, 12, 31) < known.eu_from


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
                if key.missing_years == "zero" and term.span > 1 and _before_accession(state, y):
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


def _provisional_year(key: KeyDefinition, indicators: Indicators) -> int:
    """The latest year for which every term's indicator exists at all (for any unit)."""
    candidates = [
        years[-1] - term.offset for term in key.terms if (years := indicators.years(term.indicator))
    ]
    if not candidates:
        first = key.terms[0].indicator
        raise DataNotAvailableError(
            f"key '{key.name}': no data for {first}; pass --indicators FILE and --year"
        )
    return min(candidates)


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

    The capping rule (Decision (EU) 2015/1601; formula as in COM(2015) 450, Annex): a capped
    term's share for state d is at most ``cap × Σ_b share_{b,d}`` over the ``cap_basis`` terms
    b; the total weight the caps remove is redistributed as ``Σ_b redistribution_b × share_{b,d}``.
    """
    definition = load_key(key) if isinstance(key, str) else key
    table = indicators if indicators is not None else bundled_indicators()
    extra = table.units()
    spec = definition.participants if participants is None else participants
    excluded = [*definition.exclude, *exclude] if participants is None else list(exclude)

    def resolve(at: int) -> list[str]:
        return resolve_states(spec, at, exclude=excluded, extra_units=extra)

    fixed_year = year if year is not None else definition.reference_year
    if fixed_year is not None:
        states = resolve(fixed_year)
        ref_year = fixed_year
    else:
        # `latest`: groups such as EU and DUBLIN depend on the year, and the year depends on
        # the participants' data. Start from the latest year any input exists, resolve the
        # participants there, and re-resolve until the membership year is the data year.
        ref_year = _provisional_year(definition, table)
        for _ in range(4):
            states = resolve(ref_year)
            data_year = _resolve_year(definition, states, table)
            if data_year == ref_year:
                break
            ref_year = data_year
        else:
            shown = spec if isinstance(spec, str) else ",".join(spec)
            raise InputError(
                f"key '{definition.name}': the participants ({shown}) and the latest year with "
                "all inputs do not settle on one year; pass --year"
            )
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
    zero = [s for s, v in shares.items() if v == 0]
    if zero:
        raise InputError(
            f"key '{definition.name}' ({definition.origin}): the share of {', '.join(zero)} in "
            f"{ref_year} is exactly zero (its input values give it no weight); exclude them with "
            "--exclude or supply data with --indicators"
        )
    assert sum(shares.values()) == 1
    assert all(v > 0 for v in shares.values())
    return KeyResult(
        key=definition,
        year=ref_year,
        states=tuple(states),
        shares=shares,
        components=components,
        inputs=tuple(unique),
        capped={s: tuple(v) for s, v in capped.items() if v},
    )
