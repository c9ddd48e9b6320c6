"""Frames gathered into few acquire-zarr `append` calls.

Each `append` call has a cost of its own: 512x512 uint16 frames every 5 ms
cost 1.75 ms of CPU each appended one by one, 0.9-1.3 ms in batches of 4-16
(with libgomp's default active waiting, see `OMP_WAIT_POLICY` in
`_acquire_settings`, 8.3 ms and 2.3 ms). So frames of one array are copied
into a batch of about `BATCH_BYTES` and handed over together; a frame of half
that or more goes alone, uncopied.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

    from mmzarr.backends._acquire_array import ArrayCursor

__all__ = ["BATCH_AGE_S", "BATCH_BYTES", "Batches"]

#: Frames of one array are handed to acquire-zarr in batches of about this many
#: bytes.
BATCH_BYTES = 4 * 1024**2
#: A partial batch is handed over by `push_all(aged=True)` once its first frame
#: has waited this long (half the shortest `flush_interval_s`, so no frame waits
#: longer than that): `Stream` also flushes for every frame while storage is
#: behind, and handing partial batches over each time would undo the batching.
BATCH_AGE_S = 0.005


class Batches:
    """The batches in the making; `append(cursor, frames)` hands one over."""

    def __init__(self, append: Callable[[ArrayCursor, np.ndarray], None]) -> None:
        self._append = append
        self._batching: list[ArrayCursor] = []  # arrays with batched frames
        self._t0 = 0.0  # when the oldest batched frame came

    def add(self, cur: ArrayCursor, frame: np.ndarray) -> None:
        """Hand `frame` over for `cur`'s next slot: alone, or in its batch."""
        if 2 * cur.frame_bytes > BATCH_BYTES:  # a frame alone fills a batch
            self._append(cur, np.ascontiguousarray(frame))
            return
        if cur.batch is None:
            n = BATCH_BYTES // max(cur.frame_bytes, 1)
            cur.batch = np.empty((n, *frame.shape), frame.dtype)
        if cur not in self._batching:
            # one batch in the making at a time, except across pyramid levels
            # (whose frames alternate): beyond BATCH_BYTES, earlier ones go first
            if self._bytes() + frame.nbytes > BATCH_BYTES:
                self.push_all()
            if not self._batching:
                self._t0 = time.monotonic()
            self._batching.append(cur)
        cur.batch[cur.batched] = frame
        cur.batched += 1
        if cur.batched == len(cur.batch):
            self._push(cur)
            self._batching.remove(cur)

    def push_all(self, *, aged: bool = False) -> None:
        """Hand every batch over (`aged`: only once `BATCH_AGE_S` old)."""
        if not self._batching or (aged and time.monotonic() - self._t0 < BATCH_AGE_S):
            return
        for cur in self._batching:
            self._push(cur)
        self._batching.clear()

    def _bytes(self) -> int:
        """Bytes of the frames batched in every array."""
        return sum(c.batched * c.frame_bytes for c in self._batching)

    def _push(self, cur: ArrayCursor) -> None:
        """Append `cur`'s batched frames to acquire-zarr (it copies them)."""
        if not cur.batched or cur.batch is None:
            return
        full = cur.batched == len(cur.batch)
        frames = cur.batch[: cur.batched]
        cur.batched = 0
        self._append(cur, frames if len(frames) > 1 else frames[0])
        if not full:  # an array that rarely fills a batch keeps no buffer
            cur.batch = None
