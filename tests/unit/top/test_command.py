"""The ``top`` subcommand: the missing extra, the options, and argument mistakes."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from telemetry.cli.main import main
from telemetry.top import command


@pytest.mark.parametrize(("argv", "missing"), [
    (["top"], "textual"),
    (["top", "--once"], "rich"),
])
def test_without_the_top_extra_it_says_which_to_install_and_exits_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        argv: list[str], missing: str) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == missing else real(name, *args)

    monkeypatch.setattr(command.importlib.util, "find_spec", find_spec)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"needs {missing}" in err and "pip install 'yolo-telemetry[top]'" in err


def test_json_needs_no_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command.importlib.util, "find_spec", lambda name, *a: None)
    args = command.argparse.Namespace(json=True, once=False)
    assert command.missing_packages(args) == []


def test_urls_and_prometheus_together_are_a_usage_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["top", "--json", "--prometheus", "http://p:9090", "http://i:9464"]) == 2
    assert "not both" in capsys.readouterr().err


def test_json_of_an_instance_that_is_not_there_exits_1_and_says_why(
        capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import socket
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["top", f"127.0.0.1:{port}", "--json", "--interval", "0.01"]) == 1
    frame = json.loads(capsys.readouterr().out)
    assert frame["header"]["instances"][0]["status"] == "lost"
    assert "connection refused" in frame["header"]["instances"][0]["error"]


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan"])
def test_intervals_are_positive_seconds(value: str) -> None:
    with pytest.raises(SystemExit):
        main(["top", "--interval", value])
