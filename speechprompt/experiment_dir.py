"""One training process per experiment folder, and a resumed run that matches its recorded config.

``ExperimentLock`` holds ``<exp>/.lock`` (JSON: pid, host, process start time, command) while a
run writes the folder. A second run is refused with the owner's pid; a lock whose process is gone
(killed, machine rebooted, pid reused) is stale: it is taken over and said so.

``check_resume_config`` compares the config a run resumes with against ``<exp>/config.yaml``: a
change is refused unless allowed, and an allowed change is printed and appended to
``train_log.jsonl`` (old and new value of each key).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import yaml

LOCK = ".lock"
# keys that change nothing about the trained weights
COSMETIC_KEYS = {"experiment.progress", "experiment.log_every"}
UNWRITTEN_GRACE_S = 5.0  # an empty lock younger than this is being written by its owner


class ExperimentDirError(ValueError):
    """The experiment folder is in use, or a resume does not match the run it continues."""


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), to tell a reused pid from the lock's owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class ExperimentLock:
    """``with ExperimentLock(exp_dir):`` — refuse a second run in the same folder, take over stale locks."""

    def __init__(self, directory: str | Path, log=print):
        self.path = Path(directory) / LOCK
        self.log = log
        self.held = False

    def owner(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def stale_reason(self, owner: dict[str, Any] | None) -> str | None:
        """Why the lock's owner cannot be running any more, or None when it may be."""
        if owner is None:
            try:
                age = time.time() - self.path.stat().st_mtime
            except OSError:
                return "it is gone"
            return f"it is unreadable and {age:.0f} s old" if age > UNWRITTEN_GRACE_S else None
        if owner.get("host") != socket.gethostname():
            return None  # another machine: cannot tell
        pid = int(owner.get("pid", -1))
        if pid <= 0 or not _alive(pid):
            return f"process {pid} is not running"
        started = owner.get("process_start")
        if started is not None and _process_start(pid) not in (None, started):
            return f"pid {pid} now belongs to another process"
        return None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "process_start": _process_start(os.getpid()),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self.owner()
                reason = self.stale_reason(owner)
                if reason is None:
                    who = (f"process {owner.get('pid')} on {owner.get('host')} (since {owner.get('started')})"
                           if owner else "a process that is starting")
                    raise ExperimentDirError(
                        f"{self.path.parent} is in use by {who}; wait for it to finish or choose another "
                        f"experiment.dir (if no such process runs, delete {self.path})") from None
                self.log(f"taking over the stale lock {self.path} ({reason})")
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(record, f)
            self.held = True
            return
        raise ExperimentDirError(f"{self.path}: could not take the lock; another run keeps creating it")

    def release(self) -> None:
        if self.held and (self.owner() or {}).get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> ExperimentLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(values, dict) and values:
        out: dict[str, Any] = {}
        for key, value in values.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): values}


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``key -> (old, new)`` for every key whose value differs (cosmetic keys left out)."""
    before, after = _flatten(old), _flatten(new)
    return {key: (before.get(key), after.get(key)) for key in sorted(set(before) | set(after))
            if key not in COSMETIC_KEYS and before.get(key) != after.get(key)}


def check_resume_config(exp: Path, new: dict[str, Any], allow_changes: bool, log=print) -> dict[str, tuple[Any, Any]]:
    """Refuse (or, allowed, record) a resume whose config differs from ``exp/config.yaml``."""
    path = exp / "config.yaml"
    if not path.is_file():
        return {}
    try:
        old = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ExperimentDirError(f"{path}: not valid YAML ({err}); cannot compare it with this run's config") from err
    changes = config_changes(old, new)
    if not changes:
        return {}
    listed = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items())
    if not allow_changes:
        raise ExperimentDirError(f"{path}: --resume with a changed config ({listed}); resume with the options of "
                                 "the run, or pass --allow-changes to continue with these (recorded in "
                                 "train_log.jsonl)")
    log(f"resuming with a changed config (--allow-changes): {listed}")
    record = {"event": "config_changed", "time": time.strftime("%Y-%m-%d %H:%M:%S"),
              "changes": {k: {"old": a, "new": b} for k, (a, b) in changes.items()}}
    with open(exp / "train_log.jsonl", "a") as f:
        f.write(json.dumps(record, default=str) + "\n")
    return changes
