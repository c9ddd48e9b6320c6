"""Writing regions of random-access arrays: shards gathered, writes in flight.

Used by the tensorstore and zarr-python backends (`GatheringBackend`).

Writing one frame into an existing shard makes tensorstore and zarr-python
read, decode and rewrite the whole shard; a `_gather.ShardGatherer` holds a
shard's frames until every frame the plan acquires in it has arrived, and the
shard is then written in one call. A flush writes the shards still gathering
as they are (again, in full, once complete): such a rewrite replaces a file
readers may be reading, so backends write it atomically (a new file renamed
into place), with every chunk stored so that uncompressed chunks keep their
place (`GatheringBackend._put`).

Writes run in the background (`_submit` starts a `Write` and returns a
future); `flush` collects those that completed and reports, per frame in write
order, what is readable (`WriteOrder`): a frame is once every write that
carries it has completed.
"""

from __future__ import annotations

import collections
import heapq
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mmzarr.backends._base import Limits, Progress, last_time_point
from mmzarr.backends._space import FreeSpaceGuard, shard_disk_bytes

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from mmzarr._pyramid import ArraySpec
    from mmzarr._settings import ImageSettings
    from mmzarr._storage import Location
    from mmzarr.backends._base import Arrays
    from mmzarr.backends._gather import Block, ShardGatherer

__all__ = [
    "GatheredArray",
    "GatheringBackend",
    "Pending",
    "Write",
    "WriteOrder",
    "t_ahead",
]


class WriteOrder:
    """Numbers frames in write order and counts the leading run that is readable.

    A frame is written to its level-0 array, then to its levels (same number);
    each write, or block holding it, `hold`s the number and `release`s it once
    the write completed. `readable` is the lowest number still held (or every
    frame). Stream reads it only between frames, so a frame's level writes are
    always held by then.
    """

    def __init__(self) -> None:
        self.count = 0  # frames written to level-0 arrays
        self._held: dict[int, int] = {}
        self._heap: list[int] = []

    def frame(self, base: bool) -> int:
        """The number of a frame written now (`base`: to a level-0 array)."""
        if base:
            self.count += 1
        return self.count - 1

    def hold(self, seq: int) -> None:
        """Frame `seq` has one more write (or block) not complete."""
        if seq < 0:
            return
        n = self._held.get(seq)
        if n is None:
            heapq.heappush(self._heap, seq)
        self._held[seq] = (n or 0) + 1

    def release(self, seqs: Iterable[int]) -> None:
        """One write of each of `seqs` completed."""
        for seq in seqs:
            n = self._held.get(seq)
            if n is None:
                continue
            if n > 1:
                self._held[seq] = n - 1
            else:
                del self._held[seq]

    @property
    def readable(self) -> int:
        """Frames readable: every one before the lowest still held."""
        heap = self._heap
        while heap and heap[0] not in self._held:
            heapq.heappop(heap)
        return heap[0] if heap else self.count


#: An unbounded `t` grows ahead by the time points expected in this long
#: (`t_ahead`), at most `MAX_T_AHEAD` of them.
GROW_AHEAD_S = 0.5
MAX_T_AHEAD = 1024


@dataclass
class GatheredArray:
    """One array's open store and its write state."""

    store: Any
    spec: ArraySpec
    gatherer: ShardGatherer
    path: Path | None = None  # local directory of the array
    t_size: int = 1  # current t extent of an unbounded array
    t_seen: int = 0  # time points with a frame (received, maybe still gathering)
    #: disk space of one shard (chunk) at its largest, every y/x tile file
    disk: int = 0
    #: the same array opened to replace whole files (a backend whose `store`
    #: edits files in place writes what readers may be reading through it)
    replacer: Any = None
    #: when an unbounded `t` last grew, and the time points it then needed
    grown_at: float = 0.0
    grown_to: int = 0

    @property
    def image(self) -> ImageSettings:
        """The array's (level-sized) image settings."""
        return self.spec.settings


@dataclass(frozen=True, slots=True)
class Write:
    """A region write for a subclass to start (`GatheringBackend._submit`).

    `data` (non-spatial extent + y, x) goes to `region` of `arr`; `owned`:
    nobody changes `data` afterwards; `rewrite`: the files may exist and be
    read meanwhile.
    """

    arr: GatheredArray
    region: tuple[slice, ...]
    data: np.ndarray
    owned: bool
    rewrite: bool


class Pending(Protocol):
    """A write in flight (a tensorstore or `concurrent.futures` future)."""

    def done(self) -> bool:
        """Whether it completed (successfully or not)."""

    def result(self, timeout: float | None = None) -> Any:
        """Wait for it; raise its error."""


def t_ahead(arr: GatheredArray, needed: int) -> int:
    """The size to grow an unbounded `t` to when `needed` time points are needed.

    Ahead by the time points expected within `GROW_AHEAD_S` at the rate they
    came since the last growth: a fast time series resizes about twice a
    second, not at every time point (each resize writes the array's metadata;
    tensorstore waits for the writes in flight and the resize, zarr-python
    orders every write around it), while a slow one grows exactly. A reader
    sees the time points ahead as the fill value; the final flush (and
    `finalize` after a crash) sets the exact size.
    """
    now = time.monotonic()
    ahead = 0
    if arr.grown_at and now > arr.grown_at:
        rate = (needed - arr.grown_to) / (now - arr.grown_at)
        ahead = max(0, min(MAX_T_AHEAD, int(rate * GROW_AHEAD_S)))
    arr.grown_at, arr.grown_to = now, needed
    return needed + ahead


class GatheringBackend:
    """`open`/`write`/`flush` for engines that write regions of arrays.

    Subclasses create the arrays (`_create`), start a region's write in the
    background (`_submit`), resize an unbounded `t` (`_resize_t`) and may add
    work at the final flush (`_finish`) and after every flush
    (`_flushed`).

    Free space (local disks): a frame is accepted only when the disk can take
    the files it will be written to, with everything accepted before and not
    yet on disk: a shard's files are reserved, at their largest, when its first
    frame arrives (partial writes stay within them) and released once the
    complete shard's write has completed.
    """

    def __init__(self) -> None:
        self._arrays: list[GatheredArray] = []
        self._limits = Limits()
        self._space: FreeSpaceGuard | None = None
        self._reserved = 0  # disk bytes of the shards gathering
        self._order = WriteOrder()
        #: writes in flight: (future, bytes, disk bytes reserved, frames)
        self._pending: collections.deque[tuple[Pending, int, int, list[int]]] = (
            collections.deque()
        )
        self._in_flight = 0
        self._pending_disk = 0
        self._final: Progress | None = None
        self._failed = False  # a write failed: storage is failing
        #: compressed chunks: a shard rewritten moves them within its file
        self._compressed = False

    # ---- the contract -----------------------------------------------------------
    def open(self, location: Location, arrays: Arrays, limits: Limits) -> None:
        """Create every array under `location`."""
        self._limits = limits
        if location.path is not None:
            self._space = FreeSpaceGuard(location.path)
        self._arrays = self._create(location, arrays)
        dtype = np.dtype(arrays.dtype)
        self._compressed = arrays.compression != "none"
        for arr in self._arrays:
            arr.disk = shard_disk_bytes(
                arr.image, dtype.itemsize, compressed=self._compressed
            )

    def write(
        self,
        array: int,
        index: tuple[int, ...],
        frame: np.ndarray,
        levels: Sequence[tuple[int, np.ndarray]] = (),
    ) -> None:
        """Write `frame` and its `levels` now (handed over), or copy each to its block.

        Raises `OSError(ENOSPC)`, having accepted nothing, when the files of the
        frame and its levels may not fit on the disk together.
        """
        writes = [(self._arrays[array], frame)]
        writes += [(self._arrays[number], level) for number, level in levels]
        opens = [self._opens(arr, index) for arr, _ in writes]
        need = sum(disk for disk, _ in opens)
        if need:
            self._check_space(need)
        for (arr, data), (disk, gathered) in zip(writes, opens, strict=True):
            if gathered:  # a new block's files stay reserved until it is written
                self._reserved += disk
            self._write_one(arr, index, data, gathered=gathered)

    @staticmethod
    def _opens(arr: GatheredArray, index: tuple[int, ...]) -> tuple[int, bool]:
        """Disk bytes a write at `index` of `arr` opens; whether it joins a block.

        A frame joins the block of its shard unless it is one frame per shard
        or a late frame for a shard already written (written again, alone).
        """
        g = arr.gatherer
        if g.active and (key := g.key(index)) not in g.written:
            return (0 if key in g.open else arr.disk), True
        return arr.disk, False

    def _write_one(
        self,
        arr: GatheredArray,
        index: tuple[int, ...],
        frame: np.ndarray,
        *,
        gathered: bool,
    ) -> None:
        """Copy `frame` into its block (`gathered`), or write it now (space checked)."""
        g = arr.gatherer
        seq = self._order.frame(arr.spec.level == 0)
        self._order.hold(seq)
        self._see(arr, index)
        if gathered:
            blk = g.add(index, frame)
            blk.seqs.append(seq)
            if blk.missing <= 0:
                g.take(blk)
                self._reserved -= arr.disk
                self._put(arr, blk, owned=True, disk=arr.disk)
            return
        # one frame per shard, or a late frame for a shard already written
        # (which the library then reads and rewrites)
        data = frame.reshape((1,) * len(index) + frame.shape)
        self._write(
            arr, index, data, [seq], owned=True, rewrite=g.active, disk=arr.disk
        )

    def abandon(self, array: int, index: tuple[int, ...]) -> None:
        """Nothing to do: frames are written as they come, in any order."""

    def flush(self, *, final: bool = False) -> Progress:
        """Write the shards still gathering; report what completed."""
        if self._final is not None:
            return self._final
        if final:
            return self._close()
        self._collect()
        for arr in self._arrays:
            for blk in arr.gatherer.open.values():
                if blk.seqs:  # frames arrived since it was last written
                    self._put(arr, blk, owned=False)
        self._flushed()
        return self._progress()

    # ---- helpers ----------------------------------------------------------------
    def _progress(self) -> Progress:
        return Progress(
            self._order.readable, self._in_flight, self._limits.max_buffer_bytes
        )

    def _close(self) -> Progress:
        """Write every block, wait for every write, set final shapes, release."""
        errors: list[Exception] = []
        t_end = last_time_point(a.t_seen for a in self._arrays if a.image.unbounded)
        for arr in self._arrays:
            try:
                for blk in list(arr.gatherer.open.values()):
                    self._put(arr, blk, owned=True)
                    self._reserved -= arr.disk
                arr.gatherer.open.clear()
                if arr.image.unbounded:
                    self._resize_t(arr, t_end)
            except Exception as e:  # finish the other arrays, raise the first error
                errors.append(e)
        try:
            self._wait_all()
        except Exception as e:
            errors.append(e)
        try:
            self._finish(self._arrays)
        except Exception as e:
            errors.append(e)
        self._arrays = []
        self._release()
        self._final = Progress(self._order.count, 0, self._limits.max_buffer_bytes)
        if errors:
            raise errors[0]
        return self._final

    def _put(
        self, arr: GatheredArray, blk: Block, *, owned: bool, disk: int = 0
    ) -> None:
        """Write block `blk` (the frames it holds since its last write)."""
        seqs, blk.seqs = blk.seqs, []
        # an incomplete shard is written again when its other frames come: its
        # first write stores every chunk (the missing ones as the fill value),
        # as the later ones do, so a chunk keeps its place in the file and a
        # reader holding the older shard index (zarr-python reads the index
        # and the chunks with separate requests) reads the same bytes there
        rewrite = blk.written or blk.missing > 0
        blk.written = True
        if blk.missing > 0 and self._compressed:
            # compressed chunks change size, so the rewrite that completes the
            # shard moves them: a reader holding this version's index would
            # read wrong bytes. Its frames count once the complete shard is on
            # storage (as with acquire-zarr)
            blk.held += seqs
            seqs = []
        else:
            seqs, blk.held = blk.held + seqs, []
        self._write(
            arr, blk.start, blk.data, seqs, owned=owned, rewrite=rewrite, disk=disk
        )

    def _write(
        self,
        arr: GatheredArray,
        start: tuple[int, ...],
        data: np.ndarray,
        seqs: list[int],
        *,
        owned: bool,
        rewrite: bool,
        disk: int,
    ) -> None:
        """Start writing `data` (non-spatial extent + y, x) at `start`.

        `owned`: nobody changes `data` afterwards; `rewrite`: the files may
        exist and be read meanwhile; `disk`: the reservation the write takes
        over (0: still held by its block); `seqs`: the frames it carries.
        """
        if arr.image.unbounded:
            # a shard along t may reach past the last time point acquired
            data = data[: max(0, arr.t_seen - start[0])]
            if data.shape[0] == 0:
                self._order.release(seqs)
                return
            needed = start[0] + data.shape[0]
            if needed > arr.t_size:
                self._resize_t(arr, t_ahead(arr, needed))
        region = tuple(slice(s, s + n) for s, n in zip(start, data.shape, strict=False))
        future = self._submit(Write(arr, region, data, owned, rewrite))
        self._pending.append((future, data.nbytes, disk, seqs))
        self._in_flight += data.nbytes
        self._pending_disk += disk

    def _collect(self, *, wait: bool = False) -> None:
        """Take in the writes that completed (`wait`: all of them).

        Raises the first that failed; once one has, writes not started yet are
        abandoned rather than waited for (storage is failing). Waiting gives up
        on every write left when none completed for `io_timeout_s`, or at once
        once a write has failed (in this call or an earlier one).
        """
        keep: collections.deque[tuple[Pending, int, int, list[int]]] = (
            collections.deque()
        )
        error: BaseException | None = None
        skip: set[int] = set()  # abandoned, or given up
        timeout = 0.0 if self._failed else self._limits.io_timeout_s
        last = time.monotonic()  # when a write last completed
        while self._pending:
            item = self._pending.popleft()
            future, nbytes, disk, seqs = item
            if not wait and id(future) not in skip and not future.done():
                keep.append(item)
                continue
            self._in_flight -= nbytes
            self._pending_disk -= disk
            if id(future) in skip:
                continue
            try:
                future.result(timeout=max(0.0, last + timeout - time.monotonic()))
            except Exception as e:
                failure: BaseException = e
                if not future.done():  # nothing completed for `timeout`
                    failure = TimeoutError(
                        f"storage completed no write for {timeout:.0f} s "
                        f"({len(self._pending) + 1} writes given up)"
                        if not self._failed
                        else f"{len(self._pending) + 1} writes given up after a "
                        "failed one"
                    )
                    skip.update(id(other[0]) for other in self._pending)
                elif error is None:
                    # the latest first, so that none starts meanwhile
                    for other in reversed(self._pending):
                        if self._abandon(other[0]):
                            skip.add(id(other[0]))
                error = error or failure  # `last` stays: no write completed
                continue
            last = time.monotonic()
            self._order.release(seqs)
        self._pending = keep
        if error is not None:
            self._failed = True
            raise error

    def _wait_all(self) -> None:
        """Wait for every write in flight (each at most `io_timeout_s`)."""
        self._collect(wait=True)

    @staticmethod
    def _see(arr: GatheredArray, index: tuple[int, ...]) -> None:
        if arr.image.unbounded:
            arr.t_seen = max(arr.t_seen, index[0] + 1)

    def _check_space(self, nbytes: int) -> None:
        """Raise `OSError(ENOSPC)` unless `nbytes` more can reach the disk."""
        if self._space is not None:
            self._space.check(
                nbytes, self._reserved + self._pending_disk, self._refresh_disk
            )

    def _refresh_disk(self) -> int:
        self._collect()
        return self._reserved + self._pending_disk

    # ---- for subclasses -----------------------------------------------------------
    def _create(self, location: Location, arrays: Arrays) -> list[GatheredArray]:
        """Create every array (its metadata on storage) and return them."""
        raise NotImplementedError

    def _submit(self, write: Write) -> Pending:
        """Start `write` in the background."""
        raise NotImplementedError

    def _resize_t(self, arr: GatheredArray, t: int) -> None:
        raise NotImplementedError

    def _abandon(self, future: Pending) -> bool:
        """Give up a write that has not started, once another failed (True)."""
        return False

    def _finish(self, arrays: list[GatheredArray]) -> None:
        """Work at the final flush, after every write completed."""

    def _flushed(self) -> None:
        """Work after every (non-final) flush."""

    def _release(self) -> None:
        """Release resources at the end of the final flush."""
