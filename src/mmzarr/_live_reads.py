"""What a stream offers a live display: its latest frame and a view of an image.

`Stream` takes these from `LiveReads`: frames still in memory come from its
recent frames (`_recent`), the others from storage (`_view.LiveView`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmzarr.backends._base import last_time_point
from mmzarr.errors import StorageError

if TYPE_CHECKING:
    import threading

    import numpy as np

    from mmzarr._recent import RecentFrames
    from mmzarr._routing import Router
    from mmzarr._settings import AcquisitionSettings
    from mmzarr._storage import Location
    from mmzarr._view import LiveView

__all__ = ["LiveReads"]


class LiveReads:
    """`latest` and `view` of a `Stream` (which sets the attributes below)."""

    settings: AcquisitionSettings
    location: Location
    _lock: threading.RLock
    _recent: RecentFrames
    _router: Router
    _closed: bool

    @property
    def _where(self) -> str:
        """The full path (or URL) of the dataset, for messages."""
        return self.location.where

    def latest(self, key: str = "") -> np.ndarray | None:
        """A copy of the last frame appended to image `key`, or None.

        For a live display: it never touches storage, and the copy stays valid
        while later frames arrive (and after the caller reused its buffer). The
        most recent frames are kept, up to `LATEST_BYTES` (at least one
        frame): for an image written longer ago, e.g. an early field of a
        plate, this is None.

        Raises
        ------
        KeyError
            For an unknown image key (the message lists the keys): it was
            None, as for an image with no recent frame, so a display wired
            to a wrong key showed nothing and was never told.
        """
        # not under the stream's lock: an append waiting for storage
        # (on_full="block") or a close would stall the display; the recent
        # frames have a lock of their own and are never changed once kept
        image = self.settings.keys.index(self.settings.image(key).key)
        frame = self._recent.latest(image)
        return None if frame is None else frame.copy()

    def view(self, key: str = "") -> LiveView:
        """An array-like over image `key` as acquired so far (and after close).

        `dtype`, `shape`, `ndim` and numpy-style indexing, as viewers (ndv,
        napari) expect: frames on storage are read with tensorstore (or
        zarr-python), the most recent ones (up to `LATEST_BYTES`) come from
        memory, and slots not acquired read as the fill value. An unbounded
        `t` has the time points acquired so far. Local datasets only.

        Raises
        ------
        KeyError
            For an unknown image key (the message lists the keys).
        StorageError
            For a dataset on object storage.
        """
        from mmzarr._view import LiveView

        image = self.settings.keys.index(self.settings.image(key).key)
        if self.location.path is None:
            raise StorageError(
                f"a live view reads local datasets; {self._where} is on S3"
            )
        return LiveView(
            self.location.path,
            self.settings.images[image],
            self.settings.dtype,
            recent=lambda: self._recent.of_image(image),
            t_size=lambda: self._t_size(image),
        )

    def _t_size(self, image: int) -> int:
        """The time points of image number `image` so far.

        After close, the dataset's: every unbounded array ends at its last one.
        """
        ledgers = self._router.ledgers
        if self._closed:
            return last_time_point(ledger.t_size for ledger in ledgers)
        return ledgers[image].t_size
