"""Identity fingerprints (issue 4, "Registration"): keyed hashes, normalisation, duplicates."""

from __future__ import annotations

import hashlib
import hmac
import inspect
import unicodedata

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import fairshare.identity
from fairshare.errors import InputError
from fairshare.identity import (
    MIN_KEY_BYTES,
    fingerprint,
    normalise_document,
    possible_duplicates,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


# ---------------------------------------------------------------------------------------------
# fingerprint


def test_is_hmac_sha256_hex() -> None:
    expected = hmac.new(KEY, b"EL:AB123456", hashlib.sha256).hexdigest()
    assert fingerprint("EL:AB123456", KEY) == expected
    assert fingerprint(b"EL:AB123456", KEY) == expected
    assert len(expected) == 64
    assert expected == expected.lower()


def test_rfc4231_test_case_6() -> None:
    """RFC 4231 section 4.7: a 131-byte key and its published HMAC-SHA-256."""
    key = b"\xaa" * 131
    data = b"Test Using Larger Than Block-Size Key - Hash Key First"
    assert fingerprint(data, key) == (
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    )


def test_never_contains_the_raw_data() -> None:
    value = fingerprint("SYR:N1234567", KEY)
    assert "N1234567" not in value
    assert "SYR" not in value.upper()


@pytest.mark.parametrize("key", [b"", b"short", bytes(31)])
def test_short_keys_are_refused(key: bytes) -> None:
    with pytest.raises(InputError) as info:
        fingerprint("EL:AB1", key)
    assert str(info.value) == (
        f"the fingerprint key has {len(key)} bytes; it needs at least 32 random bytes from the "
        "configured secret (there is no default key)"
    )


def test_a_32_byte_key_is_enough() -> None:
    assert MIN_KEY_BYTES == 32
    assert len(fingerprint("EL:AB1", bytes(32))) == 64
    assert fingerprint("EL:AB1", bytearray(KEY)) == fingerprint("EL:AB1", KEY)  # type: ignore[arg-type]


def test_a_text_key_is_refused() -> None:
    with pytest.raises(InputError, match="the fingerprint key must be bytes, not str"):
        fingerprint("EL:AB1", "x" * 64)  # type: ignore[arg-type]


def test_empty_or_wrong_data_is_refused() -> None:
    with pytest.raises(InputError, match="fingerprint data is empty"):
        fingerprint("", KEY)
    with pytest.raises(InputError, match="fingerprint data is empty"):
        fingerprint(b"", KEY)
    with pytest.raises(InputError, match="fingerprint data must be bytes or text, not int"):
        fingerprint(12345, KEY)  # type: ignore[arg-type]


def test_text_is_taken_in_nfc() -> None:
    composed = "EL:Ä1"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert fingerprint(composed, KEY) == fingerprint(decomposed, KEY)


def test_no_default_key_anywhere() -> None:
    assert inspect.signature(fingerprint).parameters["key"].default is inspect.Parameter.empty
    assert "no default key" in (fairshare.identity.__doc__ or "")


# ---------------------------------------------------------------------------------------------
# normalise_document


@pytest.mark.parametrize(
    ("number", "state"),
    [
        ("AB123456", "EL"),
        ("ab123456", "el"),
        (" AB 123 456 ", " EL "),
        ("AB-123-456", "EL"),
        ("AB\u2013123\u2014456", "EL"),  # en dash, em dash
        ("AB\u00a0123\t456", "EL"),  # no-break space, tab
        ("ＡＢ１２３４５６", "EL"),  # full-width
        ("AB123456<<<", "EL"),  # MRZ filler
    ],
)
def test_the_same_document_typed_differently(number: str, state: str) -> None:
    assert normalise_document(number, state) == "EL:AB123456"


def test_the_issuing_state_is_part_of_the_identity() -> None:
    assert normalise_document("AB123456", "EL") != normalise_document("AB123456", "IT")
    assert normalise_document("123", "D") == "D:123"
    assert normalise_document("123", "syr") == "SYR:123"


@pytest.mark.parametrize(
    ("number", "state", "message"),
    [
        ("", "EL", "document number '' is empty once spaces and dashes are removed"),
        (" - ", "EL", "document number ' - ' is empty once spaces and dashes are removed"),
        (
            "AB/12.3",
            "EL",
            "document number 'AB/12.3' has characters other than letters, digits, spaces and "
            "dashes: '.', '/'",
        ),
        (
            "\u0410B123",  # Cyrillic A: refused, not silently taken for a Latin A
            "EL",
            "document number '\u0410B123' has characters other than letters, digits, spaces and "
            "dashes: '\u0410'",
        ),
        ("AB1", "", "issuing state '' is not a country code of 1 to 3 Latin letters"),
        ("AB1", "GREECE", "issuing state 'GREECE' is not a country code of 1 to 3 Latin letters"),
        ("AB1", "E1", "issuing state 'E1' is not a country code of 1 to 3 Latin letters"),
        ("AB1", "ΕΛ", "issuing state 'ΕΛ' is not a country code of 1 to 3 Latin letters"),
    ],
)
def test_bad_documents_are_refused(number: str, state: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        normalise_document(number, state)
    assert str(info.value) == message


def test_non_text_documents_are_refused() -> None:
    with pytest.raises(InputError, match="must both be text"):
        normalise_document(123456, "EL")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# possible_duplicates


def test_groups_share_a_fingerprint() -> None:
    a = fingerprint(normalise_document("AB 123456", "EL"), KEY)
    b = fingerprint(normalise_document("X-9", "IT"), KEY)
    c = fingerprint(normalise_document("ZZ1", "HU"), KEY)
    records = {
        "EL-0007": a,
        "IT-0002": b,
        "EL-0001": fingerprint(normalise_document("ab123456", "el"), KEY),
        "HU-0003": c,
        "IT-0009": b,
        "EL-0004": a,
    }
    before = dict(records)
    assert possible_duplicates(records) == [
        ("EL-0001", "EL-0004", "EL-0007"),
        ("IT-0002", "IT-0009"),
    ]
    assert records == before  # nothing is merged or changed


def test_no_duplicates() -> None:
    assert possible_duplicates({}) == []
    assert possible_duplicates({"p1": "aa", "p2": "bb"}) == []


def test_empty_fingerprints_are_refused() -> None:
    with pytest.raises(InputError, match="record 'p2' has an empty fingerprint"):
        possible_duplicates({"p1": "aa", "p2": ""})


def test_flags_for_review_never_merges() -> None:
    doc = (possible_duplicates.__doc__ or "").replace("\n    ", " ")
    assert "never merged" in doc
    assert "review" in doc


# ---------------------------------------------------------------------------------------------
# Properties

keys = st.binary(min_size=32, max_size=64)
data = st.one_of(st.binary(min_size=1, max_size=64), st.text(min_size=1, max_size=32))
alnum = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12)
separators = st.sampled_from([" ", "-", "\u2013", "\u00a0", "\t", "<"])


@given(data, keys)
def test_fingerprint_is_deterministic(value: bytes | str, key: bytes) -> None:
    assert fingerprint(value, key) == fingerprint(value, key)
    assert len(fingerprint(value, key)) == 64


@given(data, keys, keys)
def test_fingerprint_depends_on_the_key(value: bytes | str, key: bytes, other: bytes) -> None:
    assume(key != other)
    assert fingerprint(value, key) != fingerprint(value, other)


@given(data, data, keys)
def test_fingerprint_depends_on_the_data(a: bytes | str, b: bytes | str, key: bytes) -> None:
    def raw(v: bytes | str) -> bytes:
        return unicodedata.normalize("NFC", v).encode() if isinstance(v, str) else v

    assume(raw(a) != raw(b))
    assert fingerprint(a, key) != fingerprint(b, key)


@given(
    alnum,
    st.sampled_from(["EL", "IT", "HU", "SYR", "D"]),
    st.lists(st.tuples(st.integers(0, 20), separators), max_size=6),
    st.lists(st.booleans(), max_size=12),
    keys,
)
def test_fingerprint_is_invariant_under_typing(
    number: str,
    state: str,
    inserts: list[tuple[int, str]],
    lower: list[bool],
    key: bytes,
) -> None:
    typed = "".join(
        ch.lower() if i < len(lower) and lower[i] else ch for i, ch in enumerate(number)
    )
    for position, sep in inserts:
        at = position % (len(typed) + 1)
        typed = typed[:at] + sep + typed[at:]
    assert normalise_document(typed, state.lower()) == f"{state}:{number}"
    assert fingerprint(normalise_document(typed, state.lower()), key) == fingerprint(
        normalise_document(number, state), key
    )


@given(st.dictionaries(st.text(min_size=1, max_size=4), st.sampled_from("abcdef"), max_size=20))
def test_duplicates_partition_the_shared_fingerprints(records: dict[str, str]) -> None:
    groups = possible_duplicates(records)
    flagged = [rid for group in groups for rid in group]
    assert len(flagged) == len(set(flagged))  # each record in at most one group
    for group in groups:
        assert len(group) >= 2
        assert list(group) == sorted(group)
        assert len({records[rid] for rid in group}) == 1
    shared = {rid for rid, v in records.items() if list(records.values()).count(v) > 1}
    assert set(flagged) == shared
    assert groups == sorted(groups)
