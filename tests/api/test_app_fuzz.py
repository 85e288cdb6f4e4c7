"""Schemathesis against the OpenAPI document, in-process (ASGI): no 5xx from any input, and
every response conforms to its schema; as a coordinator and as a registrar, bounded
(``MAX_EXAMPLES`` per operation), on SQLite and PostgreSQL."""

# ruff: noqa: F811  (the api and world fixtures are imported from app_support)
from __future__ import annotations

from typing import Any

import schemathesis
from app_support import Api, api, world  # noqa: F401  (fixtures)
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

MAX_EXAMPLES = 15


def test_no_server_errors_and_conforming_responses(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", api.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 28
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            for user in ("coord", "reg-el"):
                case.call_and_validate(
                    headers=api.headers(user),
                    checks=[not_a_server_error, response_schema_conformance],
                )

        check()
