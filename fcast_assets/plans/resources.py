"""Resource use of one step: wall, CPU user/sys, peak RSS (sampled), IO read/write bytes (psutil), peak VRAM
(torch.cuda when a GPU is present, else None — never a made-up 0) and the device name."""

from __future__ import annotations

import platform
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import psutil

MB = 1024 * 1024


def _cuda():  # noqa: ANN202
    try:
        import torch

        return torch.cuda if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover
        return None


def device_name() -> str:
    cuda = _cuda()
    if cuda is not None:
        return f"cuda: {cuda.get_device_name(0)}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return f"cpu: {cpu} ({psutil.cpu_count()} cores)"


def _io(proc: psutil.Process) -> tuple[float | None, float | None]:
    try:
        io = proc.io_counters()
        return io.read_bytes, io.write_bytes
    except (AttributeError, psutil.Error):
        return None, None


@contextmanager
def measure(interval: float = 0.05) -> Iterator[dict[str, Any]]:
    """``with measure() as r: ...`` fills r with the run_resource columns when the block ends (also on error)."""
    proc = psutil.Process()
    cuda = _cuda()
    if cuda is not None:
        cuda.reset_peak_memory_stats()
    r: dict[str, Any] = {}
    peak = [proc.memory_info().rss]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            try:
                peak[0] = max(peak[0], proc.memory_info().rss)
            except psutil.Error:  # pragma: no cover
                return

    t = threading.Thread(target=sample, daemon=True)
    cpu0, io0, w0 = proc.cpu_times(), _io(proc), time.perf_counter()
    t.start()
    try:
        yield r
    finally:
        wall = time.perf_counter() - w0
        stop.set()
        t.join()
        cpu1, io1 = proc.cpu_times(), _io(proc)
        peak[0] = max(peak[0], proc.memory_info().rss)
        r.update({
            "wall_s": round(wall, 4),
            "cpu_user_s": round((cpu1.user - cpu0.user) + (cpu1.children_user - cpu0.children_user), 4),
            "cpu_sys_s": round((cpu1.system - cpu0.system) + (cpu1.children_system - cpu0.children_system), 4),
            "max_rss_mb": round(peak[0] / MB, 2),
            "io_read_mb": round((io1[0] - io0[0]) / MB, 4) if io0[0] is not None and io1[0] is not None else None,
            "io_write_mb": round((io1[1] - io0[1]) / MB, 4) if io0[1] is not None and io1[1] is not None else None,
            "max_vram_mb": round(cuda.max_memory_allocated() / MB, 2) if cuda is not None else None,
            "device": device_name(),
        })
