"""Parser of node's util.inspect output, which the StatsD admin interface prints."""

from __future__ import annotations

import re
from typing import Any

_INT = re.compile(r"^[-+]?\d+$")


_JS_TOKEN = re.compile(
    r"""\s*(?:
      (?P<more>\.\.\.\ (?P<more_n>\d+)\ more\ items?)
    | (?P<tag>\[(?:Object|Array|Circular[^\]]*|Function[^\]]*|Getter[^\]]*)\])
    | (?P<punct>[{}\[\],:])
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`)
    | (?P<num>-?(?:Infinity|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)n?)
    | (?P<ident>[A-Za-z_$][\w$]*)
    )""",
    re.X,
)
_JS_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)", re.S)
_JS_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _js_unescape(body: str) -> str:
    def replace(match: re.Match[str]) -> str:
        esc = match.group(1)
        if esc.startswith("u{"):
            return chr(int(esc[2:-1], 16))
        if esc.startswith(("u", "x")) and len(esc) > 1:
            return chr(int(esc[1:], 16))
        return _JS_SIMPLE_ESCAPES.get(esc, esc)

    return _JS_ESCAPE.sub(replace, body)


def _js_number(text: str) -> int | float:
    text = text.rstrip("n")
    if text in ("NaN", "-NaN"):
        return float("nan")
    if text.endswith("Infinity"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == "-0":
        return -0.0
    return int(text) if _INT.match(text) else float(text)


def parse_js_inspect(text: str) -> Any:
    """Parse Node's ``util.inspect`` rendering of plain data (objects, arrays, numbers, ...).

    The StatsD admin commands print their tables this way. Keys may be bare or quoted,
    output may be wrapped over lines, and numbers include NaN/Infinity. Output that
    Node truncated ("... 5 more items", "[Object]") raises ValueError, because silently
    dropping timer samples would make assertions lie.
    """
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _JS_TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"cannot parse util.inspect output at {text[pos : pos + 40]!r}")
        pos = match.end()
        kind = "more" if match.group("more") else match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))

    index = 0

    def peek() -> tuple[str, str]:
        return tokens[index] if index < len(tokens) else ("eof", "")

    def take(expected: str | None = None) -> tuple[str, str]:
        nonlocal index
        token = peek()
        if expected is not None and token[1] != expected:
            raise ValueError(f"expected {expected!r}, found {token[1]!r} in util.inspect output")
        index += 1
        return token

    def value() -> Any:
        kind, raw = take()
        if kind == "punct" and raw == "{":
            result: dict[str, Any] = {}
            while peek()[1] != "}":
                key_kind, key_raw = take()
                if key_kind == "str":
                    key = _js_unescape(key_raw[1:-1])
                elif key_kind in ("ident", "num"):
                    key = key_raw
                elif key_kind == "more":
                    raise ValueError(f"util.inspect output was truncated: {key_raw}")
                else:
                    raise ValueError(f"unexpected key {key_raw!r} in util.inspect output")
                take(":")
                result[key] = value()
                if peek()[1] == ",":
                    take(",")
            take("}")
            return result
        if kind == "punct" and raw == "[":
            items: list[Any] = []
            while peek()[1] != "]":
                if peek()[0] == "more":
                    raise ValueError(f"util.inspect output was truncated: {peek()[1]}")
                items.append(value())
                if peek()[1] == ",":
                    take(",")
            take("]")
            return items
        if kind == "str":
            return _js_unescape(raw[1:-1])
        if kind == "num":
            return _js_number(raw)
        if kind == "ident":
            return {"true": True, "false": False, "null": None, "undefined": None}.get(raw, raw)
        if kind in ("tag", "more"):
            raise ValueError(f"util.inspect output was truncated: {raw}")
        raise ValueError(f"unexpected {raw!r} in util.inspect output")

    result = value()
    if index != len(tokens):
        raise ValueError(f"trailing data in util.inspect output: {tokens[index:]}")
    return result
