"""acquire-zarr backend (the default): one `ZarrStream`, one array per image.

acquire-zarr only appends: each array receives frames in the order of its
declared dimensions. This backend declares them in the image's acquisition order
and lets acquire-zarr reorder to storage order (`storage_dimension_order`) when
that is allowed (the first axis may not move); otherwise it declares storage
order. Either way a frame may arrive before the slot acquire-zarr expects next
(a plan in another order, a frame one slot late, two producer threads); the
reorder window below holds it.

Reorder window: a frame that arrives ahead of its array's next slot is copied
and held until the frames before it arrive; then they are appended in order.
The frames held, over all arrays, are bounded by `max_reorder_bytes` (default a
quarter of `max_buffer_bytes`). A slot is written with the fill value (0) only
- when the plan never acquires it (`ImageSettings.is_acquired`);
- when the window overflows: the earliest gap of the array holding the most
  bytes is filled (logged as a warning) and a frame that comes for it later is
  refused with a `FrameError`;
- at close, for gaps before frames that did arrive (logged as a warning).

What is on disk: acquire-zarr writes a shard file in place, on its own threads,
once every chunk of the shard has arrived or later (with
`storage_dimension_order`, or frames tiled in y/x, once more of the slab has):
the chunks first, then the shard index with its crc32c, at the end of the file.
A shard whose index is there and intact is therefore complete in the OS cache
(safe from a killed process); a file without it may be a torn write. It also
rewrites the array's `zarr.json` in place with the complete rows along the first
axis (time points) as the shape. This backend follows every shard that holds an
accepted frame until `shard_on_disk` confirms it, which gives
- `frames_readable()`: how many frames, in write order, another process can
  read (and `flush_makes_readable`, true when every frame written is): not the
  frames of an incomplete shard (e.g. `shards={"t": 4}` between its time
  points), nor those of a time point not yet complete (outside the shape);
- the free-space check: every byte accepted but not yet confirmed on disk
  (frames held, batched, in open shards, in shards being written, over all
  arrays), counted as whole shard files (`file_disk_bytes`: index, block
  rounding), is reserved before a frame is accepted;
- backpressure: the bytes of complete shards not yet confirmed.

Upstream quirks handled here:
- acquire-zarr 0.10 rewrites the parent groups' `zarr.json` on close
  (https://github.com/acquire-project/acquire-zarr/issues/186): `Stream`
  rewrites all group metadata after `close`.
- `ZarrStream.skip` cannot address one array of a multi-array stream ("Array key
  not found"), so gaps are filled by appending zero frames.
- it has no flush and no completion callback; shard files are checked instead.
- along the first declared axis, a shard that reaches past the end of a bounded
  array is written only at close (other axes' edge shards when full).

On S3 (`open_location`) acquire-zarr's own S3 sink writes the arrays
(`StreamSettings.s3`: endpoint, bucket, region; credentials from the
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment variables). Which shards
have reached S3 is not tracked (a listing per frame would cost more than it
saves): the buffer is then bounded only by acquire-zarr itself, and frames are
reported readable only at close.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import json
import logging
import math
import os
import struct
import time
from typing import TYPE_CHECKING, Any

import acquire_zarr as aqz
import numpy as np

from mmzarr._layout import BLOSC_CLEVEL, array_document
from mmzarr._metadata import dumps_json
from mmzarr._pyramid import ArraySpec, all_arrays
from mmzarr._storage import Location
from mmzarr.backends._base import INDEX_ENTRY, FreeSpaceGuard, file_disk_bytes
from mmzarr.errors import FrameError, PlanError

if TYPE_CHECKING:
    from pathlib import Path

    from mmzarr._settings import AcquisitionSettings, Dimension

__all__ = ["AcquireZarrBackend", "crc32c", "shard_on_disk"]

logger = logging.getLogger("mmzarr")

#: Seconds without any write reaching the disk before a full buffer is an error.
STALL_S = 120.0
#: Frames of one array are handed to acquire-zarr in batches of about this many
#: bytes (a frame larger than half of it goes alone, uncopied): each `append`
#: call has a cost of its own. 512x512 uint16 frames every 5 ms cost 1.75 ms of
#: CPU each appended one by one, 0.9-1.3 ms in batches of 4-16; with libgomp's
#: default active waiting (see `mmzarr/__init__.py`), 8.3 ms and 2.3 ms.
BATCH_BYTES = 4 * 1024**2
#: Shards not yet on disk that a check of the oldest complete shards looks past
#: (acquire-zarr's threads finish them out of order) before it stops.
LOOK_PAST = 8
#: A shard index entry of a chunk that was never written.
_UNWRITTEN = 2**64 - 1

_KINDS = {
    "t": aqz.DimensionType.TIME,
    "c": aqz.DimensionType.CHANNEL,
    "z": aqz.DimensionType.SPACE,
    "y": aqz.DimensionType.SPACE,
    "x": aqz.DimensionType.SPACE,
}


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`: the checksum of a zarr shard index."""
    crc = 0xFFFFFFFF
    table = _CRC32C
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def shard_on_disk(path: Path | str, index_bytes: int) -> bool:
    """Whether the shard file at `path` is complete.

    True when the file ends with an intact index of `index_bytes` (its crc32c
    matches) whose chunks all lie before it: acquire-zarr writes the index after
    every chunk of the shard, so the whole shard has then been written.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < index_bytes:
                return False
            f.seek(size - index_bytes)
            tail = f.read(index_bytes)
    except FileNotFoundError:
        return False
    table = tail[:-4]
    if len(tail) != index_bytes or crc32c(table) != int.from_bytes(tail[-4:], "little"):
        return False
    end = size - index_bytes
    return all(
        offset == _UNWRITTEN or offset + length <= end
        for offset, length in struct.iter_unpack("<QQ", table)
    )


def _compression(name: str) -> aqz.CompressionSettings | None:
    if name == "none":
        return None
    codec = {
        "blosc-lz4": aqz.CompressionCodec.BLOSC_LZ4,
        "blosc-zstd": aqz.CompressionCodec.BLOSC_ZSTD,
    }[name]
    return aqz.CompressionSettings(
        compressor=aqz.Compressor.BLOSC1,
        codec=codec,
        level=BLOSC_CLEVEL[name],
        shuffle=1,
    )


class _Shard:
    """One shard (its file for every y/x tile) of one array, until it is on disk."""

    __slots__ = (
        "array",
        "disk",
        "files",
        "key",
        "landed",
        "missing",
        "raw",
        "seq",
        "t_max",
    )

    def __init__(self, array: _ArrayCursor, key: tuple[int, ...], missing: int) -> None:
        self.array = array
        self.key = key
        self.files: list[str] | None = None  # tile files not yet confirmed on disk
        self.missing = missing  # slots not yet appended to acquire-zarr
        self.disk = array.shard_disk  # disk bytes reserved for its files
        self.raw = 0  # bytes of the frames appended to it
        self.seq = -1  # write number of its first frame (-1: fill values only)
        self.t_max = -1  # largest first-axis index of a frame in it
        self.landed = False

    def check(self, root: Path) -> bool:
        """Whether every file is on disk now (files confirmed are not checked again)."""
        if self.files is None:
            self.files = self.array.shard_files(self.key)
        files, index_bytes = self.files, self.array.index_bytes
        while files and shard_on_disk(root / files[-1], index_bytes):
            files.pop()
        return not files


class _ArrayCursor:
    """Append position of one array, its reorder buffer and its open shards."""

    def __init__(
        self,
        spec: ArraySpec,
        append_order: tuple[str, ...],
        dtype: np.dtype[Any],
        compressed: bool,
    ) -> None:
        image = spec.settings
        self.image = image
        self.key = spec.path
        self.base = spec.level == 0
        self.order = append_order
        sizes: dict[str, int | None] = {d.name: d.size for d in image.index_dims}
        # strides of the linear position over append_order (t may be unbounded:
        # it is always outermost, so its size is never needed)
        self.strides: dict[str, int] = {}
        stride = 1
        for name in reversed(append_order):
            self.strides[name] = stride
            stride *= int(sizes[name] or 1)
        self.sizes = sizes
        self.storage_names: tuple[str, ...] = tuple(d.name for d in image.index_dims)
        self.next = 0
        #: frames accepted but not yet handed to acquire-zarr (`batch[:batched]`)
        self.batch: np.ndarray | None = None
        self.batched = 0
        #: early frames (copies) by append position, with their write number
        self.pending: dict[int, tuple[np.ndarray, int]] = {}
        #: positions written with the fill value because the window overflowed
        self.overflowed: set[int] = set()
        self.frame_bytes = math.prod(image.frame_shape) * dtype.itemsize
        dims: dict[str, Dimension] = {d.name: d for d in image.dimensions}
        self.shard: dict[str, int] = {n: dims[n].shard_size for n in self.storage_names}
        ny = math.ceil(image.frame_shape[0] / dims["y"].shard_size)
        nx = math.ceil(image.frame_shape[1] / dims["x"].shard_size)
        self.tiles = [f"{y}/{x}" for y in range(ny) for x in range(nx)]
        chunks = math.prod(d.shard_size // d.chunk_size for d in image.dimensions)
        self.index_bytes = INDEX_ENTRY * chunks + 4
        #: disk bytes reserved per shard: every tile file at its largest
        self.shard_disk = len(self.tiles) * file_disk_bytes(
            image, dtype.itemsize, compressed=compressed, sharded=True
        )
        #: shards holding a slot below `reserved` that are not complete yet
        self.shards: dict[tuple[int, ...], _Shard] = {}
        self.reserved = 0
        #: slots per index along the first axis ("row"); 0: no index axis
        self.row_slots = self.strides[append_order[0]] if append_order else 0
        #: (row, shard holding the row's last slot), oldest first
        self.row_ends: collections.deque[tuple[int, _Shard]] = collections.deque()
        self.rows_landed = 0  # leading rows whose last slot's shard is on disk
        #: leading rows readable: written, and inside the array's shape on disk
        self.rows_confirmed = 0 if append_order else 2**62
        first = append_order[0] if append_order else None
        self.first = first
        #: (storage position, stride) of each axis, in append order
        self.walk = [(self.storage_names.index(n), self.strides[n]) for n in self.order]
        self.shard_steps = [self.shard[n] for n in self.storage_names]
        self.full_slots = math.prod(self.shard_steps)
        # whether some shard ends early at the array's edge (see `new_shard`)
        self.edges = any(
            n != first and sizes[n] is not None and int(sizes[n] or 1) % self.shard[n]
            for n in self.storage_names
        )
        # acquire-zarr may wait for a "slab" (one shard along the first append
        # axis, everything along the others) before writing its shards
        self.slab_frames: int = math.prod(
            [
                (self.shard[n] if n == first else int(sizes[n] or 1))
                for n in append_order
            ]
        )

    def linear(self, index: tuple[int, ...]) -> int:
        """Position of storage `index` in append order."""
        named = dict(zip(self.storage_names, index, strict=True))
        return sum(named[n] * self.strides[n] for n in self.order)

    def index_of(self, linear: int) -> tuple[int, ...]:
        """Storage index at append position `linear`."""
        index = [0] * len(self.storage_names)
        for pos, stride in self.walk:
            index[pos], linear = divmod(linear, stride)
        return tuple(index)

    def shard_key(self, linear: int) -> tuple[int, ...]:
        """Grid coordinates of the shard holding append position `linear`."""
        index = [0] * len(self.storage_names)
        for pos, stride in self.walk:
            index[pos], linear = divmod(linear, stride)
        return tuple(v // s for v, s in zip(index, self.shard_steps, strict=True))

    def new_shard(self, key: tuple[int, ...]) -> _Shard:
        """The shard at `key`, with the slots acquire-zarr waits for to write it.

        A shard ends at the array's edge along every axis but the first declared
        one, where acquire-zarr writes a shard reaching past the end only at close.
        """
        if not self.edges:
            return _Shard(self, key, self.full_slots)
        slots = 1
        for n, k in zip(self.storage_names, key, strict=True):
            size, step = self.sizes[n], self.shard[n]
            slots *= (
                step if n == self.first or size is None else min(step, size - k * step)
            )
        return _Shard(self, key, slots)

    def shard_files(self, key: tuple[int, ...]) -> list[str]:
        """Paths, relative to the root, of the files of the shard at `key`."""
        prefix = "/".join([self.key, "c", *(str(k) for k in key)])
        return [f"{prefix}/{t}" for t in self.tiles]


class AcquireZarrBackend:
    """Write every image through one acquire-zarr `ZarrStream`.

    Parameters
    ----------
    max_threads
        acquire-zarr worker threads (0: its default).
    max_reorder_bytes
        Bytes of early frames held, over all arrays, until the frames before
        them arrive (see the module docstring); default a quarter of the
        settings' `max_buffer_bytes`.

    Notes
    -----
    Frames are handed to acquire-zarr in batches of up to `BATCH_BYTES` per
    array (fewer when frames alternate between arrays); `flush`, which `Stream`
    calls every `flush_interval_s`, hands over a partial batch, so a frame
    waits at most that long before acquire-zarr gets it; acquire-zarr then
    writes it on its own threads (`frames_readable` says when it has).

    acquire-zarr queues frames without bound when the disk is slower than the
    producer, and preallocates buffers of its own
    (`StreamSettings.get_maximum_memory_usage()`). This backend counts the bytes
    of complete shards it appended whose files are not yet on disk; `Stream`
    holds the producer (or raises, or drops) while they exceed what
    `max_buffer_bytes` leaves after acquire-zarr's own buffers (at least six
    slabs).
    """

    #: acquire-zarr rewrites the parent groups' `zarr.json` on close (issue #186):
    #: `Stream` writes every group document again after `close`.
    rewrites_groups = True

    def __init__(
        self, *, max_threads: int = 0, max_reorder_bytes: int | None = None
    ) -> None:
        self._max_threads = max_threads
        self._max_reorder = max_reorder_bytes
        self._window = 0
        self._held_bytes = 0  # frames in the reorder buffers
        self._complete: collections.deque[_Shard] = collections.deque()
        self._in_flight_bytes = 0  # raw bytes of complete shards not on disk
        self._disk_reserved = 0  # disk bytes of every shard not on disk
        #: shards holding a frame, by the write number of their first frame
        self._unlanded: list[tuple[int, int, _Shard]] = []
        self._tie = itertools.count()
        self._landed_marked = 0  # entries of `_unlanded` that landed
        self._seq = 0  # frames written to full-resolution arrays
        self._track = False  # local disk: shards are followed until on disk
        self._batching: list[_ArrayCursor] = []  # arrays with batched frames
        self._budget = 0
        self._stream: Any = None
        self._cursors: list[_ArrayCursor] = []
        self._zeros: dict[tuple[int, int], np.ndarray] = {}
        self._dtype: np.dtype[Any] = np.dtype("uint8")
        self._root: Path | None = None
        self._space: FreeSpaceGuard | None = None
        self._location: Location | None = None
        self._settings: AcquisitionSettings | None = None
        self._specs: tuple[ArraySpec, ...] = ()
        self._t_sizes: list[int] = []

    # ---- protocol -------------------------------------------------------------
    def open(self, root: Path, settings: AcquisitionSettings) -> None:
        """Create one acquire-zarr array per image."""
        self.open_location(Location(path=root), settings)

    def open_location(self, location: Location, settings: AcquisitionSettings) -> None:
        """Create one acquire-zarr array per image under `location` (local or S3)."""
        store: dict[str, Any] = {"store_path": str(location.path)}
        if location.s3 is not None:
            s3 = location.s3
            s3.export_env("acquire-zarr")  # its S3 client reads the environment
            store = {
                "store_path": s3.prefix,
                "s3": aqz.S3Settings(
                    endpoint=s3.endpoint_url or "",
                    bucket_name=s3.bucket,
                    region=s3.region or "",
                ),
            }
        arrays = []
        self._cursors = []
        dtype = self._dtype = np.dtype(settings.dtype)
        self._specs = all_arrays(settings)
        for spec in self._specs:
            im = spec.settings
            storage = tuple(d.name for d in im.index_dims)
            acq = tuple(im.acquisition_order or storage)
            native = not storage or acq[0] == storage[0]
            order = acq if native else storage
            cursor = _ArrayCursor(
                spec, order, dtype, compressed=settings.compression != "none"
            )
            self._cursors.append(cursor)
            dims: dict[str, Dimension] = {d.name: d for d in im.dimensions}
            aq_dims = []
            for name in (*order, "y", "x"):
                d = dims[name]
                aq_dims.append(
                    aqz.Dimension(
                        name=name,
                        kind=_KINDS[name],
                        array_size_px=0 if d.size is None else d.size,
                        chunk_size_px=d.chunk_size,
                        shard_size_chunks=max(1, d.shard_size // d.chunk_size),
                        unit=d.unit,
                        scale=d.scale,
                    )
                )
            kwargs: dict[str, Any] = {}
            if order != storage:
                kwargs["storage_dimension_order"] = [*storage, "y", "x"]
            arrays.append(
                aqz.ArraySettings(
                    output_key=cursor.key,
                    dimensions=aq_dims,
                    data_type=dtype,
                    compression=_compression(settings.compression),
                    **kwargs,
                )
            )
        stream_settings = aqz.StreamSettings(
            **store,
            arrays=arrays,
            overwrite=False,
            max_threads=self._max_threads,
        )
        largest_slab = max(c.frame_bytes * c.slab_frames for c in self._cursors)
        # acquire-zarr reserves buffers of its own (StreamSettings.
        # get_maximum_memory_usage(): ~256 MiB whatever the frame size; peak RSS
        # grew ~270-310 MiB with almost nothing in flight). A quarter of
        # max_buffer_bytes, and at least six slabs, stays in flight: measured at
        # 2048^2 2 slabs gave ~360-410 MB/s, 6 ~510 MB/s; at 512^2 six frames
        # made the producer wait on every fsync. Peak RSS growth stays below
        # max_buffer_bytes + 128 MiB (benchmarks/run.py).
        self._budget = max(6 * largest_slab, settings.max_buffer_bytes // 4)
        self._window = (
            settings.max_buffer_bytes // 4
            if self._max_reorder is None
            else self._max_reorder
        )
        try:
            self._stream = aqz.ZarrStream(stream_settings)
        except RuntimeError as e:
            raise PlanError(f"acquire-zarr rejected the settings: {e}") from e
        # acquire-zarr writes array metadata only at close, and not at all for an
        # array that got no frame: write it now so a crash or an empty run still
        # leaves readable arrays (acquire-zarr rewrites it, equal, at close).
        self._root, self._location, self._settings = location.path, location, settings
        self._track = location.path is not None
        self._space = None if location.path is None else FreeSpaceGuard(location.path)
        self._t_sizes = [0] * len(self._specs)
        for i in range(len(self._specs)):
            self._write_array_doc(i)

    def _write_array_doc(self, image: int) -> None:
        assert self._location is not None
        assert self._settings is not None
        im = self._specs[image].settings
        doc = array_document(
            im,
            self._settings.dtype,
            self._settings.compression,
            sharded=True,
            t_size=self._t_sizes[image],
        )
        key = f"{self._specs[image].path}/zarr.json"
        self._location.write_bytes(key, dumps_json(doc), fsync=False)

    def write(self, image: int, index: tuple[int, ...], frame: np.ndarray) -> None:
        """Append `frame`, or hold it until the slots before it are written.

        Raises `OSError(ENOSPC)`, having accepted nothing, when the frame's
        shard files (and those of the gap before it) may not fit on the disk.
        """
        cur = self._cursors[image]
        lin = cur.linear(index)
        if lin < cur.next or lin in cur.pending:
            why = (
                f"the reorder window ({self._window} bytes, max_reorder_bytes) "
                "overflowed while waiting for it and its slot was written with the "
                "fill value"
                if lin in cur.overflowed
                else "it was already written or passed"
            )
            raise FrameError(
                f"image {cur.image.key!r}: index {index} came too late: {why} "
                "(acquire-zarr appends in order)"
            )
        seq = self._seq if cur.base else self._seq - 1
        if self._track:
            self._reserve(cur, lin)
        # slots the plan never acquires will get no frame: fill them at once
        while cur.next < lin and not cur.image.is_acquired(cur.index_of(cur.next)):
            self._append(cur, self._zero(cur.image.frame_shape), -1)
        if lin == cur.next:
            self._append(cur, frame, seq)
            self._drain(cur, force=False)
        else:
            cur.pending[lin] = (np.array(frame, copy=True), seq)
            self._held_bytes += frame.nbytes
            if self._track:
                self._mark(cur.shards[cur.shard_key(lin)], seq)
            if self._held_bytes > self._window:
                self._overflow()
        if cur.base:
            self._seq += 1
        if cur.image.unbounded and index[0] >= self._t_sizes[image]:
            # keep the array's shape current as t grows (crash safety)
            self._t_sizes[image] = index[0] + 1
            self._write_array_doc(image)

    def close(self, t_sizes: dict[int, int] | None = None) -> None:
        """Write held frames (gaps before them as the fill value), close the stream.

        Idempotent.
        """
        if self._stream is None:
            return
        try:
            for cur in self._cursors:
                self._drain(cur, force=True)
            self.flush()
        finally:
            stream, self._stream = self._stream, None
            stream.close()
            self._track = False  # everything is on disk (or failed)
            self._complete.clear()
            self._unlanded.clear()
            self._landed_marked = 0
            self._in_flight_bytes = self._disk_reserved = 0

    def flush(self) -> None:
        """Hand every batched frame to acquire-zarr (which writes it soon after)."""
        for cur in self._batching:
            self._push(cur)
        self._batching.clear()

    def memory_bytes(self) -> int:
        """Bytes acquire-zarr currently holds."""
        return int(self._stream.get_current_memory_usage()) if self._stream else 0

    # ---- what is on disk --------------------------------------------------------
    def frames_readable(self) -> int:
        """How many frames, in write order, another process can read (checked now).

        Frames written to full-resolution arrays are counted (with their
        resolution levels): frame `n` is readable, and so are all before it,
        when this is more than `n`. A frame is readable when its shard files
        are on disk and the array's `zarr.json` holds its index along the first
        axis for good: acquire-zarr rewrites that document in place as it goes,
        with the shape of the complete rows along that axis (it shrinks what
        mmzarr wrote), so the frame's row must be complete, its last shard on
        disk (acquire-zarr has then written every earlier shape), and the shape
        on disk must include it. 0 on S3 until close (not tracked).
        """
        if self._stream is None:
            return self._seq
        if not self._track:
            return 0
        self._refresh()
        heap = self._unlanded
        confirmed: set[int] = set()
        while heap:
            shard = heap[0][2]
            if not shard.landed:
                break
            cur = shard.array
            if shard.t_max >= cur.rows_confirmed:
                if id(cur) in confirmed:
                    break
                confirmed.add(id(cur))
                self._confirm_rows(cur)
                if shard.t_max >= cur.rows_confirmed:
                    break
            heapq.heappop(heap)
            self._landed_marked -= 1
        return heap[0][0] if heap else self._seq

    def _confirm_rows(self, cur: _ArrayCursor) -> None:
        """Advance `cur.rows_confirmed` from the rows on disk and its `zarr.json`."""
        while cur.row_ends and cur.row_ends[0][1].landed:
            cur.rows_landed = cur.row_ends.popleft()[0] + 1
        if cur.rows_landed <= cur.rows_confirmed or self._root is None:
            return
        try:
            doc = json.loads((self._root / cur.key / "zarr.json").read_bytes())
            extent = int(doc["shape"][0])
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return  # being rewritten: look again next time
        cur.rows_confirmed = max(cur.rows_confirmed, min(cur.rows_landed, extent))

    @property
    def flush_makes_readable(self) -> bool:
        """Whether every frame written so far is on disk (checked now).

        `Stream` counts all its frames as flushed when this is true after a
        flush; an incomplete shard (or a frame still batched or being written)
        keeps it false. `frames_readable` gives the exact count.
        """
        return self.frames_readable() == self._seq

    # ---- helpers --------------------------------------------------------------
    def _zero(self, shape: tuple[int, int]) -> np.ndarray:
        """A frame of the fill value, made when first needed (shared, read-only)."""
        zero = self._zeros.get(shape)
        if zero is None:
            zero = self._zeros[shape] = np.zeros(shape, dtype=self._dtype)
            zero.flags.writeable = False
        return zero

    def _reserve(self, cur: _ArrayCursor, lin: int) -> None:
        """Open the shards of the slots up to `lin`, once their disk space is checked.

        Nothing is reserved when the check fails (`OSError(ENOSPC)`).
        """
        if lin < cur.reserved:
            return
        new: dict[tuple[int, ...], None] = {}
        for slot in range(max(cur.reserved, cur.next), lin + 1):
            key = cur.shard_key(slot)
            if key not in cur.shards:
                new[key] = None
        nbytes = len(new) * cur.shard_disk
        if self._space is not None and nbytes:
            self._space.check(nbytes, self._disk_reserved, self._refresh_disk)
        for key in new:
            cur.shards[key] = cur.new_shard(key)
        self._disk_reserved += nbytes
        cur.reserved = lin + 1

    def _mark(self, shard: _Shard, seq: int) -> None:
        """Record that `shard` holds frame number `seq` (the first one counts)."""
        if seq >= 0 and shard.seq < 0:
            shard.seq = seq
            heapq.heappush(self._unlanded, (seq, next(self._tie), shard))

    def _refresh(self) -> None:
        """Find which complete shards reached the disk since the last look.

        The oldest are checked first; the look stops after `LOOK_PAST` shards
        that are not there yet.
        """
        root = self._root
        if root is None or not self._complete:
            return
        waiting: list[_Shard] = []
        while self._complete and len(waiting) < LOOK_PAST:
            shard = self._complete.popleft()
            if shard.check(root):
                shard.landed = True
                self._in_flight_bytes -= shard.raw
                self._disk_reserved -= shard.disk
                self._landed_marked += shard.seq >= 0
            else:
                waiting.append(shard)
        self._complete.extendleft(reversed(waiting))
        heap = self._unlanded
        if len(heap) > 1024 and 2 * self._landed_marked > len(heap):
            # shards that landed behind one that did not (an open shard)
            heap[:] = [e for e in heap if not e[2].landed]
            heapq.heapify(heap)
            self._landed_marked = 0

    def _refresh_disk(self) -> int:
        self._refresh()
        return self._disk_reserved

    def _append(self, cur: _ArrayCursor, frame: np.ndarray, seq: int) -> None:
        """Hand `frame` over for `cur`'s next slot (`seq`: its write number)."""
        slot = cur.next
        shard = None
        if self._track:
            self._reserve(cur, slot)
            key = cur.shard_key(slot)
            shard = cur.shards[key]
        if 2 * cur.frame_bytes > BATCH_BYTES:  # a frame alone fills a batch
            self._append_now(cur, np.ascontiguousarray(frame))
        else:
            self._batch(cur, frame)
        cur.next += 1
        if shard is not None:
            self._mark(shard, seq)
            shard.raw += frame.nbytes
            shard.missing -= 1
            if cur.row_slots:
                row, pos = divmod(slot, cur.row_slots)
                if seq >= 0:
                    shard.t_max = max(shard.t_max, row)
                if pos == cur.row_slots - 1:
                    cur.row_ends.append((row, shard))
            if shard.missing == 0:
                del cur.shards[key]
                self._complete.append(shard)
                self._in_flight_bytes += shard.raw

    def _batch(self, cur: _ArrayCursor, frame: np.ndarray) -> None:
        """Copy `frame` into `cur`'s batch; hand the batch over when full."""
        if cur.batch is None:
            n = BATCH_BYTES // max(cur.frame_bytes, 1)
            cur.batch = np.empty((n, *frame.shape), frame.dtype)
        if cur not in self._batching:
            # one batch in the making at a time, except across pyramid levels
            # (whose frames alternate): beyond BATCH_BYTES, earlier ones go first
            if self._batched_bytes() + frame.nbytes > BATCH_BYTES:
                self.flush()
            self._batching.append(cur)
        cur.batch[cur.batched] = frame
        cur.batched += 1
        if cur.batched == len(cur.batch):
            self._push(cur)
            self._batching.remove(cur)

    def _batched_bytes(self) -> int:
        """Bytes of the frames batched in every array."""
        return sum(c.batched * c.frame_bytes for c in self._batching)

    def _push(self, cur: _ArrayCursor) -> None:
        """Append `cur`'s batched frames to acquire-zarr (it copies them)."""
        if not cur.batched or cur.batch is None:
            return
        full = cur.batched == len(cur.batch)
        frames = cur.batch[: cur.batched]
        cur.batched = 0
        self._append_now(cur, frames if len(frames) > 1 else frames[0])
        if not full:  # an array that rarely fills a batch keeps no buffer
            cur.batch = None

    def _append_now(self, cur: _ArrayCursor, data: np.ndarray) -> None:
        """Append frames to acquire-zarr (which copies them before returning)."""
        try:
            self._stream.append(data, key=cur.key)
        except RuntimeError as e:
            raise OSError(f"acquire-zarr failed to write {cur.key!r}: {e}") from e

    def _drain(self, cur: _ArrayCursor, *, force: bool) -> None:
        """Append held frames in order; fill the gaps that will not close.

        A gap closes when its frame arrives; it is filled at once when the plan
        never acquires the slot, and with `force` (close) in any case (logged).
        """
        filled: list[tuple[int, ...]] = []
        while cur.pending:
            nxt = cur.next
            held = cur.pending.pop(nxt, None)
            if held is not None:
                self._held_bytes -= held[0].nbytes
                self._append(cur, held[0], held[1])
                continue
            index = cur.index_of(nxt)
            if not cur.image.is_acquired(index):
                self._append(cur, self._zero(cur.image.frame_shape), -1)
            elif force:
                filled.append(index)
                self._append(cur, self._zero(cur.image.frame_shape), -1)
            else:
                break
        if filled:
            logger.warning(
                "mmzarr: image %r: %d slot(s) before frames that arrived never got "
                "a frame and were written with the fill value (first: %s)",
                cur.image.key,
                len(filled),
                filled[0],
            )

    def _overflow(self) -> None:
        """Fill gaps with the fill value until the held frames fit the window."""
        while self._held_bytes > self._window:
            cur = max(
                (c for c in self._cursors if c.pending),
                key=lambda c: len(c.pending) * c.frame_bytes,
            )
            logger.warning(
                "mmzarr: image %r: the reorder window (%d bytes) is full; slot %s "
                "is written with the fill value (a frame for it that comes later "
                "is refused)",
                cur.image.key,
                self._window,
                cur.index_of(cur.next),
            )
            cur.overflowed.add(cur.next)
            self._append(cur, self._zero(cur.image.frame_shape), -1)
            self._drain(cur, force=False)

    # ---- backpressure (SupportsBackpressure) -------------------------------------
    def buffered_bytes(self) -> int:
        """Bytes of complete shards handed to acquire-zarr but not yet on disk."""
        self._refresh()
        return self._in_flight_bytes

    def has_room(self, nbytes: int) -> bool:
        """Whether `nbytes` more fit in the buffer budget.

        The count of bytes in flight only shrinks when shard files are found on
        disk, so while it has room the disk is not looked at (a `stat` per frame
        cost ~0.3 ms under load).
        """
        used = self._in_flight_bytes
        if used + nbytes <= self._budget:
            return True
        used = self.buffered_bytes()
        return used == 0 or used + nbytes <= self._budget

    def wait_for_room(self, nbytes: int, timeout: float | None = None) -> bool:
        """Block until `nbytes` more fit (True) or `timeout` seconds pass (False).

        Raises `OSError` when nothing reaches the disk for `STALL_S` seconds.
        """
        self.flush()  # batched frames count as in flight: let them reach the disk
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        last_used, last_progress = self._in_flight_bytes, time.monotonic()
        while not self.has_room(nbytes):
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            if self._in_flight_bytes != last_used:
                last_used, last_progress = self._in_flight_bytes, now
            elif now - last_progress > STALL_S:
                raise OSError(
                    f"acquire-zarr wrote nothing to {self._root} for {STALL_S:.0f} s "
                    f"({self._in_flight_bytes} bytes waiting)"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.002)
        return True
