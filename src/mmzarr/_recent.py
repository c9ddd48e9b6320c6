"""The most recent frames of a stream, kept in memory for live displays.

`Stream.latest` and `Stream.view` read frames here that storage may not
return yet (acquire-zarr writes them a little later, on its own threads). The
frames are the stream's own (handed over, or its one copy of the caller's), so
nothing changes them; the oldest go when the budget is spent (at least one
frame is kept).
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["RecentFrames"]


class RecentFrames:
    """The last frames written, oldest first, within `budget` bytes.

    Thread-safe: a live view reads while the stream keeps frames.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._frames: collections.OrderedDict[
            tuple[int, tuple[int, ...]], np.ndarray
        ] = collections.OrderedDict()
        self._bytes = 0
        self._last: dict[int, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    def keep(self, image: int, index: tuple[int, ...], frame: np.ndarray) -> None:
        """Keep `frame` of image number `image`, at storage `index` (not copied)."""
        with self._lock:
            self._frames[(image, index)] = frame
            self._bytes += frame.nbytes
            self._last[image] = index
            while len(self._frames) > 1 and self._bytes > self.budget:
                _, old = self._frames.popitem(last=False)
                self._bytes -= old.nbytes

    def latest(self, image: int) -> np.ndarray | None:
        """The last frame kept of image number `image` (not a copy), or None."""
        with self._lock:
            if image not in self._last:
                return None
            return self._frames.get((image, self._last[image]))

    def of_image(self, image: int) -> dict[tuple[int, ...], np.ndarray]:
        """The frames kept of image number `image`, by storage index."""
        with self._lock:
            return {idx: f for (i, idx), f in self._frames.items() if i == image}
