"""Offline fixtures for the Pydantic AI adapter: test models only, real model requests
refused, no API key."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pydantic_ai import models

from telemetry.adapters import Instrumentation
from telemetry.adapters import pydantic_ai as adapter

for key in [key for key in os.environ if key.endswith("_API_KEY")]:
    os.environ.pop(key)
models.ALLOW_MODEL_REQUESTS = False  # a non-test model raises instead of calling out


@pytest.fixture
def instrumented() -> Iterator[Instrumentation]:
    handle = adapter.instrument()
    yield handle
    handle.uninstrument()
