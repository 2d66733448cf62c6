"""Checkpoint uploads in the background: training goes on while object storage catches up.

One upload at a time, in phases that every rank goes through at the same step:

- ``files``: each checkpoint directory's lowest rank copies that directory's files, in a thread;
- ``marker``: once every rank reports its files copied, rank 0's thread copies ``checkpoint.json``;
- then idle again: the checkpoint is complete in the store, or its upload failed.

The threads read files and talk to object storage, nothing else: they issue no collective (a
collective from a second thread would interleave with the training loop's and hang the group).
What they have done reaches the other ranks through the small host-side all-reduce that the
training loop makes after every step anyway (``flags`` in, ``advance`` with the maximum over all
ranks), so every rank changes phase at the same step and all agree on which checkpoint is
complete. The marker goes last and resume lists only checkpoints that have one
(``Checkpointer._remote_steps``): a checkpoint whose upload was interrupted or failed is never
taken for a complete one.

A file whose copy raises is tried again, ``checkpoint.upload_attempts`` tries in all, the wait
doubling from ``checkpoint.upload_backoff_s``. botocore's own retries (standard mode) come first,
inside each try; they cover only transient errors (connection errors, HTTP 500/502/503/504,
throttling), so what reaches this loop is what botocore gave up on or never retries (an access
denied, a bucket policy, a local read error). After the last try the failure is logged with each
rank's reason, counted (``checkpoint_upload_failures`` in the metrics), the marker is not written,
and the local checkpoint stays where it is.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from .. import objectstore
from .distributed import Dist

MARKER = "checkpoint.json"
IDLE, FILES, LAST = "idle", "files", "marker"


class _Copy:
    """A thread that copies ``(local file, uri)`` pairs in order, with bounded retries."""

    def __init__(self, items: list[tuple[Path, str]], attempts: int, backoff_s: float, say: Callable[[str], None]):
        self.items, self.attempts, self.backoff_s, self.say = items, attempts, backoff_s, say
        self.error: Optional[str] = None
        self.thread = threading.Thread(target=self._run, name="checkpoint-upload", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for src, uri in self.items:
            for attempt in range(1, self.attempts + 1):
                try:
                    objectstore.upload(src, uri)
                    break
                except Exception as exc:  # whatever the client raised: the run goes on, the reason is kept
                    reason = f"{type(exc).__name__}: {exc}"
                    if attempt == self.attempts:
                        self.error = f"{uri}: {reason} ({self.attempts} tries)"
                        return
                    delay = self.backoff_s * 2 ** (attempt - 1)
                    self.say(f"checkpoint: upload of {uri} failed (try {attempt} of {self.attempts}): {reason}; "
                             f"trying again in {delay:g}s")
                    time.sleep(delay)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()


class Uploader:
    """The background upload of committed checkpoints to ``uri`` (None: uploads off)."""

    def __init__(self, uri: Optional[str], attempts: int, backoff_s: float, d: Dist,
                 is_leader: Callable[[], bool], log: Callable[[str], None]):
        self.uri, self.attempts, self.backoff_s, self.d, self.is_leader, self.log = \
            uri, attempts, backoff_s, d, is_leader, log
        self.phase = IDLE
        self.failures = 0  # checkpoints whose upload failed, this launch
        self.last_failed: Optional[Path] = None  # the newest checkpoint, when its upload failed
        self._copy: Optional[_Copy] = None
        self._path: Optional[Path] = None
        self._started = (0, 0.0)  # step and time of the start

    @property
    def busy(self) -> bool:
        return self.phase != IDLE

    def _say(self, msg: str) -> None:
        """From any rank or thread: rank 0 into train.log, others to stderr."""
        if self.d.is_main:
            self.log(msg)
        else:
            print(f"[train] [rank {self.d.rank}] {msg}", file=sys.stderr, flush=True)

    def _start_copy(self, names: list[str]) -> None:
        target = objectstore.join(self.uri, self._path.name)
        items = [(self._path / n, objectstore.join(target, n)) for n in names]
        self._copy = _Copy(items, self.attempts, self.backoff_s, self._say)

    # ---- called by every rank at the same points of the loop --------------------------------
    def start(self, path: Path, names: list[str], step: int) -> None:
        """After a commit (no collective): this directory's leader starts copying ``names``."""
        assert self.phase == IDLE, "the previous upload is waited for before a save"
        self.phase, self._path, self._started, self.last_failed = FILES, path, (step, time.monotonic()), None
        self._copy = None
        if self.is_leader():
            self._start_copy(names)
        if self.d.is_main:
            self.log(f"checkpoint: uploading {path.name} to {objectstore.join(self.uri, path.name)} in the "
                     f"background, from step {step} (marker last)")

    def flags(self) -> list[float]:
        """This rank's part of the per-step all-reduce: [copy running, copy failed]."""
        c = self._copy
        if c is None:
            return [0.0, 0.0]
        return [1.0 if c.running else 0.0, 1.0 if (not c.running and c.error) else 0.0]

    def advance(self, agreed: list[float], step: int) -> None:
        """With the maximum of every rank's ``flags()``: the same change of phase on every rank."""
        running, failed = agreed
        if self.phase == IDLE or running:
            return
        if failed:
            self._fail(step)
        elif self.phase == FILES:
            self.phase, self._copy = LAST, None
            if self.d.is_main:
                self._start_copy([MARKER])
        else:
            self.phase, self._copy = IDLE, None
            first, t0 = self._started
            during = f"steps {first + 1}-{step} trained meanwhile" if step > first else "no step trained meanwhile"
            if self.d.is_main:
                self.log(f"checkpoint: uploaded {self._path.name}, complete in object storage at step {step} "
                         f"({time.monotonic() - t0:.1f}s, {during})")

    def _fail(self, step: int) -> None:
        reasons = self.d.all_gather_object(self._copy.error if self._copy is not None else None)
        self.phase, self._copy = IDLE, None
        self.failures += 1
        self.last_failed = self._path
        if self.d.is_main:
            why = "; ".join(f"rank {r}: {e}" for r, e in enumerate(reasons) if e)
            self.log(f"checkpoint: upload of {self._path.name} FAILED at step {step}: {why}. Its marker was not "
                     f"written, so object storage does not offer it for resume; the local checkpoint stays in "
                     f"{self._path} ({self.failures} failed upload(s) in this run)")

    def wait(self, step: int) -> None:
        """Collective: until the upload in flight, if any, is complete or has failed."""
        while self.phase != IDLE:
            if self._copy is not None:
                self._copy.thread.join()
            self.advance(self.d.all_max_many(self.flags()), step)
