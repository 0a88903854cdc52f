"""Progress bars for the command line: a bar on stderr when stderr is a terminal, nothing otherwise.

The long-running functions (``scan_library``, ``run_matrix``, ``build_embeddings``) take an optional
``progress(done, total, current)`` callback; ``terminal_progress`` yields such a callback that draws a tqdm bar
(a small built-in bar when tqdm is not installed), or ``None`` when output goes to a pipe or a file, so logs and
redirected output stay free of carriage returns.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, TextIO

Progress = Callable[[int, int, str], None]


def is_terminal(stream: Optional[TextIO]) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _size(stream: TextIO) -> tuple[int, int]:
    try:
        return tuple(os.get_terminal_size(stream.fileno()))  # type: ignore[return-value]
    except (AttributeError, ValueError, OSError):  # no file descriptor (StringIO), not a terminal
        return 0, 0


class _TqdmBar:
    def __init__(self, desc: str, unit: str, stream: TextIO):
        from tqdm import tqdm

        # follow the terminal's size when it reports one; a pseudo-terminal without a size says 0 x 0, and tqdm
        # would then draw nothing: 80 x 24 instead
        cols, rows = _size(stream)
        self.bar = tqdm(total=0, desc=desc, unit=unit, file=stream, leave=True, dynamic_ncols=cols > 0,
                        ncols=None if cols > 0 else 80, nrows=None if rows > 0 else 24)

    def __call__(self, done: int, total: int, current: str) -> None:
        if total != self.bar.total:
            self.bar.total = total
        self.bar.set_postfix_str(current, refresh=False)
        self.bar.update(done - self.bar.n)  # redraws at most every tqdm mininterval

    def close(self) -> None:
        self.bar.close()


class _PlainBar:
    """``desc [#####.....] 12/40 current``, redrawn in place at most every 0.1 s."""

    WIDTH = 30

    def __init__(self, desc: str, unit: str, stream: TextIO):
        self.desc, self.unit, self.stream = desc, unit, stream
        self.last, self.state = 0.0, (0, 0, "")

    def __call__(self, done: int, total: int, current: str) -> None:
        self.state = (done, total, current)
        now = time.monotonic()
        if now - self.last >= 0.1 or done == total:
            self.last = now
            self._draw()

    def _draw(self) -> None:
        done, total, current = self.state
        filled = self.WIDTH * done // total if total else 0
        self.stream.write(f"\r{self.desc} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total} "
                          f"{self.unit} {current[:30]:<30}")
        self.stream.flush()

    def close(self) -> None:
        self._draw()
        self.stream.write("\n")
        self.stream.flush()


def _bar_class():
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return _PlainBar
    return _TqdmBar


@contextmanager
def terminal_progress(desc: str, unit: str = "it", stream: Optional[TextIO] = None) -> Iterator[Optional[Progress]]:
    """A ``progress(done, total, current)`` callback drawing a bar on ``stream`` (default: ``sys.stderr`` at call
    time) when it is a terminal; ``None`` otherwise. The bar is closed (final state, newline) on exit."""
    stream = sys.stderr if stream is None else stream
    if not is_terminal(stream):
        yield None
        return
    bar = _bar_class()(desc, unit, stream)
    try:
        yield bar
    finally:
        bar.close()
