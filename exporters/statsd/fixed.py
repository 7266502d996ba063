"""Timer values as fixed-point text, written digit by digit into one buffer.

A flush formats a few thousand timer values (up to ``reservoir_size`` per histogram
series), each rounded to the microsecond (3 decimals of a millisecond). Python's
``"%.3f"`` finds each value's exact decimal digits with arbitrary-precision
arithmetic: about 0.2 us a value, half of a flush's CPU. :func:`fixed_text` writes
the same text from the rounded integer number of thousandths; compiled (the
declarations in ``fixed.pxd``), its loop runs in C at a fifth of that. The pure-Python
build formats with ``"%.3f"`` instead (:func:`exporters.statsd.timers.timer_text`),
which is the faster of the two there.

The rounding is ``"%.3f"``'s, exactly: round half to even on the value's exact
binary expansion. ``p = a * 1000`` is within half an ulp of the exact product, so
rounding ``p`` gives the right integer unless the exact product lies within an ulp
or two of a half, where ``p`` may fall on the wrong side of it, or on a tie the value
does not have. Those values, a few in a million and every true tie, are formatted
by ``"%.3f"`` itself.
``tests/unit/exporters/statsd/test_timers.py`` compares the output with
:func:`~exporters.statsd.format.format_rounded` value by value, ties and values an
ulp either side of a half included.
"""

from __future__ import annotations

from collections.abc import Sequence

#: The fixed-point range of ``format_rounded``: beyond it, the caller's other path.
_LIMIT = 1e12
#: Relative distance from a half (or from an integer) within which ``p`` cannot be
#: trusted: about four ulps, twice what the product's rounding can move it.
_MARGIN = 1e-15
_NEWLINE, _MINUS, _POINT, _ZERO = 10, 45, 46, 48
#: Bytes one value can take besides its tail: newline, sign, 13 digits, point, 3 decimals.
_VALUE_ROOM = 20


def fixed_text(values: Sequence[float], scale: float, templates: Sequence[str]) -> str | None:
    """What :func:`~exporters.statsd.timers.timer_text` returns for the same arguments
    (each value's ``format_rounded(value * scale) + tail``, joined by newlines, where
    its template is ``"%.3f" + tail`` with ``%`` doubled); None if a scaled value is
    not finite or not within +-1e12.

    The templates are typically one or two strings repeated (a series' tails by
    rate); each distinct one is turned into its tail's bytes once.
    """
    count = len(values)
    if len(templates) != count:
        raise ValueError(f"{count} values and {len(templates)} templates")
    out = bytearray(count * 32 + 64)
    buf = out
    cap = len(out)
    pos = 0
    encoded: dict[str, bytes] = {}
    last_tail = None
    tail_bytes = b""
    tail_chars = tail_bytes
    tail_size = 0
    for i in range(count):
        x = values[i] * scale
        if not -_LIMIT < x < _LIMIT:  # NaN too
            return None
        tail = templates[i]
        if tail is not last_tail:
            found = encoded.get(tail)
            if found is None:
                found = encoded[tail] = tail[4:].replace("%%", "%").encode()
            tail_bytes, tail_size, last_tail = found, len(found), tail
            tail_chars = tail_bytes
        if pos + _VALUE_ROOM + tail_size > cap:
            out.extend(bytes(cap + _VALUE_ROOM + tail_size))
            cap = len(out)
            buf = out
        if i:
            buf[pos] = _NEWLINE
            pos += 1
        pos = _write_value(buf, pos, x)
        for j in range(tail_size):
            buf[pos + j] = tail_chars[j]
        pos += tail_size
    return out[:pos].decode()


def _write_value(buf: bytearray, pos: int, x: float) -> int:
    """Write ``format_rounded(x)`` at ``pos``; return the position after it."""
    negative = x < 0
    a = -x if negative else x
    p = a * 1000.0
    whole = int(p)  # p >= 0: truncation is floor
    fraction = p - whole  # exact (Sterbenz)
    margin = p * _MARGIN
    if -margin <= fraction - 0.5 <= margin:
        return _write_exact(buf, pos, x)  # p may be on the wrong side: ask "%.3f"
    # Near an integer either side of p rounds to it: p rounded up onto ``whole``
    # from just below it still rounds to ``whole``.
    thousandths = whole + 1 if fraction > 0.5 else whole
    if negative and thousandths:
        buf[pos] = _MINUS
        pos += 1
    units = thousandths // 1000
    decimals = thousandths - units * 1000
    digits = 1
    rest = units
    while rest >= 10:
        rest //= 10
        digits += 1
    at = pos + digits - 1
    while True:
        buf[at] = _ZERO + units % 10
        units //= 10
        if not units:
            break
        at -= 1
    pos += digits
    if decimals:
        buf[pos] = _POINT
        buf[pos + 1] = _ZERO + decimals // 100
        pos += 2
        tens, last = decimals // 10 % 10, decimals % 10
        if tens or last:
            buf[pos] = _ZERO + tens
            pos += 1
            if last:
                buf[pos] = _ZERO + last
                pos += 1
    return pos


def _write_exact(buf: bytearray, pos: int, x: float) -> int:
    """``"%.3f"`` of ``x`` with its trailing zeros and point stripped, ``-0`` as ``0``."""
    text = (b"%.3f" % x).rstrip(b"0").rstrip(b".")
    if text == b"-0":
        text = b"0"
    size = len(text)
    for j in range(size):
        buf[pos + j] = text[j]
    return pos + size
