"""Fixtures every framework's adapter tests may use; each framework's own conftest
adds its ``instrumented`` fixture and keeps the framework offline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.adapters.support import Recorder


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """Every contract signal sent during the test."""
    rec = Recorder()
    rec.connect()
    yield rec
    rec.disconnect()
