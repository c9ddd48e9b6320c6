"""`on_full`, once for every backend: bytes in flight against a capacity.

Each backend reports, from `flush`, the bytes of accepted frames on their way
to storage (`Progress.in_flight`) and how many it lets be in flight
(`Progress.capacity`). Between reports `Backpressure` adds the bytes accepted
since, an upper bound, so a frame costs no call into the backend while there
is room. When a frame may not fit it asks for a fresh report (`flush`), then
applies the policy:

- `"block"`: flush and wait until it fits; storage that takes nothing for
  `timeout_s` (`Limits.io_timeout_s`) is an `OSError`;
- `"raise"`: `BufferFullError`, the frame not accepted;
- `"drop"`: the caller drops (and records) the frame.

A frame always fits when nothing is in flight, so a frame larger than the
capacity, or frames held in incomplete shards, never wait for nothing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mmzarr.errors import BufferFullError

if TYPE_CHECKING:
    from collections.abc import Callable

    from mmzarr._settings import OnFull
    from mmzarr.backends._base import Progress

__all__ = ["Backpressure"]

#: Longest sleep between two looks while blocked.
MAX_POLL_S = 0.005


class Backpressure:
    """Decides, per frame, whether it may be handed to the backend now.

    Parameters
    ----------
    policy
        `on_full`: `"block"`, `"raise"` or `"drop"`.
    capacity
        Bytes in flight allowed until the backend reports its own.
    timeout_s
        Seconds a blocked frame waits for storage to take anything.
    where
        The dataset's path or URL, for messages.
    """

    def __init__(
        self, policy: OnFull, *, capacity: int, timeout_s: float, where: str
    ) -> None:
        self.policy = policy
        self.capacity = capacity
        self.timeout_s = timeout_s
        self.where = where
        self.in_flight = 0  # the last report plus the bytes accepted since

    def report(self, progress: Progress) -> None:
        """Take a backend's report."""
        self.in_flight = progress.in_flight
        if progress.capacity:
            self.capacity = progress.capacity

    def accepted(self, nbytes: int) -> None:
        """Count a frame handed to the backend."""
        self.in_flight += nbytes

    def fits(self, nbytes: int) -> bool:
        """Whether `nbytes` more fit, by the estimate (no call into the backend)."""
        return self.in_flight == 0 or self.in_flight + nbytes <= self.capacity

    def admit(self, nbytes: int, flush: Callable[[], Progress]) -> bool:
        """Whether to write a frame of `nbytes` now (False: drop it).

        `flush` hands buffered frames to storage and returns a fresh report.

        Raises
        ------
        BufferFullError
            With `on_full="raise"` when it does not fit.
        OSError
            With `"block"`, when storage took nothing for `timeout_s`; or what
            `flush` raises.
        """
        if self.fits(nbytes):
            return True
        self.report(flush())
        if self.fits(nbytes):
            return True
        if self.policy == "raise":
            raise BufferFullError(
                f"storage at {self.where} is behind: {self.in_flight} bytes in "
                f"flight, {self.capacity} allowed (max_buffer_bytes; "
                "on_full='raise')"
            )
        if self.policy == "drop":
            return False
        return self._wait(nbytes, flush)

    def _wait(self, nbytes: int, flush: Callable[[], Progress]) -> bool:
        delay = 0.0005
        least, since = self.in_flight, time.monotonic()
        while True:
            time.sleep(delay)
            delay = min(delay * 2, MAX_POLL_S)
            self.report(flush())
            if self.fits(nbytes):
                return True
            now = time.monotonic()
            if self.in_flight < least:
                least, since = self.in_flight, now
            elif now - since > self.timeout_s:
                raise TimeoutError(
                    f"storage at {self.where} took nothing for "
                    f"{self.timeout_s:.0f} s ({self.in_flight} bytes waiting)"
                )
