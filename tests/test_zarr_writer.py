"""The zarr-python backend's writer thread (`_zarr_writer.BatchWriter`).

Independent writes may run together; a job submitted `alone` (a region written
again, a resize) starts only after every job before it has completed, and no
job after it starts before it has. The jobs here record what they see when
they start and end; the order they are checked against is the order given.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import CancelledError
from typing import Any

import pytest

pytest.importorskip("zarr")

from mmzarr.backends._zarr_writer import BATCH, BatchWriter


class Log:
    """Thread-safe record of job starts and ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, int]] = []

    def add(self, what: str, n: int) -> None:
        with self.lock:
            self.events.append((what, n))

    def ended_before(self, n: int) -> set[int]:
        """Jobs that had ended when job `n` started."""
        with self.lock:
            start = self.events.index(("start", n))
            return {k for what, k in self.events[:start] if what == "end"}


def coroutine_job(log: Log, n: int, delay: float = 0.02) -> Any:
    async def job() -> int:
        log.add("start", n)
        await asyncio.sleep(delay)
        log.add("end", n)
        return n

    return job


def alone_job(log: Log, n: int) -> Any:
    def job() -> int:
        log.add("start", n)
        log.add("end", n)
        return n

    return job


def test_alone_job_waits_for_every_earlier_job_and_blocks_later_ones() -> None:
    log = Log()
    writer = BatchWriter("test-writer")
    try:
        futures = [writer.submit(coroutine_job(log, n), alone=False) for n in range(3)]
        futures.append(writer.submit(alone_job(log, 3), alone=True))
        futures += [writer.submit(coroutine_job(log, n), alone=False) for n in (4, 5)]
        assert [f.result(timeout=10) for f in futures] == [0, 1, 2, 3, 4, 5]
    finally:
        writer.shutdown()
    assert log.ended_before(3) == {0, 1, 2}
    assert log.ended_before(4) >= {0, 1, 2, 3}
    assert log.ended_before(5) >= {0, 1, 2, 3}


def test_independent_jobs_run_together() -> None:
    """Jobs queued while the thread is busy are awaited together (at most
    `BATCH`): one that starts before another queued with it has ended."""
    log = Log()
    gate = threading.Event()
    writer = BatchWriter("test-writer")
    try:
        first = writer.submit(lambda: gate.wait(10), alone=True)  # holds the thread
        futures = [writer.submit(coroutine_job(log, n), alone=False) for n in range(4)]
        gate.set()
        first.result(timeout=10)
        assert [f.result(timeout=10) for f in futures] == [0, 1, 2, 3]
    finally:
        writer.shutdown()
    assert BATCH >= 4
    # all four were queued before the thread was free: one batch, started
    # before any of them ended
    assert all(log.ended_before(n) == set() for n in range(4))


def test_errors_stay_with_their_job() -> None:
    async def failing() -> None:
        raise OSError("disk full")

    log = Log()
    writer = BatchWriter("test-writer")
    try:
        ok = writer.submit(coroutine_job(log, 0), alone=False)
        bad = writer.submit(failing, alone=False)
        bad_alone = writer.submit(lambda: 1 / 0, alone=True)
        after = writer.submit(coroutine_job(log, 1), alone=False)
        assert ok.result(timeout=10) == 0
        with pytest.raises(OSError, match="disk full"):
            bad.result(timeout=10)
        with pytest.raises(ZeroDivisionError):
            bad_alone.result(timeout=10)
        assert after.result(timeout=10) == 1
    finally:
        writer.shutdown()


def test_a_cancelled_job_never_runs() -> None:
    log = Log()
    gate = threading.Event()
    writer = BatchWriter("test-writer")
    try:
        first = writer.submit(lambda: gate.wait(10), alone=True)
        cancelled = writer.submit(coroutine_job(log, 1), alone=False)
        cancelled_alone = writer.submit(alone_job(log, 2), alone=True)
        assert cancelled.cancel()
        assert cancelled_alone.cancel()
        last = writer.submit(coroutine_job(log, 3), alone=False)
        gate.set()
        assert first.result(timeout=10) is True
        assert last.result(timeout=10) == 3
        with pytest.raises(CancelledError):
            cancelled.result()
    finally:
        writer.shutdown()
    assert ("start", 1) not in log.events
    assert ("start", 2) not in log.events


def test_shutdown_runs_what_was_queued_then_ends_the_thread() -> None:
    log = Log()
    writer = BatchWriter("test-writer")
    futures = [writer.submit(coroutine_job(log, n), alone=False) for n in range(3)]
    writer.shutdown()
    assert [f.result(timeout=10) for f in futures] == [0, 1, 2]
    thread = writer._thread
    assert thread is not None
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_no_thread_until_the_first_job() -> None:
    """A writer never given a job has no thread to keep the process alive."""

    def its_threads() -> list[str]:  # not another test's, ending meanwhile
        return [t.name for t in threading.enumerate() if "test-writer-idle" in t.name]

    writer = BatchWriter("test-writer-idle")
    try:
        assert its_threads() == []
    finally:
        writer.shutdown()
    assert its_threads() == []
