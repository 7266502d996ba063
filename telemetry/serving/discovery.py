"""Prometheus file-based service discovery: each process registers its own target.

Every process writes one small file, ``<dir>/<service>-<pid>-<id>.json``, in the
format ``file_sd_configs`` reads, and removes it when it stops. One file per process
means no two processes ever write the same file, so no locking is needed; a write
goes to a temporary file renamed into place, so Prometheus never reads half a file.
Point Prometheus at ``<dir>/*.json``.

A process killed without a chance to clean up leaves its file behind; the next
process to register on the same host removes files whose process is gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("telemetry.discovery")

_WILDCARDS = {"0.0.0.0", "::", ""}


def advertised_address(host: str, port: int, advertise_host: str | None = None) -> str:
    """The address other machines reach this process on."""
    name = advertise_host or (socket.gethostname() if host in _WILDCARDS else host)
    return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"


class FileSdRegistration:
    """This process's target file; :meth:`register` writes it, :meth:`remove` deletes it."""

    def __init__(self, directory: str | os.PathLike, *, service: str, instance_id: str,
                 address: str, labels: dict[str, str] | None = None) -> None:
        self.directory = Path(directory)
        self.address = address
        self.labels = {"service": service, "yolo_instance_id": instance_id,
                       "hostname": socket.gethostname(), "pid": str(os.getpid()),
                       **(labels or {})}
        self.path = self.directory / f"{service}-{os.getpid()}-{instance_id[:8]}.json"

    def register(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._prune_dead_processes()
        document = [{"targets": [self.address], "labels": self.labels}]
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as file:
                json.dump(document, file, indent=2)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return self.path

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _prune_dead_processes(self) -> None:
        hostname = socket.gethostname()
        for path in self.directory.glob("*.json"):
            labels = _labels_of(path)
            if labels.get("hostname") != hostname or not labels.get("pid", "").isdigit():
                continue
            if not _alive(int(labels["pid"])):
                log.info("removing the target of a process that is gone: %s", path)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def _labels_of(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
        return dict(document[0].get("labels", {}))
    except (OSError, ValueError, IndexError, AttributeError, TypeError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
