"""A map of Europe as SVG: each state coloured by a class, with a label on hover and focus.

The geometry is bundled (``reference/data/europe_map.json``): Natural Earth 1:50m country
boundaries (public domain) from the npm package world-atlas 2.0.2, projected (Lambert
azimuthal equal-area, centre 10°E 52°N), clipped to Europe and simplified by
``tools/make_europe_map.py``. Nothing is fetched at run time, so a map works offline.

The map is plain SVG with no script: every state is a ``<g>`` with ``id="map-XX"``, the class
it is given, ``tabindex="0"`` so that a keyboard reaches it, an ``aria-label`` and a
``<title>`` (the tooltip). Tiny states (Malta, Liechtenstein) also get a circle so that they
can be seen and clicked. Colours come from the page's CSS (classes), so that the dashboard
and the reports can choose an accessible palette.

>>> svg = europe_svg({"DE": "fill-3", "MT": "fill-1"}, {"DE": "Germany: 98% of its fair share"})
>>> 'id="map-DE" class="state fill-3"' in svg and 'id="map-MT" class="state fill-1"' in svg
True
>>> "<title>Germany: 98% of its fair share</title>" in svg
True
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from html import escape

from fairshare.reference import read_data_file

__all__ = ["MapShape", "europe_shapes", "europe_svg", "map_source"]


@dataclass(frozen=True)
class MapShape:
    """One country of the bundled map: its Eurostat code (``None`` for a background
    country), name, SVG path and, for a tiny state, a marker point."""

    code: str | None
    name: str
    path: str
    marker: tuple[float, float] | None


@cache
def _data() -> dict[str, object]:
    data: dict[str, object] = json.loads(read_data_file("europe_map.json"))
    return data


@cache
def europe_shapes() -> tuple[MapShape, ...]:
    """The bundled shapes, background countries first.

    >>> sorted(s.code for s in europe_shapes() if s.code)[:4]
    ['AT', 'BE', 'BG', 'CH']
    """
    raw = _data()["countries"]
    assert isinstance(raw, list)
    return tuple(
        MapShape(
            code=c["code"],
            name=c["name"],
            path=c["d"],
            marker=tuple(c["marker"]) if c["marker"] else None,
        )
        for c in raw
    )


def map_source() -> str:
    """Where the geometry comes from (for a figure's caption)."""
    return str(_data()["source"])


def europe_svg(
    classes: Mapping[str, str],
    labels: Mapping[str, str] | None = None,
    *,
    title: str = "Map of Europe",
    links: Mapping[str, str] | None = None,
    css_class: str = "europe-map",
) -> str:
    """The map as an inline SVG element.

    ``classes``: Eurostat code -> CSS class(es) of the states to show (others are drawn as
    background, class ``bg``); ``labels``: code -> the text of its tooltip and accessible
    label (default: the country's name); ``links``: code -> a URL the state links to.
    """
    labels = labels or {}
    links = links or {}
    view = _data()["viewBox"]
    assert isinstance(view, list)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{escape(css_class)}" '
        f'viewBox="{" ".join(str(v) for v in view)}" role="group" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for shape in europe_shapes():
        if shape.code is None or shape.code not in classes:
            parts.append(f'<path class="bg" d="{shape.path}" aria-hidden="true"/>')
            continue
        code = shape.code
        label = escape(labels.get(code, shape.name))
        body = f'<path d="{shape.path}"/>'
        if shape.marker is not None:
            x, y = shape.marker
            body += f'<circle class="marker" cx="{x}" cy="{y}" r="6"/>'
        group = (
            f'<g id="map-{escape(code)}" class="state {escape(classes[code])}" '
            f'data-state="{escape(code)}" tabindex="0" role="img" aria-label="{label}">'
            f"<title>{label}</title>{body}</g>"
        )
        if code in links:
            group = f'<a href="{escape(links[code])}">{group}</a>'
        parts.append(group)
    parts.append("</svg>")
    return "".join(parts)
