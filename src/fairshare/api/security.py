"""Passwords, bearer tokens and login throttling: pure building blocks, no web framework.

Security of processing (Regulation (EU) 2016/679 Art. 32(1)(b): "the ability to ensure the
ongoing confidentiality [and] integrity … of processing systems") and integrity and
confidentiality (Art. 5(1)(f)) for a registry of special-category data (Art. 9):

* **Passwords** are hashed with Argon2id (RFC 9106, argon2-cffi's defaults); the raw password
  is never stored. A policy (:func:`check_password_policy`) follows NIST SP 800-63B section
  5.1.1: at least 12 characters, no composition rules, no password that contains the
  username. Passwords are taken in Unicode NFKC so the same password typed on two systems
  matches. An unknown username is verified against a dummy hash (:func:`verify_password`
  with ``None``) so that timing does not reveal which usernames exist.
* **Tokens** are compact signed bearer tokens: ``fs1.<payload>.<signature>``, the payload
  base64url JSON (``sub``, ``role``, ``state``, ``iat``, ``exp``, ``jti``), the signature an
  HMAC-SHA-256 over ``fs1.<payload>`` under a key derived from ``FAIRSHARE_SECRET_KEY``.
  There is no algorithm field, so there is no algorithm to confuse; every byte of the token
  is checked (canonical base64url, constant-time comparison, exact claim set and types), a
  token is dead at exactly ``exp`` and a token living longer than the configured lifetime is
  refused (lowering ``FAIRSHARE_TOKEN_TTL_MINUTES`` shortens tokens already issued).
* **Login throttling** (:class:`LoginThrottle`) is a pure policy over recent attempts, per
  username and per client address: the caller stores attempts, the policy says until when
  logins are refused.

>>> from datetime import UTC, datetime
>>> from fairshare.api.settings import explicit_settings
>>> s = explicit_settings(env="production", secret_key="00112233445566778899aabbccddeeff" * 2,
...                       fingerprint_key="f0e1d2c3b4a59687" * 4)
>>> now = datetime(2026, 1, 1, tzinfo=UTC)
>>> token, expires_at = issue_token(s, "maria", "registrar", "EL", now=now)
>>> claims = decode_token(s, token, now=now)
>>> (claims.sub, claims.role.value, claims.state, expires_at.isoformat())
('maria', 'registrar', 'EL', '2026-01-01T00:30:00+00:00')
>>> decode_token(s, token, now=expires_at)
Traceback (most recent call last):
...
fairshare.api.security.InvalidToken: the token has expired; log in again
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fairshare.api.permissions import Role, requires_state
from fairshare.api.settings import Settings
from fairshare.errors import FairshareError, InputError

__all__ = [
    "MAX_TOKEN_LENGTH",
    "PASSWORD_MAX_LENGTH",
    "PASSWORD_MIN_LENGTH",
    "TOKEN_PREFIX",
    "InvalidToken",
    "LoginAttempt",
    "LoginThrottle",
    "PasswordPolicyError",
    "TokenClaims",
    "check_password_policy",
    "decode_token",
    "hash_password",
    "issue_token",
    "login_locked_until",
    "needs_rehash",
    "password_hasher",
    "retry_after_seconds",
    "verify_password",
]

PASSWORD_MIN_LENGTH: Final = 12
PASSWORD_MAX_LENGTH: Final = 1024
"""Longer passwords are refused: hashing megabytes on every login would be a denial of service."""

TOKEN_PREFIX: Final = "fs1"
MAX_TOKEN_LENGTH: Final = 2048
_CLOCK_SKEW = 60  # seconds a token's iat may lie in the future (clocks of several hosts)
_CLAIMS = frozenset({"sub", "role", "state", "iat", "exp", "jti"})
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_TOKEN_KEY_LABEL = b"fairshare token signing v1"


# ------------------------------------------------------------------------------------------
# Passwords


class PasswordPolicyError(InputError):
    """A new password does not meet the policy; the message says what to change."""


@cache
def password_hasher() -> PasswordHasher:
    """The Argon2id hasher (argon2-cffi defaults: RFC 9106 low-memory profile)."""
    return PasswordHasher()


def _normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def check_password_policy(password: str, username: str) -> None:
    """Refuse a new password that is too short, too long or built from the username.

    Refused: fewer than 12 or more than 1024 characters (after NFKC), containing the
    username (case-insensitive; a username of one or two characters only if it is the whole
    password), containing the service name, or fewer than four different characters.

    NIST SP 800-63B section 5.1.1.2: length matters, composition rules do not; refuse values
    that are obviously guessable in context. Raises :class:`PasswordPolicyError`.

    >>> check_password_policy("correct horse battery", "maria")
    >>> check_password_policy("maria-2026-01!", "maria")
    Traceback (most recent call last):
    ...
    fairshare.api.security.PasswordPolicyError: the password must not contain the username \
'maria'; choose an unrelated phrase of at least 12 characters
    """
    if not isinstance(password, str):
        raise PasswordPolicyError("the password must be text")
    text = _normalise(password)
    if len(text) < PASSWORD_MIN_LENGTH:
        raise PasswordPolicyError(
            f"the password has {len(text)} characters; it needs at least "
            f"{PASSWORD_MIN_LENGTH} (a phrase of several words is easy to remember)"
        )
    if len(text) > PASSWORD_MAX_LENGTH:
        raise PasswordPolicyError(
            f"the password has {len(text)} characters; at most {PASSWORD_MAX_LENGTH} are accepted"
        )
    folded = text.casefold()
    name = _normalise(username).strip().casefold()
    # A name of one or two letters occurs in many phrases by chance; only refuse it whole.
    if name and (name in folded if len(name) >= 3 else name == folded):
        raise PasswordPolicyError(
            f"the password must not contain the username '{username}'; choose an unrelated "
            f"phrase of at least {PASSWORD_MIN_LENGTH} characters"
        )
    if "fairshare" in folded:
        raise PasswordPolicyError(
            "the password must not contain the name of the service ('fairshare')"
        )
    if len(set(folded)) < 4:
        raise PasswordPolicyError(
            "the password repeats too few different characters; choose a phrase of several words"
        )


def hash_password(password: str, username: str, hasher: PasswordHasher | None = None) -> str:
    """The Argon2id hash of a *new* password, after :func:`check_password_policy`.

    Store only this string (it carries its own salt and parameters).
    """
    check_password_policy(password, username)
    return (hasher or password_hasher()).hash(_normalise(password))


@cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash(secrets.token_urlsafe(24))


def verify_password(
    stored_hash: str | None, password: str, hasher: PasswordHasher | None = None
) -> bool:
    """Whether ``password`` matches ``stored_hash``; never raises for a wrong password.

    Pass ``stored_hash=None`` for an unknown (or disabled) user: the password is still
    verified, against a dummy hash with the same parameters, and the answer is ``False``,
    so an unknown username takes as long as a wrong password (no user enumeration by
    timing). A malformed stored hash is ``False`` too. Over-long passwords are refused
    without hashing them.
    """
    h = hasher or password_hasher()
    if not isinstance(password, str) or len(password) > 4 * PASSWORD_MAX_LENGTH:
        return False
    candidate = _normalise(password)
    if stored_hash is None:
        with contextlib.suppress(VerificationError):
            h.verify(_dummy_hash(h), candidate)
        return False
    try:
        return h.verify(stored_hash, candidate)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str, hasher: PasswordHasher | None = None) -> bool:
    """Whether a hash was made with other parameters than today's (re-hash after a login).

    A malformed hash needs re-hashing too (it cannot be verified anyway).
    """
    try:
        return (hasher or password_hasher()).check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError):
        return True


# ------------------------------------------------------------------------------------------
# Tokens

InvalidReason = Literal["malformed", "signature", "expired", "not_yet_valid", "claims"]


class InvalidToken(FairshareError):  # noqa: N818 (the name the API layer uses)
    """A bearer token that is not accepted (HTTP 401 with ``WWW-Authenticate: Bearer``).

    ``reason`` is one of ``malformed``, ``signature``, ``expired``, ``not_yet_valid`` and
    ``claims``; the message says what the client should do.
    """

    def __init__(self, message: str, reason: InvalidReason) -> None:
        super().__init__(message)
        self.reason: InvalidReason = reason


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token says: who (``sub``), as which role, for which state, and when.

    ``iat`` and ``exp`` are Unix seconds; ``jti`` is a random token id (for a deny-list on
    logout). The claims are a snapshot of the moment of login: the application should still
    check that the user exists, is active and has the same role and state.
    """

    sub: str
    role: Role
    state: str | None
    iat: int
    exp: int
    jti: str

    @property
    def issued_at(self) -> datetime:
        """``iat`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.iat, UTC)

    @property
    def expires_at(self) -> datetime:
        """``exp`` as an aware UTC datetime: the first moment the token is no longer valid."""
        return datetime.fromtimestamp(self.exp, UTC)


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise InputError("'now' must be an aware datetime (e.g. datetime.now(UTC))")
    return now


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict base64url without padding: only the canonical encoding of some bytes."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(data) != text:  # non-canonical trailing bits
        raise ValueError("not canonical base64url")
    return data


def _signing_key(settings: Settings) -> bytes:
    # One key, one purpose: derive the token key from the configured secret.
    return hmac.new(settings.secret_key_bytes(), _TOKEN_KEY_LABEL, hashlib.sha256).digest()


def _sign(settings: Settings, signed: bytes) -> bytes:
    return hmac.new(_signing_key(settings), signed, hashlib.sha256).digest()


def issue_token(
    settings: Settings,
    username: str,
    role: Role | str,
    state: str | None,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    """A signed bearer token for ``username`` and when it expires (``settings.token_ttl_minutes``).

    Call it only after the password was verified and the throttle allowed the login. A role
    whose grants are state-scoped (:func:`~fairshare.api.permissions.requires_state`) needs a
    ``state``; an unknown role or an empty username is an :class:`~fairshare.errors.InputError`.
    """
    if not isinstance(username, str) or not username.strip():
        raise InputError("a token needs a username")
    try:
        r = Role(role)
    except ValueError:
        raise InputError(
            f"unknown role '{role}'; roles: {', '.join(x.value for x in Role)}"
        ) from None
    if state is not None and (not isinstance(state, str) or not state.strip()):
        raise InputError("the state must be a state code or None")
    if state is None and requires_state(r):
        raise InputError(f"a {r.value} works for one state; the token needs a state")
    iat = int(_now(now).timestamp())
    exp = iat + settings.token_ttl_minutes * 60
    payload = {
        "sub": username,
        "role": r.value,
        "state": state,
        "iat": iat,
        "exp": exp,
        "jti": secrets.token_urlsafe(16),
    }
    body = _b64encode(
        json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=True).encode()
    )
    signed = f"{TOKEN_PREFIX}.{body}"
    signature = _b64encode(_sign(settings, signed.encode("ascii")))
    return f"{signed}.{signature}", datetime.fromtimestamp(exp, UTC)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate claim {key}")
        out[key] = value
    return out


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _claims(payload: dict[str, Any]) -> TokenClaims:
    bad = InvalidToken("the token's claims are not valid; log in again", "claims")
    if set(payload) != _CLAIMS:
        raise bad
    sub, role, state = payload["sub"], payload["role"], payload["state"]
    iat, exp, jti = payload["iat"], payload["exp"], payload["jti"]
    if not isinstance(sub, str) or not sub.strip() or not isinstance(jti, str) or not jti:
        raise bad
    if not (state is None or (isinstance(state, str) and state.strip())):
        raise bad
    if not _is_int(iat) or not _is_int(exp) or exp <= iat:
        raise bad
    try:
        parsed_role = Role(role) if isinstance(role, str) else None
    except ValueError:
        parsed_role = None
    if parsed_role is None or (state is None and requires_state(parsed_role)):
        raise bad
    return TokenClaims(sub=sub, role=parsed_role, state=state, iat=iat, exp=exp, jti=jti)


def decode_token(settings: Settings, token: str, now: datetime | None = None) -> TokenClaims:
    """The claims of a valid ``token``, or :class:`InvalidToken` saying why not.

    Checked in this order, so that nothing of an unsigned payload is ever interpreted: the
    shape (``fs1.<payload>.<signature>``, strict base64url, at most 2048 characters), the
    signature (HMAC-SHA-256, constant-time comparison), then the claims: exactly ``sub``,
    ``role``, ``state``, ``iat``, ``exp``, ``jti`` with the right types and a known role; not
    issued in the future (60 s of clock skew allowed); not living longer than the configured
    ``token_ttl_minutes``; and ``now < exp`` (a token is dead *at* ``exp``).
    """
    malformed = InvalidToken(
        "the token is malformed; send 'Authorization: Bearer <token>'", "malformed"
    )
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise malformed
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise malformed
    try:
        body = _b64decode(parts[1])
        signature = _b64decode(parts[2])
    except (ValueError, binascii.Error):
        raise malformed from None
    expected = _sign(settings, f"{parts[0]}.{parts[1]}".encode("ascii"))
    if not hmac.compare_digest(signature, expected):
        raise InvalidToken("the token's signature is not valid; log in again", "signature")
    try:
        payload = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError):
        raise malformed from None
    if not isinstance(payload, dict):
        raise malformed
    claims = _claims(payload)
    current = _now(now).timestamp()
    if claims.exp - claims.iat > settings.token_ttl_minutes * 60:
        raise InvalidToken(
            "the token lives longer than the service allows now; log in again", "claims"
        )
    if claims.iat > current + _CLOCK_SKEW:
        raise InvalidToken("the token was issued in the future; check the clock", "not_yet_valid")
    if current >= claims.exp:
        raise InvalidToken("the token has expired; log in again", "expired")
    return claims


# ------------------------------------------------------------------------------------------
# Login throttling


@dataclass(frozen=True)
class LoginAttempt:
    """One login attempt: when (aware datetime) and whether the password was right."""

    at: datetime
    succeeded: bool


@dataclass(frozen=True)
class LoginThrottle:
    """Refuse logins for ``lockout`` after ``max_failures`` failures within ``window``.

    Pure policy: the caller keeps the attempts (per username, and per client address) and
    asks :meth:`locked_until`. Attempts refused *because* of a lockout should not be
    recorded (their password is not checked), so a lockout is not extended by them.
    ``reset_on_success``: a successful login clears earlier failures (right per username;
    wrong per address, where one attacker's own account would clear the count, hence the
    ``for_address`` constructor).

    >>> from datetime import UTC, datetime, timedelta
    >>> t = LoginThrottle(max_failures=3, window=timedelta(minutes=5),
    ...                   lockout=timedelta(minutes=5))
    >>> start = datetime(2026, 1, 1, tzinfo=UTC)
    >>> fails = [LoginAttempt(start + timedelta(seconds=i), False) for i in range(3)]
    >>> t.locked_until(fails, start + timedelta(seconds=10))
    datetime.datetime(2026, 1, 1, 0, 5, 2, tzinfo=datetime.timezone.utc)
    >>> t.locked_until(fails, start + timedelta(minutes=6)) is None
    True
    """

    max_failures: int
    window: timedelta
    lockout: timedelta
    reset_on_success: bool = True

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise InputError("max_failures must be at least 1")
        if self.window <= timedelta(0) or self.lockout <= timedelta(0):
            raise InputError("the throttle's window and lockout must be positive")

    @classmethod
    def for_username(cls, settings: Settings) -> LoginThrottle:
        """The per-username policy (``login_max_failures`` etc.)."""
        return cls(
            max_failures=settings.login_max_failures,
            window=timedelta(seconds=settings.login_window_seconds),
            lockout=timedelta(seconds=settings.login_lockout_seconds),
        )

    @classmethod
    def for_address(cls, settings: Settings) -> LoginThrottle:
        """The per-client-address policy (``login_address_max_failures``; no reset)."""
        return cls(
            max_failures=settings.login_address_max_failures,
            window=timedelta(seconds=settings.login_window_seconds),
            lockout=timedelta(seconds=settings.login_lockout_seconds),
            reset_on_success=False,
        )

    def relevant_since(self, now: datetime) -> datetime:
        """Attempts before this moment can never matter again (prune or skip them)."""
        return _now(now) - self.window - self.lockout

    def locked_until(self, attempts: Iterable[LoginAttempt], now: datetime) -> datetime | None:
        """Until when logins are refused, or ``None`` if a login may be tried ``now``.

        Locked when some failure is the ``max_failures``-th within ``window`` (counting only
        failures after the last success, if ``reset_on_success``) and that failure plus
        ``lockout`` is still in the future. Attempts after ``now`` are ignored.
        """
        current = _now(now)
        ordered = sorted((a for a in attempts if _now(a.at) <= current), key=lambda a: a.at)
        failures: list[datetime] = []
        for attempt in ordered:
            if attempt.succeeded:
                if self.reset_on_success:
                    failures.clear()
            else:
                failures.append(attempt.at)
        until: datetime | None = None
        k = self.max_failures
        for i in range(k - 1, len(failures)):
            if failures[i] - failures[i - k + 1] < self.window:
                candidate = failures[i] + self.lockout
                if until is None or candidate > until:
                    until = candidate
        return until if until is not None and until > current else None


def login_locked_until(
    settings: Settings,
    username_attempts: Iterable[LoginAttempt],
    address_attempts: Iterable[LoginAttempt],
    now: datetime,
) -> datetime | None:
    """The later of the per-username and per-address lockouts, or ``None``.

    A locked login must be refused *before* the password is checked, with the same answer
    for known and unknown usernames (HTTP 429 with ``Retry-After``).
    """
    locks = [
        LoginThrottle.for_username(settings).locked_until(username_attempts, now),
        LoginThrottle.for_address(settings).locked_until(address_attempts, now),
    ]
    found = [lock for lock in locks if lock is not None]
    return max(found) if found else None


def retry_after_seconds(locked_until: datetime, now: datetime) -> int:
    """Whole seconds until ``locked_until`` (rounded up, at least 1), for ``Retry-After``."""
    remaining = (locked_until - _now(now)).total_seconds()
    return max(1, int(-(-remaining // 1)))
