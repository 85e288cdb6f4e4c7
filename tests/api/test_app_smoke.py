"""End-to-end flows through the API."""

# ruff: noqa: F811  (the api and world fixtures are imported from app_support)
from __future__ import annotations

from app_support import Api, World, api, family, world  # noqa: F401  (fixtures)


def test_world_builds(api: Api, world: World) -> None:
    r = api.client.get(f"/api/v1/cases/{world.el_case}", headers=api.headers("reg-el"))
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"1"'
    assert r.json()["members"][0]["given_names"] == "Given0"
    r = api.client.get(f"/api/v1/cases/{world.el_case}", headers=api.headers("coord"))
    assert "given_names" not in r.json()["members"][0]
    r = api.client.get(f"/api/v1/cases/{world.it_case}", headers=api.headers("reg-el"))
    assert r.status_code == 404
    assert api.register("reg-el", family())["status"] == "registered"
