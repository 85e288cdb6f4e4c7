"""Service configuration from ``FAIRSHARE_*`` environment variables, checked at start-up.

The registry holds special-category personal data of people at risk (Regulation (EU)
2016/679 Art. 9), so the configuration fails *closed*:

* ``FAIRSHARE_ENV`` defaults to ``production``. In production the two secrets
  (``FAIRSHARE_SECRET_KEY`` for signing tokens, ``FAIRSHARE_FINGERPRINT_KEY`` for the keyed
  identity fingerprints of :mod:`fairshare.identity`) must be set: a missing, short or
  non-random-looking secret stops the service with a :class:`ConfigurationError` that names
  the variable and says how to generate a value. There are **no default secrets** (security
  of processing, Art. 32(1); data protection by default, Art. 25(2)).
* Only with ``FAIRSHARE_ENV=development`` or ``test`` are missing secrets generated, from
  :func:`secrets.token_bytes`, and kept in ``<data dir>/dev-secrets.json`` (mode 0600) so a
  restart keeps tokens and fingerprints valid. :attr:`Settings.using_dev_secrets` says so,
  and the file itself says it is for development only.
* Secrets are given as hex (``python -c "import secrets; print(secrets.token_hex(32))"``) and
  must decode to at least 32 bytes; the two keys must differ (one key, one purpose).
* There is deliberately no CORS setting: the API and the dashboard are same-origin only.

Tests build settings without reading the environment with :func:`explicit_settings`.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     s = explicit_settings(env="test", data_dir=tmp)
...     (s.using_dev_secrets, len(s.secret_key_bytes()), s.database_url.endswith("fairshare.db"))
(True, 32, True)
>>> explicit_settings(env="production")
Traceback (most recent call last):
...
fairshare.api.settings.ConfigurationError: FAIRSHARE_SECRET_KEY is not set; in production \
every secret must be configured (there is no default). Generate one with: python -c \
"import secrets; print(secrets.token_hex(32))"
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from fairshare.errors import FairshareError
from fairshare.identity import MIN_KEY_BYTES

__all__ = [
    "DEV_SECRETS_FILE",
    "ENV_PREFIX",
    "GENERATE_HINT",
    "MIN_SECRET_BYTES",
    "ConfigurationError",
    "Environment",
    "Settings",
    "explicit_settings",
    "get_settings",
    "load_settings",
]

ENV_PREFIX = "FAIRSHARE_"
MIN_SECRET_BYTES = MIN_KEY_BYTES
"""The shortest secret accepted: 32 bytes (256 bits), the output size of SHA-256."""
DEV_SECRETS_FILE = "dev-secrets.json"
GENERATE_HINT = 'python -c "import secrets; print(secrets.token_hex(32))"'
MiB = 1024 * 1024

Environment = Literal["development", "production", "test"]

_log = logging.getLogger("fairshare.api")

# Fewer distinct byte values than this in a 32-byte (or longer) secret means it was typed, not
# drawn at random (e.g. "00" * 32): the chance for random bytes is below 1e-20.
_MIN_DISTINCT_BYTES = 8
_SECRETS = ("secret_key", "fingerprint_key")


class ConfigurationError(FairshareError):
    """The service cannot start with this configuration; the message names the variable.

    Not an :class:`~fairshare.errors.InputError` on purpose: it is raised inside pydantic's
    validation, which would otherwise wrap a ``ValueError`` into an unreadable report. The
    command line should treat it like an input error (exit code 2, one line).
    """


class Settings(BaseSettings):
    """The service's configuration (``FAIRSHARE_<FIELD>`` environment variables).

    Read the two secrets with :meth:`secret_key_bytes` and :meth:`fingerprint_key_bytes`;
    the fields themselves are :class:`~pydantic.SecretStr` and never printed.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", validate_default=True
    )

    env: Environment = "production"
    data_dir: Path = Field(
        default=Path(".fairshare"),
        description="Where the SQLite database and (development only) dev-secrets.json live.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means sqlite:///<data dir>/fairshare.db.",
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Hex, >= 32 bytes: signs bearer tokens."
    )
    fingerprint_key: SecretStr | None = Field(
        default=None, description="Hex, >= 32 bytes: HMAC key of identity fingerprints."
    )
    token_ttl_minutes: int = Field(default=30, ge=1, le=24 * 60)
    login_max_failures: int = Field(default=5, ge=1, le=1000)
    login_address_max_failures: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description=(
            "Failures from one client address (all usernames) before it is locked out; higher "
            "than per user because a reception centre's staff share one address."
        ),
    )
    login_window_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)
    login_lockout_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)
    retention_years: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Regulation (EU) 2024/1358 (Eurodac) keeps applicants' data 10 years.",
    )
    transfer_deadline_months: int = Field(
        default=6, ge=1, le=18, description="Regulation (EU) No 604/2013 Art. 29(1)."
    )
    max_body_bytes: int = Field(default=1 * MiB, ge=1024, le=1024 * MiB)
    max_import_bytes: int = Field(default=20 * MiB, ge=1024, le=1024 * MiB)
    aggregate_min_count: int = Field(
        default=5,
        ge=1,
        le=1000,
        description=(
            "Aggregates for the analyst role suppress cells counting fewer people than this, "
            "so that small groups cannot be singled out (Art. 5(1)(c), 25)."
        ),
    )

    _secret_key: bytes = PrivateAttr(default=b"")
    _fingerprint_key: bytes = PrivateAttr(default=b"")
    _dev_secrets: bool = PrivateAttr(default=False)

    def model_post_init(self, context: Any, /) -> None:
        """Resolve the data directory, the database URL and the secrets (fail closed)."""
        super().model_post_init(context)
        data_dir = self.data_dir.expanduser().resolve()
        object.__setattr__(self, "data_dir", data_dir)
        if not self.database_url.strip():
            object.__setattr__(self, "database_url", f"sqlite:///{data_dir / 'fairshare.db'}")
        given = {name: getattr(self, name) for name in _SECRETS}
        keys: dict[str, bytes] = {}
        for name, value in given.items():
            if value is not None:
                keys[name] = _parse_secret(name, value.get_secret_value())
        missing = [name for name in _SECRETS if name not in keys]
        if missing and self.env == "production":
            var = f"{ENV_PREFIX}{missing[0].upper()}"
            raise ConfigurationError(
                f"{var} is not set; in production every secret must be configured (there is "
                f"no default). Generate one with: {GENERATE_HINT}"
            )
        if missing:
            generated = _dev_secrets(data_dir)
            for name in missing:
                keys[name] = generated[name]
            self._dev_secrets = True
            _log.warning(
                "DEVELOPMENT ONLY: using generated secrets from %s for %s; never use this "
                "outside development (set FAIRSHARE_ENV=production and real secrets)",
                data_dir / DEV_SECRETS_FILE,
                ", ".join(f"{ENV_PREFIX}{n.upper()}" for n in missing),
            )
        if keys["secret_key"] == keys["fingerprint_key"]:
            raise ConfigurationError(
                f"{ENV_PREFIX}SECRET_KEY and {ENV_PREFIX}FINGERPRINT_KEY are the same; use two "
                f"independent secrets (one key, one purpose). Generate each with: {GENERATE_HINT}"
            )
        self._secret_key = keys["secret_key"]
        self._fingerprint_key = keys["fingerprint_key"]

    @property
    def using_dev_secrets(self) -> bool:
        """Whether a secret came from the generated development file (never in production)."""
        return self._dev_secrets

    def secret_key_bytes(self) -> bytes:
        """The token-signing key (at least 32 bytes)."""
        return self._secret_key

    def fingerprint_key_bytes(self) -> bytes:
        """The identity-fingerprint HMAC key (at least 32 bytes), for :mod:`fairshare.identity`."""
        return self._fingerprint_key

    @property
    def dev_secrets_path(self) -> Path:
        """Where development secrets are kept (used only in development and test)."""
        return self.data_dir / DEV_SECRETS_FILE


class _ExplicitSettings(Settings):
    """Settings from keyword arguments only: no environment variables, no files."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _parse_secret(name: str, value: str) -> bytes:
    var = f"{ENV_PREFIX}{name.upper()}"
    text = value.strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigurationError(
            f"{var} must be hex digits (the encoding of random bytes); generate one with: "
            f"{GENERATE_HINT}"
        ) from None
    if len(key) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"{var} has {len(key)} bytes; it needs at least {MIN_SECRET_BYTES} random bytes "
            f"({2 * MIN_SECRET_BYTES} hex digits). Generate one with: {GENERATE_HINT}"
        )
    if len(set(key)) < _MIN_DISTINCT_BYTES:
        raise ConfigurationError(
            f"{var} does not look random (only {len(set(key))} distinct byte values); "
            f"generate one with: {GENERATE_HINT}"
        )
    return key


def _read_dev_secrets(path: Path) -> dict[str, bytes]:
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise ConfigurationError(
            f"{path} is readable by other users; run 'chmod 600 {path}' or delete it (a new one "
            "is generated)"
        )
    try:
        raw = json.loads(path.read_text("utf-8"))
        return {name: _parse_secret(name, raw[name]) for name in _SECRETS}
    except (ValueError, KeyError, TypeError, ConfigurationError):
        raise ConfigurationError(
            f"{path} is not a valid development secrets file; delete it and a new one is "
            "generated (tokens issued with the old one stop working)"
        ) from None


def _dev_secrets(data_dir: Path) -> dict[str, bytes]:
    """Load ``dev-secrets.json``, or create it atomically (mode 0600) if it does not exist."""
    path = data_dir / DEV_SECRETS_FILE
    if path.exists():
        return _read_dev_secrets(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "warning": (
            "DEVELOPMENT ONLY. Generated by fairshare because FAIRSHARE_ENV is development or "
            "test. Never use these keys for real data: set FAIRSHARE_ENV=production and "
            "FAIRSHARE_SECRET_KEY / FAIRSHARE_FINGERPRINT_KEY."
        ),
        **{name: secrets.token_bytes(MIN_SECRET_BYTES).hex() for name in _SECRETS},
    }
    # Write a private temporary file, then link it into place: the link fails if another
    # process won the race, and then we read theirs (never a half-written file).
    tmp = data_dir / f".{DEV_SECRETS_FILE}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: read theirs
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return _read_dev_secrets(path)


def _explain(exc: ValidationError) -> ConfigurationError:
    problems = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "settings"
        problems.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}")
    return ConfigurationError("invalid configuration: " + "; ".join(problems))


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (``FAIRSHARE_*``), with ``overrides`` taking precedence.

    Every problem is a :class:`ConfigurationError` naming the environment variable.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _explain(exc) from None


def explicit_settings(**values: Any) -> Settings:
    """Settings from ``values`` only, ignoring the environment (for tests and tools).

    Defaults apply as usual, including ``env="production"`` (so pass ``env="test"`` and a
    ``data_dir`` to get generated secrets).
    """
    try:
        return _ExplicitSettings(**values)
    except ValidationError as exc:
        raise _explain(exc) from None


@cache
def get_settings() -> Settings:
    """The process's settings, read from the environment once and cached.

    Tests that change the environment call ``get_settings.cache_clear()``, or better, pass
    :func:`explicit_settings` to the code under test.
    """
    return load_settings()
