"""Progress display of a run: tasks done / total, current task, elapsed time and ETA.

On a terminal one status line is redrawn in place (refreshed every half second by a daemon
thread); otherwise (a log file, CI) each finished task prints one plain line.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TextIO

import numpy as np

COMPILE_EVENT_PREFIX = "/jax/core/compile/"  # jax.monitoring events of tracing, lowering, compiling


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Tasks done / total, current task, elapsed time and ETA.

    On a terminal one status line is redrawn in place (and refreshed every half second);
    otherwise each finished task prints one plain line.
    """

    def __init__(self, total: int, pending: int, stream: TextIO, quiet: bool = False):
        self.total, self.pending, self.stream, self.quiet = total, pending, stream, quiet
        self.done = total - pending
        self.computed = 0
        self.compute_s = 0.0
        self.current = ""
        self.started = time.perf_counter()
        self.tty = bool(getattr(stream, "isatty", lambda: False)()) and not quiet
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if self.tty:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()

    def _eta(self) -> str:
        if not self.computed:
            return "--"
        left = self.total - self.done
        return _clock(self.compute_s / self.computed * left)

    def _status(self) -> str:
        elapsed = time.perf_counter() - self.started
        pct = 100 * self.done / max(self.total, 1)
        return (
            f"[{self.done}/{self.total}] {pct:3.0f}% | elapsed {_clock(elapsed)} | "
            f"ETA {self._eta()} | {self.current}"
        )

    def _draw(self) -> None:
        with self._lock:
            self.stream.write("\r\x1b[K" + self._status())
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self._draw()

    def line(self, text: str) -> None:
        """Print a line of its own (above the status line on a terminal)."""
        if self.quiet:
            return
        with self._lock:
            self.stream.write(("\r\x1b[K" if self.tty else "") + text + "\n")
            self.stream.flush()
        if self.tty:
            self._draw()

    def start(self, label: str) -> None:
        self.current = label
        if self.tty:
            self._draw()

    def finish(
        self, label: str, outcome: str, seconds: float | None = None, compile_s: float = 0.0
    ) -> None:
        """Count a finished task and print its line (with the seconds JAX spent compiling
        for it, when it compiled anything)."""
        self.done += 1
        if seconds is not None:
            self.computed += 1
            self.compute_s += seconds
        took = f" in {seconds:.1f} s" if seconds is not None else ""
        if seconds is not None and compile_s > 0:
            took += f" (compile {compile_s:.1f} s)"
        elapsed = _clock(time.perf_counter() - self.started)
        self.current = ""
        self.line(
            f"[{self.done}/{self.total}] {outcome}: {label}{took} | elapsed {elapsed} | "
            f"ETA {self._eta()}"
        )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            with self._lock:
                self.stream.write("\r\x1b[K")
                self.stream.flush()


@contextlib.contextmanager
def compile_timer():
    """Yields a list whose one entry becomes the seconds JAX spent compiling in the block
    (the union of its compile-event time spans, so nested events are not counted twice)."""
    import jax.monitoring as monitoring

    spans: list[tuple[float, float]] = []

    def listen(event, start, end, **kwargs):
        if event.startswith(COMPILE_EVENT_PREFIX):
            spans.append((start, end))

    monitoring.register_event_time_span_listener(listen)
    total = [0.0]
    try:
        yield total
    finally:
        monitoring.unregister_event_time_span_listener(listen)
        covered, reach = 0.0, -np.inf
        for start, end in sorted(spans):
            covered += max(0.0, end - max(start, reach))
            reach = max(reach, end)
        total[0] = covered
