"""Distribution keys against published tables and exact definitions."""

from __future__ import annotations

import csv
import io
from fractions import Fraction
from pathlib import Path

import pytest

from fairshare.errors import DataNotAvailableError, InputError, UnknownStateError
from fairshare.keys import builtin_keys, compute_key
from fairshare.reference import bundled_indicators, group_members, read_data_file
from fairshare.storage import load_key, with_indicator_file


def _published() -> dict[str, dict[str, str]]:
    text = read_data_file("relocation_2015_published.csv")
    return {row["geo"]: row for row in csv.DictReader(io.StringIO(text))}


PUBLISHED = _published()
EU28_POPULATION_2015 = 508_520_205  # Eurostat demo_pjan, 1 January 2015, 2019 vintage


def test_population_key_equals_eurostat_population_shares_exactly() -> None:
    result = compute_key("population", year=2015, participants="EU28")
    ind = bundled_indicators()
    eu28 = group_members("EU28")
    assert list(result.states) == eu28
    total = sum(ind.get("population", s, 2015).value for s in eu28)
    for state in eu28:
        assert result.shares[state] == ind.get("population", state, 2015).value / total
    assert sum(result.shares.values()) == 1
    assert total == EU28_POPULATION_2015


def test_eu2015_reproduces_decision_2015_1601_within_0_2_pp() -> None:
    """Council Decision (EU) 2015/1601, first stage: 66,000 persons over 23 receiving states."""
    result = compute_key("eu2015")
    assert sorted(result.states) == sorted(PUBLISHED)
    assert result.year == 2014
    total = sum(int(r["decision_2015_1601_total_66000"]) for r in PUBLISHED.values())
    # The published totals are rounded state by state: they add up to 65,999.
    assert total == 65_999
    worst = 0.0
    for state, row in PUBLISHED.items():
        published = int(row["decision_2015_1601_total_66000"]) / total * 100
        ours = float(result.shares[state]) * 100
        worst = max(worst, abs(ours - published))
        assert abs(ours - published) <= 0.2, (state, ours, published)
    # Documented residual (docs/keys.md): the largest is Spain, about 0.11 pp.
    assert worst < 0.15


def test_eu2015_may_reproduces_com_2015_286_annex_i() -> None:
    result = compute_key("eu2015-may")
    assert result.year == 2014
    gdp_years = {d.year for d in result.inputs if d.indicator == "gdp"}
    assert gdp_years == {2013}
    close = [
        s
        for s, row in PUBLISHED.items()
        if abs(float(result.shares[s]) * 100 - float(row["may2015_key_pct"])) <= 0.25
    ]
    assert len(close) >= 20, sorted(set(PUBLISHED) - set(close))


def test_eu2015_caps_bind_and_shares_sum_to_one() -> None:
    result = compute_key("eu2015")
    assert sum(result.shares.values()) == 1
    assert result.capped  # the 2015/1601 caps bind for most small states
    uncapped = compute_key("eu2015-may")
    # Caps move weight from small states with few applications towards large ones.
    assert result.shares["DE"] > uncapped.shares["DE"] - Fraction(1, 100)


def test_every_result_lists_its_inputs_with_sources() -> None:
    result = compute_key("eu2015")
    kinds = {(d.indicator, d.year) for d in result.inputs}
    assert ("population", 2014) in kinds
    assert ("gdp", 2014) in kinds
    assert ("unemployment", 2014) in kinds
    assert {("asylum_applicants", y) for y in range(2010, 2015)} <= kinds
    assert all(d.source for d in result.inputs)
    assert any("une_rt_a" in s for s in result.sources())


def test_pact2024_is_half_population_half_gdp() -> None:
    result = compute_key("pact2024", year=2018)
    assert len(result.states) == 27
    pop, gdp = result.components["population"], result.components["gdp"]
    for state in result.states:
        assert result.shares[state] == (pop[state] + gdp[state]) / 2


def test_default_year_is_latest_bundled() -> None:
    assert compute_key("population").year == 2018


def test_participants_exclude_and_renormalise() -> None:
    result = compute_key("population", year=2015, participants="EU28", exclude=["UK", "DE"])
    assert "UK" not in result.states
    assert "DE" not in result.states
    assert len(result.states) == 26
    assert sum(result.shares.values()) == 1


def test_dublin_group_includes_associated_states() -> None:
    result = compute_key("population", year=2015, participants="DUBLIN")
    assert {"IS", "NO", "CH", "LI"} <= set(result.states)
    assert len(result.states) == 32


def test_unknown_state_names_the_code_and_the_fix() -> None:
    with pytest.raises(UnknownStateError, match=r"unknown state 'GR'.*EL for GR"):
        compute_key("population", year=2015, participants="DE,GR")


def test_missing_value_says_where_and_what_to_pass() -> None:
    with pytest.raises(DataNotAvailableError) as info:
        compute_key("eu2015", participants="DE,LI")
    message = str(info.value)
    assert "for LI in 2014 is not in the bundled data (Eurostat" in message
    assert "--indicators FILE" in message


def test_user_indicator_file_overrides(tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    path.write_text("state,year,indicator,value\nLI,2014,unemployment,2.5\n")
    table = with_indicator_file(bundled_indicators(), path)
    assert table.get("unemployment", "LI", 2014).value == Fraction(5, 2)
    assert "extra.csv" in table.get("unemployment", "LI", 2014).source


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("state,year,value\nDE,2015,1\n", "missing column(s) indicator"),
        ("state,year,indicator,value\nDE,20x5,population,1\n", "line 2: year '20x5'"),
        ("state,year,indicator,value\nDE,2015,population,abc\n", "line 2: value 'abc'"),
        ("state,year,indicator,value\nDE,2015,population,-3\n", "line 2: value -3 is negative"),
        ("state,year,indicator,value\n", "no rows"),
    ],
)
def test_bad_indicator_files(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=r"bad\.csv") as info:
        with_indicator_file(bundled_indicators(), path)
    assert fragment in str(info.value)


def test_custom_key_expresses_koenigstein_style_weights(tmp_path: Path) -> None:
    """Germany's Königstein key: 2/3 tax revenue share + 1/3 population share (§ 45 AsylG).

    Tax revenue is not bundled, so the Länder's values come from a user file; with tax revenue
    set equal to population the key must reduce to the population shares exactly.
    """
    text = read_data_file("koenigstein_key.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    lines = ["state,year,indicator,value"]
    codes = []
    for i, row in enumerate(rows):
        code = f"DE-{i:02d}"
        codes.append(code)
        lines.append(f"{code},2014,population,{row['pop_end2014']}")
        lines.append(f"{code},2014,tax_revenue,{row['pop_end2014']}")
    data = tmp_path / "laender.csv"
    data.write_text("\n".join(lines) + "\n")
    key = tmp_path / "koenigstein.yaml"
    key.write_text(
        "name: koenigstein\n"
        "title: Königstein key\n"
        "reference: § 45 AsylG; Königsteiner Staatsabkommen\n"
        "participants: [" + ", ".join(codes) + "]\n"
        "reference_year: 2014\n"
        "terms:\n"
        "  - {name: tax, indicator: tax_revenue, weight: 2/3}\n"
        "  - {name: population, indicator: population, weight: 1/3}\n"
    )
    definition = load_key(str(key))
    assert definition.name == "koenigstein"
    result = compute_key(definition, indicators=with_indicator_file(bundled_indicators(), data))
    assert len(result.states) == 16
    pops = {c: Fraction(r["pop_end2014"]) for c, r in zip(codes, rows, strict=True)}
    total = sum(pops.values())
    for code in codes:
        assert result.shares[code] == pops[code] / total
    # And the published population shares (end 2014) agree to their 5 printed decimals.
    for code, row in zip(codes, rows, strict=True):
        assert abs(float(result.shares[code]) * 100 - float(row["pop_share_end2014"])) < 6e-6


def test_swiss_cantonal_key_as_a_population_key(tmp_path: Path) -> None:
    """Art. 21 AsylV 1: cantonal shares proportional to population (SEM table of 2012)."""
    rows = list(csv.DictReader(io.StringIO(read_data_file("swiss_cantonal_key_2012.csv"))))
    lines = ["state,year,indicator,value"]
    codes = [f"CH-{i:02d}" for i in range(len(rows))]
    for code, row in zip(codes, rows, strict=True):
        lines.append(f"{code},2012,population,{row['pct']}")
    data = tmp_path / "cantons.csv"
    data.write_text("\n".join(lines) + "\n")
    result = compute_key(
        "population",
        year=2012,
        participants=codes,
        indicators=with_indicator_file(bundled_indicators(), data),
    )
    assert len(result.states) == 26
    for code, row in zip(codes, rows, strict=True):
        # The SEM table sums to 100.0 (rounded); shares are renormalised exactly.
        assert abs(float(result.shares[code]) * 100 - float(row["pct"])) < 0.05


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("terms: []\n", "'terms' must be a non-empty list"),
        ("terms:\n  - {indicator: population, weight: 0.5}\n", "must sum to 1"),
        ("terms:\n  - {indicator: population, weight: -1}\n", "must be positive"),
        ("terms:\n  - {indicator: population, weight: 1, colour: red}\n", "unknown field"),
        ("wibble: 1\nterms:\n  - {indicator: population, weight: 1}\n", "unknown field"),
        (
            "terms:\n  - {indicator: population, weight: 0.5}\n"
            "  - {indicator: gdp, weight: 0.5, inverse: true, cap: 0.3}\n",
            "capped term needs cap_basis",
        ),
        ("terms: [\n", "not a valid key file"),
    ],
)
def test_bad_key_files(tmp_path: Path, body: str, fragment: str) -> None:
    path = tmp_path / "k.yaml"
    path.write_text(body)
    with pytest.raises(InputError, match=r"k\.yaml") as info:
        load_key(str(path))
    assert fragment in str(info.value)


def test_unknown_key_lists_the_builtin_ones() -> None:
    with pytest.raises(InputError, match="unknown key 'nope'; use one of population, eu2015"):
        load_key("nope")


def test_builtin_keys_carry_legal_references() -> None:
    keys = builtin_keys()
    assert set(keys) == {"population", "eu2015", "eu2015-may", "pact2024"}
    assert "2015/1601" in keys["eu2015"].reference
    assert "COM(2015) 286" in keys["eu2015-may"].reference
    assert "2024/1351" in keys["pact2024"].reference
    for key in keys.values():
        assert sum(t.weight for t in key.terms) == 1


_POP = "terms:\n  - {indicator: population, weight: 1}\n"
_CAPPED = (
    "terms:\n  - {name: population, indicator: population, weight: 0.5}\n"
    "  - {name: gdp, indicator: gdp, weight: 0.5, inverse: true, cap: 0.3}\n"
    "cap_basis: [population]\n"
)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        # Finding 1: only real booleans.
        (
            "terms:\n  - {indicator: population, weight: 1, inverse: 'no'}\n",
            "terms[0].inverse: expected true or false, got 'no'",
        ),
        (
            "terms:\n  - {indicator: population, weight: 1, per_million: 'false'}\n",
            "terms[0].per_million: expected true or false",
        ),
        ("terms:\n  - {indicator: population, weight: 1, inverse: 1}\n", "inverse: expected"),
        # Finding 2: values.
        (
            _CAPPED.replace("cap: 0.3", "cap: -0.3") + "redistribution: {population: 1}\n",
            "cap must be positive",
        ),
        (
            _CAPPED.replace("cap: 0.3", "cap: 0") + "redistribution: {population: 1}\n",
            "cap must be positive",
        ),
        (_CAPPED + "redistribution: [1]\n", "redistribution: expected a mapping"),
        (
            _CAPPED.replace("[population]", "[population, gdp]")
            + "redistribution: {population: 1.5, gdp: -0.5}\n",
            "redistribution.gdp must not be negative",
        ),
        (_CAPPED + "redistribution: {population: 0.5}\n", "redistribution: weights must sum to 1"),
        (
            _CAPPED.replace("cap_basis: [population]", "cap_basis: population")
            + "redistribution: {population: 1}\n",
            "cap_basis: expected a list",
        ),
        (_POP + "exclude: [1]\n", "exclude: expected a comma list"),
        (_POP + "exclude: {DE: 1}\n", "exclude: expected a comma list"),
        (_POP + "adopted: 12\n", "adopted: expected a date"),
        (_POP + "adopted: '2015-13-45'\n", "adopted: expected a date"),
        (_POP + "adopted: 2015-13-45\n", "not a valid key file"),
        (_POP + "proposed: soon\n", "proposed: expected a date"),
        (_POP + "name: [a]\n", "'name' must be a non-empty text"),
        (_POP + "name: ''\n", "'name' must be a non-empty text"),
        (_POP + "title: [a]\n", "title: expected text"),
        (_POP + "reference: {a: 1}\n", "reference: expected text"),
        (_POP + "participants: 5\n", "participants: expected a comma list"),
        (_POP + "participants: ''\n", "participants: no participating states"),
        (_POP + "participants: [DE, 3]\n", "participants: expected a comma list"),
        ("terms:\n  - {name: [a], indicator: population, weight: 1}\n", "terms[0].name"),
        ("terms:\n  - {indicator: population, weight: [1]}\n", "terms[0].weight: expected"),
        ("1: x\n" + _POP, "unknown field(s) 1"),
    ],
)
def test_bad_key_file_values(tmp_path: Path, body: str, fragment: str) -> None:
    path = tmp_path / "k.yaml"
    path.write_text(body)
    with pytest.raises(InputError, match=r"k\.yaml") as info:
        load_key(str(path))
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    if "name" not in fragment and "not a valid" not in fragment:
        assert "key 'k'" in message


def test_bad_key_json_dates(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text(
        '{"adopted": "2015-13-45", "terms": [{"indicator": "population", "weight": 1}]}'
    )
    with pytest.raises(InputError, match=r"k\.json: key 'k'\.adopted: expected a date"):
        load_key(str(path))


def test_key_file_booleans_dates_and_exclude_string(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text(
        "name: mine\nadopted: 2015-09-22\nexclude: DE, FR\nparticipants: EU28\n"
        "terms:\n  - {indicator: population, weight: 1, inverse: false}\n"
    )
    definition = load_key(str(path))
    assert definition.exclude == ("DE", "FR")
    assert definition.adopted is not None
    assert definition.adopted.isoformat() == "2015-09-22"
    assert definition.terms[0].inverse is False
    result = compute_key(definition, year=2015)
    assert "DE" not in result.states
    assert "FR" not in result.states
    assert len(result.states) == 26


def test_missing_years_zero_only_before_accession(tmp_path: Path) -> None:
    """A unit without 2010 asylum data that is not a later EU entrant is an error."""
    lines = ["state,year,indicator,value"]
    for y in range(2010, 2015):
        lines.append(f"XX,{y},population,1000000")
    for y in range(2011, 2015):  # no 2010 asylum data
        lines.append(f"XX,{y},asylum_applicants,100")
    lines += ["XX,2014,gdp,50000", "XX,2014,unemployment,5"]
    data = tmp_path / "xx.csv"
    data.write_text("\n".join(lines) + "\n")
    table = with_indicator_file(bundled_indicators(), data)
    with pytest.raises(DataNotAvailableError, match="asylum_applicants for XX in 2010"):
        compute_key("eu2015", participants="DE,XX", indicators=table)
    # With the 2010 value supplied the same key works.
    data.write_text("\n".join([*lines, "XX,2010,asylum_applicants,100"]) + "\n")
    result = compute_key(
        "eu2015", participants="DE,XX", indicators=with_indicator_file(bundled_indicators(), data)
    )
    assert sum(result.shares.values()) == 1


def test_missing_years_zero_for_croatia_before_2013() -> None:
    result = compute_key("eu2015")
    hr_years = {
        d.year for d in result.inputs if d.indicator == "asylum_applicants" and d.state == "HR"
    }
    assert hr_years == {2013, 2014}
    assert result.shares["HR"] > 0


def test_year_dependent_group_resolved_for_the_data_year(tmp_path: Path) -> None:
    result = compute_key("population", participants="EU")
    assert result.year == 2018
    assert len(result.states) == 28
    assert "UK" in result.states
    lines = ["state,year,indicator,value"]
    for code in [*group_members("EU27"), "UK"]:
        lines.append(f"{code},2021,population,1000")
    data = tmp_path / "pop2021.csv"
    data.write_text("\n".join(lines) + "\n")
    table = with_indicator_file(bundled_indicators(), data)
    result = compute_key("population", participants="EU", indicators=table)
    assert result.year == 2021
    assert sorted(result.states) == group_members("EU27")
    assert "UK" not in result.states
    assert all(share == Fraction(1, 27) for share in result.shares.values())


def test_eu2015_reference_names_decision_and_both_proposals() -> None:
    reference = builtin_keys()["eu2015"].reference
    assert "2015/1601" in reference
    assert "COM(2015) 451" in reference
    assert "COM(2015) 450" in reference
    assert "COM(2015) 450/451" not in reference
    docs = " ".join((Path(__file__).parents[1] / "docs" / "keys.md").read_text("utf-8").split())
    assert "COM(2015) 450/451" not in docs
    assert "years before the state's accession count as zero applications" in docs


def test_zero_share_is_an_error_naming_the_state(tmp_path: Path) -> None:
    data = tmp_path / "zero.csv"
    data.write_text("state,year,indicator,value\nMT,2015,population,0\n")
    table = with_indicator_file(bundled_indicators(), data)
    with pytest.raises(InputError, match=r"share of MT in 2015 is exactly zero.*--exclude"):
        compute_key("population", year=2015, participants="DE,FR,MT", indicators=table)
    # A zero in one term is fine when another term gives the state weight.
    result = compute_key("pact2024", year=2015, participants="DE,FR,MT", indicators=table)
    assert result.components["population"]["MT"] == 0
    assert result.shares["MT"] > 0


@pytest.mark.parametrize("name", ["population", "eu2015", "eu2015-may", "pact2024"])
@pytest.mark.parametrize("participants", [None, "EU28", "DE,MT,LU,CY"])
def test_shares_are_never_negative(name: str, participants: str | None) -> None:
    year = 2014 if participants is not None else None
    result = compute_key(name, year=year, participants=participants)
    assert all(share > 0 for share in result.shares.values())
    assert sum(result.shares.values()) == 1
