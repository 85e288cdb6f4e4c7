"""Identity fingerprints: find the same person registered twice, without keeping raw data.

Eurodac (Regulation (EU) 2024/1358) compares applicants' biometric data to detect a person
who applies twice or in two Member States. fairshare keeps only a *keyed hash* of a document
number or a biometric template, never the data itself (data minimisation, Regulation (EU)
2016/679 Art. 5(1)(c) and 25): an HMAC-SHA-256 under a secret key, so that the fingerprints
cannot be reversed by hashing every possible passport number without the key.

* The key comes from configuration (the registry's secret store), never from code: there is
  **no default key**. A key shorter than 32 bytes is refused. Changing the key changes every
  fingerprint, so a key rotation must recompute them all from the source data.
* A fingerprint is still pseudonymised personal data (Regulation (EU) 2016/679 Recital 26),
  to be protected and erased like the rest of the person's record.
* A fingerprint matches only byte-identical input. Document numbers are normalised first
  (:func:`normalise_document`); a biometric template must be a canonical, deterministic
  encoding (two captures of the same finger differ, and would not match).
* Matches are **flagged for review, never merged** (:func:`possible_duplicates`): two
  people may share a document number through a typing error or a forged document.

>>> key = b"k" * 32  # for the example only: a real key comes from configuration
>>> a = fingerprint(normalise_document("AB 123-456", "el"), key)
>>> a == fingerprint(normalise_document("ab123456", "EL"), key)
True
>>> len(a)
64
>>> possible_duplicates({"p1": a, "p2": "f" * 64, "p7": a})
[('p1', 'p7')]
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Mapping

from fairshare.errors import InputError

__all__ = ["MIN_KEY_BYTES", "fingerprint", "normalise_document", "possible_duplicates"]

MIN_KEY_BYTES = 32
"""The shortest key accepted: 256 bits, the output size of SHA-256 (RFC 2104 section 3)."""

# Characters a document number may be typed with that are not part of it: the MRZ filler "<"
# (ICAO Doc 9303), and (after NFKC) every dash and white-space character.
_FILLERS = frozenset("<")


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray):
        raise InputError(
            f"the fingerprint key must be bytes, not {type(key).__name__}; read it from the "
            "configured secret (e.g. bytes.fromhex of a 64-hex-digit value)"
        )
    if len(key) < MIN_KEY_BYTES:
        raise InputError(
            f"the fingerprint key has {len(key)} bytes; it needs at least {MIN_KEY_BYTES} random "
            "bytes from the configured secret (there is no default key)"
        )


def fingerprint(data: bytes | str, key: bytes) -> str:
    """The keyed fingerprint of ``data``: HMAC-SHA-256 under ``key``, as 64 hex digits.

    ``data`` is normalised document data (:func:`normalise_document`) or a canonical
    biometric template; text is taken in Unicode NFC and encoded as UTF-8. The raw data is
    never stored, only this value. ``key`` must come from configuration and have at least
    32 bytes; empty data is refused (it would make every empty record a "match").

    >>> fingerprint("EL:AB123456", b"\\x00" * 32) == fingerprint(b"EL:AB123456", b"\\x00" * 32)
    True
    >>> fingerprint("EL:AB123456", b"secret")
    Traceback (most recent call last):
    ...
    fairshare.errors.InputError: the fingerprint key has 6 bytes; it needs at least 32 random \
bytes from the configured secret (there is no default key)
    """
    _check_key(key)
    if isinstance(data, str):
        payload = unicodedata.normalize("NFC", data).encode("utf-8")
    elif isinstance(data, bytes | bytearray):
        payload = bytes(data)
    else:
        raise InputError(f"fingerprint data must be bytes or text, not {type(data).__name__}")
    if not payload:
        raise InputError("fingerprint data is empty; there is nothing to identify the person by")
    return hmac.new(bytes(key), payload, hashlib.sha256).hexdigest()


def normalise_document(number: str, issuing_state: str) -> str:
    """A document number in one canonical form, ``STATE:NUMBER``, so that typings match.

    Spaces, dashes (any Unicode dash) and the MRZ filler ``<`` are removed, letters are
    upper-cased (after Unicode NFKC, so full-width digits count as digits), and the issuing
    state's code is put in front, so that the same number issued by two states differs. What
    remains must be Latin letters and digits (ICAO Doc 9303); anything else is refused rather
    than guessed at. The caller must use one code system for ``issuing_state`` throughout
    (e.g. the ICAO three-letter codes of the MRZ): ``SYR`` and ``SY`` do not match.

    >>> normalise_document(" n-123 456 ", "syr")
    'SYR:N123456'
    >>> normalise_document("P<1234", "D")
    'D:P1234'
    >>> normalise_document("12/34", "EL")
    Traceback (most recent call last):
    ...
    fairshare.errors.InputError: document number '12/34' has characters other than letters, \
digits, spaces and dashes: '/'
    """
    if not isinstance(number, str) or not isinstance(issuing_state, str):
        raise InputError("a document number and its issuing state must both be text")
    state = unicodedata.normalize("NFKC", issuing_state).strip().upper()
    if not (1 <= len(state) <= 3 and state.isascii() and state.isalpha()):
        raise InputError(
            f"issuing state '{issuing_state}' is not a country code of 1 to 3 Latin letters"
        )
    text = unicodedata.normalize("NFKC", number)
    kept = "".join(
        ch
        for ch in text
        if not (ch.isspace() or unicodedata.category(ch) == "Pd" or ch in _FILLERS)
    ).upper()
    if not kept:
        raise InputError(f"document number '{number}' is empty once spaces and dashes are removed")
    bad = sorted({ch for ch in kept if not (ch.isascii() and ch.isalnum())})
    if bad:
        raise InputError(
            f"document number '{number}' has characters other than letters, digits, spaces and "
            f"dashes: {', '.join(repr(ch) for ch in bad)}"
        )
    return f"{state}:{kept}"


def possible_duplicates(fingerprints: Mapping[str, str]) -> list[tuple[str, ...]]:
    """Groups of record ids that share a fingerprint: the same person possibly registered twice.

    ``fingerprints`` maps a record id to its fingerprint (a record with several documents is
    given once per document, under ids of the caller's choice). Each group has at least two
    ids, sorted; the groups are sorted by their first id. This only **flags** records for
    review by a person: records are never merged automatically, as in Eurodac, where a hit
    is checked before any consequence (Regulation (EU) 2024/1358).

    >>> possible_duplicates({"b": "x1", "a": "x1", "c": "x2", "d": "x2", "e": "x3"})
    [('a', 'b'), ('c', 'd')]
    """
    groups: dict[str, list[str]] = {}
    for record, value in fingerprints.items():
        if not isinstance(value, str) or not value:
            raise InputError(f"record '{record}' has an empty fingerprint")
        groups.setdefault(value, []).append(record)
    return sorted(tuple(sorted(ids)) for ids in groups.values() if len(ids) > 1)
