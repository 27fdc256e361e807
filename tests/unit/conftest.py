"""Fixtures of the unit tests: the shipped CTCAE v5 criteria, loaded once per module."""

from __future__ import annotations

import pytest

from safety_monitor.adapters.ctcae_criteria import load_criteria
from safety_monitor.domain.ctcae import CriteriaSet


@pytest.fixture(scope="module")
def criteria() -> CriteriaSet:
    return load_criteria("5.0")
