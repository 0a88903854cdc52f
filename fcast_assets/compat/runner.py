"""Run probe cells fast and safely: import once, fork per group, fork per cell, timeouts everywhere.

A *group* shares one expensive setup (synthetic data, usually one fitted model); its *cells* each probe one
argument value against that setup. The parent (which imported the library once) forks up to ``workers`` group
processes; each group process runs the setup, then forks one child per cell, so a cell that crashes, hangs or
mutates the fitted object cannot affect the next one. Results stream back as JSON lines; a group process that
dies or overruns turns its unreported cells into ``error`` (WorkerCrashed) or ``timeout`` cells — never a lost run.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol


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


class Adapter(Protocol):
    def setup(self, group: Group) -> Any: ...

    def run(self, state: Any, cell: Cell) -> list[str]:
        """Execute the cell against ``state``; return post-condition breaches ([] when the output is right)."""
        ...


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines() or [""])[0][:500] if text else ""


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
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
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


def run_cell_isolated(adapter: Adapter, state: Any, cell: Cell, timeout: float) -> dict[str, Any]:
    """Fork a child for one cell; a crash or a hang becomes an error / timeout result."""
    t0 = time.perf_counter()
    res, reason = fork_call(lambda: execute_cell(adapter, state, cell), timeout)
    if reason == "timeout":
        return {"status": "timeout", "exception_type": "Timeout", "message": f"no result within {timeout:.0f}s",
                "seconds": time.perf_counter() - t0, "warnings": []}
    if res is None:
        return {"status": "error", "exception_type": "WorkerCrashed",
                "message": f"cell process {reason} without a result",
                "seconds": time.perf_counter() - t0, "warnings": []}
    return res


def _group_process(adapter: Adapter, group: Group, fd: int, cell_timeout: float) -> None:
    """Body of a forked group process: setup once, then one forked child per cell."""
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
    for i, cell in enumerate(group.cells):
        res = run_cell_isolated(adapter, state, cell, float(cell.spec.get("timeout") or cell_timeout))
        res.update(i=i, setup_seconds=round(setup_s, 3))
        _write_line(fd, res)


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
    on_result: Callable[[Group, Cell, dict[str, Any]], None],
) -> None:
    """Run every cell of every group; ``on_result`` is called in this process for each cell as it finishes."""
    pending: Iterator[Group] = iter(groups)
    running: dict[int, _Running] = {}
    sel = selectors.DefaultSelector()

    def start(group: Group) -> None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 0
            try:
                _group_process(adapter, group, w, cell_timeout)
            except BaseException:  # noqa: BLE001
                code = 4
            finally:
                os._exit(code)
        os.close(w)
        deadline = time.monotonic() + setup_timeout + cell_timeout * max(1, len(group.cells)) + 5
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
