"""The acquisition settings model: what will be written, independent of the path.

`AcquisitionSettings` is the one description of a dataset that every front end
(pymmcore-plus, Pycro-Manager, CLI, numpy) produces and every backend consumes.
This module owns that model, its validation and the mapping of a useq-style
event index to a storage location (`AcquisitionSettings.locate`); its parts
(dimensions, channels, images, plates) are in `_models.py`. It does no I/O and
knows nothing of NGFF metadata (`_layout.py`); `from_useq` runs the typed steps
of `_from_useq.py` and builds itself with `_plan.settings_from_slots`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, Field, PositiveInt, PrivateAttr, model_validator

from mmzarr._core_camera import camera_frame
from mmzarr._downsample import Downsample, warn_levels_cut
from mmzarr._fields import DTypeStr, check_finite_positive, pixel_axis
from mmzarr._from_useq import GENERATOR_HINT, camera_plan, warn_unknown_interval
from mmzarr._keys import check_image_keys
from mmzarr._models import (
    NON_SPATIAL,
    Channel,
    Compression,
    Dimension,
    FrozenModel,
    ImageSettings,
    PlateAcquisition,
    PlateSettings,
    StagePosition,
)
from mmzarr._plan import settings_from_slots
from mmzarr._sequence import as_sequence
from mmzarr.errors import FrameError, PlanError

if TYPE_CHECKING:
    from typing import Self

    import useq

__all__ = [
    "AcquisitionSettings",
    "Channel",
    "Dimension",
    "Downsample",
    "ImageSettings",
    "PlateAcquisition",
    "PlateSettings",
    "StagePosition",
]

Layout = Literal["image", "collection", "plate"]
OnFull = Literal["block", "raise", "drop"]
#: The largest frame (bytes) mmzarr writes: 2 GiB, beyond any camera, so a
#: mistyped shape fails here rather than as a MemoryError in a backend.
MAX_FRAME_BYTES = 2**31
#: The shortest `flush_interval_s`: shorter keeps a core busy flushing.
MIN_FLUSH_INTERVAL_S = 0.01


def _check_flush_interval(value: float) -> float:
    value = check_finite_positive(value)
    if value < MIN_FLUSH_INTERVAL_S:
        raise ValueError(
            f"must be at least {MIN_FLUSH_INTERVAL_S} s (shorter keeps a core busy "
            f"flushing), got {value!r}"
        )
    return value


FlushInterval = Annotated[float, AfterValidator(_check_flush_interval)]


def _as_index(index: Any) -> dict[str, int]:
    """A useq event index as a plain `{axis: int}` dict (FrameError if not one)."""
    if not isinstance(index, Mapping):
        raise FrameError(
            f"index: expected a mapping such as {{'t': 0, 'c': 1}}, got {index!r}"
        )
    out: dict[str, int] = {}
    for k, v in index.items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise FrameError(f"index {dict(index)}: {k}={v!r} is not an integer")
        out[str(k)] = int(v)
    return out


def _norm_coords(coords: Mapping[str, int]) -> frozenset[tuple[str, int]]:
    return frozenset((k, int(v)) for k, v in coords.items() if v != 0)


class AcquisitionSettings(FrozenModel):
    """Everything mmzarr needs to know to write a dataset, except where.

    Build it from a useq plan with `AcquisitionSettings.from_useq`, or by hand.

    Parameters
    ----------
    layout
        `"image"`: one multiscales image at the root; `"collection"`:
        bioformats2raw layout with one image per position; `"plate"`: HCS plate.
    images
        One entry per image, in plan order.
    dtype
        Pixel type of every image.
    plate
        The plate (only with `layout="plate"`).
    compression
        Chunk compression: `"none"`, `"blosc-lz4"` or `"blosc-zstd"`.
    positions_inside_time
        Default frame order when `append` gets no index: `True` visits every
        image at each time point (useq `"tp..."`); `False` finishes one image
        before the next (useq `"pt..."`). Each image's own frames follow its
        `acquisition_order`.
    ordered_appends
        Whether `append` may be given no index: False for a plan whose frames
        the default order cannot follow (images interleaved within a time
        point, e.g. positions inside channels, useq `"tcp"`; `from_useq` checks
        the default order against useq's events), whose frames then need their
        index.
    max_buffer_bytes
        Bytes of frames held in memory but not yet handed to storage.
    on_full
        What `append` does when that buffer is full: block (default), raise, or
        drop the frame (counted and recorded).
    flush_interval_s
        Upper bound on how long an appended frame may stay only in memory (at
        least `MIN_FLUSH_INTERVAL_S`, 0.01 s).
    downsample
        Extra resolution levels written as frames arrive (`Downsample`).
    fallback_reason
        Set on settings made by `AcquisitionSettings.fallback`: why the plan
        could not be mapped. Frames then go to `t` in arrival order, whatever
        their index, and each frame's index is kept in the frame log.

    Examples
    --------
    >>> import useq
    >>> from mmzarr import AcquisitionSettings
    >>> seq = useq.MDASequence(
    ...     channels=["DAPI", "FITC"], time_plan={"interval": 1, "loops": 3}
    ... )
    >>> s = AcquisitionSettings.from_useq(
    ...     seq, image_shape=(64, 64), dtype="uint16", pixel_size_um=0.5
    ... )
    >>> s.layout, s.images[0].shape
    ('image', (3, 2, 64, 64))
    >>> s.locate({"t": 2, "c": 1})
    ('', (2, 1))
    """

    layout: Layout
    images: tuple[ImageSettings, ...] = Field(min_length=1)
    dtype: DTypeStr
    plate: PlateSettings | None = None
    compression: Compression = "none"
    positions_inside_time: bool = True
    ordered_appends: bool = True
    max_buffer_bytes: PositiveInt = 256 * 1024**2
    on_full: OnFull = "block"
    flush_interval_s: FlushInterval = 1.0
    downsample: Downsample | None = None
    fallback_reason: str | None = None

    _lookup: dict[frozenset[tuple[str, int]], int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Self:
        keys = [im.key for im in self.images]
        check_image_keys(keys)
        itemsize = np.dtype(self.dtype).itemsize
        warn_levels_cut(self.downsample, [im.frame_shape for im in self.images])
        for im in self.images:
            nbytes = math.prod(im.frame_shape) * itemsize
            if nbytes > MAX_FRAME_BYTES:
                raise ValueError(
                    f"image {im.key!r}: a {im.frame_shape[0]}x{im.frame_shape[1]} "
                    f"{self.dtype} frame is {nbytes} bytes, more than the "
                    f"{MAX_FRAME_BYTES} bytes (2 GiB) mmzarr writes per frame; "
                    "check the image shape"
                )
        if self.layout == "image":
            if len(self.images) != 1 or keys[0] != "":
                raise ValueError(
                    f"layout 'image' holds exactly one image with key '', got {keys}"
                )
        elif "" in keys:
            raise ValueError(f"layout {self.layout!r}: an image key may not be ''")
        if self.layout == "plate":
            self._check_plate()
        elif self.plate is not None:
            raise ValueError(f"plate given but layout is {self.layout!r}")
        lookup: dict[frozenset[tuple[str, int]], int] = {}
        for i, im in enumerate(self.images):
            nc = _norm_coords(im.coords)
            if nc in lookup:
                other = self.images[lookup[nc]].key
                raise ValueError(
                    f"images {other!r} and {im.key!r} have the same coords "
                    f"{dict(im.coords)}"
                )
            lookup[nc] = i
        self._lookup = lookup
        return self

    def _check_plate(self) -> None:
        if self.plate is None:
            raise ValueError("layout 'plate' needs plate=PlateSettings(...)")
        seen: dict[tuple[str, int], str] = {}
        for im in self.images:
            if im.row is None or im.column is None or im.field is None:
                raise ValueError(
                    f"plate image {im.key!r} needs row, column and field, got "
                    f"row={im.row!r} column={im.column!r} field={im.field!r}"
                )
            well = f"{im.row}/{im.column}"
            if well not in self.plate.wells:
                raise ValueError(
                    f"image {im.key!r}: well {well!r} is not among the plate's wells "
                    f"{self.plate.wells}"
                )
            if im.key != f"{well}/{im.field}":
                raise ValueError(
                    f"plate image key {im.key!r} must be '{well}/{im.field}'"
                )
            if (well, im.field) in seen:
                raise ValueError(
                    f"images {seen[(well, im.field)]!r} and {im.key!r} both claim "
                    f"field {im.field} of well {well!r}"
                )
            seen[(well, im.field)] = im.key
        empty = sorted(set(self.plate.wells) - {well for well, _ in seen})
        if empty:
            raise ValueError(
                f"the plate's wells {empty} have no image: a well holds at least "
                "one field; leave them out of PlateSettings.wells"
            )

    # ---- queries --------------------------------------------------------------
    @property
    def keys(self) -> tuple[str, ...]:
        """Image keys in plan order."""
        return tuple(im.key for im in self.images)

    def image(self, key: str) -> ImageSettings:
        """The image with `key` (KeyError naming the known keys)."""
        for im in self.images:
            if im.key == key:
                return im
        raise KeyError(f"no image {key!r}; images are {self.keys}")

    @property
    def itemsize(self) -> int:
        """Bytes per pixel."""
        return int(np.dtype(self.dtype).itemsize)

    @property
    def unbounded(self) -> bool:
        """Whether any image has an unbounded `t`."""
        return any(im.unbounded for im in self.images)

    @property
    def frames_planned(self) -> int | None:
        """Frames the plan acquires in total (None when unbounded)."""
        counts = [im.frames_planned for im in self.images]
        if any(c is None for c in counts):
            return None
        return sum(c for c in counts if c is not None)

    @property
    def bytes_planned(self) -> int | None:
        """Uncompressed bytes of all planned frames (None when unbounded)."""
        if self.unbounded:
            return None
        return sum(
            (im.frames_planned or 0) * math.prod(im.frame_shape) * self.itemsize
            for im in self.images
        )

    def locate(self, index: Mapping[str, int]) -> tuple[str, tuple[int, ...]]:
        """Map a useq event index to `(image_key, storage_index)`.

        `storage_index` addresses the image's non-spatial axes in storage (NGFF)
        order. Axes other than t/c/z (`p`, `g`, ...) select the image.

        Raises
        ------
        FrameError
            If no image matches, or an index value is out of range.
        """
        i = self.image_number(index)
        im = self.images[i]
        return im.key, self.storage_index(i, index)

    def image_number(self, index: Mapping[str, int]) -> int:
        """Number (position in `images`) of the image a useq index selects."""
        index = _as_index(index)
        coords = {k: v for k, v in index.items() if k not in NON_SPATIAL}
        try:
            return self._lookup[_norm_coords(coords)]
        except KeyError:
            known = [dict(im.coords) for im in self.images]
            raise FrameError(
                f"index {dict(index)}: no image has coords {coords}; "
                f"known coords: {known}"
            ) from None

    def storage_index(self, image: int, index: Mapping[str, int]) -> tuple[int, ...]:
        """The storage index in image number `image` for a useq event index."""
        im = self.images[image]
        names = im.dim_names
        index = _as_index(index)
        for k, v in index.items():
            if k in NON_SPATIAL and k not in names and v != 0:
                raise FrameError(
                    f"index {dict(index)}: image {im.key!r} has no {k!r} axis "
                    f"(dimensions {names}), got {k}={v}"
                )
        idx = tuple(int(index.get(d.name, 0)) for d in im.index_dims)
        im.check_index(idx)
        return idx

    # ---- constructors ---------------------------------------------------------
    @classmethod
    def fallback(
        cls,
        reason: str,
        *,
        image_shape: tuple[int, int],
        dtype: str,
        pixel_size_um: float | None = None,
        samples: int = 1,
        **options: Any,
    ) -> AcquisitionSettings:
        """Settings that keep every frame of a plan mmzarr cannot map.

        One image whose `t` grows by one per frame, in arrival order (it has
        no unit: it counts frames, not seconds); each
        frame's own index (position, channel, z...) goes to the frame log and
        the dataset's root metadata says `fallback: reason`.

        Parameters
        ----------
        reason
            Why the plan could not be mapped (shown to users).
        image_shape, dtype, pixel_size_um
            Frame (height, width), pixel type and pixel size (µm; None or 0 if
            unknown: y/x without a unit, `pixel_axis`).
        samples
            Planes per frame (e.g. 3 for an RGB camera's frames), kept as the
            channels of a `c` axis, each frame's planes in a row.
        **options
            Other fields (`compression`, `max_buffer_bytes`, ...).
        """
        px = pixel_axis(pixel_size_um if pixel_size_um and pixel_size_um > 0 else None)
        height, width = (int(n) for n in image_shape)
        c: tuple[Dimension, ...] = ()
        channels: tuple[Channel, ...] = ()
        if samples > 1:
            names = "RGBA" if samples <= 4 else None
            c = (Dimension(name="c", size=samples),)
            channels = tuple(
                Channel(name=names[i] if names else f"sample {i}")
                for i in range(samples)
            )
        image = ImageSettings(
            key="",
            name="fallback",
            dimensions=(
                # arrival order, not time: no unit (a scale of 1 s would lie)
                Dimension(name="t", size=None),
                *c,
                Dimension(name="y", size=height, **px),
                Dimension(name="x", size=width, **px),
            ),
            channels=channels,
        )
        return cls(
            layout="image",
            images=(image,),
            dtype=dtype,
            fallback_reason=reason or "the plan could not be mapped",
            **options,
        )

    @classmethod
    def from_useq(
        cls,
        seq: useq.MDASequence | Mapping[str, Any],
        *,
        image_shape: tuple[int, int] | None = None,
        dtype: Any = None,
        pixel_size_um: float | None = None,
        core: Any = None,
        unbounded_t: bool = False,
        compression: Compression = "none",
        chunks: Mapping[str, int] | None = None,
        shards: Mapping[str, int] | None = None,
        running: bool = False,
        stage_position: Mapping[str, float] | None = None,
        **options: Any,
    ) -> Self:
        """Settings for a useq plan.

        The plan is iterated with useq itself, so every ragged case
        (sub-sequences, `do_stack=False`, `acquire_every`, grids, well-plate
        fields) is described by exactly the events useq emits. A long time
        plan whose time points all repeat the same events (time outermost, no
        position with a time plan of its own) is iterated for its first
        periods only: a plan of 100,000 frames is described in milliseconds.

        Parameters
        ----------
        seq
            A `useq.MDASequence` (or a dict useq accepts).
        image_shape, dtype, pixel_size_um
            Frame (height, width), pixel type and pixel size in µm. Taken from
            `core` when not given; without a core the pixel type is uint16. A
            pixel size neither given nor known to `core` (0) warns and is
            written as unknown: y/x without a unit (`pixel_axis`).
        core
            A `CMMCorePlus` (or anything with `getImageHeight`, `getImageWidth`,
            `getBytesPerPixel`, `getPixelSizeUm`, `getROI`). When it knows the
            pixel size, grid plans use the camera's field of view (ROI x pixel
            size), as pymmcore-plus' engine does before it runs the plan;
            without a core the plan's own `fov_width`/`fov_height` are kept.
        unbounded_t
            Treat time as unbounded: one period of the plan describes a time
            point and `t` grows as frames arrive.
        compression, chunks, shards
            Storage options; `chunks`/`shards` map axis names to element counts
            (a shard a multiple of its chunk), cut to the array: a chunk past
            a frame side, or a shard past a bounded axis, covers only it.
        running
            `seq` is the object pymmcore-plus' runner is iterating (as
            `sequenceStarted` gives it; its engine has set the grids' field of
            view): the settings follow that iteration, also for a plan whose
            grid useq kept from an earlier iteration (`MDAWriter` sets it).
        stage_position
            Where the stage is when the plan starts (µm; keys `x`, `y`, `z`).
            pymmcore-plus moves an axis only for an event that sets it, so an
            image whose events leave an axis unset is where the last event
            that set it left the stage, or here (`MDAWriter` gives
            pymmcore-plus' summary `position`). Without it such an image has
            no translation on that axis until an event sets one.
        **options
            Other fields (`max_buffer_bytes`, `on_full`, `flush_interval_s`,
            `downsample`).

        Raises
        ------
        PlanError
            (a `ValueError`) naming the bad field and value; also for a plan
            useq cannot iterate and one that acquires one storage slot twice
            (a position's own time plan nested in the sequence's time plan).
        """
        if stage_position is not None and not isinstance(stage_position, Mapping):
            raise PlanError(
                "stage_position: expected a mapping such as {'x': 0.0, 'y': 0.0}, "
                f"got {stage_position!r}"
            )
        sequence = as_sequence(seq, generator_hint=GENERATOR_HINT, running=running)
        frame = camera_frame(core, image_shape, dtype, pixel_size_um)
        # a running plan's grids have the camera's field of view already
        plan = camera_plan(
            sequence,
            None if running else core,
            unbounded_t=unbounded_t,
            stage_position=stage_position,
        )
        settings = settings_from_slots(
            cls,
            plan.frame_slots,
            plan=plan.plan,
            frame=frame,
            chunks=chunks,
            shards=shards,
            compression=compression,
            **options,
        )
        warn_unknown_interval(plan)
        return settings
