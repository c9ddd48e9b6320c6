"""`LiveView`: an array-like over one image while it is written, and after.

Viewers (ndv, napari) display anything with `dtype`, `shape`, `ndim` and
`__getitem__`. A live view reads the frames that are on storage with
tensorstore (or zarr-python) and lays the frames not yet readable there over
them from memory (the stream keeps those until a flush makes them readable),
so it returns exactly the frames acquired so far and the fill value elsewhere.
It never writes.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import numpy as np

from mmzarr._layout import array_path

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from mmzarr._settings import ImageSettings

__all__ = ["LiveView"]


class LiveView:
    """The image `image` of the dataset at `root`, as acquired so far.

    Parameters
    ----------
    root
        The dataset's local directory.
    image
        The image's settings (`AcquisitionSettings.images[i]`).
    dtype
        The dataset's dtype.
    recent
        Returns the frames written but maybe not yet readable from storage,
        by storage index (a copy or a snapshot: it is read, not kept).
    t_size
        Returns the current size of an unbounded `t` (time points acquired).

    Examples
    --------
    >>> view = writer.view()  # doctest: +SKIP
    >>> view.shape, view.dtype  # doctest: +SKIP
    ((3, 2, 512, 512), dtype('uint16'))
    >>> frame = view[0, 1]  # doctest: +SKIP
    """

    def __init__(
        self,
        root: Path,
        image: ImageSettings,
        dtype: str,
        recent: Callable[[], Mapping[tuple[int, ...], np.ndarray]],
        t_size: Callable[[], int] | None = None,
    ) -> None:
        self._root = root
        self._image = image
        self._recent = recent
        self._t_size = t_size
        self.dtype = np.dtype(dtype)
        self._reader: Any = None

    @property
    def shape(self) -> tuple[int, ...]:
        """The image's shape; an unbounded `t` has the time points acquired."""
        sizes = []
        for d in self._image.dimensions:
            if d.size is None:
                sizes.append(self._t_size() if self._t_size is not None else 0)
            else:
                sizes.append(int(d.size))
        return tuple(sizes)

    @property
    def ndim(self) -> int:
        """Number of dimensions (t, c, z, y, x that the image has)."""
        return len(self._image.dimensions)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return (
            f"<LiveView {self._image.key or '(root)'!r} shape={self.shape} "
            f"dtype={self.dtype}>"
        )

    def __getitem__(self, key: Any) -> np.ndarray:
        """`view[key]` as numpy indexes the full image (ints, slices, ...)."""
        shape = self.shape
        picks = _picks(key, shape)
        out_shape = tuple(len(p) for p, keep in picks if keep)
        out = np.zeros([len(p) for p, _ in picks], dtype=self.dtype)
        self._read_storage(picks, out)
        self._overlay(picks, out)
        return out.reshape(out_shape)

    # ---- internals ------------------------------------------------------------
    def _read_storage(
        self, picks: list[tuple[np.ndarray, bool]], out: np.ndarray
    ) -> None:
        """Fill `out` from what storage holds (its shape may lag behind)."""
        arr = self._open()
        if arr is None:
            return
        disk_shape = tuple(int(n) for n in arr.shape)
        masks = [p < n for (p, _), n in zip(picks, disk_shape, strict=True)]
        sel = [p[m] for (p, _), m in zip(picks, masks, strict=True)]
        if any(len(s) == 0 for s in sel):
            return
        try:
            data = _read(arr, sel)
        except Exception:
            # a file being written (acquire-zarr and zarrs write in place)
            # fails the whole read: read frame by frame, keeping every frame
            # that reads; what memory has is laid over the others
            data = np.zeros([len(s) for s in sel], dtype=out.dtype)
            n_index = len(self._image.index_dims)
            for pos in np.ndindex(data.shape[:n_index]):
                one = [s[i : i + 1] for s, i in zip(sel[:n_index], pos, strict=True)]
                with contextlib.suppress(Exception):
                    data[pos] = _read(arr, [*one, *sel[n_index:]])[(0,) * n_index]
        out[np.ix_(*masks)] = data

    def _overlay(self, picks: list[tuple[np.ndarray, bool]], out: np.ndarray) -> None:
        """Lay the frames kept in memory over `out`."""
        n_index = len(self._image.index_dims)
        lookups = [{int(v): i for i, v in enumerate(p)} for p, _ in picks[:n_index]]
        ys, xs = picks[n_index][0], picks[n_index + 1][0]
        for sidx, frame in self._recent().items():
            where = []
            for v, lookup in zip(sidx, lookups, strict=True):
                if v not in lookup:
                    break
                where.append(lookup[v])
            else:
                out[tuple(where)] = frame[np.ix_(ys, xs)]

    def _open(self) -> Any:
        """The image's full-resolution array on storage (re-read each time)."""
        path = self._root / array_path(self._image)
        if not (path / "zarr.json").is_file():
            return None
        try:
            import tensorstore as ts
        except ImportError:
            import zarr

            try:
                return zarr.open_array(str(path), mode="r")
            except Exception:
                return None
        spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path)}}
        try:
            return ts.open(spec, open=True, read=True).result()
        except Exception:  # being rewritten (acquire-zarr): memory covers it
            return None


def _read(arr: Any, sel: list[np.ndarray]) -> np.ndarray:
    """`arr` (tensorstore or zarr-python) at the orthogonal selection `sel`."""
    if hasattr(arr, "oindex") and not hasattr(arr, "read"):
        return np.asarray(arr.oindex[tuple(sel)])  # zarr-python
    return np.asarray(arr.oindex[tuple(sel)].read().result())


def _picks(key: Any, shape: tuple[int, ...]) -> list[tuple[np.ndarray, bool]]:
    """Per dimension: the indices `key` selects, and whether the axis is kept.

    Supports what viewers use: ints, slices, `...` and 1-D integer sequences.
    """
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = key.index(Ellipsis)
        fill = len(shape) - (len(key) - 1)
        key = key[:i] + (slice(None),) * fill + key[i + 1 :]
    if len(key) > len(shape):
        raise IndexError(f"too many indices for a {len(shape)}-d view: {key!r}")
    key = key + (slice(None),) * (len(shape) - len(key))
    picks = []
    for k, n in zip(key, shape, strict=True):
        if isinstance(k, (int, np.integer)):
            i = int(k) + n if int(k) < 0 else int(k)
            if not 0 <= i < n:
                raise IndexError(f"index {k} is out of bounds for an axis of size {n}")
            picks.append((np.array([i]), False))
        elif isinstance(k, slice):
            picks.append((np.arange(n)[k], True))
        else:
            picks.append((np.arange(n)[np.asarray(k)], True))
    return picks
