"""The bundled map of Europe."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from fairshare.maps import europe_shapes, europe_svg, map_source
from fairshare.reference import states

SVG = "{http://www.w3.org/2000/svg}"


def test_every_bundled_state_has_a_shape_once() -> None:
    coded = [s.code for s in europe_shapes() if s.code]
    assert sorted(coded) == sorted(states())
    assert len(coded) == len(set(coded))


def test_tiny_states_have_a_marker_and_large_ones_do_not() -> None:
    markers = {s.code for s in europe_shapes() if s.marker is not None}
    assert {"MT", "LI"} <= markers
    assert not markers & {"DE", "FR", "SE", "IT"}


def test_paths_stay_inside_the_view_box() -> None:
    root = ET.fromstring(europe_svg({}))
    width, height = (float(v) for v in root.attrib["viewBox"].split()[2:])
    for shape in europe_shapes():
        numbers = [float(x) for x in re.findall(r"-?\d+\.?\d*", shape.path)]
        xs, ys = numbers[0::2], numbers[1::2]
        assert min(xs) >= 0, shape.name
        assert max(xs) <= width, shape.name
        assert min(ys) >= 0, shape.name
        assert max(ys) <= height, shape.name


def test_svg_is_well_formed_and_classes_labels_and_links_are_escaped() -> None:
    svg = europe_svg(
        {"DE": "fill-2", "MT": "fill-0"},
        {"DE": 'Germany <"98%">'},
        title="Fulfilment & fair share",
        links={"DE": "/states/DE?x=1&y=2"},
    )
    root = ET.fromstring(svg)
    assert root.find(f"{SVG}title").text == "Fulfilment & fair share"
    groups = {g.attrib["id"]: g for g in root.iter(f"{SVG}g")}
    assert set(groups) == {"map-DE", "map-MT"}
    assert groups["map-DE"].attrib["class"] == "state fill-2"
    assert groups["map-DE"].attrib["aria-label"] == 'Germany <"98%">'
    assert groups["map-DE"].attrib["tabindex"] == "0"
    assert groups["map-MT"].find(f"{SVG}circle") is not None
    links = [a.attrib["href"] for a in root.iter(f"{SVG}a")]
    assert links == ["/states/DE?x=1&y=2"]
    background = [p for p in root.iter(f"{SVG}path") if p.attrib.get("class") == "bg"]
    assert len(background) == len(europe_shapes()) - 2


def test_the_source_is_named() -> None:
    assert "Natural Earth" in map_source()
    assert "public domain" in map_source()
