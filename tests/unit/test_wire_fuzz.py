"""Fuzzing the decoding boundary (hypothesis): any bytes end as Decoded or Rejected, never an exception; a refusal
is short and storable by both databases; a valid message survives any hostile neighbour or field order."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.decoding import MAX_REASON_CHARS, Decoded, Rejected, decode
from tests.factories import ae, lb, subject_event, vs

NOW = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)
# Derandomized: the same cases in every CI run (a failure reproduces); no example database on disk.
FUZZ = settings(
    max_examples=2000, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def check(raw: bytes | str) -> Decoded | Rejected:
    result = decode(raw, "fuzz:1", now=NOW)
    assert isinstance(result, Decoded | Rejected)
    if isinstance(result, Rejected):
        assert 0 < len(result.reason) <= MAX_REASON_CHARS
        result.payload.encode("utf-8")  # no lone surrogates: storable as text
        assert "\x00" not in result.payload and "\x00" not in result.reason  # PostgreSQL stores no NUL
        assert result.msg_id is None or len(result.msg_id) <= 128
    else:
        result.payload.encode("utf-8")
        assert "\x00" not in result.payload
    return result


@FUZZ
@given(st.binary(max_size=3000))
def test_any_bytes_end_as_decoded_or_rejected(raw: bytes) -> None:
    check(raw)


HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(["٣", "３", "3", " 3 ", "1e400", "NaN", "\x00", "\u0085", "2026-05-01T08:00:00+14:00"]),
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1990-01-01T00:00:00Z"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
BASES = st.sampled_from([ae(), lb(), vs(), subject_event()])


@FUZZ
@given(BASES, st.dictionaries(st.sampled_from(sorted({*ae(), *lb(), *vs(), *subject_event(), "X"})), HOSTILE_VALUES))
def test_hostile_field_values_never_escape_the_boundary(base: dict[str, Any], changes: dict[str, Any]) -> None:
    message = base | changes
    try:
        text = json.dumps(message, allow_nan=False)
    except ValueError:
        return
    check(text)
    check(text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(
    BASES,
    st.sampled_from(["duplicate", "nest", "truncate", "bom", "escape", "badbyte", "spaces", "long"]),
    st.integers(min_value=0, max_value=10_000),
)
def test_mangled_lines_never_escape_the_boundary(base: dict[str, Any], how: str, n: int) -> None:
    text = json.dumps(base)
    if how == "duplicate":
        key = sorted(base)[n % len(base)]
        text = text[:-1] + f", {json.dumps(key)}: {json.dumps(base[key])}}}"
        assert isinstance(check(text), Rejected)
    elif how == "nest":
        text = text[:-1] + ', "X": ' + "[" * (n % 3000) + "]" * (n % 3000) + "}"
        assert isinstance(check(text), Rejected)
    elif how == "truncate":
        check(text[: n % len(text)])
    elif how == "bom":
        check(b"\xef\xbb\xbf" + text.encode())
    elif how == "escape":
        check(text.replace('"', '"\\u00' + f"{n % 256:02x}", 1 + n % 3))
    elif how == "badbyte":
        raw = bytearray(text.encode())
        raw[n % len(raw)] = 0x80 + n % 0x80
        check(bytes(raw))
    elif how == "spaces":
        spaced = json.dumps(base, separators=(" ,\r\n ", " :\t "))
        result = check(spaced)
        assert isinstance(result, Decoded) == isinstance(check(text), Decoded)
    else:
        check(text[:-1] + ', "AETERM": "' + "x" * (n * 10) + '"}')


@FUZZ
@given(BASES, st.randoms(use_true_random=False))
def test_a_valid_message_is_decoded_in_any_key_order(base: dict[str, Any], random: Any) -> None:
    items = list(base.items())
    random.shuffle(items)
    result = check(json.dumps(dict(items)))
    assert isinstance(result, Decoded), getattr(result, "reason", "")
