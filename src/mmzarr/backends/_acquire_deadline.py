"""acquire-zarr's blocking calls on S3, each given a deadline.

acquire-zarr's S3 client has no request timeout (its `S3Settings` hold only
the endpoint, bucket and region): against a server that takes connections and
never answers, `ZarrStream.append` blocks once its queue is full and `close`
blocks for ever. On S3 each of these calls runs on a daemon thread of its own
and is given up past its deadline with an `OSError` (`ETIMEDOUT`) that fails
the stream; the call stays behind on its thread (nothing can stop it) and the
acquire-zarr stream is not called again. On a local disk calls run as they are.
"""

from __future__ import annotations

import errno
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CLOSE_MIN_BYTES_PER_S", "Deadlines"]

#: acquire-zarr's close on S3 uploads what it still holds: it is given
#: `timeout_s` plus one second per this many bytes appended before it is taken
#: for hung (it reports no progress to tell a slow upload from a hung one).
CLOSE_MIN_BYTES_PER_S = 1024**2


class Deadlines:
    """Runs acquire-zarr calls, each within `timeout_s` (None: no deadline)."""

    def __init__(self, timeout_s: float | None) -> None:
        self.timeout_s = timeout_s
        #: Why the stream was given up (a call past its deadline), or None.
        self.hung: str | None = None
        self._appended = 0

    def append(self, call: Callable[[], object], nbytes: int, what: str) -> None:
        """`call()` (an append of `nbytes`), within the deadline."""
        self._appended += nbytes
        self._run(call, self.timeout_s, what)

    def close(self, call: Callable[[], object]) -> None:
        """`call()` (the stream's close), within the deadline for its uploads."""
        budget = None
        if self.timeout_s is not None:
            budget = self.timeout_s + self._appended / CLOSE_MIN_BYTES_PER_S
        self._run(call, budget, "closing the stream")

    def _run(
        self, call: Callable[[], object], timeout: float | None, what: str
    ) -> None:
        if self.hung is not None:
            raise OSError(
                errno.ETIMEDOUT, f"acquire-zarr: not {what}: given up ({self.hung})"
            )
        if timeout is None:
            call()
            return
        failed: list[BaseException] = []
        done = threading.Event()

        def run() -> None:
            try:
                call()
            except BaseException as e:  # raised again on the caller's thread
                failed.append(e)
            finally:
                done.set()

        threading.Thread(target=run, name="mmzarr-acquire-zarr-s3", daemon=True).start()
        if not done.wait(timeout):
            self.hung = f"{what} took more than {timeout:.0f} s: S3 stopped answering"
            raise OSError(errno.ETIMEDOUT, f"acquire-zarr: {self.hung}")
        if failed:
            raise failed[0]
