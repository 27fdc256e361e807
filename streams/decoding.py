"""Owns the one decoding boundary every runtime goes through: the caps a site's line is checked against before it
is parsed, one parse and validation into its wire model, and a refusal with a reason (bytes in, `Decoded` or
`Rejected` out; it never raises)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from safety_monitor.domain.messages import SiteMessage
from streams.wire import MESSAGES, MODELS, QUOTE_CHARS, quote

# Caps checked before a line is parsed: a site's line is hostile until proven otherwise. A wire message is one
# flat JSON object of some 30 fields (~1 KB); these bounds are far above any real message and far below what
# could exhaust the parser (nesting: RecursionError) or the process (memory), or what the stores keep.
MAX_LINE_BYTES = 64 * 1024
MAX_STRING_CHARS = 4096
MAX_NESTING = 8
MAX_REASON_CHARS = 1000

# C0 and C1 control characters, DEL, and lone surrogates (which no database stores as text).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_RAW_CONTROL = re.compile("[\x7f-\x9f]")  # the ones strict JSON lets through unescaped inside a string
_MSG_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}", re.ASCII)
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_KEY_END = re.compile(r'"\s*:')
_KEY_BEFORE = re.compile(r'"([A-Za-z0-9_]{1,64})"\s*:\s*$')
_LONG_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.){' + str(MAX_STRING_CHARS + 1) + r',}"', re.DOTALL)


@dataclass(frozen=True, slots=True)
class Decoded:
    """A valid message: the domain fact plus what the inbox keeps to recognise duplicates and conflicts."""

    message: SiteMessage
    content_hash: str
    payload: str
    origin: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that could not be decoded or failed validation; bound for the dead-letter store."""

    msg_id: str | None
    reason: str
    payload: str
    origin: str


def content_hash(payload: str) -> str:
    """Hash of the message as received. Two payloads with different hashes may still hold the same document
    (other key order or spacing): the inbox then compares them as documents before calling it a conflict."""
    return hashlib.sha256(payload.encode("utf-8", "surrogateescape")).hexdigest()


class _Refusal(Exception):
    """Raised inside the decoder for input refused before or while parsing; its text is the reason."""


def _describe(error: ValidationError, msg_id: str | None, msg_type: object) -> str:
    items = error.errors(include_url=False, include_input=False)
    parts = []
    for item in items[:8]:
        location = ".".join(str(p) for p in item["loc"] if p != msg_type) or "message"
        text = item["msg"].removeprefix("Value error, ")
        parts.append(f"{location[:QUOTE_CHARS]}: {text}")
    if len(items) > 8:
        parts.append(f"and {len(items) - 8} more")
    return f"{_who(msg_id)} ({_short(msg_type) or 'no msg_type'}): " + "; ".join(parts)


def _who(msg_id: str | None) -> str:
    return f"message {msg_id}" if msg_id else "message without msg_id"


def _short(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) and len(value) <= 32 and _MSG_ID.fullmatch(value) else quote(value)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        counts: dict[str, int] = {}
        for key, _ in pairs:
            counts[key] = counts.get(key, 0) + 1
        twice = sorted(key for key, count in counts.items() if count > 1)
        raise _Refusal(f"duplicate key {', '.join(quote(k) for k in twice[:5])}: each field must appear once")
    return document


def _no_constant(name: str) -> float:
    raise _Refusal(f"not strict JSON: {name} is not a number")


_JSON = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)


def _nesting(text: str) -> int:
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", _JSON_STRING.sub('""', text)):
        depth = depth + 1 if bracket in "[{" else depth - 1
        deepest = max(deepest, depth)
    return deepest


def _check_before_parsing(raw: bytes) -> str:
    """The text of a line within the caps, or _Refusal: size, UTF-8, nesting and string length."""
    if len(raw) > MAX_LINE_BYTES:
        raise _Refusal(f"line longer than {MAX_LINE_BYTES} bytes ({len(raw)}): not parsed")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refusal(f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}") from None
    if text.count("[") + text.count("{") > MAX_NESTING and _nesting(text) > MAX_NESTING:
        raise _Refusal(f"nested deeper than {MAX_NESTING} levels: not parsed")
    if len(text) > MAX_STRING_CHARS and (found := _LONG_JSON_STRING.search(text)) is not None:
        key = _KEY_BEFORE.search(text, max(found.start() - 200, 0), found.start())
        where = f"{key.group(1)}: " if key else ""
        raise _Refusal(f"{where}a string longer than {MAX_STRING_CHARS} characters: not parsed")
    return text


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield path or "message", key
            yield from _strings(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _check_text(document: object) -> None:
    for path, value in _strings(document, ""):
        if (found := _CONTROL.search(value)) is not None:
            where = path[:QUOTE_CHARS]
            raise _Refusal(f"{where}: control character U+{ord(found.group()):04X} is not allowed in text")


def _as_bytes(raw: bytes | str) -> bytes:
    if isinstance(raw, bytes):
        return raw
    try:
        return raw.encode("utf-8")
    except UnicodeEncodeError:  # a reader that kept undecodable bytes as surrogates (surrogateescape)
        return raw.encode("utf-8", "surrogateescape") if _only_escapes(raw) else raw.encode("utf-8", "surrogatepass")


def _only_escapes(text: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def storable(raw: bytes) -> str:
    """The received bytes as text both databases store (a dead letter keeps what was sent, made safe): bad
    UTF-8 as \\xNN, NUL as \\x00, cut at MAX_LINE_BYTES."""
    cut = raw[:MAX_LINE_BYTES]
    text = cut.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
    return text if len(cut) == len(raw) else f"{text}... [cut: {len(raw)} bytes received]"


def decode(raw: bytes | str, origin: str, *, now: datetime | None = None) -> Decoded | Rejected:
    """Decode one wire message; never raises for any input, which comes back as `Rejected` with a reason.

    `now` is the receiving clock (a sent_at more than a day after it is refused); the wall clock if None."""
    data = _as_bytes(raw)
    msg_id: str | None = None
    try:
        text = _check_before_parsing(data)
        context = {"now": now or datetime.now(UTC)}
        if "\\" not in text and not _RAW_CONTROL.search(text):
            # The fast path: parsed and validated in one pass. Without escapes no string holds a quote, so every
            # `"` followed by `:` ends a key: more of them than fields set means a key came twice (the parser
            # keeps the last), which the slow path below names.
            try:
                model = MESSAGES.validate_json(text, context=context)
            except ValidationError:
                pass
            else:
                if len(_KEY_END.findall(text)) == len(model.model_fields_set):
                    return Decoded(model.to_domain(), content_hash(text), text, origin)
        # The slow path, for escapes and for input to refuse: why, naming the message id and the fields.
        document = _JSON.decode(text)
        if not isinstance(document, dict):
            return Rejected(None, f"not a JSON object but {type(document).__name__}", storable(data), origin)
        raw_id = document.get("msg_id")
        msg_id = raw_id if isinstance(raw_id, str) and _MSG_ID.fullmatch(raw_id) else None
        _check_text(document)
        msg_type = document.get("msg_type")
        if not isinstance(msg_type, str) or msg_type not in MODELS:
            known = ", ".join(MODELS)
            raise _Refusal(f"msg_type {quote(msg_type)} is not one of {known}")
        try:
            checked = MESSAGES.validate_python(document, context=context)
        except ValidationError as exc:
            return Rejected(msg_id, _describe(exc, msg_id, msg_type)[:MAX_REASON_CHARS], storable(data), origin)
        return Decoded(checked.to_domain(), content_hash(text), text, origin)
    except _Refusal as exc:
        reason = f"{_who(msg_id)}: {exc}"
    except json.JSONDecodeError as exc:
        reason = f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    except (ValueError, RecursionError, OverflowError, MemoryError) as exc:  # e.g. an integer of 5,000 digits
        reason = f"{_who(msg_id)}: refused by the decoder: {type(exc).__name__}: {quote(str(exc))}"
    except Exception as exc:  # never let one line stop a runtime: whatever else, it is a refusal with a reason
        reason = f"{_who(msg_id)}: refused by the decoder: {type(exc).__name__}"
    return Rejected(msg_id, reason[:MAX_REASON_CHARS], storable(data), origin)


Decoder = Callable[..., Decoded | Rejected]
