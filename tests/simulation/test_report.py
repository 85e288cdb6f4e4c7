"""The outputs: tidy tables, charts, a map, and one self-contained HTML report that opens in a
real browser with the network off."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest

from fairshare.simulation import SimulationResult, simulate
from fairshare.simulation.report import CHARTS, report_html, write_outputs


@pytest.fixture(scope="module")
def small() -> SimulationResult:
    return simulate("2015", ["observed", "dublin", "population", "dublin-iv"], seed=2)


def test_tables_and_charts(small: SimulationResult, tmp_path: Path) -> None:
    written = {p.name for p in write_outputs(small, tmp_path)}
    for name in ("states", "timeseries"):
        assert f"{name}.csv" in written
        assert f"{name}.parquet" in written
    for key in CHARTS:
        assert f"{key}.png" in written
        assert f"{key}.html" in written
        assert (tmp_path / f"{key}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (tmp_path / "states.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 * 28
    de = next(r for r in rows if r["policy"] == "observed" and r["state"] == "DE")
    assert de["received"] == "441895"
    pq = pytest.importorskip("pyarrow.parquet")
    assert pq.read_table(str(tmp_path / "states.parquet")).num_rows == 4 * 28


def test_report_is_self_contained(small: SimulationResult) -> None:
    html = report_html(small)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script src" not in html
    assert "<link" not in html
    assert html.count('id="map-DE"') == 4
    for key in CHARTS:
        assert f'id="chart-{key}"' in html
        assert f"id='png-{key}'" in html


def test_report_opens_offline_in_chromium(
    small: SimulationResult, tmp_path: Path, browser: Any
) -> None:
    path = tmp_path / "report.html"
    path.write_text(report_html(small), "utf-8")
    requests: list[str] = []
    context = browser.new_context(offline=True)
    try:
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        assert page.locator("#maps svg.europe-map").count() == 4
        assert page.locator("#map-DE").first.is_visible()
        for key in CHARTS:
            chart = page.locator(f"#chart-{key}")
            assert chart.is_visible(), key
            box = chart.bounding_box()
            assert box is not None
            assert box["width"] > 200
            assert box["height"] > 100
            page.locator("details").filter(has=page.locator(f"#png-{key}")).locator(
                "summary"
            ).click()
            loaded = page.eval_on_selector(
                f"#png-{key}", "img => img.complete && img.naturalWidth > 0"
            )
            assert loaded, key
        # the legend toggles a series
        legend = page.locator("#chart-backlog .legend").first
        legend.click()
        assert page.locator("#chart-backlog .series.off").count() == 1
    finally:
        context.close()
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
