"""One process model, two implementations: ``fork`` (POSIX: children inherit the imported libraries, one fork per
call) and ``spawn`` (every platform, Windows included: warm worker processes started with
``multiprocessing.get_context("spawn")``, one call at a time each, reused while they stay healthy).

``process_model()`` picks one: ``FCAST_PROCESS_MODEL`` = ``fork`` / ``spawn`` / ``auto`` (unset = auto = fork
where the platform has ``os.fork``, else spawn; asking for fork where there is none logs why and uses spawn).

``call_isolated(func, args, timeout)`` runs a module-level function in another process in either model and
returns ``(result, None)`` or ``(None, reason)`` — ``"timeout"`` (the process tree is stopped) or how the
process ended without a result. The spawn path uses nothing POSIX-only: multiprocessing pipes, process
sentinels, and psutil to stop a process tree (children first, then the process: terminate, wait, kill).

Spawned workers re-import the parent's ``__main__`` module (multiprocessing's spawn rule): a script that starts
them must keep its top-level work under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import logging
import multiprocessing as mp
import multiprocessing.util  # noqa: F401 - its atexit hook (joins children) is registered before ours
import os
import shutil
import signal
import socket
import sys
import tempfile
import weakref
import threading
import time
import traceback
from pathlib import Path
from multiprocessing.connection import wait as wait_ready
from typing import Any, Callable, Iterator

import psutil

ENV = "FCAST_PROCESS_MODEL"
MODELS = ("fork", "spawn")
# a fresh worker's start (interpreter + the imports it is asked to preload) is bounded on its own, so a call's
# timeout measures the call, as it does for a fork of a parent that already imported the library
START_TIMEOUT_S = float(os.environ.get("FCAST_SPAWN_START_TIMEOUT", "300"))
MAX_IDLE = int(os.environ.get("FCAST_SPAWN_IDLE", "4"))  # warm workers kept between calls
MAX_USES = int(os.environ.get("FCAST_SPAWN_MAX_USES", "2000"))  # calls before a worker is replaced (leaks)

log = logging.getLogger(__name__)
_said: set[str] = set()


def _say_once(msg: str) -> None:
    if msg not in _said:
        _said.add(msg)
        log.warning(msg)


def process_model() -> str:
    """``"fork"`` or ``"spawn"``: ``FCAST_PROCESS_MODEL`` (fork / spawn / auto), auto = fork where it exists."""
    want = (os.environ.get(ENV) or "auto").strip().lower()
    has_fork = hasattr(os, "fork")
    if want == "spawn":
        return "spawn"
    if want == "fork":
        if has_fork:
            return "fork"
        _say_once(f"{ENV}=fork but this platform has no os.fork: using the spawn process model")
        return "spawn"
    if want not in ("", "auto"):
        _say_once(f"{ENV}={want!r} is not fork, spawn or auto: using auto "
                  f"({'fork' if has_fork else 'spawn'} on this platform)")
    return "fork" if has_fork else "spawn"


# ------------------------------------------------------------------------------------------------ worker side
def owner() -> dict[str, Any]:
    """Who runs this: ``{pid, create_time, host}`` of the current process, stored with a run (a compat_run's
    config, a plan execution's execution.json) so that the next run can tell a killed one from a live one."""
    me = psutil.Process()
    return {"pid": me.pid, "create_time": me.create_time(), "host": socket.gethostname()}


def owner_gone(info: dict[str, Any]) -> bool:
    """True when the process in ``info`` (:func:`owner`) ran on this host and no longer exists (or its pid now
    belongs to another process, or it is a zombie); False when alive or not judgeable (another host)."""
    if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return False
    pid = info["pid"]
    if not psutil.pid_exists(pid):
        return True
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return True
        created = info.get("create_time")
        return created is not None and abs(proc.create_time() - float(created)) > 1.0
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # pragma: no cover - access denied: it exists
        return False


OWNER_FILE = ".fcast-owner.json"
#: a scratch folder without an owner file (made before owners were recorded) is removed once this old
LEGACY_SCRATCH_AGE_S = 24 * 3600.0


def sweep_scratch(prefix: str, base: str | Path | None = None) -> list[str]:
    """Remove the scratch folders ``<tmp>/<prefix>*`` that a killed process left behind: those whose owner
    (:func:`owner`, in the folder's owner file) is gone, and those without an owner file older than
    LEGACY_SCRATCH_AGE_S. A live owner's folder, or one on another host, is kept. Returns the names removed."""
    removed = []
    for d in Path(base or tempfile.gettempdir()).glob(prefix + "*"):
        if not d.is_dir() or d.is_symlink():
            continue
        try:
            info = json.loads((d / OWNER_FILE).read_text(encoding="utf-8"))
            gone = isinstance(info, dict) and owner_gone(info)
        except FileNotFoundError:
            try:
                gone = time.time() - d.stat().st_mtime > LEGACY_SCRATCH_AGE_S
            except OSError:
                continue
        except (OSError, ValueError):  # being written, unreadable: not ours to judge
            continue
        if gone:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d.name)
    return removed


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[str]:
    """A temporary folder like ``tempfile.TemporaryDirectory(prefix=...)`` that records its owner, so that a
    process killed while using it (SIGKILL, a closed terminal on Windows: no clean-up runs) leaves nothing that
    lasts: the next ``scratch_dir`` of the same prefix removes it (:func:`sweep_scratch`). A compat run of the
    whole neuralforecast matrix writes gigabytes of saved models there."""
    sweep_scratch(prefix)
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        (path / OWNER_FILE).write_text(json.dumps(owner()), encoding="utf-8")
        yield str(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def die_with_parent(parent: int) -> None:
    """In a forked probe process (a group, a cell, a miniature run): end together with ``parent``, the process
    that started it, so that a runner killed mid-matrix leaves no probe processes running cells (and holding
    memory) for nobody. Linux: the kernel kills this process when its parent dies (PR_SET_PDEATHSIG); a parent
    already gone ends it now. Elsewhere the pipes do it: a result written to a runner that is gone fails."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            pass
    if os.getppid() != parent:
        os._exit(5)


def watch_parent(interval: float = 1.0) -> None:
    """In a spawned worker or a release environment's process (every platform): a daemon thread that ends this
    process when the one that started it is gone, even in the middle of a call (a closed pipe only ends it between
    calls). Not PR_SET_PDEATHSIG: a warm worker outlives the thread that started it."""
    try:
        parent = psutil.Process().parent()
    except psutil.Error:  # pragma: no cover
        return
    if parent is None:
        return
    who = {"pid": parent.pid, "create_time": parent.create_time(), "host": socket.gethostname()}

    def watch() -> None:
        while True:
            time.sleep(interval)
            if owner_gone(who):
                os._exit(5)

    threading.Thread(target=watch, name="fcast-parent-watch", daemon=True).start()


def _first_line(e: BaseException) -> str:
    """The first line of an exception's message (at most 500 characters): what a result row keeps."""
    text = str(e).strip()
    return (text.splitlines() or [""])[0][:500] if text else ""


def _worker_main(conn: Any) -> None:
    """A spawned worker: run ``(func, args)`` messages one at a time and send back ``("ok", result)`` or
    ``("raised", "Type: message", traceback)``; ``None`` or a closed pipe (the parent is gone) ends it."""
    watch_parent()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        except Exception as e:  # noqa: BLE001 - the message could not be unpickled (an import failed)
            conn.send(("raised", f"{type(e).__name__}: {_first_line(e)}", traceback.format_exc(limit=6)[-2000:]))
            continue
        if msg is None:
            return
        func, args = msg
        try:
            out: tuple[Any, ...] = ("ok", func(*args))
        except BaseException as e:  # noqa: BLE001 - reported, the worker stays usable
            out = ("raised", f"{type(e).__name__}: {_first_line(e)}", traceback.format_exc(limit=6)[-2000:])
        try:
            conn.send(out)
        except Exception as e:  # noqa: BLE001 - an unpicklable result
            conn.send(("raised", f"the result could not be sent back: {type(e).__name__}: {_first_line(e)}", ""))


def _import_modules(names: tuple[str, ...]) -> None:
    for name in names:
        importlib.import_module(name)


def _json_call(func: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """``func(*args)`` as plain JSON data, exactly as the fork path returns it (a JSON line)."""
    return json.loads(json.dumps(func(*args), default=str))


# ------------------------------------------------------------------------------------------------ parent side
def _gone(p: psutil.Process) -> bool:
    try:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE  # a zombie has stopped (POSIX)
    except psutil.Error:
        return True


def _wait_gone(procs: list[psutil.Process], grace: float) -> list[psutil.Process]:
    deadline = time.monotonic() + grace
    alive = [p for p in procs if not _gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if not _gone(p)]
    return alive


def stop_tree(pid: int, grace: float = 1.0) -> None:
    """Stop a process and everything it started: children first, then the process (terminate, wait, kill)."""
    try:
        root = psutil.Process(pid)
        children = root.children(recursive=True)
    except psutil.Error:
        return
    for group in (children, [root]):
        for p in group:
            try:
                p.terminate()
            except psutil.Error:
                pass
        for p in _wait_gone(group, grace):
            try:
                p.kill()
            except psutil.Error:
                pass
        _wait_gone(group, grace)


class SpawnWorker:
    """One spawned worker process and the parent's end of its pipe. One call in flight at a time."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe(duplex=True)
        # not daemonic: a daemonic process may not start processes of its own (a DataLoader with workers);
        # the pool's atexit hook and the worker's EOF on a closed pipe end it instead
        self.proc = ctx.Process(target=_worker_main, args=(child,), name="fcast-worker", daemon=False)
        self.proc.start()
        child.close()
        _all.add(self)
        self.preloaded: set[str] = set()
        self.uses = 0
        self.sent_at = 0.0

    @property
    def sentinel(self) -> Any:
        return self.proc.sentinel

    def send(self, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """Send one call (blocks while the worker has not yet read a large one). A worker that died before
        reading it is reported by the next ``collect`` / ``call``, not raised here."""
        self.uses += 1
        self.sent_at = time.monotonic()
        try:
            self.conn.send((func, args))
        except OSError:  # the pipe is broken: make sure the process is gone, collect says how
            stop_tree(self.proc.pid)
            self.proc.join(5)

    def exit_reason(self) -> str:
        code = self.proc.exitcode
        if code is None:
            return "is still running"
        if code < 0:
            return f"killed by signal {-code}"
        return f"exited with code {code}"

    def collect(self) -> tuple[Any, ...] | None:
        """The reply once the pipe or the process sentinel is ready: ``("ok", result)``, ``("raised", text, tb)``
        or ``("died", how it ended)``; ``None`` when nothing is there yet."""
        try:
            if self.conn.poll():
                return self.conn.recv()
        except (EOFError, OSError):
            self.proc.join(5)
            return ("died", self.exit_reason())
        if self.proc.is_alive():
            return None
        self.proc.join(5)
        try:  # the reply may have landed just before the end
            if self.conn.poll():
                return self.conn.recv()
        except (EOFError, OSError):
            pass
        return ("died", self.exit_reason())

    def call(self, func: Callable[..., Any], args: tuple[Any, ...], timeout: float) -> tuple[Any, ...]:
        """Send one call and wait: ``("ok", result)``, ``("raised", text, tb)``, ``("died", how)`` or
        ``("timeout",)``."""
        self.send(func, args)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return self.collect() or ("timeout",)
            if wait_ready([self.conn, self.sentinel], left):
                got = self.collect()
                if got is not None:
                    return got

    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self) -> None:
        """Stop the worker's process tree (psutil), then reap it."""
        if self.proc.is_alive():
            stop_tree(self.proc.pid)
        self.proc.join(5)
        self.conn.close()

    def close(self, grace: float = 2.0) -> None:
        """Ask the worker to end; stop its tree if it does not within ``grace`` seconds."""
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.proc.join(grace)
        self.kill()


_idle: list[SpawnWorker] = []
_all: weakref.WeakSet[SpawnWorker] = weakref.WeakSet()
_lock = threading.Lock()


def acquire() -> SpawnWorker:
    """A warm idle worker, else a freshly spawned one."""
    with _lock:
        while _idle:
            w = _idle.pop()
            if w.alive():
                return w
            w.kill()
    return SpawnWorker()


def release(w: SpawnWorker) -> None:
    """Back to the idle pool (healthy, below the caps), else ended."""
    with _lock:
        if w.alive() and w.uses < MAX_USES and len(_idle) < MAX_IDLE:
            _idle.append(w)
            return
    w.close()


def discard(w: SpawnWorker) -> None:
    """A worker that overran or died: its process tree is stopped, never reused."""
    w.kill()


def shutdown() -> None:
    """End every idle worker (safe to call any time; the next call starts fresh ones)."""
    with _lock:
        workers, _idle[:] = list(_idle), []
    for w in workers:
        w.close()


def _at_exit() -> None:
    shutdown()
    for w in list(_all):  # one left busy by an interrupted call
        if w.alive():
            w.kill()


atexit.register(_at_exit)  # registered after multiprocessing's own hook (which joins children): runs first


def call_isolated(func: Callable[..., Any], args: tuple[Any, ...] = (), timeout: float = 60.0, *,
                  preload: tuple[str, ...] = ()) -> tuple[Any | None, str | None]:
    """``func(*args)`` in another process; ``func`` is a module-level function (pickled by reference in spawn
    mode) and its result JSON-able. Returns ``(result, None)``, or ``(None, reason)``: ``"timeout"`` when it
    overran ``timeout`` seconds (its process tree is stopped), else how the process ended without a result.

    fork: ``preload`` modules are imported here, then a forked child runs the call (``runner.fork_call``).
    spawn: a warm worker runs it (``preload`` imported there once, outside the timeout); a worker that overran
    or died is replaced by a fresh one on the next call."""
    if process_model() == "fork":
        from .runner import fork_call

        _import_modules(tuple(preload))
        return fork_call(lambda: func(*args), timeout)
    w = acquire()
    try:
        missing = tuple(m for m in preload if m not in w.preloaded)
        if missing:
            got = w.call(_import_modules, (missing,), START_TIMEOUT_S)
            if got[0] != "ok":
                discard(w)
                how = "did not start in time" if got[0] == "timeout" else got[1]
                return None, f"worker could not start ({how})"
            w.preloaded.update(missing)
        got = w.call(_json_call, (func, args), timeout)
    except BaseException:
        discard(w)
        raise
    if got[0] == "ok":
        release(w)
        return got[1], None
    if got[0] == "raised":
        release(w)
        return None, f"raised {got[1]}"
    discard(w)
    return None, "timeout" if got[0] == "timeout" else got[1]
