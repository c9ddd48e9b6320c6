"""Resolution levels of the frames `finalize` keeps: checked, and rebuilt from level 0.

A writer writes a frame's full-resolution array first and its levels after it,
so a writer killed in between leaves a frame whose level-0 chunk is on disk and
whose level chunks are missing, or torn. `finalize` keeps such a frame for its
level 0; here
- `damaged_level_files`: the level chunk files of kept frames that are torn or
  do not decode (`finalize` moves them aside with the others);
- `level_files`: the level chunk files of frames `finalize` lost (moved aside
  too, so that no level shows a frame level 0 lacks);
- `frames_missing_levels`: the kept frames that then lack a level chunk;
- `rebuild_levels` (`LevelWriter.rebuild`): their levels computed again from
  level 0, as the writer computes them (`_pyramid.downsample_frame`), and
  written with tensorstore or zarr-python (acquire-zarr cannot write into an
  array).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmzarr._chunk_files import chunk_paths, frame_is_complete
from mmzarr._kept_frames import frame_entry
from mmzarr._layout import array_path
from mmzarr._pyramid import all_arrays, downsample_frame
from mmzarr._validate import array_documents

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    import numpy as np

    from mmzarr._frame_reader import FrameReader
    from mmzarr._kept_frames import Frame
    from mmzarr._settings import AcquisitionSettings

__all__ = [
    "LevelWriter",
    "damaged_level_files",
    "frames_missing_levels",
    "level_files",
    "level_paths",
    "rebuild_levels",
]


def level_paths(settings: AcquisitionSettings) -> dict[int, list[str]]:
    """Per image number, the paths of its lower-resolution arrays, finest first."""
    out: dict[int, list[str]] = {}
    for spec in all_arrays(settings):
        if spec.level:
            out.setdefault(spec.image, []).append(spec.path)
    return out


def _files(
    root: Path, docs: dict[str, dict[str, Any]], path: str, index: tuple[int, ...]
) -> list[str]:
    """The chunk files of frame `index` in array `path` that exist."""
    doc = docs.get(path)
    if doc is None:
        return []
    rels = chunk_paths(doc, index)
    return [f"{path}/{rel}" for rel in rels if (root / path / rel).is_file()]


def damaged_level_files(
    root: Path,
    settings: AcquisitionSettings,
    kept: Iterable[Frame],
    reader: FrameReader,
) -> set[str]:
    """Level chunk files of `kept` frames that are torn or do not decode."""
    docs = array_documents(root)
    levels = level_paths(settings)
    found: set[str] = set()
    for i, index in kept:
        for path in levels.get(i, ()):
            files = _files(root, docs, path, index)
            if not files or path not in docs:
                continue  # none there: rebuilt, nothing to move
            torn = not frame_is_complete(root, path, docs[path], index)
            if torn or (reader.available and reader.error(path, index) is not None):
                found.update(files)
    return found


def level_files(
    root: Path, settings: AcquisitionSettings, frames: Iterable[Frame]
) -> set[str]:
    """The level chunk files on disk that hold `frames`."""
    docs = array_documents(root)
    levels = level_paths(settings)
    return {
        f
        for i, index in frames
        for p in levels.get(i, ())
        for f in _files(root, docs, p, index)
    }


def frames_missing_levels(
    root: Path, settings: AcquisitionSettings, kept: Iterable[Frame]
) -> list[Frame]:
    """The `kept` frames some of whose level chunk files are not on disk."""
    docs = array_documents(root)
    levels = level_paths(settings)
    out = []
    for i, index in kept:
        paths = levels.get(i, ())
        if any(
            p in docs and not frame_is_complete(root, p, docs[p], index) for p in paths
        ):
            out.append((i, index))
    return out


class LevelWriter:
    """Writes frames' levels into a dataset's level arrays.

    With `reader`'s engine: tensorstore, else zarr-python.
    """

    def __init__(self, settings: AcquisitionSettings, reader: FrameReader) -> None:
        self.root = reader.root
        self.settings = settings
        self.reader = reader
        self.method = settings.downsample.method if settings.downsample else "mean"
        self._levels = level_paths(settings)
        self._docs = array_documents(self.root)
        self._arrays: dict[str, Any] = {}

    def rebuild(self, frame: Frame) -> str | None:
        """Compute frame's levels from its level 0 and write them; why not, or None."""
        i, index = frame
        pixels, error = self.reader.read(array_path(self.settings.images[i]), index)
        if pixels is None:
            return f"level 0 does not read ({error})"
        for path in self._levels.get(i, ()):
            pixels = downsample_frame(pixels, self.method)
            try:
                self._write(path, index, pixels)
            except Exception as e:
                return f"writing {path!r} failed: {type(e).__name__}: {e}"
        return None

    def _write(self, path: str, index: tuple[int, ...], pixels: np.ndarray) -> None:
        arr = self._arrays.get(path)
        if arr is None:
            arr = self._arrays[path] = self._open(path)
        if self.reader.engine == "tensorstore":
            arr[index].write(pixels).result()
            return
        arr[index] = pixels
        from mmzarr.backends._fsync import fsync_files

        files = _files(self.root, self._docs, path, index)
        fsync_files([str(self.root / f) for f in files])

    def _open(self, path: str) -> Any:
        where = str(self.root / path)
        if self.reader.engine == "tensorstore":
            import tensorstore as ts

            spec = {
                "driver": "zarr3",
                "kvstore": {"driver": "file", "path": where},
                # a chunk of the fill value is stored, as the writer stores it
                "store_data_equal_to_fill_value": True,
            }
            return ts.open(spec, open=True, read=True, write=True).result()
        import zarr

        return zarr.open_array(where, mode="r+", config={"write_empty_chunks": True})


def rebuild_levels(
    root: Path,
    settings: AcquisitionSettings,
    kept: Iterable[Frame],
    reader: FrameReader,
    *,
    pending: Iterable[Any] = (),
    before: Callable[[list[dict[str, Any]]], None] = lambda todo: None,
) -> tuple[list[Frame], dict[Frame, str]]:
    """Write again the levels that `kept` frames lack; (rebuilt, why not each).

    `pending`: the frames (`{"image", "index"}`) an interrupted run was writing
    the levels of: written again, as a shard it wrote may hold them as the
    fill value. `before` is called with the frames to write before any is.
    """
    kept = list(kept)
    number = {im.key: i for i, im in enumerate(settings.images)}
    again = {
        (number[x["image"]], tuple(x["index"]))
        for x in pending
        if isinstance(x, dict) and x.get("image") in number
    }
    missing = sorted({*frames_missing_levels(root, settings, kept), *again} & set(kept))
    if not missing:
        return [], {}
    before([frame_entry(settings, f) for f in missing])
    if not reader.available:
        return [], dict.fromkeys(missing, "no tensorstore or zarr-python to write it")
    writer = LevelWriter(settings, reader)
    rebuilt: list[Frame] = []
    failed: dict[Frame, str] = {}
    for frame in missing:
        problem = writer.rebuild(frame)
        if problem is None:
            rebuilt.append(frame)
        else:
            failed[frame] = problem
    return rebuilt, failed
