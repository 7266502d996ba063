"""Reading what the adapter tests scrape (shared by the frameworks' test folders)."""

from __future__ import annotations

import re


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name{labels}`` (exactly those labels) in a Prometheus
    text exposition; 0 when absent."""
    wanted = sorted(f'{key}="{value}"' for key, value in labels.items())
    pattern = re.compile(rf"^{re.escape(name)}(?:{{(.*)}})? (\S+)$", re.M)
    for found, value in pattern.findall(text):
        if sorted(filter(None, found.split(","))) == wanted:
            return float(value)
    return 0.0
