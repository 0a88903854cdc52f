"""Cross-process locks: one scan of a library, one ingest of a game, one training of a model selector at a time.

``with hold("scan:neuralforecast"):`` takes an OS file lock (``filelock``: ``fcntl.flock`` on POSIX,
``msvcrt.locking`` on Windows) on ``$FCAST_HOME/locks/<name>.lock``. The OS drops the lock when its holder exits or
is killed, so a dead process never blocks the next run and there is nothing to clean up by hand. A second process
waits (``FCAST_LOCK_TIMEOUT`` seconds, default 900) and then is refused with one line naming the holder (pid, host,
command, since when), read from the ``<name>.owner.json`` file the holder writes beside the lock.

Names say what is locked: ``scan:<library>``, ``ingest:<game>``, ``train:<game>/<selector>``. Locks are re-entrant
within a process (``train`` holds ``train:loto6/N1`` and calls ``retrain``, which takes it again).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from filelock import FileLock, Timeout

from . import config

DEFAULT_TIMEOUT_S = 900.0
_LOCKS: dict[str, FileLock] = {}
_GUARD = threading.Lock()


class LockBusyError(RuntimeError):
    """Another process holds the lock for longer than we wait: one line naming it and what to do."""

    def __init__(self, name: str, waited: float, owner: Optional[dict[str, Any]]):
        self.name, self.waited, self.owner = name, waited, owner
        super().__init__(
            f"{name} is in use by {describe(owner)}; waited {waited:g}s. Nothing was changed: run again when it "
            "has finished (a holder that dies releases the lock by itself), or wait longer with "
            "FCAST_LOCK_TIMEOUT=<seconds>")


def lock_dir() -> Path:
    return config.data_home() / "locks"


def lock_path(name: str) -> Path:
    """``scan:neuralforecast`` -> ``<lock_dir>/scan_neuralforecast-<hash>.lock`` (a file name on every OS)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:80] or "lock"
    return lock_dir() / f"{safe}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}.lock"


def timeout_s() -> float:
    try:
        return max(0.0, float(os.environ.get("FCAST_LOCK_TIMEOUT", DEFAULT_TIMEOUT_S)))
    except ValueError:
        return DEFAULT_TIMEOUT_S


def _owner_file(path: Path) -> Path:
    return path.with_name(path.name[:-len(".lock")] + ".owner.json")


def read_owner(name: str) -> Optional[dict[str, Any]]:
    try:
        return json.loads(_owner_file(lock_path(name)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def describe(owner: Optional[dict[str, Any]]) -> str:
    if not owner:
        return "another process"
    cmd = f", `{owner['command']}`" if owner.get("command") else ""
    return f"process {owner.get('pid')} on {owner.get('host')}{cmd}, since {owner.get('since')}"


def _write_owner(path: Path, name: str) -> None:
    info = {"name": name, "pid": os.getpid(), "host": socket.gethostname(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] if sys.argv else "",
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(info), encoding="utf-8")
        os.replace(tmp, _owner_file(path))
    except OSError:  # the owner note is informative only; the OS lock is what counts
        try:
            tmp.unlink()
        except OSError:
            pass


def _lock(path: Path) -> FileLock:
    with _GUARD:
        lk = _LOCKS.get(str(path))
        if lk is None:
            lk = _LOCKS[str(path)] = FileLock(str(path))
        return lk


@contextmanager
def hold(name: str, timeout: Optional[float] = None) -> Iterator[None]:
    """Hold the cross-process lock ``name``; wait up to ``timeout`` (default FCAST_LOCK_TIMEOUT) seconds, then
    raise :class:`LockBusyError`. On a terminal a note says what it waits for."""
    path = lock_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    lk, wait = _lock(path), timeout_s() if timeout is None else timeout
    outer = not lk.is_locked
    try:
        lk.acquire(timeout=min(wait, 1.0))
    except Timeout:
        if sys.stderr is not None and sys.stderr.isatty():
            print(f"waiting for {name} (held by {describe(read_owner(name))}) ...", file=sys.stderr, flush=True)
        try:
            lk.acquire(timeout=max(0.0, wait - 1.0))
        except Timeout:
            raise LockBusyError(name, wait, read_owner(name)) from None
    try:
        if outer:
            _write_owner(path, name)
        yield
    finally:
        lk.release()


def locked(key: Callable[..., str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: run the function holding ``hold(key(*args, **kwargs))``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with hold(key(*args, **kwargs)):
                return fn(*args, **kwargs)

        return wrapper

    return deco
