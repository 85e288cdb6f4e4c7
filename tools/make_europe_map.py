"""Build the bundled map of Europe (``src/fairshare/reference/data/europe_map.json``).

A developer tool, run once when the geometry changes; the product only reads its output.

Input: Natural Earth 1:50m country boundaries (public domain) as TopoJSON, from the npm
package ``world-atlas@2.0.2`` (ISC licence, Mike Bostock): ``npm pack world-atlas@2.0.2``,
unpack, and pass ``package/countries-50m.json``. The 1:110m set lacks Malta.

What it does: decodes the TopoJSON arcs, projects longitude/latitude with the Lambert
azimuthal equal-area projection centred at 10°E 52°N (the centre of ETRS89-LAEA, EPSG:3035,
on a sphere), clips every polygon to a window over Europe, simplifies the rings
(Douglas-Peucker, well under a pixel at the map's size) and writes one SVG path per
country, keyed by Eurostat code for the EU-28 and the Dublin associated states (other
countries are kept without a code, as background). Tiny states get a marker point so that
they stay visible and clickable.

    python tools/make_europe_map.py /tmp/package/countries-50m.json
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

# ISO 3166-1 numeric code -> Eurostat code (EL = Greece, UK = United Kingdom).
STATES = {
    "040": "AT", "056": "BE", "100": "BG", "191": "HR", "196": "CY", "203": "CZ",
    "208": "DK", "233": "EE", "246": "FI", "250": "FR", "276": "DE", "300": "EL",
    "348": "HU", "372": "IE", "380": "IT", "428": "LV", "440": "LT", "442": "LU",
    "470": "MT", "528": "NL", "616": "PL", "620": "PT", "642": "RO", "703": "SK",
    "705": "SI", "724": "ES", "752": "SE", "826": "UK", "578": "NO", "352": "IS",
    "756": "CH", "438": "LI",
}  # fmt: skip
LON0, LAT0 = math.radians(10.0), math.radians(52.0)
WIDTH = 1000.0  # the map's width in SVG units
TOLERANCE = 0.35  # Douglas-Peucker tolerance, SVG units
MARKER_BELOW = 60.0  # a state smaller than this (square SVG units) also gets a marker
# The window, as the projected box around these corners (lon, lat): Iceland to Cyprus.
CORNERS = [(-25.0, 63.0), (-12.0, 35.5), (12.0, 34.3), (35.5, 34.0), (33.0, 71.5), (20, 71.5)]


def project(lon: float, lat: float) -> tuple[float, float]:
    lam, phi = math.radians(lon), math.radians(lat)
    c = 1 + math.sin(LAT0) * math.sin(phi) + math.cos(LAT0) * math.cos(phi) * math.cos(lam - LON0)
    k = math.sqrt(2 / c)
    x = k * math.cos(phi) * math.sin(lam - LON0)
    y = k * (math.cos(LAT0) * math.sin(phi) - math.sin(LAT0) * math.cos(phi) * math.cos(lam - LON0))
    return x, -y


def decode_arcs(topology: dict) -> list[list[tuple[float, float]]]:
    sx, sy = topology["transform"]["scale"]
    tx, ty = topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(indexes: list[int], arcs: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for i in indexes:
        points = arcs[i] if i >= 0 else arcs[~i][::-1]
        out.extend(points[1:] if out else points)
    return out


def clip(points: list[tuple[float, float]], box: tuple[float, float, float, float]):
    """Sutherland-Hodgman against an axis-aligned box."""
    x0, y0, x1, y1 = box
    edges = [
        (lambda p: p[0] >= x0, lambda a, b: _cut_x(a, b, x0)),
        (lambda p: p[0] <= x1, lambda a, b: _cut_x(a, b, x1)),
        (lambda p: p[1] >= y0, lambda a, b: _cut_y(a, b, y0)),
        (lambda p: p[1] <= y1, lambda a, b: _cut_y(a, b, y1)),
    ]
    for inside, cut in edges:
        if not points:
            return []
        out = []
        prev = points[-1]
        for cur in points:
            if inside(cur):
                if not inside(prev):
                    out.append(cut(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cut(prev, cur))
            prev = cur
        points = out
    return points


def _cut_x(a, b, x):
    t = (x - a[0]) / (b[0] - a[0])
    return (x, a[1] + t * (b[1] - a[1]))


def _cut_y(a, b, y):
    t = (y - a[1]) / (b[1] - a[1])
    return (a[0] + t * (b[0] - a[0]), y)


def simplify(points, tol):
    if len(points) < 4:
        return points
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        i, j = stack.pop()
        (ax, ay), (bx, by) = points[i], points[j]
        dx, dy = bx - ax, by - ay
        norm = math.hypot(dx, dy)
        best, where = -1.0, -1
        for k in range(i + 1, j):
            px, py = points[k]
            d = (
                abs(dy * (px - ax) - dx * (py - ay)) / norm
                if norm
                else math.hypot(px - ax, py - ay)
            )
            if d > best:
                best, where = d, k
        if best > tol:
            keep[where] = True
            stack.extend([(i, where), (where, j)])
    return [p for p, k in zip(points, keep, strict=True) if k]


def area(points) -> float:
    pairs = zip(points, [*points[1:], points[0]], strict=True)
    return abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in pairs)) / 2


def main(source: str) -> None:
    topology = json.loads(Path(source).read_text("utf-8"))
    arcs = decode_arcs(topology)
    corners = [project(lon, lat) for lon, lat in CORNERS]
    x0, x1 = min(p[0] for p in corners), max(p[0] for p in corners)
    y0, y1 = min(p[1] for p in corners), max(p[1] for p in corners)
    scale = WIDTH / (x1 - x0)
    height = (y1 - y0) * scale
    box = (0.0, 0.0, WIDTH, height)
    countries = []
    for geometry in topology["objects"]["countries"]["geometries"]:
        kind = geometry.get("type")
        if kind == "Polygon":
            polygons = [geometry["arcs"]]
        elif kind == "MultiPolygon":
            polygons = geometry["arcs"]
        else:
            continue
        code = STATES.get(geometry.get("id", ""))
        paths, total, marker, biggest = [], 0.0, None, 0.0
        for polygon in polygons:
            for r, indexes in enumerate(polygon):
                lonlat = ring(indexes, arcs)
                if not any(-30 <= lon <= 50 and 30 <= lat <= 75 for lon, lat in lonlat):
                    continue
                pts = [project(lon, lat) for lon, lat in lonlat]
                pts = [((x - x0) * scale, (y - y0) * scale) for x, y in pts]
                pts = clip(pts, box)
                if len(pts) < 3:
                    continue
                a = area(pts)
                if a < (0.05 if code else 2.0):
                    continue
                if r == 0:
                    total += a
                    if a > biggest:
                        biggest = a
                        cx = sum(p[0] for p in pts) / len(pts)
                        cy = sum(p[1] for p in pts) / len(pts)
                        marker = (round(cx, 1), round(cy, 1))
                if a > 20 * TOLERANCE**2:  # small islands stay as they are
                    pts = simplify([*pts, pts[0]], TOLERANCE)[:-1]
                if len(pts) < 3:
                    continue
                paths.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in pts) + "Z")
        if not paths:
            continue
        countries.append(
            {
                "code": code,
                "name": geometry["properties"]["name"],
                "d": "".join(paths),
                "marker": marker if code and total < MARKER_BELOW else None,
            }
        )
    countries.sort(key=lambda c: (c["code"] is not None, c["name"]))
    out = {
        "source": "Natural Earth 1:50m Admin 0 - Countries (public domain), via the npm package "
        "world-atlas 2.0.2 (countries-50m.json; ISC licence, Copyright 2013-2019 Michael "
        "Bostock); projected, clipped and simplified by tools/make_europe_map.py",
        "projection": "Lambert azimuthal equal-area on a sphere, centre 10E 52N (as "
        "ETRS89-LAEA, EPSG:3035)",
        "viewBox": [0, 0, WIDTH, round(height, 1)],
        "countries": countries,
    }
    target = Path(__file__).resolve().parents[1] / "src/fairshare/reference/data/europe_map.json"
    target.write_text(json.dumps(out, separators=(",", ":"), ensure_ascii=False) + "\n", "utf-8")
    coded = sorted(c["code"] for c in countries if c["code"])
    print(
        f"{target}: {len(countries)} countries, {len(coded)} states, "
        f"{target.stat().st_size:,} bytes; states: {' '.join(coded)}"
    )


if __name__ == "__main__":
    main(sys.argv[1])
