"""A recorded run: the committed input replayed on SQLite and PostgreSQL gives the golden outputs byte for byte."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, _drop_schema, _postgres_schema
from tests.recorded_run import environment, first_difference, golden_files, read_golden, record

# How to regenerate the goldens (after a change that is meant to alter the outputs): tests/data/recorded/README.md.


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def recorded_env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    if request.param == "sqlite":
        yield environment(tmp_path, f"sqlite:///{tmp_path / 'recorded.db'}", None)
        return
    schema = await _postgres_schema()
    try:
        yield environment(tmp_path, POSTGRES_URL, schema)
    finally:
        await _drop_schema(schema)


def test_the_recorded_run_gives_the_golden_outputs_byte_for_byte(recorded_env: dict[str, str], tmp_path: Path) -> None:
    # `record` runs the commands in their own event loop (asyncio.run, as the CLI does): not inside this test's.
    outputs = record(tmp_path, recorded_env)
    golden = golden_files()
    assert sorted(outputs) == sorted(golden), "the outputs captured and the golden files differ in name"
    differences = [
        first_difference(name, expected, outputs[name])
        for name, path in golden.items()
        if (expected := read_golden(path)) != outputs[name]
    ]
    if differences:
        pytest.fail("\n\n".join(differences), pytrace=False)
