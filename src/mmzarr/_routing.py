"""Where each frame goes: the routing core, with no I/O.

`Router` turns a useq-style index (or none: the next frame in acquisition
order) into an image number and a storage index, keeps the ledger of the
slots already written, and knows the default order and its skips. The mapping
of one index lives in `AcquisitionSettings` (`image_number`,
`storage_index`); storage is the backend's, documents are `_dataset`'s.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mmzarr.errors import FrameError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from mmzarr._settings import AcquisitionSettings, ImageSettings

__all__ = ["MAX_T_GAP", "Ledger", "Placement", "Router", "default_order"]

#: The most empty time points a frame may leave before it in an image whose
#: `t` grows (after the last one written, or from 0): each is written with the
#: fill value (acquire-zarr appends them, ~1 ms per 512² frame) and kept in
#: the ledger, so a `t` far past (a timestamp given as the index) would take
#: hours and all memory; such a frame is refused, not written.
MAX_T_GAP = 1024


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one frame goes: image number and key, storage index."""

    image: int
    key: str
    index: tuple[int, ...]


class Ledger:
    """Which storage slots of one image hold a frame (grows along unbounded t)."""

    def __init__(self, image: ImageSettings) -> None:
        shape = [d.size if d.size is not None else 16 for d in image.index_dims]
        self.mask = np.zeros(shape or [1], dtype=bool)
        self.unbounded = image.unbounded
        #: frames marked
        self.count = 0
        #: 1 + the largest `t` marked (unbounded images)
        self.t_size = 0
        #: 1 + the largest `t` marked or dropped (unbounded images): where a
        #: frame's gap is counted from (`MAX_T_GAP`)
        self.t_reached = 0

    def has(self, index: tuple[int, ...]) -> bool:
        """Whether `index` was marked."""
        idx = index or (0,)
        if idx[0] >= self.mask.shape[0]:
            return False
        return bool(self.mask[idx])

    def mark(self, index: tuple[int, ...]) -> bool:
        """Mark `index`; False if it was already marked."""
        if not index:
            index = (0,)
        if self.unbounded and index[0] >= self.mask.shape[0]:
            grow = max(index[0] + 1, self.mask.shape[0] * 2)
            pad = [(0, grow - self.mask.shape[0])] + [(0, 0)] * (self.mask.ndim - 1)
            self.mask = np.pad(self.mask, pad)
        if self.mask[index]:
            return False
        self.mask[index] = True
        self.count += 1
        if self.unbounded:
            self.t_size = max(self.t_size, index[0] + 1)
            self.t_reached = max(self.t_reached, self.t_size)
        return True

    def missing_count(self, image: ImageSettings) -> int:
        """How many slots the plan acquires hold no frame (see `holes`)."""
        if not image.unbounded and self.count >= (image.frames_planned or 0):
            return 0
        return int(np.count_nonzero(self.holes(image)))

    def missing(self, image: ImageSettings) -> list[list[int]]:
        """The slots of `holes`, as storage indices in storage order."""
        if not image.unbounded and self.count >= (image.frames_planned or 0):
            return []
        return [[int(v) for v in idx] for idx in np.argwhere(self.holes(image))]

    def holes(self, image: ImageSettings) -> np.ndarray:
        """Which slots the plan acquires hold no frame, as a mask.

        All of a bounded image's; an unbounded image's up to its last `t`
        written (`t_size`), so a gap before it counts. Slots the plan skips
        (`ImageSettings.skipped`, repeating every `skip_period` along `t`) are
        not holes.
        """
        due = self.mask[: self.t_size] if image.unbounded else self.mask
        holes = ~due
        periodic = bool(image.skip_period) and image.dim_names[:1] == ("t",)
        for idx in image.skipped:
            if periodic:
                holes[(slice(idx[0], None, image.skip_period), *idx[1:])] = False
            elif not image.unbounded or idx[0] < holes.shape[0]:
                holes[idx] = False
        return holes


def default_order(
    settings: AcquisitionSettings,
) -> Iterator[tuple[int, tuple[int, ...]]]:
    """(image number, storage index) of every planned frame, in acquisition order.

    Time outermost (every image at each time point) when the settings say
    positions are inside time or `t` is unbounded, and every image acquires
    its time points outermost; else one image after another. Each image's
    frames follow its `acquisition_order`. Where the plan's own order is
    another (`AcquisitionSettings.ordered_appends` is False) this is not it.
    """
    images = settings.images
    t_first = all(
        im.dim_names[0] == "t" and (im.acquisition_order or ("t",))[0] == "t"
        for im in images
    )
    if t_first and (settings.positions_inside_time or settings.unbounded):
        for t in itertools.count():
            sizes = [im.dimensions[0].size for im in images]
            if all(s is not None and t >= s for s in sizes):
                return
            for i, im in enumerate(images):
                size = im.dimensions[0].size
                if size is None or t < size:
                    for idx in im.iter_indices(range(t, t + 1)):
                        yield i, idx
        return  # pragma: no cover
    for i, im in enumerate(images):
        for idx in im.iter_indices():
            yield i, idx


class Router:
    """Places frames for one dataset and keeps the ledger of written slots.

    Not thread-safe: `Stream` serializes calls.
    """

    def __init__(self, settings: AcquisitionSettings) -> None:
        self.settings = settings
        self.ledgers = [Ledger(im) for im in settings.images]
        self._order = default_order(settings)
        self._fallback = settings.fallback_reason is not None
        self._taken = 0  # frames taken from the default order
        # the next slot of the default order, placed but not yet written
        self._peeked: tuple[int, tuple[int, ...]] | None = None
        # lookup tables of `_fast_place`: image by its non-t/c/z coordinates,
        # and per image its index axes, their sizes and its key
        self._images: dict[tuple[tuple[str, int], ...], int] = {}
        self._axes = [
            (
                tuple(d.name for d in im.index_dims),
                tuple(d.size for d in im.index_dims),
                im.key,
            )
            for im in settings.images
        ]

    @property
    def frames(self) -> int:
        """Frames marked written, over all images."""
        return sum(ledger.count for ledger in self.ledgers)

    def place(self, index: Mapping[str, int] | None = None) -> Placement:
        """Where a frame with `index` goes; without one, the next planned slot.

        A fallback dataset (`AcquisitionSettings.fallback`) takes every frame
        in arrival order, whatever its index. A slot of the default order is
        taken only by `mark` (a frame refused in between keeps it free).

        Raises
        ------
        FrameError
            For an index no image has, a value out of range, or a frame past
            the end of the plan. A slot already written is not checked here
            (`is_written`).
        """
        settings = self.settings
        if index is not None and not self._fallback:
            fast = self._fast_place(index)
            if fast is not None:
                return fast
            image = settings.image_number(index)
            sidx = settings.storage_index(image, index)
        else:
            self._check_ordered()
            if self._peeked is None:
                self._peeked = self._next("frame")
            image, sidx = self._peeked
        return Placement(image, settings.images[image].key, sidx)

    def _fast_place(self, index: Mapping[str, int]) -> Placement | None:
        """The placement of a valid index by table lookup, or None.

        None (anything unusual: not a dict of plain ints, an image not seen
        yet, a value out of range) sends the index to the settings' own
        checks, which name what is wrong.
        """
        try:
            coords = []
            ts = cs = zs = 0
            for k, v in index.items():
                if type(v) is not int:
                    return None
                if k == "t":
                    ts = v
                elif k == "c":
                    cs = v
                elif k == "z":
                    zs = v
                elif v:
                    coords.append((k, v))
        except AttributeError:
            return None
        key = tuple(sorted(coords))
        image = self._images.get(key)
        if image is None:
            image = self.settings.image_number(index)  # raises for unknown coords
            self._images[key] = image
        values = {"t": ts, "c": cs, "z": zs}
        names, sizes, key_str = self._axes[image]
        for name, v in values.items():
            if v and name not in names:  # a t/c/z value the image lacks
                return None
        sidx = tuple(values[n] for n in names)
        for v, size in zip(sidx, sizes, strict=True):
            if v < 0 or (size is not None and v >= size):
                return None
        return Placement(image, key_str, sidx)

    def _check_ordered(self) -> None:
        if not self.settings.ordered_appends and not self._fallback:
            raise FrameError(
                "a frame without an index: this plan interleaves images within a "
                "time point (e.g. positions inside channels), an order frames "
                "without an index cannot follow; give each frame its index "
                "(index=event.index)"
            )

    def skip(self, n: int = 1) -> None:
        """Advance the default order by `n` slots without writing them.

        Raises
        ------
        ValueError
            For an `n` that is not an int >= 0.
        FrameError
            When fewer than `n` slots of the plan are left, or (a growing `t`)
            the next slot would be more than `MAX_T_GAP` empty time points past
            the last written or dropped (none is skipped).
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"skip({n!r}): the number of slots to skip is an int >= 0")
        self._check_ordered()
        planned = self.settings.frames_planned
        if planned is not None:
            left = planned - self._taken + (self._peeked is not None)
            if n > left:
                raise FrameError(
                    f"skip({n}): only {left} slot(s) of the plan's {planned} are left"
                )
            for _ in range(n):
                if self._peeked is not None:
                    self._peeked = None
                else:
                    self._next(f"skip({n})")
            return
        # a growing t: the slot after them must stay within reach of a frame;
        # they are put back when it does not
        peeked, taken = self._peeked, self._taken
        stepped = [] if peeked is None else [peeked]
        while len(stepped) <= n:
            stepped.append(self._next(f"skip({n})"))
            image, index = stepped[-1]
            try:
                self.check_gap(Placement(image, self._axes[image][2], index))
            except FrameError as e:
                rest = stepped[1:] if peeked is not None else stepped
                self._order = itertools.chain(rest, self._order)
                self._peeked, self._taken = peeked, taken
                raise FrameError(f"skip({n}): {e}") from None
        self._peeked = stepped[-1]  # taken from the order, not written

    def check_free(
        self, placement: Placement, index: Mapping[str, int] | None = None
    ) -> None:
        """Raise unless the slot of `placement` may take a frame.

        It must be one the plan acquires, and not written yet (`index`: the
        one the frame was given, for the message).

        Raises
        ------
        FrameError
            For a slot the plan never acquires (skipped), one already written
            (without `index`: the next slot of the default order), or one of a
            growing `t` more than `MAX_T_GAP` empty time points past the last
            one written or dropped.
        """
        im = self.settings.images[placement.image]
        self.check_gap(placement, index)
        if not im.is_acquired(placement.index):
            raise FrameError(
                f"image {im.key!r}: the plan never acquires {placement.index} "
                f"({dict(index or {})}): its skipped slots stay the fill value"
            )
        if not self.is_written(placement):
            return
        if index is None:
            raise FrameError(
                f"image {im.key!r}: the next slot in acquisition order, "
                f"{placement.index}, was already written (by an append with "
                "index=): give index=, or skip() past it"
            )
        raise FrameError(
            f"image {im.key!r}: index {placement.index} ({dict(index)}) "
            "was already written"
        )

    def check_gap(
        self, placement: Placement, index: Mapping[str, int] | None = None
    ) -> None:
        """Raise where a growing `t` would leave too many empty time points.

        At most `MAX_T_GAP` before the slot of `placement` (`index`: the one
        the frame was given, for the message).

        Raises
        ------
        FrameError
            Naming the `t` and the last time point written or dropped.
        """
        ledger = self.ledgers[placement.image]
        if ledger.unbounded and placement.index[0] - ledger.t_reached > MAX_T_GAP:
            t, reached = placement.index[0], ledger.t_reached
            last = f"t={reached - 1}" if reached else "none yet"
            given = f" ({dict(index)})" if index is not None else ""
            raise FrameError(
                f"image {placement.key!r}: t={t}{given} would leave "
                f"{t - reached} empty time points before it (last one reached: "
                f"{last}); a growing t leaves at most {MAX_T_GAP} (each is "
                "written with the fill value)"
            )

    def is_written(self, placement: Placement) -> bool:
        """Whether the slot of `placement` already holds a frame."""
        return self.ledgers[placement.image].has(placement.index)

    def mark(self, placement: Placement) -> None:
        """Record the slot of `placement` as written (and taken from the order)."""
        if self._peeked == (placement.image, placement.index):
            self._peeked = None
        self.ledgers[placement.image].mark(placement.index)

    def drop(self, placement: Placement) -> None:
        """Give up the slot of `placement` unwritten (a dropped frame).

        A slot of the default order is then taken: the next frame goes on; a
        growing `t` counts its gaps from the dropped frame's too.
        """
        if self._peeked == (placement.image, placement.index):
            self._peeked = None
        ledger = self.ledgers[placement.image]
        if ledger.unbounded:
            ledger.t_reached = max(ledger.t_reached, placement.index[0] + 1)

    def t_sizes(self) -> dict[int, int]:
        """`{image number: t size}` of the unbounded images with frames."""
        return {i: w.t_size for i, w in enumerate(self.ledgers) if w.t_size}

    def _next(self, what: str) -> tuple[int, tuple[int, ...]]:
        try:
            nxt = next(self._order)
        except StopIteration:
            planned = self.settings.frames_planned
            raise FrameError(
                f"{what}: frame {self._taken + 1} is one more than the plan holds "
                f"({planned} frames)"
            ) from None
        self._taken += 1
        return nxt
