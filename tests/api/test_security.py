"""Passwords, bearer tokens and login throttling."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from argon2 import PasswordHasher
from hypothesis import assume, given
from hypothesis import strategies as st

from fairshare.api.permissions import Role
from fairshare.api.security import (
    MAX_TOKEN_LENGTH,
    PASSWORD_MIN_LENGTH,
    InvalidToken,
    LoginAttempt,
    LoginThrottle,
    PasswordPolicyError,
    TokenClaims,
    check_password_policy,
    decode_token,
    hash_password,
    issue_token,
    login_locked_until,
    needs_rehash,
    password_hasher,
    retry_after_seconds,
    verify_password,
)
from fairshare.api.settings import Settings, explicit_settings
from fairshare.errors import InputError

KEY_A = secrets.token_hex(32)
KEY_B = secrets.token_hex(32)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# A cheap hasher keeps the tests fast; the parameters are part of the hash string.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "a long walk to the sea"


def make_settings(**values: object) -> Settings:
    base: dict[str, object] = {
        "env": "production",
        "secret_key": KEY_A,
        "fingerprint_key": KEY_B,
    }
    base.update(values)
    return explicit_settings(**base)


SETTINGS = make_settings()
TOKEN, EXPIRES = issue_token(SETTINGS, "maria", Role.registrar, "EL", now=NOW)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(payload: object, key_settings: Settings = SETTINGS, prefix: str = "fs1") -> str:
    """A token with a valid signature over an arbitrary payload (as only the key holder can)."""
    body = b64(json.dumps(payload).encode())
    key = hmac.new(key_settings.secret_key_bytes(), b"fairshare token signing v1", "sha256")
    signed = f"{prefix}.{body}"
    sig = hmac.new(key.digest(), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{b64(sig)}"


def claims_payload(**changes: object) -> dict[str, object]:
    iat = int(NOW.timestamp())
    payload: dict[str, object] = {
        "sub": "maria",
        "role": "registrar",
        "state": "EL",
        "iat": iat,
        "exp": iat + 1800,
        "jti": "abc",
    }
    payload.update(changes)
    return payload


# -- password policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short pass", "has 10 characters; it needs at least 12"),
        ("x" * 1025 + "abc", "at most 1024"),
        ("MARIA the great", "must not contain the username 'maria'"),
        ("ｍａｒｉａ the great", "must not contain the username"),  # NFKC: full-width letters
        ("my fairshare login", "name of the service"),
        ("abababababababab", "too few different characters"),
    ],
)
def test_the_password_policy_says_what_to_change(password: str, message: str) -> None:
    with pytest.raises(PasswordPolicyError, match=message):
        check_password_policy(password, "maria")


def test_a_good_password_passes_and_the_policy_is_an_input_error() -> None:
    check_password_policy("correct horse battery staple", "maria")
    check_password_policy("wxyz" * PASSWORD_MIN_LENGTH, "")
    check_password_policy("a long walk to the sea", "a")
    assert issubclass(PasswordPolicyError, InputError)


def test_hash_password_checks_the_policy_first() -> None:
    with pytest.raises(PasswordPolicyError):
        hash_password("maria123456789", "maria", hasher=FAST)


# -- password hashing --------------------------------------------------------------------------


def test_argon2id_roundtrip_and_wrong_passwords() -> None:
    stored = hash_password(PASSWORD, "maria", hasher=FAST)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert verify_password(stored, PASSWORD, hasher=FAST)
    assert not verify_password(stored, PASSWORD + " ", hasher=FAST)
    assert not verify_password(stored, "", hasher=FAST)
    assert not verify_password("not a hash", PASSWORD, hasher=FAST)
    assert not verify_password(stored, "x" * 10_000, hasher=FAST)


def test_passwords_are_compared_in_nfkc() -> None:
    stored = hash_password("Ｃafé au lait please", "maria", hasher=FAST)
    assert verify_password(stored, "Cafe\u0301 au lait please", hasher=FAST)


def test_each_hash_is_salted() -> None:
    assert hash_password(PASSWORD, "omar", hasher=FAST) != hash_password(
        PASSWORD, "omar", hasher=FAST
    )


class CountingHasher(PasswordHasher):
    calls = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        type(self).calls += 1
        return super().verify(hash, password)


def test_an_unknown_user_still_costs_one_verification() -> None:
    hasher = CountingHasher(time_cost=1, memory_cost=8, parallelism=1)
    assert not verify_password(None, PASSWORD, hasher=hasher)
    assert CountingHasher.calls == 1
    stored = hasher.hash(PASSWORD)
    assert verify_password(stored, PASSWORD, hasher=hasher)
    assert CountingHasher.calls == 2


def test_the_default_hasher_is_argon2id_with_the_library_defaults() -> None:
    assert password_hasher() is password_hasher()
    assert password_hasher().type.name == "ID"


def test_needs_rehash_after_a_parameter_change() -> None:
    stored = FAST.hash(PASSWORD)
    assert not needs_rehash(stored, hasher=FAST)
    assert needs_rehash(stored, hasher=PasswordHasher(time_cost=2, memory_cost=8, parallelism=1))
    assert needs_rehash("garbage", hasher=FAST)


# -- tokens ------------------------------------------------------------------------------------


def test_a_token_roundtrips() -> None:
    claims = decode_token(SETTINGS, TOKEN, now=NOW)
    assert isinstance(claims, TokenClaims)
    assert (claims.sub, claims.role, claims.state) == ("maria", Role.registrar, "EL")
    assert claims.issued_at == NOW
    assert claims.expires_at == EXPIRES == NOW + timedelta(minutes=30)
    assert TOKEN.startswith("fs1.")
    assert len(TOKEN) < MAX_TOKEN_LENGTH


def test_tokens_have_unique_ids() -> None:
    ids = {
        decode_token(SETTINGS, issue_token(SETTINGS, "a", "auditor", None, now=NOW)[0], now=NOW).jti
        for _ in range(20)
    }
    assert len(ids) == 20


@given(st.integers(1, 24 * 60), st.integers(0, 24 * 3600 * 2))
def test_a_token_is_valid_before_exp_and_dead_at_exactly_exp(ttl: int, offset: int) -> None:
    s = make_settings(token_ttl_minutes=ttl)
    token, expires_at = issue_token(s, "omar", "coordinator", None, now=NOW)
    at = NOW + timedelta(seconds=offset)
    if at < expires_at:
        assert decode_token(s, token, now=at).sub == "omar"
    else:
        with pytest.raises(InvalidToken, match="expired") as info:
            decode_token(s, token, now=at)
        assert info.value.reason == "expired"
    with pytest.raises(InvalidToken, match="expired"):
        decode_token(s, token, now=expires_at)
    assert decode_token(s, token, now=expires_at - timedelta(microseconds=1)).sub == "omar"


@given(st.data())
def test_a_tampered_token_never_verifies(data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(TOKEN) - 1))
    replacement = data.draw(st.characters(codec="ascii").filter(lambda c: c != TOKEN[i]))
    tampered = TOKEN[:i] + replacement + TOKEN[i + 1 :]
    with pytest.raises(InvalidToken):
        decode_token(SETTINGS, tampered, now=NOW)


@given(st.integers(0, len(TOKEN) - 1), st.text(min_size=1, max_size=8))
def test_a_truncated_or_extended_token_never_verifies(cut: int, extra: str) -> None:
    for candidate in (TOKEN[:cut], TOKEN + extra, extra + TOKEN):
        with pytest.raises(InvalidToken):
            decode_token(SETTINGS, candidate, now=NOW)


@given(st.text(max_size=300))
def test_arbitrary_text_never_verifies(text: str) -> None:
    assume(text != TOKEN)
    with pytest.raises(InvalidToken):
        decode_token(SETTINGS, text, now=NOW)


def test_a_token_signed_with_another_key_is_refused() -> None:
    other = make_settings(secret_key=secrets.token_hex(32))
    with pytest.raises(InvalidToken, match="signature") as info:
        decode_token(other, TOKEN, now=NOW)
    assert info.value.reason == "signature"


def test_the_fingerprint_key_does_not_sign_tokens() -> None:
    swapped = make_settings(secret_key=KEY_B, fingerprint_key=KEY_A)
    with pytest.raises(InvalidToken, match="signature"):
        decode_token(swapped, TOKEN, now=NOW)


@pytest.mark.parametrize(
    "token",
    [
        # JWT with alg "none", and an HS256-looking JWT: there is no algorithm to choose.
        b64(b'{"alg":"none","typ":"JWT"}') + "." + b64(json.dumps(claims_payload()).encode()) + ".",
        b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims_payload()).encode()),
        "fs1." + b64(json.dumps(claims_payload()).encode()) + ".",
        "fs1." + b64(json.dumps(claims_payload()).encode()),
        "fs2" + TOKEN[3:],
        TOKEN + "=",
        TOKEN.replace(".", ".=", 1),
        " " + TOKEN,
        "",
        "a" * (MAX_TOKEN_LENGTH + 1),
    ],
)
def test_algorithm_confusion_and_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken) as info:
        decode_token(SETTINGS, token, now=NOW)
    assert info.value.reason in {"malformed", "signature"}


def test_a_non_text_token_is_malformed() -> None:
    with pytest.raises(InvalidToken, match="malformed"):
        decode_token(SETTINGS, b"fs1.x.y", now=NOW)  # type: ignore[arg-type]


def test_a_forged_token_with_the_real_key_is_accepted_so_the_forger_is_realistic() -> None:
    assert decode_token(SETTINGS, forge(claims_payload()), now=NOW).jti == "abc"


@pytest.mark.parametrize(
    "payload",
    [
        claims_payload(extra=1),
        {k: v for k, v in claims_payload().items() if k != "jti"},
        claims_payload(role="superuser"),
        claims_payload(role=None),
        claims_payload(state=None),  # a registrar needs a state
        claims_payload(state=""),
        claims_payload(sub=""),
        claims_payload(sub=7),
        claims_payload(jti=""),
        claims_payload(iat=True),
        claims_payload(iat=1.5),
        claims_payload(exp="later"),
        claims_payload(exp=int(NOW.timestamp())),  # exp == iat
    ],
)
def test_signed_tokens_with_bad_claims_are_refused(payload: dict[str, object]) -> None:
    with pytest.raises(InvalidToken) as info:
        decode_token(SETTINGS, forge(payload), now=NOW)
    assert info.value.reason == "claims"


@pytest.mark.parametrize("payload", [["a", "list"], "text", None])
def test_signed_tokens_whose_payload_is_not_an_object_are_malformed(payload: object) -> None:
    with pytest.raises(InvalidToken, match="malformed"):
        decode_token(SETTINGS, forge(payload), now=NOW)


def test_duplicate_claims_are_refused() -> None:
    body = '{"sub":"maria","sub":"admin","role":"registrar","state":"EL","iat":1,"exp":2,"jti":"j"}'
    token = forge(claims_payload())
    prefix, _, _ = token.split(".")
    signed = f"{prefix}.{b64(body.encode())}"
    key = hmac.new(SETTINGS.secret_key_bytes(), b"fairshare token signing v1", "sha256").digest()
    sig = b64(hmac.new(key, signed.encode(), hashlib.sha256).digest())
    with pytest.raises(InvalidToken, match="malformed"):
        decode_token(SETTINGS, f"{signed}.{sig}", now=NOW)


def test_a_token_from_the_future_is_refused_beyond_the_clock_skew() -> None:
    token, _ = issue_token(SETTINGS, "maria", "registrar", "EL", now=NOW + timedelta(seconds=61))
    with pytest.raises(InvalidToken, match="future") as info:
        decode_token(SETTINGS, token, now=NOW)
    assert info.value.reason == "not_yet_valid"
    token, _ = issue_token(SETTINGS, "maria", "registrar", "EL", now=NOW + timedelta(seconds=60))
    assert decode_token(SETTINGS, token, now=NOW).sub == "maria"


def test_lowering_the_lifetime_shortens_tokens_already_issued() -> None:
    long_lived, _ = issue_token(make_settings(token_ttl_minutes=120), "m", "auditor", None, now=NOW)
    with pytest.raises(InvalidToken, match="longer than the service allows"):
        decode_token(SETTINGS, long_lived, now=NOW)


@pytest.mark.parametrize(
    ("username", "role", "state", "message"),
    [
        ("", "registrar", "EL", "needs a username"),
        ("maria", "superuser", "EL", "unknown role 'superuser'"),
        ("maria", "registrar", None, "needs a state"),
        ("maria", "caseworker", None, "needs a state"),
        ("maria", "capacity_manager", "  ", "state code"),
    ],
)
def test_issue_token_refuses_incomplete_identities(
    username: str, role: str, state: str | None, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        issue_token(SETTINGS, username, role, state, now=NOW)


def test_times_must_be_aware() -> None:
    with pytest.raises(InputError, match="aware"):
        issue_token(SETTINGS, "maria", "registrar", "EL", now=datetime(2026, 1, 1))
    with pytest.raises(InputError, match="aware"):
        decode_token(SETTINGS, TOKEN, now=datetime(2026, 1, 1))


def test_without_now_the_clock_is_used() -> None:
    token, expires_at = issue_token(SETTINGS, "omar", "coordinator", None)
    assert decode_token(SETTINGS, token).sub == "omar"
    assert expires_at > datetime.now(UTC)


# -- login throttling --------------------------------------------------------------------------

THROTTLE = LoginThrottle.for_username(SETTINGS)


def failures(*seconds: float) -> list[LoginAttempt]:
    return [LoginAttempt(NOW + timedelta(seconds=s), False) for s in seconds]


def test_five_failures_within_the_window_lock_for_five_minutes() -> None:
    attempts = failures(0, 10, 20, 30, 40)
    assert THROTTLE.locked_until(attempts[:4], NOW + timedelta(seconds=41)) is None
    until = THROTTLE.locked_until(attempts, NOW + timedelta(seconds=41))
    assert until == NOW + timedelta(seconds=40 + 300)
    assert THROTTLE.locked_until(attempts, until - timedelta(microseconds=1)) == until
    assert THROTTLE.locked_until(attempts, until) is None


def test_failures_spread_wider_than_the_window_do_not_lock() -> None:
    attempts = failures(0, 100, 200, 300, 400)
    assert THROTTLE.locked_until(attempts, NOW + timedelta(seconds=401)) is None


def test_a_success_resets_the_count_per_username_but_not_per_address() -> None:
    attempts = [
        *failures(0, 1, 2, 3),
        LoginAttempt(NOW + timedelta(seconds=4), True),
        *failures(5),
    ]
    later = NOW + timedelta(seconds=6)
    assert THROTTLE.locked_until(attempts, later) is None
    by_address = LoginThrottle(
        5, timedelta(minutes=5), timedelta(minutes=5), reset_on_success=False
    )
    assert by_address.locked_until(attempts, later) == NOW + timedelta(seconds=305)


def test_attempts_after_now_are_ignored_and_order_does_not_matter() -> None:
    attempts = failures(40, 0, 30, 10, 20)
    assert THROTTLE.locked_until(attempts, NOW + timedelta(seconds=35)) is None
    assert THROTTLE.locked_until(attempts, NOW + timedelta(seconds=45)) is not None


def test_the_address_limit_is_higher_and_the_combined_lock_is_the_later_one() -> None:
    address = LoginThrottle.for_address(SETTINGS)
    assert address.max_failures == 20
    assert not address.reset_on_success
    user = failures(*range(5))
    many = failures(*range(100, 120))
    at = NOW + timedelta(seconds=121)
    assert login_locked_until(SETTINGS, user, [], at) == NOW + timedelta(seconds=304)
    assert login_locked_until(SETTINGS, user, many, at) == NOW + timedelta(seconds=119 + 300)
    assert login_locked_until(SETTINGS, [], many[:19], at) is None


def test_relevant_since_and_retry_after() -> None:
    assert THROTTLE.relevant_since(NOW) == NOW - timedelta(seconds=600)
    assert retry_after_seconds(NOW + timedelta(seconds=1.2), NOW) == 2
    assert retry_after_seconds(NOW + timedelta(seconds=300), NOW) == 300
    assert retry_after_seconds(NOW - timedelta(seconds=3), NOW) == 1


@pytest.mark.parametrize(
    ("max_failures", "window", "lockout"),
    [(0, 60, 60), (3, 0, 60), (3, 60, -1)],
)
def test_a_throttle_needs_positive_limits(max_failures: int, window: int, lockout: int) -> None:
    with pytest.raises(InputError):
        LoginThrottle(max_failures, timedelta(seconds=window), timedelta(seconds=lockout))


ATTEMPTS = st.lists(
    st.builds(
        LoginAttempt, st.integers(0, 900).map(lambda s: NOW + timedelta(seconds=s)), st.booleans()
    ),
    max_size=30,
)


@given(ATTEMPTS, st.integers(0, 1200), st.integers(1, 6), st.booleans())
def test_a_lock_is_always_in_the_future_and_bounded(
    attempts: list[LoginAttempt], offset: int, k: int, reset: bool
) -> None:
    throttle = LoginThrottle(k, timedelta(seconds=120), timedelta(seconds=300), reset)
    now = NOW + timedelta(seconds=offset)
    until = throttle.locked_until(attempts, now)
    if until is not None:
        assert now < until <= now + throttle.lockout
        past_failures = [a for a in attempts if not a.succeeded and a.at <= now]
        assert len(past_failures) >= k


@given(ATTEMPTS, st.integers(0, 900), st.integers(0, 1200))
def test_one_more_failure_never_unlocks_an_address(
    attempts: list[LoginAttempt], failure_at: int, offset: int
) -> None:
    throttle = LoginThrottle(3, timedelta(seconds=120), timedelta(seconds=300), False)
    now = NOW + timedelta(seconds=offset)
    before = throttle.locked_until(attempts, now)
    after = throttle.locked_until([*attempts, *failures(failure_at)], now)
    if before is not None:
        assert after is not None
        assert after >= before
