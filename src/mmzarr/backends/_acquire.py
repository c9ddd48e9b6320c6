"""acquire-zarr backend (the default): one `ZarrStream`, one array per image.

acquire-zarr only appends: each array receives frames in the order of its
declared dimensions. This backend declares them in the image's acquisition order
and lets acquire-zarr reorder to storage order (`storage_dimension_order`) when
that is allowed (the first axis may not move). Otherwise it declares storage order
and holds early frames in a small reorder buffer. Gaps (slots the plan never
acquires, or frames that never came) are written as the fill value (0).

Upstream quirks handled here:
- acquire-zarr 0.10 rewrites the parent groups' `zarr.json` on close
  (https://github.com/acquire-project/acquire-zarr/issues/186): `Stream`
  rewrites all group metadata after `close`.
- `ZarrStream.skip` cannot address one array of a multi-array stream ("Array key
  not found"), so gaps are filled by appending zero frames.

On S3 (`open_location`) acquire-zarr's own S3 sink writes the arrays
(`StreamSettings.s3`: endpoint, bucket, region; credentials from the
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment variables). Its buffer is
then bounded only by acquire-zarr itself: which shards have reached S3 is not
tracked (a listing per frame would cost more than it saves).
"""

from __future__ import annotations

import collections
import math
import time
from typing import TYPE_CHECKING, Any

import acquire_zarr as aqz
import numpy as np

from mmzarr._layout import BLOSC_CLEVEL, array_document
from mmzarr._metadata import dumps_json
from mmzarr._pyramid import ArraySpec, all_arrays
from mmzarr._storage import Location
from mmzarr.backends._base import FreeSpaceGuard
from mmzarr.errors import FrameError, PlanError

if TYPE_CHECKING:
    from pathlib import Path

    from mmzarr._settings import AcquisitionSettings, Dimension

__all__ = ["AcquireZarrBackend"]

#: Seconds without any write reaching the disk before a full buffer is an error.
STALL_S = 120.0
#: Frames of one array are handed to acquire-zarr in batches of about this many
#: bytes (a frame larger than half of it goes alone, uncopied): each `append`
#: call has a cost of its own. 512x512 uint16 frames every 5 ms cost 1.75 ms of
#: CPU each appended one by one, 0.9-1.3 ms in batches of 4-16; with libgomp's
#: default active waiting (see `mmzarr/__init__.py`), 8.3 ms and 2.3 ms.
BATCH_BYTES = 4 * 1024**2

_KINDS = {
    "t": aqz.DimensionType.TIME,
    "c": aqz.DimensionType.CHANNEL,
    "z": aqz.DimensionType.SPACE,
    "y": aqz.DimensionType.SPACE,
    "x": aqz.DimensionType.SPACE,
}


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


class _ArrayCursor:
    """Append position of one array, with a reorder buffer for early frames."""

    def __init__(
        self, spec: ArraySpec, append_order: tuple[str, ...], max_pending: int
    ) -> None:
        image = spec.settings
        self.image = image
        self.key = spec.path
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
        self.pending: dict[int, np.ndarray] = {}
        self.max_pending = max_pending
        self.zero = np.zeros(image.frame_shape, dtype=np.uint8)  # re-typed on open
        self.frame_bytes = 0  # set on open
        dims: dict[str, Dimension] = {d.name: d for d in image.dimensions}
        self.shard: dict[str, int] = {n: dims[n].shard_size for n in self.storage_names}
        ny = math.ceil(image.frame_shape[0] / dims["y"].shard_size)
        nx = math.ceil(image.frame_shape[1] / dims["x"].shard_size)
        self.yx_tail = f"{ny - 1}/{nx - 1}"
        first = append_order[0] if append_order else None
        # acquire-zarr writes a "slab" (one shard along the first append axis,
        # everything along the others) when the slab's last frame arrives
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
        named = {}
        for n in self.order:
            named[n], linear = divmod(linear, self.strides[n])
        return tuple(named[n] for n in self.storage_names)

    def shard_file(self, index: tuple[int, ...]) -> str:
        """Relative path of the (last) shard file that holds `index`."""
        coords = [
            str(v // self.shard[n])
            for n, v in zip(self.storage_names, index, strict=True)
        ]
        return "/".join([self.key, "c", *coords, self.yx_tail])


class AcquireZarrBackend:
    """Write every image through one acquire-zarr `ZarrStream`.

    Parameters
    ----------
    max_threads
        acquire-zarr worker threads (0: its default).
    max_reorder_bytes
        Bytes of early frames held per array while waiting for earlier ones.

    Notes
    -----
    Frames are handed to acquire-zarr in batches of up to `BATCH_BYTES` per
    array (fewer when frames alternate between arrays); `flush`, which `Stream`
    calls every `flush_interval_s`, hands over a partial batch, so a frame
    waits at most that long before acquire-zarr writes it.

    acquire-zarr queues frames without bound when the disk is slower than the
    producer, and preallocates buffers of its own
    (`StreamSettings.get_maximum_memory_usage()`). This backend counts the bytes
    of completed shards it appended whose files are not yet on disk; `Stream`
    holds the producer (or raises, or drops) while they exceed what
    `max_buffer_bytes` leaves after acquire-zarr's own buffers (at least six
    slabs).
    """

    #: acquire-zarr rewrites the parent groups' `zarr.json` on close (issue #186):
    #: `Stream` writes every group document again after `close`.
    rewrites_groups = True
    #: `flush` hands frames to acquire-zarr; it cannot say when they are on disk
    flush_makes_readable = False

    def __init__(
        self, *, max_threads: int = 0, max_reorder_bytes: int = 256 * 1024**2
    ) -> None:
        self._max_threads = max_threads
        self._max_reorder = max_reorder_bytes
        self._in_flight: collections.deque[tuple[str, int]] = collections.deque()
        self._in_flight_bytes = 0
        self._batching: list[_ArrayCursor] = []  # arrays with batched frames
        self._budget = 0
        self._stream: Any = None
        self._cursors: list[_ArrayCursor] = []
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
        dtype = np.dtype(settings.dtype)
        self._specs = all_arrays(settings)
        for spec in self._specs:
            im = spec.settings
            storage = tuple(d.name for d in im.index_dims)
            acq = tuple(im.acquisition_order or storage)
            native = not storage or acq[0] == storage[0]
            order = acq if native else storage
            frame_bytes = math.prod(im.frame_shape) * dtype.itemsize
            cursor = _ArrayCursor(
                spec, order, 0 if native else self._max_reorder // max(frame_bytes, 1)
            )
            cursor.zero = np.zeros(im.frame_shape, dtype=dtype)
            cursor.frame_bytes = frame_bytes
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
        largest_slab = (
            max(math.prod(c.image.frame_shape) * c.slab_frames for c in self._cursors)
            * dtype.itemsize
        )
        # acquire-zarr reserves buffers of its own (StreamSettings.
        # get_maximum_memory_usage(): ~256 MiB whatever the frame size; peak RSS
        # grew ~270-310 MiB with almost nothing in flight). A quarter of
        # max_buffer_bytes, and at least six slabs, stays in flight: measured at
        # 2048^2 2 slabs gave ~360-410 MB/s, 6 ~510 MB/s; at 512^2 six frames
        # made the producer wait on every fsync. Peak RSS growth stays below
        # max_buffer_bytes + 128 MiB (benchmarks/run.py).
        self._budget = max(6 * largest_slab, settings.max_buffer_bytes // 4)
        try:
            self._stream = aqz.ZarrStream(stream_settings)
        except RuntimeError as e:
            raise PlanError(f"acquire-zarr rejected the settings: {e}") from e
        # acquire-zarr writes array metadata only at close, and not at all for an
        # array that got no frame: write it now so a crash or an empty run still
        # leaves readable arrays (acquire-zarr rewrites it, equal, at close).
        self._root, self._location, self._settings = location.path, location, settings
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
        """Append `frame`, filling any gap before it with zeros."""
        cur = self._cursors[image]
        lin = cur.linear(index)
        if lin < cur.next or lin in cur.pending:
            raise FrameError(
                f"image {cur.image.key!r}: index {index} was already written or "
                "passed (acquire-zarr appends in acquisition order)"
            )
        if lin == cur.next:
            self._append(cur, frame)
        else:
            cur.pending[lin] = np.array(frame, copy=True)
        self._drain(cur, force=False)
        if cur.image.unbounded and index[0] >= self._t_sizes[image]:
            # keep the array's shape current as t grows (crash safety)
            self._t_sizes[image] = index[0] + 1
            self._write_array_doc(image)

    def close(self, t_sizes: dict[int, int] | None = None) -> None:
        """Write pending frames and close the stream (idempotent)."""
        if self._stream is None:
            return
        try:
            for cur in self._cursors:
                self._drain(cur, force=True)
            self.flush()
        finally:
            stream, self._stream = self._stream, None
            stream.close()

    def flush(self) -> None:
        """Hand every batched frame to acquire-zarr (which writes it soon after)."""
        for cur in self._batching:
            self._push(cur)
        self._batching.clear()

    def memory_bytes(self) -> int:
        """Bytes acquire-zarr currently holds."""
        return int(self._stream.get_current_memory_usage()) if self._stream else 0

    # ---- helpers --------------------------------------------------------------
    def _append(self, cur: _ArrayCursor, frame: np.ndarray) -> None:
        index = cur.index_of(cur.next)
        if self._space is not None:
            self._space.check(frame.nbytes, self._in_flight_bytes)
        if 2 * cur.frame_bytes > BATCH_BYTES:  # a frame alone fills a batch
            self._append_now(cur, np.ascontiguousarray(frame))
        else:
            self._batch(cur, frame)
        cur.next += 1
        if cur.next % cur.slab_frames == 0:
            nbytes = frame.nbytes * cur.slab_frames
            self._in_flight.append((cur.shard_file(index), nbytes))
            self._in_flight_bytes += nbytes

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

    # ---- backpressure (SupportsBackpressure) -------------------------------------
    def buffered_bytes(self) -> int:
        """Bytes of completed shards handed to acquire-zarr but not yet on disk."""
        if self._root is None:  # S3: not tracked (see the module docstring)
            self._in_flight.clear()
            self._in_flight_bytes = 0
            return 0
        while self._in_flight and (self._root / self._in_flight[0][0]).exists():
            self._in_flight_bytes -= self._in_flight.popleft()[1]
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

    def _drain(self, cur: _ArrayCursor, *, force: bool) -> None:
        """Append pending frames in order; fill gaps that can no longer close."""
        while cur.pending:
            nxt = cur.next
            if nxt in cur.pending:
                self._append(cur, cur.pending.pop(nxt))
            elif (
                force
                or len(cur.pending) > cur.max_pending
                or not cur.image.is_acquired(cur.index_of(nxt))
            ):
                self._append(cur, cur.zero)
            else:
                break
