"""Bundled reference data with its provenance: states, groups and Eurostat indicators.

Everything here is read from CSV files shipped inside the package (``reference/data``; their
sources are listed in ``reference/data/SOURCES.md``). Nothing is fetched at run time.

Indicator values are exact :class:`~fractions.Fraction` objects parsed from the published
decimal strings, so a key computed from them is exact too.

>>> ind = bundled_indicators()
>>> ind.get("population", "DE", 2015).value
Fraction(81197537, 1)
>>> ind.get("population", "DE", 2015).source.split(",")[0]
'Eurostat demo_pjan (population on 1 January)'
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from functools import cache
from importlib import resources

from fairshare.errors import DataNotAvailableError, InputError, UnknownStateError

__all__ = [
    "GROUPS",
    "INDICATORS",
    "Datum",
    "IndicatorInfo",
    "Indicators",
    "State",
    "bundled_indicators",
    "group_members",
    "monthly_applicants",
    "parse_number",
    "read_data_file",
    "resolve_states",
    "states",
]


def read_data_file(name: str) -> str:
    """Return the text of a bundled data file (``reference/data/NAME``)."""
    return resources.files("fairshare.reference").joinpath("data", name).read_text("utf-8")


def _rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read_data_file(name))))


# --------------------------------------------------------------------------------------------
# States and groups


@dataclass(frozen=True)
class State:
    """A member state or Dublin associated state, by its Eurostat code (EL, UK)."""

    code: str
    iso2: str
    name: str
    eu_from: date | None
    eu_until: date | None
    dublin_from: date | None
    notes: str

    def eu_member_on(self, day: date) -> bool:
        """Whether the state was an EU member state on ``day``."""
        if self.eu_from is None or day < self.eu_from:
            return False
        return self.eu_until is None or day <= self.eu_until

    def dublin_on(self, day: date) -> bool:
        """Whether the state applied the Dublin rules on ``day``."""
        return self.dublin_from is not None and day >= self.dublin_from


def _date(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


@cache
def states() -> dict[str, State]:
    """All bundled states (EU-28 and the Dublin associated states), keyed by Eurostat code."""
    out: dict[str, State] = {}
    for row in _rows("countries.csv"):
        out[row["geo"]] = State(
            code=row["geo"],
            iso2=row["iso2"],
            name=row["name"],
            eu_from=_date(row["eu_member_from"]),
            eu_until=_date(row["eu_member_until"]),
            dublin_from=_date(row["dublin_from"]),
            notes=row["notes"],
        )
    return out


#: Named groups of participants. EU28 and EU27 are fixed sets; DUBLIN depends on the year.
GROUPS: dict[str, str] = {
    "EU28": "the 28 member states from 2013-07-01 (Croatia's accession) to 2020-01-31 (UK exit)",
    "EU27": "the 27 member states from 2020-02-01",
    "EU": "the EU member states on 1 July of the chosen year",
    "DUBLIN": "the EU member states of the chosen year plus the Dublin associated states "
    "(IS, NO, CH, LI) that applied Dublin by 1 July of that year",
}

_ISO_HINTS = {"GR": "EL", "GB": "UK"}


def _mid_year(year: int) -> date:
    # Membership "in a year" is read on 1 July: Croatia (joined 2013-07-01) counts for 2013,
    # the United Kingdom (left 2020-01-31) does not count for 2020.
    return date(year, 7, 1)


def group_members(group: str, year: int | None = None) -> list[str]:
    """Members of a named group, sorted by code.

    >>> len(group_members("EU28")), len(group_members("EU27")), len(group_members("DUBLIN", 2015))
    (28, 27, 32)
    """
    name = group.upper()
    all_states = states()
    if name == "EU28":
        day = date(2015, 1, 1)
        return sorted(c for c, s in all_states.items() if s.eu_member_on(day))
    if name == "EU27":
        day = date(2020, 2, 1)
        return sorted(c for c, s in all_states.items() if s.eu_member_on(day))
    if name in ("EU", "DUBLIN"):
        if year is None:
            raise InputError(f"group {name} depends on the year; pass --year")
        day = _mid_year(year)
        eu = {c for c, s in all_states.items() if s.eu_member_on(day)}
        if name == "DUBLIN":
            eu |= {c for c, s in all_states.items() if s.eu_from is None and s.dublin_on(day)}
        return sorted(eu)
    raise UnknownStateError(f"unknown group '{group}'; use one of {', '.join(GROUPS)}")


_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def _unknown_state_message(code: str) -> str:
    hint = _ISO_HINTS.get(code.upper())
    extra = f" (fairshare uses Eurostat codes: {hint} for {code.upper()})" if hint else ""
    known = ", ".join(sorted(states()))
    return f"unknown state '{code}'{extra}; known states: {known}; groups: {', '.join(GROUPS)}"


def resolve_states(
    spec: str | Sequence[str],
    year: int | None = None,
    *,
    exclude: Iterable[str] = (),
    extra_units: Iterable[str] = (),
) -> list[str]:
    """Turn a participants specification into a list of state codes.

    ``spec`` is a group name (``EU28``, ``EU27``, ``EU``, ``DUBLIN``), an explicit comma
    list (``DE,FR,IT``), or a mix (``EU27,NO,CH``). ``extra_units`` are further codes that are
    accepted although they are not bundled states (regions or units of a user's own indicator
    file). Order: groups sorted by code, explicit codes in the order given; no duplicates.

    >>> resolve_states("EU28", exclude=["EL", "IT", "DK", "IE", "UK"])[:3]
    ['AT', 'BE', 'BG']
    >>> resolve_states("de, fr")
    ['DE', 'FR']
    """
    parts = [p.strip() for p in spec.split(",")] if isinstance(spec, str) else list(spec)
    parts = [p for p in parts if p]
    if not parts:
        raise InputError("no participating states given; pass e.g. --states EU28 or DE,FR,IT")
    known = states()
    extra = set(extra_units)
    out: list[str] = []
    for part in parts:
        if part.upper() in GROUPS:
            members = group_members(part, year)
        elif part.upper() in known:
            members = [part.upper()]
        elif part in extra:
            members = [part]
        else:
            raise UnknownStateError(_unknown_state_message(part))
        out.extend(m for m in members if m not in out)
    excluded: list[str] = []
    for code in exclude:
        code = code.strip()
        if not code:
            continue
        norm = code.upper() if code.upper() in known else code
        if norm not in known and norm not in extra:
            raise UnknownStateError(_unknown_state_message(code))
        excluded.append(norm)
    result = [c for c in out if c not in excluded]
    if not result:
        raise InputError("every participating state was excluded; nothing left to share between")
    return result


# --------------------------------------------------------------------------------------------
# Indicators


@dataclass(frozen=True)
class IndicatorInfo:
    """What an indicator measures, its unit and the source of the bundled values."""

    name: str
    unit: str
    source: str
    table: str


INDICATORS: dict[str, IndicatorInfo] = {
    "population": IndicatorInfo(
        "population",
        "persons",
        "Eurostat demo_pjan (population on 1 January), 2019 vintage",
        "demo_pjan",
    ),
    "gdp": IndicatorInfo(
        "gdp",
        "million EUR, current prices",
        "Eurostat nama_10_gdp (GDP at market prices, current prices), 2019 vintage",
        "nama_10_gdp",
    ),
    "unemployment": IndicatorInfo(
        "unemployment",
        "% of active population",
        "Eurostat une_rt_a (unemployment rate, annual), 2019 vintage",
        "une_rt_a",
    ),
    "asylum_applicants": IndicatorInfo(
        "asylum_applicants",
        "persons per year (sum of the 12 monthly values)",
        "Eurostat migr_asyappctzm (asylum applicants, all), 2019 vintage",
        "migr_asyappctzm",
    ),
    "first_time_applicants": IndicatorInfo(
        "first_time_applicants",
        "persons per year (sum of the 12 monthly values)",
        "Eurostat migr_asyappctzm (first-time asylum applicants), 2019 vintage",
        "migr_asyappctzm",
    ),
}

USER_SOURCE = "user file"


@dataclass(frozen=True)
class Datum:
    """One indicator value with everything needed to audit it."""

    indicator: str
    state: str
    year: int
    value: Fraction
    unit: str
    source: str

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view: the value as a float and, exactly, as a string."""
        return {
            "indicator": self.indicator,
            "state": self.state,
            "year": self.year,
            "value": float(self.value),
            "value_exact": exact_text(self.value),
            "unit": self.unit,
            "source": self.source,
        }


def exact_text(x: Fraction) -> str:
    """An exact text form: an integer, a finite decimal (all published data), else ``p/q``.

    >>> exact_text(Fraction(3)), exact_text(Fraction("184351.3")), exact_text(Fraction(1, 3))
    ('3', '184351.3', '1/3')
    """
    if x.denominator == 1:
        return str(x.numerator)
    d = x.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return f"{x.numerator}/{x.denominator}"
    places = max(twos, fives)
    scaled = x * 10**places
    sign = "-" if scaled < 0 else ""
    digits = str(abs(scaled.numerator)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE]([+-]?\d+))?$|^[+-]?\d+/\d+$")
MAX_DIGITS = 60
MAX_EXPONENT = 60


def parse_number(text: str) -> Fraction:
    """Parse a decimal (``184351.3``, ``1.5e6``) or a ratio (``2/3``) exactly.

    Bounded, so that a typo such as ``1e999999999`` is an error rather than a number with a
    billion digits: at most 60 digits and exponents within ±60. Raises :class:`ValueError`.

    >>> parse_number("0.4"), parse_number("2/3"), parse_number("1.5e3")
    (Fraction(2, 5), Fraction(2, 3), Fraction(1500, 1))
    """
    clean = text.strip().replace("_", "")
    match = _NUMBER.match(clean)
    if not match:
        raise ValueError(f"'{text}' is not a number")
    if sum(ch.isdigit() for ch in clean.split("e")[0].split("E")[0]) > MAX_DIGITS:
        raise ValueError(f"'{text}' has more than {MAX_DIGITS} digits")
    exponent = match.group(4)
    if exponent is not None and abs(int(exponent)) > MAX_EXPONENT:
        raise ValueError(f"'{text}' has an exponent beyond ±{MAX_EXPONENT}")
    try:
        return Fraction(clean)
    except ZeroDivisionError:
        raise ValueError(f"'{text}' divides by zero") from None


def _parse_number(text: str) -> Fraction:
    return parse_number(text)


class Indicators:
    """A table of indicator values (indicator, state, year) → :class:`Datum`.

    The bundled table is :func:`bundled_indicators`; :meth:`with_csv_text` returns a copy in which a
    user's own CSV (``state,year,indicator,value``) adds or overrides values.
    """

    def __init__(self, data: Mapping[tuple[str, str, int], Datum], files: Sequence[str] = ()):
        self._data = dict(data)
        self.files = tuple(files)

    def __contains__(self, item: tuple[str, str, int]) -> bool:
        return item in self._data

    def get(self, indicator: str, state: str, year: int) -> Datum:
        """The value of ``indicator`` for ``state`` in ``year``, or a clear error."""
        found = self._data.get((indicator, state, year))
        if found is not None:
            return found
        raise DataNotAvailableError(self._missing_message(indicator, state, year))

    def _missing_message(self, indicator: str, state: str, year: int) -> str:
        info = INDICATORS.get(indicator)
        where = f"the bundled data (Eurostat {info.table})" if info else "the bundled data"
        if self.files:
            where += " or " + ", ".join(self.files)
        years = self.years(indicator, state)
        have = f"; {state} has {indicator} for {years[0]}–{years[-1]}" if years else ""
        return (
            f"{indicator} for {state} in {year} is not in {where}{have}; "
            "pass --indicators FILE (CSV: state,year,indicator,value) to supply it"
        )

    def years(self, indicator: str, state: str | None = None) -> list[int]:
        """Sorted years for which ``indicator`` has a value (for ``state``, if given)."""
        return sorted(
            {y for (i, s, y) in self._data if i == indicator and (state is None or s == state)}
        )

    def latest_common_year(self, indicator: str, participants: Sequence[str]) -> int:
        """The latest year in which every participant has a value of ``indicator``."""
        common: set[int] | None = None
        for state in participants:
            have = set(self.years(indicator, state))
            common = have if common is None else common & have
        if not common:
            raise DataNotAvailableError(
                f"no year has {indicator} for all of {', '.join(participants)}; "
                "pass --year and --indicators FILE"
            )
        return max(common)

    def units(self) -> set[str]:
        """Every state or unit code that has at least one value."""
        return {s for (_, s, _) in self._data}

    def with_csv_text(self, text: str, origin: str) -> Indicators:
        """A copy with the values of a user CSV (its text; ``origin`` names it) added.

        User values override bundled ones. Reading the file is the adapters' job
        (:func:`fairshare.storage.with_indicator_file`).
        """
        data = dict(self._data)
        data.update(parse_indicator_csv(text, origin))
        return Indicators(data, (*self.files, origin))


_REQUIRED_COLUMNS = ("state", "year", "indicator", "value")


def parse_indicator_csv(text: str, origin: str) -> dict[tuple[str, str, int], Datum]:
    """Parse a user indicator file: columns ``state,year,indicator,value`` (+ ``unit``, ``source``).

    Every problem is collected and reported at once, with its line number; nothing is
    returned unless the whole file is valid.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in _REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"{origin}: missing column(s) {', '.join(missing)}; "
            "the header must be state,year,indicator,value"
        )
    problems: list[str] = []
    out: dict[tuple[str, str, int], Datum] = {}
    for lineno, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if None in raw:
            problems.append(f"line {lineno}: more fields than the header has")
            continue
        state, indicator = row.get("state", ""), row.get("indicator", "")
        if not _CODE.match(state):
            problems.append(f"line {lineno}: state '{state}' is not a code like DE or DE-BY")
            continue
        if state.upper() in states():
            state = state.upper()
        if not re.match(r"^[a-z][a-z0-9_]*$", indicator):
            problems.append(
                f"line {lineno}: indicator '{indicator}' must be lower_case like population"
            )
            continue
        try:
            year = int(row.get("year", ""))
        except ValueError:
            problems.append(f"line {lineno}: year '{row.get('year', '')}' is not a whole year")
            continue
        try:
            value = _parse_number(row.get("value", ""))
        except ValueError as exc:
            problems.append(f"line {lineno}: value {exc}")
            continue
        if value < 0:
            problems.append(f"line {lineno}: value {row['value']} is negative")
            continue
        info = INDICATORS.get(indicator)
        unit = row.get("unit") or (info.unit if info else "")
        source = row.get("source") or f"{USER_SOURCE} {origin}, line {lineno}"
        key = (indicator, state, year)
        if key in out:
            problems.append(f"line {lineno}: {indicator} for {state} in {year} is given twice")
            continue
        out[key] = Datum(indicator, state, year, value, unit, source)
    if problems:
        shown = problems[:20]
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise InputError(f"{origin}: " + "; ".join(shown) + more)
    if not out:
        raise InputError(f"{origin}: no rows; add lines like DE,2015,population,81197537")
    return out


def _monthly_rows() -> list[dict[str, str]]:
    return _rows("asylum_applicants_monthly.csv")


@cache
def _monthly() -> dict[tuple[str, str, str], int]:
    out: dict[tuple[str, str, str], int] = {}
    for row in _monthly_rows():
        for column, name in (
            ("all_applicants", "asylum_applicants"),
            ("first_time_applicants", "first_time_applicants"),
        ):
            if row[column]:
                out[(name, row["geo"], row["month"])] = int(row[column])
    return out


def monthly_applicants(state: str, month: str, *, first_time: bool = True) -> int:
    """Asylum applicants (first-time by default) lodged in ``state`` in ``month`` (YYYY-MM)."""
    name = "first_time_applicants" if first_time else "asylum_applicants"
    try:
        return _monthly()[(name, state, month)]
    except KeyError:
        raise DataNotAvailableError(
            f"{name} for {state} in {month} is not in the bundled data (Eurostat migr_asyappctzm)"
        ) from None


@cache
def bundled_indicators() -> Indicators:
    """The indicator table shipped with the package (Eurostat, 2019 vintage).

    Annual asylum figures are the sum of the twelve monthly values and exist only for years in
    which all twelve months are published (so 2017, whose last months are missing, has none).
    """
    data: dict[tuple[str, str, int], Datum] = {}
    for file, column, indicator in (
        ("population.csv", "population_jan1", "population"),
        ("gdp.csv", "gdp_current_prices_meur", "gdp"),
        ("unemployment.csv", "unemployment_rate_pct", "unemployment"),
    ):
        info = INDICATORS[indicator]
        for row in _rows(file):
            if row[column]:
                year = int(row["year"])
                data[(indicator, row["geo"], year)] = Datum(
                    indicator, row["geo"], year, _parse_number(row[column]), info.unit, info.source
                )
    sums: dict[tuple[str, str, int], list[int]] = {}
    for (name, state, month), value in _monthly().items():
        sums.setdefault((name, state, int(month[:4])), []).append(value)
    for (name, state, year), values in sums.items():
        if len(values) == 12:
            info = INDICATORS[name]
            data[(name, state, year)] = Datum(
                name, state, year, Fraction(sum(values)), info.unit, info.source
            )
    return Indicators(data)
