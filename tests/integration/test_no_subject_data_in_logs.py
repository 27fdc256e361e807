"""Logs name ids (msg_id, origin, alert key), never subject data, at the default level (issue 10, item 7)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.adapters.sql.database import create_engine, upgrade
from safety_monitor.adapters.sql.unit_of_work import SqlStore
from safety_monitor.service.handling import HandlingPolicy, handle_batch
from streams.wire import AeMessage
from tests.factories import ae, inbound, subject_id

SUBJECT = subject_id(4242)
VERBATIM = "secret verbatim bleeding from the left ear"


def _everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    return "\n".join(handler.format(record) for record in caplog.records)


async def test_a_database_error_is_logged_without_its_sql_parameters(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, config, now
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/logs.db")
    await upgrade(engine)
    async with engine.begin() as connection:  # the database refuses this one AE, as a full disk or a bug would
        await connection.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON adverse_event_version WHEN NEW.aeterm LIKE 'secret%' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    store = SqlStore(engine)
    batch = inbound(ae(SUBJECT, "AE-1", "Haemoptysis", 3, AETERM=VERBATIM), ae(subject_id(1), "AE-2", "Haemoptysis", 2))
    caplog.set_level(logging.WARNING)
    try:
        outcome = await handle_batch(store, batch, config, FixedClock(now), HandlingPolicy(first_backoff_s=0))
    finally:
        await engine.dispose()
    assert outcome.dead_lettered == 1 and outcome.applied == 1
    logged = _everything_logged(caplog)
    assert caplog.records, "the failure must be logged"
    assert SUBJECT not in logged and VERBATIM not in logged, logged


def test_a_validation_error_does_not_quote_its_input() -> None:
    with pytest.raises(ValidationError) as raised:
        AeMessage.model_validate(json.loads(json.dumps(ae(subject_id(1), AESER=SUBJECT, AETOXGR=9))))
    assert VERBATIM not in str(raised.value) and SUBJECT not in str(raised.value)
