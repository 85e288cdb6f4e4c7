"""What the dashboard shows, computed from the registry's read models (no HTTP, no SQL).

Pure functions from rows to small view dictionaries, so that the pages stay thin and the
figures can be tested without a browser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fairshare.cases import SERVICES
from fairshare.maps import europe_svg
from fairshare.reference import states as known_states

__all__ = [
    "FULFILMENT_CLASSES",
    "SERVICE_LABELS",
    "fulfilment_class",
    "overview_rows",
    "reason_list",
    "state_map",
    "state_name",
]

SERVICE_LABELS = {
    "unaccompanied_minor": "unaccompanied-minor place",
    "medical": "medical place",
    "maternity": "maternity place",
    "accessible": "accessible place",
    "trafficking_shelter": "trafficking-protection shelter",
}

#: Fulfilment (persons received ÷ fair share) classes of the map, with their legend.
FULFILMENT_CLASSES: tuple[tuple[str, str, float | None], ...] = (
    ("ful-0", "under 50%", 0.5),
    ("ful-1", "50–80%", 0.8),
    ("ful-2", "80–95%", 0.95),
    ("ful-3", "95–105% (at its fair share)", 1.05),
    ("ful-4", "105–125%", 1.25),
    ("ful-5", "125–150%", 1.5),
    ("ful-6", "over 150%", None),
)
NO_SHARE = ("ful-none", "no fair share yet (nothing received)")


def fulfilment_class(received: int, fair_share: float | None) -> str:
    """The map class of a state: received ÷ fair share, in the bands of the legend.

    >>> fulfilment_class(100, 100.0), fulfilment_class(40, 100.0), fulfilment_class(0, 0.0)
    ('ful-3', 'ful-0', 'ful-none')
    """
    if fair_share is None or fair_share <= 0:
        return NO_SHARE[0]
    ratio = received / fair_share
    for name, _, upper in FULFILMENT_CLASSES:
        if upper is None or ratio < upper:
            return name
    return FULFILMENT_CLASSES[-1][0]  # pragma: no cover - the last band has no upper bound


def state_name(code: str) -> str:
    known = known_states().get(code)
    return known.name if known else code


def overview_rows(
    aggregates: Mapping[str, Any], capacity: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One row per participating state: share, fair share, received, deficit, places."""
    rows = []
    for item in aggregates["states"]:
        code = item["state"]
        if item["share"] is None:
            continue
        places = capacity.get(code, {"free": 0, "services": dict.fromkeys(SERVICES, 0)})
        fair = float(item["fair_share"] or 0.0)
        received = int(item["received"])
        rows.append(
            {
                "state": code,
                "name": state_name(code),
                "share": float(item["share"]),
                "fair_share": fair,
                "received": received,
                "deficit": fair - received,
                "fulfilment": (received / fair) if fair > 0 else None,
                "class": fulfilment_class(received, fair),
                "free": int(places["free"]),
                "services": dict(places["services"]),
                "waiting": dict(item.get("waiting") or {}),
            }
        )
    return rows


def state_map(rows: Sequence[Mapping[str, Any]]) -> str:
    """The choropleth of the overview: every participating state in its fulfilment class."""
    classes = {r["state"]: r["class"] for r in rows}
    labels = {}
    for r in rows:
        if r["fulfilment"] is None:
            how = "nothing received yet"
        else:
            how = (
                f"received {r['received']:,} of a fair share of {r['fair_share']:,.1f} "
                f"({r['fulfilment']:.0%})"
            )
        labels[r["state"]] = f"{r['name']} ({r['state']}): {how}; {r['free']:,} free places"
    return europe_svg(
        classes,
        labels,
        title="Fair-share fulfilment by state (persons received ÷ fair share)",
        links={code: f"/queue?allocated_state={code}" for code in classes},
    )


def reason_list(reasons: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """An engine's reasons ({code, text}) as plain-language items."""
    return [{"code": str(r.get("code", "")), "text": str(r.get("text", ""))} for r in reasons]
