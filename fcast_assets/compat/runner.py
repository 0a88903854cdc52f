"""Run probe cells fast and safely: import once, one setup per group, every cell isolated, timeouts everywhere.

A *group* shares one expensive setup (synthetic data, usually one fitted model); its *cells* each probe one
argument value against that setup. Two implementations of the same contract (``compat.process.process_model``):

- **fork** (default where ``os.fork`` exists): the parent (which imported the library once) forks up to
  ``workers`` group processes; each runs the setup, then forks one child per cell, so a cell that crashes, hangs
  or mutates the fitted object cannot affect the next one. Results stream back as JSON lines; a group process
  that dies or overruns turns its unreported cells into ``error`` (WorkerCrashed) or ``timeout`` cells.
- **spawn** (Windows; ``FCAST_PROCESS_MODEL=spawn`` anywhere): a pool of up to ``workers`` spawned worker
  processes, each importing the library once (``adapter.prepare()``) and taking groups one at a time: the setup,
  then each cell on a deep copy of the setup's state. The parent times every step: a cell that overruns gets its
  worker's process tree stopped (psutil) and is ``timeout``; a worker that dies makes its cell ``error``
  (WorkerCrashed); either way the group's remaining cells go on in a fresh worker, which runs the setup again.

In both, ``on_result`` is called in the parent exactly once per cell — never a lost run. A cell that times out
is run once more in a fresh process (fork: a new child of its group process; spawn: a fresh worker, setup again)
before ``timeout`` is recorded, and Auto cells have a timeout of their own (``cell_limit``, ``after_retry``).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import selectors
import signal
import tempfile
import time
import traceback
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

from .process import (START_TIMEOUT_S, SpawnWorker, _first_line, acquire, die_with_parent, discard, process_model,
                      release, wait_ready)

log = logging.getLogger(__name__)


@dataclass
class Cell:
    model: str
    method: str
    param: str
    value: Any
    value_label: str
    scenario: str = "baseline"
    spec: dict[str, Any] = field(default_factory=dict)  # how the adapter runs it (JSON-able)
    facts: dict[str, Any] | None = None  # scenario facts of the setup it runs in (compat.scenario)


@dataclass
class Group:
    key: str
    model: str
    setup: dict[str, Any]  # JSON-able: how the adapter builds the shared state
    cells: list[Cell]


class CellSkipped(Exception):
    """Raised by an adapter's ``run`` when a cell cannot run here (its data cannot be reached, e.g. offline): the
    cell is recorded ``skipped`` with the message as the reason (the subclass name as ``exception_type``), not as
    an error of the library."""


class Adapter(Protocol):
    def setup(self, group: Group) -> Any: ...

    def run(self, state: Any, cell: Cell) -> list[str]:
        """Execute the cell against ``state``; return post-condition breaches ([] when the output is right)."""
        ...


def _warnings_of(caught: list[warnings.WarningMessage]) -> list[str]:
    seen: list[str] = []
    for w in caught:
        line = f"{w.category.__name__}: {str(w.message).strip().splitlines()[0][:200] if str(w.message).strip() else ''}"
        if line not in seen:
            seen.append(line)
    return seen[:10]


def execute_cell(adapter: Adapter, state: Any, cell: Cell) -> dict[str, Any]:
    """Run one cell in this process and classify it: ok / suspect / error."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            breaches = adapter.run(state, cell)
        except CellSkipped as e:
            return {"status": "skipped", "exception_type": type(e).__name__, "message": str(e)[:1000] or None,
                    "seconds": time.perf_counter() - t0, "warnings": _warnings_of(caught)}
        except Exception as e:  # noqa: BLE001 - every library exception is a result
            return {"status": "error", "exception_type": type(e).__name__, "message": _first_line(e),
                    "seconds": time.perf_counter() - t0, "warnings": _warnings_of(caught),
                    "traceback": traceback.format_exc(limit=6)[-2000:]}
    status = "suspect" if breaches else "ok"
    return {"status": status, "exception_type": None, "message": "; ".join(breaches)[:1000] or None,
            "seconds": time.perf_counter() - t0, "warnings": _warnings_of(caught)}


def _write_line(fd: int, payload: dict[str, Any]) -> None:
    data = (json.dumps(payload, default=str) + "\n").encode()
    while data:
        n = os.write(fd, data)
        data = data[n:]


def _read_all(fd: int, timeout: float) -> tuple[bytes, bool]:
    """Read until EOF or timeout; returns (data, timed_out)."""
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return b"".join(chunks), True
            if not sel.select(left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
    finally:
        sel.close()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _exit_reason(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exited with code {os.WEXITSTATUS(status)}"


def fork_call(fn: Callable[[], dict[str, Any]], timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    """Run ``fn()`` in a forked child (the libraries the parent imported are inherited) and return its JSON-able
    result: ``(result, None)``, or ``(None, reason)`` when it overran (``"timeout"``, the child is killed) or died
    without a result (how it exited). The one place the compat runner and the plan miniature run fork."""
    r, w = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        die_with_parent(parent)
        code = 0
        try:
            _write_line(w, fn())
        except BaseException:  # noqa: BLE001
            code = 3
        finally:
            os._exit(code)
    os.close(w)
    try:
        data, timed_out = _read_all(r, timeout)
    finally:
        os.close(r)
    if timed_out:
        _kill(pid)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return None, "timeout"
    try:
        return json.loads(data.decode().strip().splitlines()[-1]), None
    except (IndexError, ValueError):
        return None, _exit_reason(status)


AUTO_TIMEOUT_FACTOR = 3.0  # an Auto cell's own timeout, by default: this many times the cell timeout
TIMEOUT_RETRIES = 1  # a cell that times out runs again, in a fresh process, this many times before it is recorded


def is_auto(cell: Cell) -> bool:
    """An Auto cell (a hyper-parameter search: many fits in one call): ``spec["auto"]`` when the adapter says so
    (a registry capability), else a model class whose name starts with ``Auto``."""
    if "auto" in cell.spec:
        return bool(cell.spec["auto"])
    return cell.model.rsplit(".", 1)[-1].startswith("Auto")


def cell_limit(cell: Cell, cell_timeout: float, auto_cell_timeout: float | None = None) -> float:
    """The seconds one try of ``cell`` may take: its spec's own ``timeout`` (a catalogue value), else the Auto
    timeout for an Auto cell (default ``AUTO_TIMEOUT_FACTOR`` × ``cell_timeout``), else ``cell_timeout``."""
    if cell.spec.get("timeout"):
        return float(cell.spec["timeout"])
    if is_auto(cell):
        return float(auto_cell_timeout if auto_cell_timeout is not None else AUTO_TIMEOUT_FACTOR * cell_timeout)
    return float(cell_timeout)


def _secs(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _timeout_result(limit: float, seconds: float | None) -> dict[str, Any]:
    return {"status": "timeout", "exception_type": "Timeout", "message": f"no result within {_secs(limit)}s",
            "seconds": seconds, "warnings": []}


def after_retry(first: dict[str, Any], second: dict[str, Any], tries: int = 2) -> dict[str, Any]:
    """The recorded result of a cell whose first try(s) timed out and that ran again in a fresh process: the last
    try's status and message, ``retry`` (into the row's context) saying what happened; a timeout again says so in
    its message, an ok with no message gets the note as its message."""
    out = dict(second)
    out["retry"] = {"tries": tries, "first_try": first.get("status"), "first_message": first.get("message"),
                    "first_seconds": None if first.get("seconds") is None else round(first["seconds"], 3)}
    if second.get("status") == "timeout" and second.get("exception_type") == "Timeout":
        again = "twice" if tries == 2 else f"in {tries} tries"
        out["message"] = f"{second.get('message')}, {again} (retried in a fresh process)"
    elif not second.get("message"):
        out["message"] = f"retried in a fresh process: the first try timed out ({first.get('message')})"
    return out


def run_cell_isolated(adapter: Adapter, state: Any, cell: Cell, timeout: float) -> dict[str, Any]:
    """Fork a child for one cell; a crash or a hang becomes an error / timeout result."""
    t0 = time.perf_counter()
    res, reason = fork_call(lambda: execute_cell(adapter, state, cell), timeout)
    if reason == "timeout":
        return _timeout_result(timeout, time.perf_counter() - t0)
    if res is None:
        return {"status": "error", "exception_type": "WorkerCrashed",
                "message": f"cell process {reason} without a result",
                "seconds": time.perf_counter() - t0, "warnings": []}
    return res


def _read_line(fd: int, buf: bytes, deadline: float) -> tuple[bytes | None, bytes, str]:
    """The next newline-terminated line from ``fd`` by ``deadline`` (monotonic): ``(line, rest, "line")``, or
    ``(None, buf, "timeout" | "eof")``."""
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    try:
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, buf, "timeout"
            if not sel.select(left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return None, buf, "eof"
            buf += chunk
    finally:
        sel.close()
    line, _, rest = buf.partition(b"\n")
    return line, rest, "line"


def _batch(adapter: Adapter, state: Any, group: Group, start: int, limits: list[float],
           ) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Run cells ``start``.. of ``group`` one after another in ONE forked child, each on its own copy of the
    set-up state (``_cell_state``, as a spawn worker runs them): a process per cell costs 20-50 ms, more than a
    function call or a statistical model's cell itself. Yields ``(i, result, None)`` per cell, and at the first
    cell that overruns its limit or kills the child, ``(i, None, "timeout" | reason)`` (the child is gone; the
    caller goes on with a new batch after that cell)."""
    r, w = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the batch child
        os.close(r)
        die_with_parent(parent)
        try:
            for i in range(start, len(group.cells)):
                _write_line(w, {"i": i, **execute_cell(adapter, _cell_state(state), group.cells[i])})
        finally:
            os._exit(0)
    os.close(w)
    buf, i = b"", start
    try:
        while i < len(group.cells):
            t0 = time.perf_counter()
            line, buf, how = _read_line(r, buf, time.monotonic() + limits[i])
            if line is None:
                if how == "timeout":
                    _kill(pid)
                    yield i, _timeout_result(limits[i], time.perf_counter() - t0), "timeout"
                else:
                    _, status = os.waitpid(pid, 0)
                    pid = 0
                    yield i, None, _exit_reason(status)
                return
            res = json.loads(line.decode())
            i = int(res.pop("i")) + 1
            yield i - 1, res, None
    finally:
        os.close(r)
        if pid:
            if i < len(group.cells):  # stopped early (a timeout, or the caller closed us): the child goes too
                _kill(pid)
            os.waitpid(pid, 0)


def _group_process(adapter: Adapter, group: Group, fd: int, cell_timeout: float,
                   auto_cell_timeout: float | None = None, retries: int = TIMEOUT_RETRIES) -> None:
    """Body of a forked group process: setup once, then one forked child per cell (a cell that times out: up to
    ``retries`` more children, each forked from the same set-up state) — or, for an adapter whose cells are
    cheap (``batch_cells``), one child runs the cells in turn (``_batch``) and only a cell that overran or died
    in it runs again alone, as above."""
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = adapter.setup(group)
    except Exception as e:  # noqa: BLE001
        setup_s = time.perf_counter() - t0
        for i, _ in enumerate(group.cells):
            _write_line(fd, {"i": i, "status": "error", "exception_type": type(e).__name__,
                             "message": f"setup failed: {_first_line(e)}", "seconds": setup_s, "warnings": [],
                             "stage": "setup"})
        return
    setup_s = time.perf_counter() - t0
    limits = [cell_limit(c, cell_timeout, auto_cell_timeout) for c in group.cells]

    def isolated(i: int, first: dict[str, Any] | None = None) -> None:
        """Cell ``i`` in children of its own: its first try (unless ``first`` is given), then the retries of a
        timeout; the outcome goes to the parent."""
        res = first = first or run_cell_isolated(adapter, state, group.cells[i], limits[i])
        tries = 1
        while res["status"] == "timeout" and tries <= retries:
            res = run_cell_isolated(adapter, state, group.cells[i], limits[i])
            tries += 1
        if tries > 1:
            res = after_retry(first, res, tries)
        res.update(i=i, setup_seconds=round(setup_s, 3))
        _write_line(fd, res)

    if not getattr(adapter, "batch_cells", False):
        for i in range(len(group.cells)):
            isolated(i)
        return
    i = 0
    while i < len(group.cells):
        nxt = len(group.cells)
        for j, res, broke in _batch(adapter, state, group, i, limits):
            if broke is None:
                res.update(i=j, setup_seconds=round(setup_s, 3))
                _write_line(fd, res)
            else:  # a timeout is retried alone; a cell that killed its batch runs again alone, as it always did
                isolated(j, res if broke == "timeout" else None)
            nxt = j + 1
        i = nxt


@dataclass
class _Running:
    group: Group
    pid: int
    fd: int
    deadline: float
    buf: bytes = b""
    reported: set[int] = field(default_factory=set)


def run_groups(
    adapter: Adapter,
    groups: list[Group],
    *,
    workers: int = 2,
    cell_timeout: float = 60.0,
    setup_timeout: float = 120.0,
    auto_cell_timeout: float | None = None,
    timeout_retries: int = TIMEOUT_RETRIES,
    on_result: Callable[[Group, Cell, dict[str, Any]], None],
) -> None:
    """Run every cell of every group; ``on_result`` is called in this process once for each cell as it finishes.
    Fork or spawn per ``compat.process.process_model()`` (same statuses either way).

    One try of a cell may take :func:`cell_limit` seconds (``auto_cell_timeout`` for Auto cells, default
    ``AUTO_TIMEOUT_FACTOR`` × ``cell_timeout``); a cell that times out runs again in a fresh process, up to
    ``timeout_retries`` times, before ``timeout`` is recorded (:func:`after_retry`: the result says so)."""
    impl = _run_groups_spawn if process_model() == "spawn" else _run_groups_fork
    impl(adapter, groups, workers=workers, cell_timeout=cell_timeout, setup_timeout=setup_timeout,
         auto_cell_timeout=auto_cell_timeout, retries=max(0, int(timeout_retries)), on_result=on_result)


def _run_groups_fork(
    adapter: Adapter,
    groups: list[Group],
    *,
    workers: int,
    cell_timeout: float,
    setup_timeout: float,
    auto_cell_timeout: float | None = None,
    retries: int = TIMEOUT_RETRIES,
    on_result: Callable[[Group, Cell, dict[str, Any]], None],
) -> None:
    pending: Iterator[Group] = iter(groups)
    running: dict[int, _Running] = {}
    sel = selectors.DefaultSelector()

    def start(group: Group) -> None:
        r, w = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            for other in running:  # the read ends of the other groups' pipes: only the runner may hold them, so
                os.close(other)    # that a group writing to a runner that is gone fails at once
            die_with_parent(parent)
            code = 0
            try:
                _group_process(adapter, group, w, cell_timeout, auto_cell_timeout, retries)
            except BaseException:  # noqa: BLE001
                code = 4
            finally:
                os._exit(code)
        os.close(w)
        budget = sum(cell_limit(c, cell_timeout, auto_cell_timeout) for c in group.cells) * (1 + retries)
        deadline = time.monotonic() + setup_timeout + max(budget, cell_timeout) + 5
        running[r] = _Running(group, pid, r, deadline)
        sel.register(r, selectors.EVENT_READ)

    def finish(run: _Running, reason: str | None) -> None:
        sel.unregister(run.fd)
        os.close(run.fd)
        del running[run.fd]
        if reason is not None:
            _kill(run.pid)
        _, status = os.waitpid(run.pid, 0)
        for i, cell in enumerate(run.group.cells):
            if i in run.reported:
                continue
            if reason == "timeout":
                res = {"status": "timeout", "exception_type": "Timeout",
                       "message": "group exceeded its time budget before this cell ran", "seconds": None}
            else:
                res = {"status": "error", "exception_type": "WorkerCrashed",
                       "message": f"group process {_exit_reason(status)} before this cell reported", "seconds": None}
            on_result(run.group, cell, {**res, "warnings": []})

    def fill() -> None:
        while len(running) < max(1, workers):
            g = next(pending, None)
            if g is None:
                return
            if not g.cells:
                continue
            start(g)

    try:
        fill()
        while running:
            now = time.monotonic()
            timeout = max(0.05, min(r.deadline for r in running.values()) - now)
            for key, _ in sel.select(timeout):
                run = running[key.fd]
                chunk = os.read(run.fd, 65536)
                if not chunk:
                    finish(run, None)
                    continue
                run.buf += chunk
                *lines, run.buf = run.buf.split(b"\n")
                for line in lines:
                    if line.strip():
                        res = json.loads(line)
                        i = res.pop("i")
                        run.reported.add(i)
                        on_result(run.group, run.group.cells[i], res)
            for run in [r for r in running.values() if time.monotonic() > r.deadline]:
                finish(run, "timeout")
            fill()
    finally:
        for run in list(running.values()):
            _kill(run.pid)
            finish(run, "timeout")
        sel.close()


# ------------------------------------------------------------------------------------------------ spawn path
# Worker side: these run inside a spawned worker (compat.process), one message at a time; the adapter, the
# group and its set-up state live in the worker's copy of this module.
_W: dict[str, Any] = {}
_copy_note: set[str] = set()


def _w_prepare(blob: bytes) -> None:
    """Receive the adapter and import the library once (``adapter.prepare()`` when it has one)."""
    adapter = pickle.loads(blob)
    prepare = getattr(adapter, "prepare", None)
    if callable(prepare):
        prepare()
    _W.clear()
    _W["adapter"] = adapter


def _w_setup(group: Group) -> dict[str, Any]:
    _W.pop("state", None)
    _W.pop("copy", None)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = _W["adapter"].setup(group)
    except Exception as e:  # noqa: BLE001
        return {"ok": False, "exception_type": type(e).__name__, "message": f"setup failed: {_first_line(e)}",
                "seconds": time.perf_counter() - t0}
    _W.update(group=group, state=state)
    return {"ok": True, "seconds": time.perf_counter() - t0}


def _copy_state(state: Any) -> Any:
    """A private copy of the group's state for one cell: ``copy.deepcopy``, else a pickle round trip (a fitted
    model whose loss keeps a non-leaf tensor — GMM / PMM / NBMM — refuses deepcopy but pickles), else the shared
    state itself (logged once per kind of failure)."""
    how = _W.get("copy", "deepcopy")
    if how == "deepcopy":
        try:
            return copy.deepcopy(state)
        except Exception:  # noqa: BLE001
            how = _W["copy"] = "pickle"
    if how == "pickle":
        try:
            return pickle.loads(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception as e:  # noqa: BLE001
            how = _W["copy"] = "shared"
            note = f"{type(state).__name__}: {type(e).__name__}"
            if note not in _copy_note:
                _copy_note.add(note)
                log.warning("the set-up state cannot be copied (%s: %s): the group's cells share it", note,
                            _first_line(e))
    return state


def _cell_state(state: Any) -> Any:
    """What one cell runs on: a copy of the group's state (``_copy_state``), so a cell that mutates it (a fitted
    model, a data frame) cannot change what the next cell sees — the fork path's copy-on-write, made explicit.
    Measured on 2 CPUs: ~0.2 ms for a data-only state, 3-8 ms (deepcopy) or 15-25 ms (pickle) for a fitted
    MLP / NHITS NeuralForecast with its frames, against cells of 10 ms - 2 s; a fork per cell costs more.

    A ``state["tmp"]`` scratch folder (neuralforecast adapter) gets a fresh sub-folder per cell: the fork path
    names a cell's files by its pid, which a worker running many cells keeps."""
    state = _copy_state(state)
    if isinstance(state, dict) and isinstance(state.get("tmp"), str) and os.path.isdir(state["tmp"]):
        state = {**state, "tmp": tempfile.mkdtemp(prefix="cell", dir=state["tmp"])}
    return state


def _w_cell(i: int) -> dict[str, Any]:
    res = execute_cell(_W["adapter"], _cell_state(_W["state"]), _W["group"].cells[i])
    return json.loads(json.dumps(res, default=str))  # the same plain data the fork path's JSON line carries


def _w_reset() -> None:
    """Drop the group's state (a fitted model) before the worker goes back to the idle pool."""
    _W.clear()


@dataclass
class _Slot:
    """A worker of the pool and what it is doing: ``phase`` prepare / setup / cell / reset, until ``deadline``."""
    worker: SpawnWorker
    prepared: bool = False
    group: Group | None = None
    i: int = 0  # the cell in flight (phase cell), or the first cell of the task (phase setup)
    phase: str = ""
    deadline: float = float("inf")
    limit: float = 0.0
    setup_s: float = 0.0


def _run_groups_spawn(
    adapter: Adapter,
    groups: list[Group],
    *,
    workers: int,
    cell_timeout: float,
    setup_timeout: float,
    auto_cell_timeout: float | None = None,
    retries: int = TIMEOUT_RETRIES,
    on_result: Callable[[Group, Cell, dict[str, Any]], None],
) -> None:
    try:
        blob = pickle.dumps(adapter)
    except Exception as e:  # noqa: BLE001
        raise TypeError(f"the adapter {type(adapter).__qualname__} cannot be sent to spawned workers "
                        f"({type(e).__name__}: {_first_line(e)}): it must pickle (plain data, a module-level "
                        "class), or set FCAST_PROCESS_MODEL=fork where the platform has fork") from e
    tasks: deque[tuple[Group, int]] = deque((g, 0) for g in groups if g.cells)
    slots: list[_Slot] = []
    timed_out: dict[tuple[int, int], tuple[dict[str, Any], int]] = {}  # (group, cell) -> first result, tries

    def report(group: Group, i: int, res: dict[str, Any]) -> None:
        first = timed_out.pop((id(group), i), None)
        if first is not None:  # the retry of a cell that timed out, whatever became of it
            res = after_retry(first[0], res, first[1] + 1)
        on_result(group, group.cells[i], res)

    def limit_of(group: Group, i: int) -> float:
        return cell_limit(group.cells[i], cell_timeout, auto_cell_timeout)

    def report_rest(group: Group, start: int, res: dict[str, Any]) -> None:
        for i in range(start, len(group.cells)):
            report(group, i, dict(res, warnings=[]))

    def send(slot: _Slot, phase: str, func: Callable[..., Any], args: tuple[Any, ...], limit: float) -> None:
        slot.phase, slot.limit = phase, limit
        slot.worker.send(func, args)
        slot.deadline = time.monotonic() + limit

    def advance(slot: _Slot) -> None:
        """Give an idle slot its next step: prepare a fresh worker, take a task, or hand the worker back."""
        if not tasks:
            if slot.prepared:
                send(slot, "reset", _w_reset, (), 30.0)
                return
            slots.remove(slot)
            release(slot.worker)
            return
        if not slot.prepared:
            send(slot, "prepare", _w_prepare, (blob,), max(setup_timeout, START_TIMEOUT_S))
            return
        slot.group, slot.i = tasks.popleft()
        send(slot, "setup", _w_setup, (slot.group,), setup_timeout)

    def replace(slot: _Slot) -> None:
        """The slot's worker overran or died: stop its tree; a fresh worker takes the remaining tasks (fill)."""
        slots.remove(slot)
        discard(slot.worker)

    def fill() -> None:
        """Up to ``workers`` slots, no more than there are tasks for (a slot holding a group counts as one)."""
        holding = sum(1 for s in slots if s.phase in ("setup", "cell"))
        while len(slots) < min(max(1, workers), len(tasks) + holding):
            slot = _Slot(acquire())
            slots.append(slot)
            advance(slot)

    def fail_all(why: str, exc: str) -> None:
        while tasks:
            g, start = tasks.popleft()
            report_rest(g, start, {"status": "error", "exception_type": exc, "message": why, "seconds": None,
                                   "stage": "prepare"})

    def handle(slot: _Slot, got: tuple[Any, ...]) -> None:
        kind, phase = got[0], slot.phase
        elapsed = time.monotonic() - slot.worker.sent_at
        if phase == "reset":
            if kind == "ok" and tasks:  # a task came back meanwhile (a timeout elsewhere): take it
                slot.prepared, slot.phase = False, ""
                advance(slot)
                return
            slots.remove(slot)
            (release if kind == "ok" else discard)(slot.worker)
            return
        if phase == "prepare":
            if kind == "ok":
                slot.prepared = True
                advance(slot)
                return
            why = {"timeout": f"did not finish within {slot.limit:.0f}s", "died": f"process {got[-1]}"
                   }.get(kind, f"raised {got[1] if len(got) > 1 else '?'}")
            # the same import fails in every fresh worker: every remaining cell is recorded with the reason
            fail_all(f"worker could not prepare the library: {why}", "WorkerCrashed" if kind != "raised"
                     else str(got[1]).split(":", 1)[0])
            replace(slot)
            return
        group = slot.group
        assert group is not None
        if phase == "setup":
            if kind == "ok" and got[1]["ok"]:
                slot.setup_s = got[1]["seconds"]
                send(slot, "cell", _w_cell, (slot.i,), limit_of(group, slot.i))
                return
            if kind == "ok":  # the setup raised: every cell records it, the worker is fine
                out = got[1]
                report_rest(group, slot.i, {"status": "error", "exception_type": out["exception_type"],
                                            "message": out["message"], "seconds": out["seconds"], "stage": "setup"})
                advance(slot)
                return
            if kind == "timeout":
                report_rest(group, slot.i, {"status": "timeout", "exception_type": "Timeout", "seconds": None,
                                            "message": f"group setup did not finish within {slot.limit:.0f}s",
                                            "stage": "setup"})
            else:
                how = got[1] if kind == "died" else f"raised {got[1]}"
                report_rest(group, slot.i, {"status": "error", "exception_type": "WorkerCrashed", "seconds": None,
                                            "message": f"group process {how} before this cell reported",
                                            "stage": "setup"})
            replace(slot)
            return
        # phase == "cell"
        i = slot.i
        if kind == "ok":
            res = got[1]
        elif kind == "timeout":
            res = _timeout_result(slot.limit, elapsed)
            first = timed_out.get((id(group), i))
            tries = 1 if first is None else first[1] + 1
            if tries <= retries:  # once more in a fresh worker (setup again), before the group's next cell
                timed_out[(id(group), i)] = (res if first is None else first[0], tries)
                tasks.appendleft((group, i))
                replace(slot)
                return
        else:
            how = got[1] if kind == "died" else f"raised {got[1]}"
            res = {"status": "error", "exception_type": "WorkerCrashed",
                   "message": f"cell process {how} without a result", "seconds": elapsed, "warnings": []}
        res.update(setup_seconds=round(slot.setup_s, 3))
        report(group, i, res)
        if kind in ("ok", "raised"):  # the worker is healthy: the group's next cell, or the next task
            if i + 1 < len(group.cells):
                slot.i = i + 1
                send(slot, "cell", _w_cell, (slot.i,), limit_of(group, slot.i))
            else:
                advance(slot)
            return
        if i + 1 < len(group.cells):  # the rest of the group goes on in a fresh worker (setup again), first
            tasks.appendleft((group, i + 1))
        replace(slot)

    try:
        while slots or tasks:
            fill()
            by_handle: dict[Any, _Slot] = {}
            for slot in slots:
                by_handle[slot.worker.conn] = slot
                by_handle[slot.worker.sentinel] = slot
            left = max(0.0, min(s.deadline for s in slots) - time.monotonic())
            ready = wait_ready(list(by_handle), left)
            done: set[int] = set()
            for handle_ in ready:
                slot = by_handle[handle_]
                if id(slot) in done or slot not in slots:
                    continue
                got = slot.worker.collect()
                if got is not None:
                    done.add(id(slot))
                    handle(slot, got)
            now = time.monotonic()
            for slot in [s for s in slots if id(s) not in done and s.deadline <= now]:
                if slot in slots:
                    handle(slot, slot.worker.collect() or ("timeout",))
    finally:
        for slot in list(slots):  # interrupted (an exception in on_result, Ctrl-C): no worker is left running
            discard(slot.worker)
