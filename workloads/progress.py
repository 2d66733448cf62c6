"""Where long work stands: the phase, the time spent, done / total where it is known, and at the end
a summary of what changed. One implementation for every long command (``infratech up`` and its
phases, the bootstrap, ``make pipeline``, ``infratech jobs watch``, the trainer's human line).

It lives in ``workloads`` because that is the lower layer: ``infratech`` already imports
``workloads`` (``workloads.files``) and ``workloads`` never imports ``infratech``; the trainer's
container image carries ``workloads`` only.

Two renderings of the same events, chosen by the stream:

* a terminal: one status line at the bottom, redrawn in place (``\\r`` and erase-line, ECMA-48 EL),
  ticking every half second, with the lines of finished steps printed above it;
* anything else (CI logs, a file, a pipe) or ``CI``/``TERM=dumb`` set: plain lines, each complete
  on its own (``[pipeline] train: started``), nothing rewritten: one per start, end and message,
  and a progress line when a new tenth of the total is done (at most every 30 s when there is no
  total), not one per poll.

No dependency: the few escape codes a status line needs are written here.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, TextIO

ERASE_LINE = "\r\x1b[2K"  # carriage return, then EL 2 (erase the whole line): ECMA-48 8.3.41
SPINNER = "|/-\\"


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``: short enough for a status line."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def is_live(stream: TextIO) -> bool:
    """A live display only on a terminal that can redraw a line, and never under CI."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


@dataclass
class Phase:
    name: str
    total: Optional[int] = None
    done: int = 0
    note: str = ""
    started: float = 0.0
    seconds: Optional[float] = None  # set when the phase ends
    said_at: Optional[float] = None  # when the last plain progress line of this phase was printed
    said_tenth: int = 0
    outcome: str = ""  # "done", "skipped", "failed: ..."; and what it changed, in words


@dataclass
class Progress:
    """``with progress.phase("train", total=40) as ph: ph.advance(); ...`` then ``progress.summary()``."""

    title: str
    stream: Optional[TextIO] = None
    live: Optional[bool] = None  # None: decided by the stream (is_live)
    clock: Callable[[], float] = time.monotonic
    tick_s: float = 0.5  # how often the live status line is redrawn between events
    # plain lines: a progress line when a new tenth of the total is reached, else at most this often
    plain_every_s: float = 30.0
    phases: list[Phase] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stream = self.stream or sys.stderr
        self.live = is_live(self.stream) if self.live is None else self.live
        self.started = self.clock()
        self.current: Optional[Phase] = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: Optional[threading.Thread] = None
        self._spin = 0

    # -- events --------------------------------------------------------------------------------
    def start(self, name: str, total: Optional[int] = None) -> None:
        """Start a phase (the current one, if any, ends as done)."""
        if self.current is not None:
            self.end("done")
        ph = Phase(name, total=total, started=self.clock())
        with self._lock:
            self.phases.append(ph)
            self.current = ph
        self._line(f"{name}: started" + (f" (0/{total})" if total else ""))
        self._start_ticker()

    @contextmanager
    def phase(self, name: str, total: Optional[int] = None) -> Iterator["Progress"]:
        """One phase: started, updated, then ended with its time; an exception marks it failed."""
        self.start(name, total)
        ph = self.current
        try:
            yield self
        except BaseException as exc:
            if self.current is ph:
                self.end(f"failed: {exc}" if str(exc) else f"failed ({type(exc).__name__})")
            raise
        if self.current is ph:
            self.end("done")

    def update(self, done: Optional[int] = None, total: Optional[int] = None, note: Optional[str] = None) -> None:
        with self._lock:
            ph = self.current
            if ph is None:
                return
            changed = ((done is not None and done != ph.done) or (total is not None and total != ph.total)
                       or (note is not None and note != ph.note))
            ph.done = ph.done if done is None else done
            ph.total = ph.total if total is None else total
            ph.note = ph.note if note is None else note
        if self.live:
            self._draw()
        elif changed and self._plain_due(ph):  # plain lines: when something moved, and not at every poll
            self._line(f"{ph.name}: {self._where(ph)}")

    def _plain_due(self, ph: Phase) -> bool:
        now = self.clock()
        tenth = ph.done * 10 // ph.total if ph.total else 0
        if ph.said_at is None or tenth > ph.said_tenth or now - ph.said_at >= self.plain_every_s:
            ph.said_at, ph.said_tenth = now, tenth
            return True
        return False

    def advance(self, n: int = 1, note: Optional[str] = None) -> None:
        self.update(done=(self.current.done if self.current else 0) + n, note=note)

    def log(self, text: str) -> None:
        """A line of its own (a warning, a decision), above the live status line."""
        self._line(text)

    def end(self, outcome: str = "done") -> None:
        """End the current phase with its outcome in words (``reused build/run``, ``skipped``)."""
        with self._lock:
            ph, self.current = self.current, None
        if ph is None:
            return
        ph.seconds = self.clock() - ph.started
        ph.outcome = outcome
        self._stop_ticker()
        counts = f"{ph.done}/{ph.total}, " if ph.total else (f"{ph.done}, " if ph.done else "")
        self._line(f"{ph.name}: {outcome} ({counts}{duration(ph.seconds)})")

    def changed(self, what: str) -> None:
        """Something the work changed, for the summary (``3 created, 1 updated``)."""
        self.changes.append(what)

    def summary(self) -> list[str]:
        """Print and return the closing lines: each phase with its time and outcome, what changed."""
        self._stop_ticker()
        lines = [f"{self.title}: {len(self.phases)} phase(s) in {duration(self.clock() - self.started)}"]
        for ph in self.phases:
            took = "-" if ph.seconds is None else duration(ph.seconds)
            lines.append(f"  {ph.name:<16} {took:>7}  {ph.outcome or 'interrupted'}")
        lines += [f"  changed: {c}" for c in self.changes] or ["  changed: nothing"]
        for line in lines:
            self._write(line + "\n", prefix=False)
        return lines

    # -- rendering -----------------------------------------------------------------------------
    def _where(self, ph: Phase) -> str:
        parts = []
        if ph.total:
            parts.append(f"{ph.done}/{ph.total}")
        elif ph.done:
            parts.append(str(ph.done))
        parts.append(duration(self.clock() - ph.started))
        if ph.note:
            parts.append(ph.note)
        return " · ".join(parts)

    def _status(self) -> str:
        ph = self.current
        if ph is None:
            return ""
        self._spin = (self._spin + 1) % len(SPINNER)
        return f"{SPINNER[self._spin]} [{self.title}] {ph.name}: {self._where(ph)} (total {duration(self.clock() - self.started)})"

    def _line(self, text: str) -> None:
        self._write(text + "\n")

    def _write(self, text: str, prefix: bool = True) -> None:
        with self._lock:
            out = (f"[{self.title}] " if prefix else "") + text
            if self.live:
                status = self._status()
                width = _columns(self.stream)
                self.stream.write(ERASE_LINE + out + (status[:width - 1] if status else ""))
            else:
                self.stream.write(out)
            self.stream.flush()

    def _draw(self) -> None:
        with self._lock:
            status = self._status()
            if status:
                self.stream.write(ERASE_LINE + status[:_columns(self.stream) - 1])
                self.stream.flush()

    def _start_ticker(self) -> None:
        if not self.live or self._ticker is not None:
            return
        self._stop.clear()

        def tick() -> None:
            while not self._stop.wait(self.tick_s):
                self._draw()

        self._ticker = threading.Thread(target=tick, name="progress", daemon=True)
        self._ticker.start()

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 100
    except (AttributeError, OSError, ValueError):
        return 100
