"""acquire-zarr backend (the default): one `ZarrStream`, one array per array.

acquire-zarr only appends: each array receives frames in the order of its
declared dimensions. This backend declares them in the image's acquisition order
and lets acquire-zarr reorder to storage order (`storage_dimension_order`) when
that is allowed (the first axis may not move); otherwise it declares storage
order (`_acquire_array.ArrayCursor`). Either way a frame may arrive before the
slot acquire-zarr expects next (a plan in another order, a frame one slot late,
two producer threads); the reorder window below holds it.

Reorder window: a frame that arrives ahead of its array's next slot is copied
and held until the frames before it arrive; then they are appended in order.
The frames held, over all arrays, are bounded by `max_reorder_bytes` (default a
quarter of `max_buffer_bytes`). A slot is written with the fill value (0) only
- when the plan never acquires it (`ImageSettings.is_acquired`);
- when the window overflows: the earliest gap of the array holding the most
  bytes is filled (logged as a warning) and a frame that comes for it later is
  refused with a `FrameError`;
- at the final flush, for gaps before frames that did arrive (a warning).

What is on disk, what is readable and what is in flight is followed shard by
shard (`_acquire_disk.Landing`).

Upstream quirks handled here:
- acquire-zarr 0.10 rewrites the parent groups' `zarr.json` as bare groups on
  close (https://github.com/acquire-project/acquire-zarr/issues/186). On a
  local disk it writes to a hidden sibling of the dataset
  (`.NAME.mmzarr-acquire-zarr`, `_acquire_disk.link_arrays`) that holds only a
  link to each array's directory, named by the array's number: the arrays
  land in the dataset, the one group it writes stays in the sibling, removed
  after close (and by `finalize` after a crash). Where links cannot be made,
  and on S3, it writes to the dataset itself, and `Stream` writes every group
  document again after the final flush (`Progress.groups_overwritten`).
- `ZarrStream.skip` cannot address one array of a multi-array stream ("Array key
  not found"), so gaps are filled by appending zero frames.
- it has no flush and no completion callback; shard files are checked instead.
- along the first declared axis, a shard that reaches past the end of a bounded
  array is written only at close (other axes' edge shards when full).
- it writes array metadata only at close, and none for an array that got no
  frame: this backend writes each array's `zarr.json` at open (acquire-zarr
  rewrites it as it goes).

On S3 acquire-zarr's own S3 sink writes the arrays (`StreamSettings.s3`:
endpoint, bucket, region; credentials from the AWS environment variables).
Which shards have reached S3 is not followed (a listing per frame would cost
more than it saves): frames are reported readable only at the final flush and
nothing is reported in flight, so the buffer is then acquire-zarr's own.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mmzarr._array_docs import array_document
from mmzarr._metadata import dumps_json
from mmzarr.backends._acquire_array import (
    ArrayCursor,
    append_order,
    default_window,
)
from mmzarr.backends._acquire_batch import Batches
from mmzarr.backends._acquire_deadline import Deadlines
from mmzarr.backends._acquire_disk import (
    Landing,
    link_arrays,
    refuse_unwritable,
    remove_sibling,
)
from mmzarr.backends._acquire_settings import open_stream
from mmzarr.backends._base import Capabilities, Progress, last_time_point
from mmzarr.errors import FrameError, PlanError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from mmzarr._storage import Location
    from mmzarr.backends._base import Arrays, Limits

__all__ = ["AcquireZarrBackend"]

logger = logging.getLogger("mmzarr")


class AcquireZarrBackend:
    """Write every array through one acquire-zarr `ZarrStream`.

    Parameters
    ----------
    max_threads
        acquire-zarr worker threads (0: its default).
    max_reorder_bytes
        Bytes of early frames held, over all arrays, until the frames before
        them arrive (see the module docstring); default a quarter of
        `Limits.max_buffer_bytes`.

    Notes
    -----
    Frames are handed to acquire-zarr in batches (`_acquire_batch`) per
    array (fewer when frames alternate between arrays); `flush`, which `Stream`
    calls every `flush_interval_s / 2`, hands over a partial batch older than
    `BATCH_AGE_S`, so a frame waits at most `flush_interval_s` before
    acquire-zarr gets it; acquire-zarr then writes it on its own threads.

    acquire-zarr queues frames without bound when the disk is slower than the
    producer, and preallocates buffers of its own
    (`StreamSettings.get_maximum_memory_usage()`). The bytes of complete shards
    appended whose files are not yet on disk are reported in flight, against a
    capacity of what `max_buffer_bytes` leaves after acquire-zarr's own buffers
    (a quarter, at least six slabs).
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        object_storage=True,
        flush_makes_readable=False,  # it cannot write an incomplete shard
        reports_readable=False,  # not followed on S3
    )

    def __init__(
        self, *, max_threads: int = 0, max_reorder_bytes: int | None = None
    ) -> None:
        self._max_threads = max_threads
        self._max_reorder = max_reorder_bytes
        self._window = 0
        self._held_bytes = 0  # frames in the reorder buffers
        self._seq = 0  # frames written to full-resolution arrays
        self._batches = Batches(self._append_now)
        self._budget = 0
        self._stream: Any = None
        self._cursors: list[ArrayCursor] = []
        self._zeros: dict[tuple[int, int], np.ndarray] = {}
        self._landing = Landing(None)
        self._location: Location | None = None
        self._arrays: Arrays | None = None
        self._hidden: Path | None = None  # the sibling acquire-zarr writes to
        self._t_sizes: list[int] = []
        self._grown: set[int] = set()  # arrays whose t grew since the last flush
        self._final: Progress | None = None
        self._calls = Deadlines(None)  # on S3: each call within a deadline

    # ---- the contract -----------------------------------------------------------
    def open(self, location: Location, arrays: Arrays, limits: Limits) -> None:
        """Create one acquire-zarr array per array under `location`."""
        self._location, self._arrays = location, arrays
        self._calls = Deadlines(None if location.is_local else limits.io_timeout_s)
        dtype = np.dtype(arrays.dtype)
        self._cursors = [
            ArrayCursor(
                spec,
                append_order(spec.settings),
                dtype,
                compressed=arrays.compression != "none",
            )
            for spec in arrays.specs
        ]
        largest_slab = max(c.frame_bytes * c.slab_frames for c in self._cursors)
        # acquire-zarr reserves buffers of its own (StreamSettings.
        # get_maximum_memory_usage(), whatever the frame size), so only a
        # quarter of max_buffer_bytes is let in flight; at least six slabs,
        # because fewer make the producer wait on every fsync (measured in
        # benchmarks/README.md, "acquire-zarr's settings"). Peak RSS growth stays
        # below max_buffer_bytes + 128 MiB (benchmarks/memory.py).
        self._budget = max(6 * largest_slab, limits.max_buffer_bytes // 4)
        self._window = (
            default_window(limits.max_buffer_bytes)
            if self._max_reorder is None
            else self._max_reorder
        )
        store_path: str | None = None
        if location.path is not None:
            # array i is the sibling's link `i`: acquire-zarr then writes one
            # group document there, not one per group of the dataset
            self._hidden = link_arrays(
                location.path, {str(i): s.path for i, s in enumerate(arrays.specs)}
            )
            if self._hidden is not None:
                for i, cur in enumerate(self._cursors):
                    cur.stream_key = str(i)
            store_path = str(self._hidden or location.path)
        try:
            self._stream = open_stream(
                store_path, location.s3, self._cursors, arrays, self._max_threads
            )
        except BaseException as e:
            self._remove_hidden()
            if isinstance(e, RuntimeError):
                refuse_unwritable(store_path, location, e)
                raise PlanError(f"acquire-zarr rejected the settings: {e}") from e
            raise
        self._landing = Landing(location.path)
        self._t_sizes = [0] * len(arrays.specs)
        try:
            self._write_array_docs(range(len(arrays.specs)))
        except BaseException:
            # the stream's threads end; its own failure to close (on the same
            # full disk, say) must not hide why opening failed
            with contextlib.suppress(Exception):
                self.flush(final=True)
            raise

    def write(
        self,
        array: int,
        index: tuple[int, ...],
        frame: np.ndarray,
        levels: Sequence[tuple[int, np.ndarray]] = (),
    ) -> None:
        """Append `frame` and its `levels`, or hold each until the slots before it are.

        Raises `OSError(ENOSPC)`, having accepted nothing, when the shard files of
        the frame and its levels (and those of the gaps before them) may not fit
        on the disk together.
        """
        writes = [(array, frame), *levels]
        slots = [(self._cursors[n], self._cursors[n].linear(index)) for n, _ in writes]
        for cur, lin in slots:
            self._refuse_late(cur, lin, index)
        if self._landing.track:
            self._landing.reserve(slots)
        for (number, data), (cur, lin) in zip(writes, slots, strict=True):
            self._write_one(number, cur, lin, index, data)

    def abandon(self, array: int, index: tuple[int, ...]) -> None:
        """Stop waiting for slot `index` of `array` and its levels' (never coming).

        Held frames behind it are appended now (the slot as the fill value)
        instead of waiting in the reorder window until it overflows or the
        stream closes (memory, and frames a killed process would lose).
        """
        assert self._arrays is not None
        image = self._arrays.specs[array].image
        for spec, cur in zip(self._arrays.specs, self._cursors, strict=True):
            if spec.image != image:
                continue
            lin = cur.linear(index)
            if lin < cur.next or lin in cur.pending:
                continue
            cur.overflowed.add(lin)  # a frame for it that comes later is refused
            if lin == cur.next:
                self._fill_to(cur, lin + 1)
                self._drain(cur, force=False)
                self._fill_row_end(cur)

    def _refuse_late(self, cur: ArrayCursor, lin: int, index: tuple[int, ...]) -> None:
        """Raise `FrameError` for a slot of `cur` already written or passed."""
        if lin < cur.next or lin in cur.pending:
            why = (
                f"the reorder window ({self._window} bytes, max_reorder_bytes) "
                "overflowed while waiting for it (or it was given up for lost) and "
                "its slot was written with the fill value"
                if lin in cur.overflowed
                else "it was already written or passed"
            )
            raise FrameError(
                f"image {cur.image.key!r}: index {index} came too late: {why} "
                "(acquire-zarr appends in order)"
            )

    def _write_one(
        self,
        array: int,
        cur: ArrayCursor,
        lin: int,
        index: tuple[int, ...],
        frame: np.ndarray,
    ) -> None:
        """Append `frame` at slot `lin` of array `array` or hold it (space reserved)."""
        seq = self._seq if cur.base else self._seq - 1
        landing = self._landing
        # slots the plan never acquires will get no frame: fill them at once
        self._fill_to(cur, cur.unacquired_end(lin))
        while cur.next < lin and cur.next in cur.overflowed:  # given up (`abandon`)
            self._fill_to(cur, cur.next + 1)
            self._fill_to(cur, cur.unacquired_end(lin))
        if lin == cur.next:
            self._append(cur, frame, seq)
            self._drain(cur, force=False)
        else:
            cur.pending[lin] = (frame, seq)  # handed over: no copy
            self._held_bytes += frame.nbytes
            if landing.track:
                landing.mark(cur.shards[cur.shard_key(lin)], seq)
            if self._held_bytes > self._window:
                self._overflow()
        self._fill_row_end(cur)
        if cur.base:
            self._seq += 1
        if cur.image.unbounded and index[0] >= self._t_sizes[array]:
            # the array's shape follows t at the next flush (crash safety)
            self._t_sizes[array] = index[0] + 1
            self._grown.add(array)

    def flush(self, *, final: bool = False) -> Progress:
        """Hand every batched frame to acquire-zarr (which writes it soon after).

        The shape of arrays whose `t` grew is written first. With `final`:
        write held frames (gaps before them as the fill value) and close the
        stream.
        """
        if self._final is not None:
            return self._final
        if final:
            try:
                self._write_grown_docs()
            except OSError:
                self._close()  # closed whatever failed first
                raise
            return self._close()
        self._write_grown_docs()
        self._batches.push_all(aged=True)
        landing = self._landing
        return Progress(landing.readable(self._seq), landing.in_flight, self._budget)

    # ---- helpers ----------------------------------------------------------------
    def _write_grown_docs(self) -> None:
        """Write the `zarr.json` of each array whose `t` grew since the last flush.

        acquire-zarr itself rewrites the shape with the time points it has
        completed on disk; this one covers every time point accepted (frames
        of an incomplete one are readable after a crash), once per flush
        rather than once per time point (a rename per frame of a time series).
        """
        grown, self._grown = self._grown, set()
        self._write_array_docs(sorted(grown))

    def _write_array_docs(self, numbers: Iterable[int]) -> None:
        """Write the `zarr.json` of arrays `numbers` (with their `t` so far)."""
        assert self._location is not None
        arrays = self._arrays
        assert arrays is not None
        docs = {
            f"{arrays.specs[i].path}/zarr.json": dumps_json(
                array_document(
                    arrays.specs[i].settings,
                    arrays.dtype,
                    arrays.compression,
                    sharded=True,
                    t_size=self._t_sizes[i],
                )
            )
            for i in numbers
        }
        self._location.write_many(docs)

    def _close(self) -> Progress:
        """Append held frames and the last batches, close the stream."""
        try:
            for cur in self._cursors:
                self._drain(cur, force=True)
            self._batches.push_all()
        finally:
            stream, self._stream = self._stream, None
            self._final = Progress(
                self._seq, 0, self._budget, groups_overwritten=self._hidden is None
            )
            try:
                if stream is not None:
                    try:
                        self._calls.close(stream.close)
                    except RuntimeError as e:
                        raise OSError(f"acquire-zarr failed to close: {e}") from e
                    self._write_array_docs(self._reshaped_arrays())
            finally:
                self._landing.stop()  # everything is on disk (or failed)
                self._remove_hidden()
        return self._final

    def _reshaped_arrays(self) -> list[int]:
        """The arrays whose documents close writes again, after acquire-zarr's.

        acquire-zarr shapes an array by its complete time points at close:
        a bounded array that got fewer frames than planned (a cancelled run)
        gets its planned shape back, and every unbounded array the dataset's
        `last_time_point` (set here in `_t_sizes`, which the documents take),
        as the other backends leave them (slots not acquired read as the
        fill value).
        """
        unbounded = [i for i, c in enumerate(self._cursors) if c.image.unbounded]
        t_end = last_time_point(self._t_sizes[i] for i in unbounded)
        for i in unbounded:
            self._t_sizes[i] = t_end
        short = [
            i
            for i, cur in enumerate(self._cursors)
            if not cur.image.unbounded
            and cur.next < math.prod(int(n or 1) for n in cur.sizes.values())
        ]
        return sorted([*short, *unbounded])

    def _remove_hidden(self) -> None:
        hidden, self._hidden = self._hidden, None
        if hidden is None:
            return
        try:
            remove_sibling(hidden)
        except OSError as e:  # `finalize` and the next writer remove it too
            logger.warning("mmzarr: could not remove %s: %s", hidden, e)

    def _zero(self, shape: tuple[int, int]) -> np.ndarray:
        """A frame of the fill value, made when first needed (shared, read-only)."""
        zero = self._zeros.get(shape)
        if zero is None:
            assert self._arrays is not None
            zero = self._zeros[shape] = np.zeros(shape, dtype=self._arrays.dtype)
            zero.flags.writeable = False
        return zero

    def _fill_to(self, cur: ArrayCursor, stop: int) -> None:
        """Append the fill value to `cur`'s slots before `stop`."""
        zero = self._zero(cur.image.frame_shape)
        while cur.next < stop:
            self._append(cur, zero, -1)

    def _append(self, cur: ArrayCursor, frame: np.ndarray, seq: int) -> None:
        """Hand `frame` over for `cur`'s next slot (`seq`: its write number)."""
        slot = cur.next
        landing = self._landing
        shard = landing.shard_of(cur, slot) if landing.track else None
        self._batches.add(cur, frame)
        cur.next += 1
        if shard is not None:
            landing.appended(cur, slot, shard, seq, frame.nbytes)

    def _fill_row_end(self, cur: ArrayCursor) -> None:
        """Fill the slots after the last one appended that the plan never acquires.

        Up to the end of its time point (row): acquire-zarr writes a time point
        once all its slots are appended, so one ending in planes a
        `do_stack=False` channel skips stayed off disk until the next time
        point's first frame (lost on a kill). Skipped when frames are held (the
        gap before them decides) or their disk space cannot be reserved (the
        next frame's reservation says so, before it is accepted).
        """
        if cur.pending or not cur.row_slots or not cur.next or not cur.image.skipped:
            return
        last = cur.unacquired_end(((cur.next - 1) // cur.row_slots + 1) * cur.row_slots)
        if last == cur.next:
            return
        if self._landing.track:
            try:
                self._landing.reserve([(cur, last - 1)])
            except OSError:
                return
        self._fill_to(cur, last)

    def _append_now(self, cur: ArrayCursor, data: np.ndarray) -> None:
        """Append frames to acquire-zarr (which copies them before returning)."""
        stream = self._stream
        try:
            self._calls.append(
                lambda: stream.append(data, key=cur.stream_key),
                data.nbytes,
                f"writing {cur.key!r}",
            )
        except RuntimeError as e:
            raise OSError(f"acquire-zarr failed to write {cur.key!r}: {e}") from e

    def _drain(self, cur: ArrayCursor, *, force: bool) -> None:
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
            end = cur.unacquired_end(sys.maxsize)  # stops at the first held frame
            if end > nxt:
                self._fill_to(cur, end)
            elif nxt in cur.overflowed:  # abandoned: its frame will not come
                self._fill_to(cur, nxt + 1)
            elif force:
                filled.append(cur.index_of(nxt))
                self._fill_to(cur, nxt + 1)
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
            self._fill_to(cur, cur.next + 1)
            self._drain(cur, force=False)
