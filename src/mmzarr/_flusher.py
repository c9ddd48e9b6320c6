"""`Flusher`: a stream's buffered frames and log records pushed to storage.

A `Stream` hands frames to its backend and queues their log records; the
flusher pushes both to storage every `flush_interval_s / 2` on a thread of its
own, and counts the frames another process can read (`flushed`): frames the
backend reports readable whose records are in the frame log, in the order they
were appended. It shares the stream's lock: a flush never runs beside a frame
being written; the frame log is written outside it, so frames keep coming.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING

from mmzarr.errors import StorageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from mmzarr import _metadata
    from mmzarr.backends import ArrayBackend, Progress
    from mmzarr.backends._pressure import Backpressure

__all__ = ["Flusher"]

logger = logging.getLogger("mmzarr")


class Flusher:
    """Flushes a stream's backend and frame log; counts the frames readable.

    Parameters
    ----------
    backend, pressure, log
        The stream's backend, its `Backpressure` (told what the backend
        reports) and its frame log (None: not logged).
    lock
        The stream's lock, held by the caller of `flush` and `count`, taken
        by the thread around them.
    frames
        The frames written so far. Called under `lock`.
    flushing
        Whether the stream takes flushes (it is open and has not failed).
        Called under `lock`.
    fail
        Called under `lock` with a storage error the thread met; the stream
        fails with it (unless it failed already).
    where
        The dataset, for messages.
    check
        Called under `lock` before each flush of the thread: raises the
        `StorageError` that fails the stream when storage is no longer the
        dataset's (its local directory moved or removed).
    """

    def __init__(
        self,
        backend: ArrayBackend,
        pressure: Backpressure,
        log: _metadata.FrameLog | _metadata.SegmentedFrameLog | None,
        *,
        lock: threading.RLock,
        frames: Callable[[], int],
        flushing: Callable[[], bool],
        fail: Callable[[BaseException], None],
        where: str,
        check: Callable[[], None] | None = None,
    ) -> None:
        self._backend = backend
        self._pressure = pressure
        self._log = log
        self._lock = lock
        self._frames = frames
        self._flushing = flushing
        self._fail = fail
        self._where = where
        self._check = check
        #: Frames known to be readable from storage, their records logged.
        self.flushed = 0
        self._readable = 0  # frames the backend reported readable
        self._stop = threading.Event()

    def start(self, interval_s: float) -> None:
        """Flush every `interval_s` on a thread until `stop`.

        The first flush is here, for the backend's capacity before the first
        frame.
        """
        with self._lock:
            self.flush(self._frames())
        # the thread holds the flusher (and through it the stream) only while
        # it flushes: a stream dropped without `close` is then collected (and
        # closed by its finalizer) instead of flushing, and holding its lock,
        # its files and its backend's threads, until the process ends
        threading.Thread(
            target=_loop,
            args=(weakref.ref(self), self._stop, interval_s),
            name="mmzarr-flush",
            daemon=True,
        ).start()

    def stop(self) -> None:
        """Stop the thread (it ends at its next wake-up)."""
        self._stop.set()

    def flush(self, frames: int, *, final: bool = False) -> Progress:
        """Flush the backend; take in what it reports (under the lock)."""
        progress = self._backend.flush(final=final)
        self._pressure.report(progress)
        self._readable = progress.readable
        self.count(frames)
        return progress

    def count(self, frames: int) -> None:
        """Count the frames readable from storage whose records are in the log."""
        logged = frames if self._log is None else self._log.frames_logged
        self.flushed = max(self.flushed, min(self._readable, frames, logged))

    def tick(self) -> None:
        """One flush of the thread (and of the frame log)."""
        with self._lock:
            if not self._flushing():
                return
            try:
                if self._check is not None:
                    self._check()
                self.flush(self._frames())
            except Exception as e:
                self._fail(e)
                logger.error("mmzarr: flushing %s failed: %s", self._where, e)
                return
        failure: StorageError | None = None
        try:
            if self._log is not None:
                self._log.flush()
        except OSError as e:
            logger.error(
                "mmzarr: writing the frame log of %s failed: %s", self._where, e
            )
            failure = StorageError(
                f"writing the frame log of {self._where} failed: {e}"
            )
        except Exception:  # a bug: logged; the thread keeps flushing frames
            logger.exception("mmzarr: writing the frame log of %s", self._where)
        with self._lock:
            self.count(self._frames())
            if failure is not None:
                self._fail(failure)


def _loop(ref: weakref.ref[Flusher], stop: threading.Event, interval_s: float) -> None:
    """Run the flush thread: `ref`'s `tick` every `interval_s`.

    Until `stop` is set, or the flusher is gone.
    """
    while not stop.wait(interval_s):
        flusher = ref()
        if flusher is None:
            return
        flusher.tick()
        del flusher
