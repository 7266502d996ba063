"""PromQL's ``rate`` and ``histogram_quantile`` arithmetic, for the in-process evaluator.

These follow Prometheus' own implementation (``extrapolatedRate`` and
``bucketQuantile`` in promql/functions.go and quantile.go), so a threshold means
the same thing whether Prometheus or the orchestrator's process evaluates it:

* a rate needs at least two samples in the window; counter resets (a value lower
  than the previous one) add the previous value back; the increase is
  extrapolated towards the window's edges, but never below a counter's zero;
* a quantile interpolates linearly inside the bucket holding the rank, returns
  the highest finite bound when the rank falls in the +Inf bucket, and is NaN
  without observations.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence


def extrapolated_rate(points: Sequence[tuple[float, float]], range_start: float,
                      range_end: float, *, is_counter: bool = True,
                      is_rate: bool = True) -> float | None:
    """``rate`` (or ``increase`` with ``is_rate=False``) of ``points`` (time, value) taken
    in ``[range_start, range_end]``; None when there are fewer than two points."""
    if len(points) < 2:
        return None
    first_t, first_v = points[0]
    last_t, last_v = points[-1]
    result = last_v - first_v
    if is_counter:
        previous = first_v
        for _, value in points[1:]:
            if value < previous:
                result += previous
            previous = value
    duration_to_start = first_t - range_start
    duration_to_end = range_end - last_t
    sampled_interval = last_t - first_t
    if sampled_interval <= 0:
        return None
    average_between = sampled_interval / (len(points) - 1)
    if is_counter and result > 0 and first_v >= 0:
        duration_to_zero = sampled_interval * (first_v / result)
        duration_to_start = min(duration_to_start, duration_to_zero)
    threshold = average_between * 1.1
    interval = sampled_interval
    interval += duration_to_start if duration_to_start < threshold else average_between / 2
    interval += duration_to_end if duration_to_end < threshold else average_between / 2
    factor = interval / sampled_interval
    if is_rate:
        factor /= range_end - range_start
    return result * factor


def bucket_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """``histogram_quantile(q, ...)`` over (upper bound, cumulative count) pairs."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]):
        return math.nan
    coalesced: list[list[float]] = []
    for upper, count in ordered:
        if coalesced and coalesced[-1][0] == upper:
            coalesced[-1][1] += count
        else:
            coalesced.append([upper, count])
    highest = -math.inf
    for bucket in coalesced:  # ensure monotonic, as rates of buckets may jitter
        highest = max(highest, bucket[1])
        bucket[1] = highest
    if len(coalesced) < 2:
        return math.nan
    observations = coalesced[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    counts = [bucket[1] for bucket in coalesced[:-1]]
    b = bisect.bisect_left(counts, rank)
    if b == len(coalesced) - 1:
        return coalesced[-2][0]
    if b == 0 and coalesced[0][0] <= 0:
        return coalesced[0][0]
    start, end, count = 0.0, coalesced[b][0], coalesced[b][1]
    if b > 0:
        start = coalesced[b - 1][0]
        count -= coalesced[b - 1][1]
        rank -= coalesced[b - 1][1]
    return start + (end - start) * (rank / count)
