"""The service adapter: settings, permissions and security for the REST API (issue 4).

Import-light on purpose: importing ``fairshare.api`` loads nothing (no FastAPI, no database,
no settings read from the environment). Import the submodule you need:

* :mod:`fairshare.api.settings` — configuration from ``FAIRSHARE_*`` environment variables;
  no default secrets outside development.
* :mod:`fairshare.api.permissions` — roles, ``resource:action`` permissions, scopes, the one
  grant table (default deny) and the fields each role may see.
* :mod:`fairshare.api.security` — Argon2 password hashes, signed expiring bearer tokens, login
  throttling.

See ``docs/security.md`` for the model and the generated permission table.
"""

from __future__ import annotations

__all__: list[str] = []
