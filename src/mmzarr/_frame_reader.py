"""Reading single frames back, to tell whether their chunks decode.

`FrameReader` opens each array once, with tensorstore if installed, else
zarr-python; `validate`, `finalize` and the level repair use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmzarr._lock import canonical

__all__ = ["ArrayOpenError", "FrameReader", "have_reader"]


def have_reader() -> bool:
    """Whether tensorstore or zarr-python is installed."""
    import importlib.util

    return any(importlib.util.find_spec(m) for m in ("tensorstore", "zarr"))


class ArrayOpenError(OSError):
    """An array that cannot be opened (its metadata, the path, the reader)."""


class FrameReader:
    """Reads single frames to check that their chunks decode.

    Uses tensorstore if installed, else zarr-python; `available` is False when
    neither is. Each array is opened once, from its `zarr.json` on disk.
    """

    def __init__(self, root: Path) -> None:
        # tensorstore refuses "..": resolved as the kernel reads it
        self.root = canonical(Path(root))
        self.engine: str | None
        self._arrays: dict[str, Any] = {}
        try:
            import tensorstore  # noqa: F401
        except ImportError:
            self.engine = "zarr-python" if _has_zarr() else None
        else:
            # tensorstore's file driver takes a backslash for a separator
            slash = "\\" in str(self.root) and _has_zarr()
            self.engine = "zarr-python" if slash else "tensorstore"

    @property
    def available(self) -> bool:
        """Whether a reader is installed."""
        return self.engine is not None

    def error(self, array: str, index: tuple[Any, ...]) -> str | None:
        """Why `array[index]` (a frame, or a region) cannot be read, or None."""
        try:
            return self.read(array, index)[1]
        except ArrayOpenError as e:
            return str(e)

    def read(
        self, array: str, index: tuple[Any, ...]
    ) -> tuple[np.ndarray | None, str | None]:
        """`(array[index], None)`, or `(None, why it cannot be read)`.

        Raises
        ------
        ArrayOpenError
            When the array cannot be opened: nothing is known of its chunks.
        """
        arr = self._arrays.get(array)
        if arr is None:
            try:
                arr = self._arrays[array] = self._open(array)
            except Exception as e:
                raise ArrayOpenError(
                    f"cannot open array {str(self.root / array)!r} with "
                    f"{self.engine}: {type(e).__name__}: {e}"
                ) from e
        try:
            if self.engine == "tensorstore":
                return np.asarray(arr[index].read().result()), None
            return np.asarray(arr[index]), None
        except Exception as e:
            return None, f"{type(e).__name__}: {e}"

    def _open(self, array: str) -> Any:
        path = self.root / array
        if self.engine == "tensorstore":
            import tensorstore as ts

            spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path)}}
            return ts.open(spec, open=True, read=True).result()
        import zarr

        return zarr.open_array(str(path), mode="r")


def _has_zarr() -> bool:
    import importlib.util

    return importlib.util.find_spec("zarr") is not None
