"""Outputs of a simulation: tidy tables (CSV, Parquet), charts (PNG and interactive HTML), a
map, and one self-contained HTML report comparing the policies side by side.

The report has every asset inline (PNG charts as data URIs, the interactive charts and the map
as inline SVG, the CSS and a few lines of script); it loads nothing from the network.
Parquet needs ``pyarrow`` and PNG charts ``matplotlib`` (the ``sim`` extra); both are imported
only when used.
"""

from __future__ import annotations

import base64
import csv
import importlib
import io
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fairshare.maps import europe_svg, map_source
from fairshare.simulation import SimulationResult
from fairshare.simulation.metrics import policy_metrics, time_series

__all__ = [
    "CHARTS",
    "chart_pngs",
    "report_html",
    "state_rows",
    "time_rows",
    "write_outputs",
]

F64 = npt.NDArray[np.float64]
#: The charts of the report, by id: title.
CHARTS: dict[str, str] = {
    "per-capita": "Persons received per 1,000 inhabitants, by state",
    "fairness-over-time": "Inequality of the per-capita load over time (Gini)",
    "backlog": "Persons waiting in the entry states",
    "waiting": "Waiting days until in the responsible state (median, 95th percentile)",
}
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")


def state_rows(result: SimulationResult) -> list[dict[str, Any]]:
    """The tidy per-state table: one row per policy and state."""
    rows = []
    for run in result.runs:
        summary = policy_metrics(run)
        for state, values in summary["states"].items():
            rows.append({"policy": run.policy.name, "state": state, **values})
    return rows


def time_rows(result: SimulationResult) -> list[dict[str, Any]]:
    """The tidy daily table: one row per policy, day and state."""
    rows = []
    for run in result.runs:
        series = time_series(run)
        for t, day in enumerate(result.flows.days):
            for i, state in enumerate(run.states):
                rows.append(
                    {
                        "policy": run.policy.name,
                        "date": day.isoformat(),
                        "state": state,
                        "received": int(run.received[t, i]),
                        "cumulative": int(series["cumulative"][t, i]),
                        "per_1000": round(float(series["per_1000"][t, i]), 4),
                        "backlog": int(run.backlog[t, i]),
                    }
                )
    return rows


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _parquet(rows: Sequence[dict[str, Any]], path: Path) -> None:
    pa: Any = importlib.import_module("pyarrow")
    pq: Any = importlib.import_module("pyarrow.parquet")
    table = pa.Table.from_pylist(list(rows))
    pq.write_table(table, str(path))


# --------------------------------------------------------------------------------------------
# Chart data


def _chart_data(result: SimulationResult) -> dict[str, Any]:
    names = [r.policy.name for r in result.runs]
    states = list(result.flows.states)
    per_capita = {}
    gini_t = {}
    backlog_t = {}
    waiting = {}
    for run in result.runs:
        summary = policy_metrics(run)
        per_capita[run.policy.name] = [summary["states"][s]["per_1000"] for s in states]
        series = time_series(run)
        gini_t[run.policy.name] = series["gini"]
        backlog_t[run.policy.name] = series["backlog"]
        w = summary["metrics"]["waiting_days"]
        waiting[run.policy.name] = [
            w["vulnerable"]["median"] or 0.0,
            w["vulnerable"]["p95"] or 0.0,
            w["other"]["median"] or 0.0,
            w["other"]["p95"] or 0.0,
        ]
    return {
        "names": names,
        "states": states,
        "per_capita": per_capita,
        "gini": gini_t,
        "backlog": backlog_t,
        "waiting": waiting,
        "days": [d.isoformat() for d in result.flows.days],
    }


# --------------------------------------------------------------------------------------------
# PNG charts (matplotlib, Agg backend)


def chart_pngs(result: SimulationResult) -> dict[str, bytes]:
    """The report's charts as PNG images, by chart id."""
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    data = _chart_data(result)
    names, states = data["names"], data["states"]
    out: dict[str, bytes] = {}

    def save(fig: Any, key: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80, metadata={"Software": None})
        plt.close(fig)
        out[key] = buf.getvalue()

    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(states))
    for i, name in enumerate(names):
        ax.bar(x + i * width, data["per_capita"][name], width, label=name, color=PALETTE[i % 7])
    ax.set_xticks(x + 0.4 - width / 2, states, fontsize=7)
    ax.set_ylabel("per 1,000 inhabitants")
    ax.set_title(CHARTS["per-capita"])
    ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, "per-capita")
    for key, field, label in (
        ("fairness-over-time", "gini", "Gini"),
        ("backlog", "backlog", "persons"),
    ):
        fig, ax = plt.subplots(figsize=(8, 3.5))
        for i, name in enumerate(names):
            ax.plot(
                np.arange(len(data["days"])), data[field][name], label=name, color=PALETTE[i % 7]
            )
        ticks = list(range(0, len(data["days"]), 91))
        ax.set_xticks(ticks, [data["days"][t][:7] for t in ticks], fontsize=7)
        ax.set_ylabel(label)
        ax.set_title(CHARTS[key])
        ax.legend(fontsize=7)
        fig.tight_layout()
        save(fig, key)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    labels = ["vulnerable median", "vulnerable p95", "others median", "others p95"]
    x = np.arange(len(labels))
    for i, name in enumerate(names):
        ax.bar(x + i * width, data["waiting"][name], width, label=name, color=PALETTE[i % 7])
    ax.set_xticks(x + 0.4 - width / 2, labels, fontsize=8)
    ax.set_ylabel("days")
    ax.set_title(CHARTS["waiting"])
    ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, "waiting")
    return out


# --------------------------------------------------------------------------------------------
# Interactive charts: inline SVG with tooltips and a legend that toggles series


def _fmt(v: float) -> str:
    return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"


def svg_bars(
    chart_id: str, title: str, groups: Sequence[str], series: dict[str, Sequence[float]], unit: str
) -> str:
    """A grouped bar chart as an interactive inline SVG (tooltips; the legend toggles)."""
    w, h, left, bottom = 960, 300, 50, 40
    top = max((max(v) for v in series.values() if len(v)), default=1.0) or 1.0
    n = max(1, len(series))
    gw = (w - left - 10) / max(1, len(groups))
    bw = gw * 0.8 / n
    parts = [
        f'<svg class="chart" id="chart-{chart_id}" viewBox="0 0 {w} {h + 30}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - 10}" y2="{h - bottom}" stroke="#333"/>'
        f'<text x="5" y="12" font-size="11">{escape(unit)} (max {_fmt(top)})</text>'
    ]
    for s, (name, values) in enumerate(series.items()):
        color = PALETTE[s % len(PALETTE)]
        parts.append(f'<g class="series" data-series="{escape(name)}" fill="{color}">')
        for g, v in enumerate(values):
            bh = (h - bottom - 20) * (v / top)
            x = left + g * gw + s * bw
            parts.append(
                f'<rect x="{x:.1f}" y="{h - bottom - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}">'
                f"<title>{escape(name)} — {escape(groups[g])}: {_fmt(v)} {escape(unit)}</title>"
                "</rect>"
            )
        parts.append("</g>")
    for g, label in enumerate(groups):
        x = left + g * gw + gw * 0.4
        parts.append(
            f'<text x="{x:.1f}" y="{h - bottom + 14}" font-size="10" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append(_legend(list(series), h + 10))
    parts.append("</svg>")
    return "".join(parts)


def svg_lines(
    chart_id: str, title: str, days: Sequence[str], series: dict[str, F64], unit: str
) -> str:
    """A line chart over days as an interactive inline SVG (weekly points with tooltips)."""
    w, h, left, bottom = 960, 300, 60, 40
    top = max((float(np.max(v)) for v in series.values() if v.size), default=1.0) or 1.0
    n = len(days)
    sx = (w - left - 10) / max(1, n - 1)
    parts = [
        f'<svg class="chart" id="chart-{chart_id}" viewBox="0 0 {w} {h + 30}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - 10}" y2="{h - bottom}" stroke="#333"/>'
        f'<text x="5" y="12" font-size="11">{escape(unit)} (max {_fmt(top)})</text>'
    ]
    for t in range(0, n, 91):
        parts.append(
            f'<text x="{left + t * sx:.1f}" y="{h - bottom + 14}" font-size="10">'
            f"{escape(days[t][:7])}</text>"
        )
    for s, (name, values) in enumerate(series.items()):
        color = PALETTE[s % len(PALETTE)]
        ys = (h - bottom) - (h - bottom - 20) * (np.asarray(values) / top)
        step = 7
        points = " ".join(f"{left + t * sx:.1f},{ys[t]:.1f}" for t in range(0, n, step))
        parts.append(
            f'<g class="series" data-series="{escape(name)}">'
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>'
        )
        for t in range(0, n, 28):
            parts.append(
                f'<circle cx="{left + t * sx:.1f}" cy="{ys[t]:.1f}" r="3" fill="{color}">'
                f"<title>{escape(name)} — {days[t]}: {_fmt(float(values[t]))} {escape(unit)}"
                "</title></circle>"
            )
        parts.append("</g>")
    parts.append(_legend(list(series), h + 10))
    parts.append("</svg>")
    return "".join(parts)


def _legend(names: Sequence[str], y: float) -> str:
    parts = []
    for s, name in enumerate(names):
        x = 60 + s * 140
        parts.append(
            f'<g class="legend" data-series="{escape(name)}" tabindex="0" role="button" '
            f'aria-label="show or hide {escape(name)}"><rect x="{x}" y="{y}" width="12" '
            f'height="12" fill="{PALETTE[s % len(PALETTE)]}"/><text x="{x + 16}" y="{y + 11}" '
            f'font-size="12">{escape(name)}</text></g>'
        )
    return "".join(parts)


def interactive_charts(result: SimulationResult) -> dict[str, str]:
    """The report's charts as inline interactive SVG, by chart id."""
    data = _chart_data(result)
    return {
        "per-capita": svg_bars(
            "per-capita", CHARTS["per-capita"], data["states"], data["per_capita"], "per 1,000"
        ),
        "fairness-over-time": svg_lines(
            "fairness-over-time", CHARTS["fairness-over-time"], data["days"], data["gini"], "Gini"
        ),
        "backlog": svg_lines(
            "backlog", CHARTS["backlog"], data["days"], data["backlog"], "persons"
        ),
        "waiting": svg_bars(
            "waiting",
            CHARTS["waiting"],
            ["vulnerable median", "vulnerable p95", "others median", "others p95"],
            data["waiting"],
            "days",
        ),
    }


# --------------------------------------------------------------------------------------------
# The report

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:1200px;color:#222}
h1{font-size:1.5rem} h2{font-size:1.2rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem} td,th{border:1px solid #ccc;padding:2px 6px}
td.num{text-align:right} .maps{display:grid;grid-template-columns:repeat(3,1fr);gap:.5rem}
.maps figure{margin:0} .europe-map{width:100%;height:auto;border:1px solid #ddd}
.europe-map .bg{fill:#eee;stroke:#fff} .europe-map .state path{stroke:#fff;stroke-width:.5}
.f0 path,.f0 circle{fill:#2166ac}.f1 path,.f1 circle{fill:#92c5de}.f2 path,.f2 circle{fill:#5aae61}
.f3 path,.f3 circle{fill:#f4a582}.f4 path,.f4 circle{fill:#b2182b}.fnone path{fill:#999}
.chart{width:100%;height:auto;border:1px solid #eee} .chart .off{opacity:.1}
.legend{cursor:pointer} .assumption{background:#fff6d5;padding:.5rem;border-left:4px solid #e0b000}
img.png{max-width:100%}
"""

_SCRIPT = """
document.querySelectorAll('.chart .legend').forEach(function(item){
  function toggle(){var svg=item.ownerSVGElement, name=item.dataset.series;
    svg.querySelectorAll('.series').forEach(function(g){
      if(g.dataset.series===name){g.classList.toggle('off');}});
    item.classList.toggle('off');}
  item.addEventListener('click',toggle);
  item.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){toggle();}});
});
"""

_LEGEND_CLASSES = (
    ("f0", "below 50% of the fair share"),
    ("f1", "50–90%"),
    ("f2", "90–110%"),
    ("f3", "110–200%"),
    ("f4", "above 200%"),
)


def _map_class(percent: float | None) -> str:
    if percent is None:
        return "fnone"
    for bound, cls in ((50, "f0"), (90, "f1"), (110, "f2"), (200, "f3")):
        if percent < bound:
            return cls
    return "f4"


def policy_map(result: SimulationResult, policy: str) -> str:
    """The map of one policy: each state coloured by its share of its fair share."""
    run = next(r for r in result.runs if r.policy.name == policy)
    states = policy_metrics(run)["states"]
    classes = {s: _map_class(v["percent_of_fair_share"]) for s, v in states.items()}
    labels = {
        s: f"{s}: {v['received']:,} persons, {v['per_1000']:.2f} per 1,000, "
        f"{v['percent_of_fair_share']}% of its fair share"
        for s, v in states.items()
    }
    return europe_svg(classes, labels, title=f"{policy}: received against the fair share")


def report_html(result: SimulationResult, *, with_png: bool = True) -> str:
    """One self-contained HTML page comparing the policies side by side."""
    summary = result.summary()
    pols = summary["policies"]
    names = list(pols)
    h: list[str] = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>fairshare policy simulation {escape(result.scenario)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Who would have carried what: {escape(result.scenario)}, "
        f"{summary['persons']:,} persons, {summary['days']} days</h1>",
        "<p>First-time asylum applicants per state and month (Eurostat migr_asyappctzm, "
        "bundled) replayed day by day under each policy. Fair share = the state's population "
        "share (1 January 2015) of all persons received: the petition's yardstick.</p>",
        "<p class='assumption'><strong>Assumptions, not data:</strong> entry states (2015 sea "
        "arrivals, UNHCR/IOM, also for 2016 and land routes), family composition, the "
        "vulnerability mix, registration and reception capacities, lead times and secondary "
        "movement are parameters (see the table at the end and docs/simulation.md). "
        f"Seed {result.seed}.</p>",
        "<h2>Summary</h2><table><tr><th>metric</th>"
        + "".join(f"<th>{escape(n)}</th>" for n in names)
        + "</tr>",
    ]
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("persons received", lambda m: f"{m['persons_received']:,}"),
        ("still waiting at the end", lambda m: f"{m['persons_still_waiting_at_end']:,}"),
        ("persons transferred", lambda m: f"{m['persons_transferred']:,}"),
        ("Gini of per-capita load", lambda m: f"{m['gini_per_capita']}"),
        ("max/min per-capita ratio", lambda m: str(m["max_min_ratio"] or "∞ (a state got none)")),
        (
            "largest |deviation| from fair share",
            lambda m: f"{m['max_abs_deviation_from_fair_share']:,}",
        ),
        ("peak backlog in entry states", lambda m: f"{m['backlog_peak_total']:,}"),
        (
            "waiting days, vulnerable (median / p95)",
            lambda m: (
                f"{m['waiting_days']['vulnerable']['median']} / "
                f"{m['waiting_days']['vulnerable']['p95']}"
            ),
        ),
        (
            "waiting days, others (median / p95)",
            lambda m: (
                f"{m['waiting_days']['other']['median']} / {m['waiting_days']['other']['p95']}"
            ),
        ),
        ("families split", lambda m: str(m["families_split"])),
        ("within M of the key at every step", lambda m: str(m["within_M_every_step"])),
        (
            "relocated / corrective",
            lambda m: f"{m['relocated']:,} / {m['corrective_allocations']:,}",
        ),
        ("paid instead of relocating (EUR)", lambda m: f"{m['payments_eur_total']:,.0f}"),
    ]
    for label, fn in rows:
        h.append(
            f"<tr><th>{escape(label)}</th>"
            + "".join(f"<td class='num'>{escape(fn(pols[n]['metrics']))}</td>" for n in names)
            + "</tr>"
        )
    h.append("</table>")
    h.append("<h2>Map: received against the fair share</h2><div class='maps' id='maps'>")
    for n in names:
        h.append(f"<figure><figcaption>{escape(pols[n]['title'])}</figcaption>")
        h.append(policy_map(result, n))
        h.append("</figure>")
    h.append(
        "</div><p>"
        + " · ".join(
            f"<span class='{c}'><svg width='12' height='12'><path d='M0 0h12v12H0z'/></svg> "
            f"{escape(t)}</span>"
            for c, t in _LEGEND_CLASSES
        )
        + f"</p><p><small>Map: {escape(map_source())}</small></p>"
    )
    interactive = interactive_charts(result)
    pngs = chart_pngs(result) if with_png else {}
    for key, title in CHARTS.items():
        h.append(f"<h2>{escape(title)}</h2>")
        h.append(f"<div class='interactive' id='figure-{key}'>{interactive[key]}</div>")
        if key in pngs:
            data = base64.b64encode(pngs[key]).decode("ascii")
            h.append(
                f"<details><summary>PNG</summary><img class='png' id='png-{key}' "
                f"alt='{escape(title)}' src='data:image/png;base64,{data}'></details>"
            )
    h.append("<h2>Per state</h2><table><tr><th>state</th>")
    h.append("".join(f"<th>{escape(n)} received</th><th>per 1,000</th>" for n in names) + "</tr>")
    for s in result.flows.states:
        h.append(f"<tr><th>{s}</th>")
        for n in names:
            v = pols[n]["states"][s]
            h.append(f"<td class='num'>{v['received']:,}</td><td class='num'>{v['per_1000']}</td>")
        h.append("</tr>")
    h.append("</table><h2>Policies and their legal basis</h2><dl>")
    for n in names:
        h.append(f"<dt><strong>{escape(n)}</strong>: {escape(pols[n]['title'])}</dt>")
        h.append(f"<dd>{escape(pols[n]['reference'])}</dd>")
    h.append("</dl><h2>Parameters (assumptions)</h2><pre>")
    h.append(escape(repr(summary["parameters"])))
    h.append(f"</pre><script>{_SCRIPT}</script></body></html>")
    return "".join(h)


def write_outputs(result: SimulationResult, directory: Path) -> list[Path]:
    """Write the tables (CSV, Parquet), charts (PNG, interactive HTML) and the report."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, rows in (("states", state_rows(result)), ("timeseries", time_rows(result))):
        path = directory / f"{name}.csv"
        path.write_text(_csv(rows), "utf-8")
        written.append(path)
        pq_path = directory / f"{name}.parquet"
        _parquet(rows, pq_path)
        written.append(pq_path)
    for key, png in chart_pngs(result).items():
        path = directory / f"{key}.png"
        path.write_bytes(png)
        written.append(path)
    for key, svg in interactive_charts(result).items():
        path = directory / f"{key}.html"
        path.write_text(
            f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(key)}"
            f"</title><style>{_CSS}</style></head><body>{svg}<script>{_SCRIPT}</script>"
            "</body></html>",
            "utf-8",
        )
        written.append(path)
    path = directory / "report.html"
    path.write_text(report_html(result), "utf-8")
    written.append(path)
    return written
