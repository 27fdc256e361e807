"""Hostile wire lines, one of each kind a careless or hostile site has sent (issue 10's list), as bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.factories import ae, lb, subject_id


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def hostile_lines(tag: str) -> list[tuple[str, bytes]]:
    """(kind, line) for every hostile kind; `tag` keeps msg_ids unique when the set is spliced in several times."""
    s = subject_id(9000)
    base = ae(s, f"AE-H-{tag}", "Haemoptysis", 3, msg_id=f"hostile-{tag}")

    def variant(kind: str, **fields: Any) -> tuple[str, bytes]:
        return kind, _line(base | {"msg_id": f"hostile-{tag}-{kind}"} | fields)

    deep = json.dumps(base | {"msg_id": f"hostile-{tag}-deep"})[:-1] + ', "AETERM": ' + "[" * 5000 + "]" * 5000 + "}"
    grade_twice = json.dumps(base | {"msg_id": f"hostile-{tag}-dupkey", "AETOXGR": 6})[:-1] + ', "AETOXGR": 3}'
    not_utf8 = _line(base | {"msg_id": f"hostile-{tag}-utf8"}).replace(b"coughing", b"cough\xffing")
    return [
        ("deep", deep.encode()),
        ("not-utf8", not_utf8),
        ("record-version-2^63", variant("version", record_version=2**63)[1]),
        ("sent-at-before-year-1", variant("year1", sent_at="0001-01-01T00:00:00+14:00")[1]),
        ("sent-at-unix", variant("unix", sent_at=12345)[1]),
        ("duplicate-key", grade_twice.encode()),
        ("arabic-indic-grade", variant("digit", AETOXGR="٣")[1]),
        ("megabyte-value", variant("mb", AEOUT="Y" * 1_000_000)[1]),
        ("nul-in-aeterm", variant("nul", AETERM="blood\x00y")[1]),
        ("control-in-aeterm", variant("ctl", AETERM="blood\x1b[31my")[1]),
        (
            "infinite-lab",
            json.dumps(lb(s) | {"msg_id": f"hostile-{tag}-inf"})
            .replace('"LBSTRESN": 212', '"LBSTRESN": 1e999')
            .encode(),
        ),
        ("not-json", b"{this is not json"),
        ("not-an-object", b"[1, 2, 3]"),
    ]


def spliced_file(path: Path, valid: list[str], times: int = 3) -> int:
    """Write the valid lines with every hostile kind spliced in `times` times, spread through the file;
    returns the number of hostile lines written."""
    hostile = [line for n in range(times) for _, line in hostile_lines(str(n))]
    step = max(len(valid) // (len(hostile) + 1), 1)
    with path.open("wb") as sink:
        for index, line in enumerate(valid):
            sink.write(line.encode() + b"\n")
            if index % step == step - 1 and hostile:
                sink.write(hostile.pop() + b"\n")
        for line in hostile:
            sink.write(line + b"\n")
    return times * len(hostile_lines("x"))


class PoisonGrader:
    """Grades nothing, and fails on one value: a handler error on a valid message."""

    ctcae_version = "5.0"

    def uses_baseline(self, test_code: str) -> bool:
        return False

    def grade(self, finding: object, baseline: object, same_draw: object = None) -> tuple[()]:
        if getattr(finding, "value", None) == 666:
            raise ValueError("cannot grade this")
        return ()
