"""Settings: no default secrets outside development, persisted development secrets."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fairshare.api.settings import (
    DEV_SECRETS_FILE,
    ConfigurationError,
    Settings,
    explicit_settings,
    get_settings,
    load_settings,
)
from fairshare.workflow import workflow_rules

KEY_A = secrets.token_hex(32)
KEY_B = secrets.token_hex(32)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("FAIRSHARE_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()


def production(**values: object) -> Settings:
    return explicit_settings(env="production", secret_key=KEY_A, fingerprint_key=KEY_B, **values)


def test_production_defaults_are_documented_values(tmp_path: Path) -> None:
    s = production(data_dir=tmp_path)
    assert s.env == "production"
    assert s.token_ttl_minutes == 30
    assert (s.login_max_failures, s.login_window_seconds, s.login_lockout_seconds) == (5, 300, 300)
    assert s.retention_years == 10
    assert s.max_body_bytes == 1024 * 1024
    assert s.max_import_bytes == 20 * 1024 * 1024
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'fairshare.db'}"
    assert s.secret_key_bytes() == bytes.fromhex(KEY_A)
    assert s.fingerprint_key_bytes() == bytes.fromhex(KEY_B)
    assert not s.using_dev_secrets


def test_transfer_deadline_default_agrees_with_the_workflow_rules() -> None:
    assert production().transfer_deadline_months == workflow_rules().deadline_months


def test_the_default_environment_is_production_so_a_missing_secret_fails_closed() -> None:
    with pytest.raises(ConfigurationError, match="FAIRSHARE_SECRET_KEY is not set") as info:
        explicit_settings()
    assert "secrets.token_hex(32)" in str(info.value)


def test_production_names_the_missing_fingerprint_key() -> None:
    with pytest.raises(ConfigurationError, match="FAIRSHARE_FINGERPRINT_KEY is not set"):
        explicit_settings(env="production", secret_key=KEY_A)


def test_production_ignores_an_existing_development_secrets_file(tmp_path: Path) -> None:
    explicit_settings(env="development", data_dir=tmp_path)
    assert (tmp_path / DEV_SECRETS_FILE).exists()
    with pytest.raises(ConfigurationError, match="FAIRSHARE_SECRET_KEY"):
        explicit_settings(env="production", data_dir=tmp_path)


def test_production_writes_nothing_to_disk(tmp_path: Path) -> None:
    data_dir = tmp_path / "absent"
    production(data_dir=data_dir)
    assert not data_dir.exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ab" * 31, "has 31 bytes; it needs at least 32"),
        ("not hex at all, but long enough to be a secret?", "must be hex digits"),
        ("00" * 32, "does not look random"),
        ("0123" * 16, "does not look random"),
    ],
)
def test_a_weak_secret_is_refused_with_the_variable_and_how_to_fix(
    value: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        explicit_settings(env="production", secret_key=value, fingerprint_key=KEY_B)
    assert "FAIRSHARE_SECRET_KEY" in str(info.value)
    assert "token_hex" in str(info.value)
    # The secret itself never appears in the message.
    assert value not in str(info.value)


def test_a_weak_secret_is_refused_in_development_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="FAIRSHARE_FINGERPRINT_KEY has 4 bytes"):
        explicit_settings(env="development", data_dir=tmp_path, fingerprint_key="abcdef01")


def test_the_two_keys_must_differ() -> None:
    with pytest.raises(ConfigurationError, match="are the same"):
        explicit_settings(env="production", secret_key=KEY_A, fingerprint_key=KEY_A.upper())


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_generates_private_persistent_secrets(tmp_path: Path, env: str) -> None:
    first = explicit_settings(env=env, data_dir=tmp_path / "data")
    path = tmp_path / "data" / DEV_SECRETS_FILE
    assert first.using_dev_secrets
    assert first.dev_secrets_path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text("utf-8"))
    assert "DEVELOPMENT ONLY" in doc["warning"]
    assert len(first.secret_key_bytes()) == 32
    assert first.secret_key_bytes() != first.fingerprint_key_bytes()
    again = explicit_settings(env=env, data_dir=tmp_path / "data")
    assert again.secret_key_bytes() == first.secret_key_bytes()
    assert again.fingerprint_key_bytes() == first.fingerprint_key_bytes()
    other = explicit_settings(env=env, data_dir=tmp_path / "elsewhere")
    assert other.secret_key_bytes() != first.secret_key_bytes()
    assert not list((tmp_path / "data").glob("*.tmp"))


def test_development_uses_a_configured_secret_and_generates_only_the_other(tmp_path: Path) -> None:
    s = explicit_settings(env="development", data_dir=tmp_path, secret_key=KEY_A)
    assert s.secret_key_bytes() == bytes.fromhex(KEY_A)
    assert s.using_dev_secrets
    both = explicit_settings(
        env="development", data_dir=tmp_path / "x", secret_key=KEY_A, fingerprint_key=KEY_B
    )
    assert not both.using_dev_secrets
    assert not (tmp_path / "x").exists()


def test_concurrent_first_starts_agree_on_one_set_of_secrets(tmp_path: Path) -> None:
    def start(_: int) -> bytes:
        return explicit_settings(env="development", data_dir=tmp_path).secret_key_bytes()

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = set(pool.map(start, range(16)))
    assert len(keys) == 1


def test_a_development_secrets_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    explicit_settings(env="development", data_dir=tmp_path)
    path = tmp_path / DEV_SECRETS_FILE
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        explicit_settings(env="development", data_dir=tmp_path)


def test_a_corrupt_development_secrets_file_says_to_delete_it(tmp_path: Path) -> None:
    path = tmp_path / DEV_SECRETS_FILE
    path.write_text('{"secret_key": "00"}', "utf-8")
    path.chmod(0o600)
    with pytest.raises(ConfigurationError, match="delete it"):
        explicit_settings(env="development", data_dir=tmp_path)


def test_secrets_never_appear_in_repr() -> None:
    s = production()
    for text in (repr(s), str(s), s.model_dump_json()):
        assert KEY_A not in text
        assert KEY_B not in text


def test_settings_are_frozen() -> None:
    s = production()
    with pytest.raises(ValueError, match="frozen"):
        s.token_ttl_minutes = 5


def test_environment_variables_are_read_with_the_prefix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAIRSHARE_ENV", "production")
    monkeypatch.setenv("FAIRSHARE_SECRET_KEY", KEY_A)
    monkeypatch.setenv("FAIRSHARE_FINGERPRINT_KEY", KEY_B)
    monkeypatch.setenv("FAIRSHARE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FAIRSHARE_TOKEN_TTL_MINUTES", "15")
    monkeypatch.setenv("FAIRSHARE_DATABASE_URL", "postgresql+psycopg://u@localhost/fs")
    s = load_settings()
    assert s.token_ttl_minutes == 15
    assert s.data_dir == tmp_path.resolve()
    assert s.database_url == "postgresql+psycopg://u@localhost/fs"
    assert load_settings(token_ttl_minutes=10).token_ttl_minutes == 10
    assert get_settings() is get_settings()


def test_explicit_settings_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRSHARE_ENV", "development")
    monkeypatch.setenv("FAIRSHARE_SECRET_KEY", KEY_A)
    with pytest.raises(ConfigurationError, match="FAIRSHARE_SECRET_KEY is not set"):
        explicit_settings()


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRSHARE_TOKEN_TTL_MINUTES", "thirty")
    monkeypatch.setenv("FAIRSHARE_ENV", "staging")
    with pytest.raises(ConfigurationError) as info:
        load_settings(secret_key=KEY_A, fingerprint_key=KEY_B)
    assert "FAIRSHARE_TOKEN_TTL_MINUTES" in str(info.value)
    assert "FAIRSHARE_ENV" in str(info.value)


@pytest.mark.parametrize(
    "values",
    [
        {"token_ttl_minutes": 0},
        {"login_max_failures": 0},
        {"retention_years": 0},
        {"max_body_bytes": 10},
        {"cors_origins": ["*"]},
    ],
)
def test_out_of_range_or_unknown_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="invalid configuration"):
        production(**values)


def test_importing_the_api_package_is_light() -> None:
    code = (
        "import sys, fairshare.api; "
        "print(sorted(m for m in ('fastapi', 'pydantic', 'argon2', 'sqlalchemy') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
