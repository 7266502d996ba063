"""Helpers shared by the test suites: paths, fakes, sinks and the real-backend drivers."""

from pathlib import Path

#: The repository's root directory.
ROOT = Path(__file__).resolve().parents[2]
