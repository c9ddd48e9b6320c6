"""One thread that runs zarr-python's writes, several at once where it may.

zarr-python's synchronous API runs one write at a time through its event loop
(~1-3 ms each for a 512x512 frame); the same writes awaited together on that
loop overlap their file I/O and encoding, 2-4x faster. `BatchWriter` keeps the
order of one writer thread and runs consecutive *independent* jobs together:
each writes a region that no job before it wrote (`submit(..., alone=False)`,
a coroutine). Any other job (a region written again, a resize) runs alone,
once every job before it has completed, and before any job after it starts.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zarr.core.sync import sync

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = ["BATCH", "BatchWriter"]

#: Independent writes awaited together at most.
BATCH = 16
#: How often an idle writer thread looks whether the program is ending (s).
IDLE_S = 0.5


@dataclass(frozen=True)
class _Job:
    future: Future[Any]
    run: Callable[[], Any]  # alone: the call; else: makes the coroutine
    alone: bool


class BatchWriter:
    """Jobs in order on one thread; consecutive independent writes together."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None  # started by the first job
        self._starting = threading.Lock()  # a job queued always has a thread

    def submit(
        self,
        run: Callable[[], Coroutine[Any, Any, Any]] | Callable[[], Any],
        *,
        alone: bool,
    ) -> Future[Any]:
        """Queue a job; its future can be cancelled until the job starts.

        `alone`: `run()` is called on the writer thread; else it makes a
        coroutine, awaited on zarr's event loop with its neighbours.
        """
        future: Future[Any] = Future()
        with self._starting:
            self._jobs.put(_Job(future, run, alone))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name)
                self._thread.start()
        return future

    def shutdown(self) -> None:
        """Stop the thread once the jobs queued have run (without waiting)."""
        if self._thread is not None:
            self._jobs.put(None)

    # ---- the writer thread -----------------------------------------------------
    def _next(self) -> _Job | None:
        """The next job; None at the end, or once idle after the program ended.

        The thread is not a daemon (a job queued runs to its end), so a
        stream never closed would keep a program that ended from exiting:
        once the main thread has ended, the thread ends when nothing is
        queued (a later job starts another).
        """
        while True:
            try:
                return self._jobs.get(timeout=IDLE_S)
            except queue.Empty:
                if threading.main_thread().is_alive():
                    continue
                with self._starting:
                    if self._jobs.empty():
                        self._thread = None
                        return None

    def _loop(self) -> None:
        held: _Job | None = None  # taken from the queue to run next
        stop = False  # the end was taken from the queue
        while not stop or held is not None:
            job = held if held is not None else self._next()
            held = None
            if job is None:
                return
            if job.alone:
                self._run_alone(job)
                continue
            batch = [job]
            while len(batch) < BATCH:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if nxt.alone:
                    held = nxt  # after every job of this batch
                    break
                batch.append(nxt)
            self._run_batch(batch)

    @staticmethod
    def _run_alone(job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            result = job.run()
        except BaseException as e:
            job.future.set_exception(e)
        else:
            job.future.set_result(result)

    @staticmethod
    def _run_batch(batch: list[_Job]) -> None:
        live = [j for j in batch if j.future.set_running_or_notify_cancel()]
        if not live:
            return

        async def together() -> list[Any]:
            return await asyncio.gather(
                *(j.run() for j in live), return_exceptions=True
            )

        try:
            results = sync(together())
        except BaseException as e:  # the loop itself failed
            for j in live:
                j.future.set_exception(e)
            return
        for j, result in zip(live, results, strict=True):
            if isinstance(result, BaseException):
                j.future.set_exception(result)
            else:
                j.future.set_result(result)
