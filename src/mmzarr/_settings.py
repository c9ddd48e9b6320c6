"""The acquisition settings model: what will be written, independent of the path.

`AcquisitionSettings` is the one description of a dataset that every front end
(pymmcore-plus, Pycro-Manager, CLI, numpy) produces and every backend consumes.
This module owns the models, their validation and the mapping of a useq-style
event index to a storage location (`AcquisitionSettings.locate`). It does no I/O
and knows nothing of useq plans (see `_useq.py`) or of NGFF metadata (`_layout.py`).
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)

from mmzarr.errors import FrameError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Self

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

DimName = Literal["t", "c", "z", "y", "x"]
NGFF_ORDER: tuple[str, ...] = ("t", "c", "z", "y", "x")
NON_SPATIAL: tuple[str, ...] = ("t", "c", "z")
DIM_TYPES: dict[str, str] = {
    "t": "time",
    "c": "channel",
    "z": "space",
    "y": "space",
    "x": "space",
}
Layout = Literal["image", "collection", "plate"]
Compression = Literal["none", "blosc-lz4", "blosc-zstd"]
OnFull = Literal["block", "raise", "drop"]
_SUPPORTED_DTYPES = (
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "int8",
    "int16",
    "int32",
    "int64",
    "float32",
    "float64",
)
_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
#: The largest frame side (y or x, in pixels) mmzarr writes.
MAX_FRAME_SIDE = 65536
#: The largest frame (bytes) mmzarr writes: 2 GiB, beyond any camera, so a
#: mistyped shape fails here rather than as a MemoryError in a backend.
MAX_FRAME_BYTES = 2**31
#: The shortest `flush_interval_s`: shorter keeps a core busy flushing.
MIN_FLUSH_INTERVAL_S = 0.01


def _check_dtype(value: Any) -> str:
    """The numpy name of a supported dtype given as anything numpy accepts."""
    if value is None:  # np.dtype(None) would be float64
        raise ValueError("dtype: unknown dtype None")
    try:
        name = np.dtype(value).name
    except (TypeError, ValueError) as e:
        raise ValueError(f"dtype: unknown dtype {value!r}") from e
    if name not in _SUPPORTED_DTYPES:
        raise ValueError(
            f"dtype: {value!r} is not supported; use one of {_SUPPORTED_DTYPES}"
        )
    return str(name)


def _check_finite_positive(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a finite number > 0, got {value!r}")
    return float(value)


def _check_color(value: str) -> str:
    value = value.lstrip("#").upper()
    if not re.fullmatch(r"[0-9A-F]{6}", value):
        raise ValueError(f"color must be a hex RRGGBB string, got {value!r}")
    return value


def _check_flush_interval(value: float) -> float:
    value = _check_finite_positive(value)
    if value < MIN_FLUSH_INTERVAL_S:
        raise ValueError(
            f"must be at least {MIN_FLUSH_INTERVAL_S} s (shorter keeps a core busy "
            f"flushing), got {value!r}"
        )
    return value


def _check_name(value: str, info: ValidationInfo) -> str:
    """A name shown to users and written to OME-XML: no control characters.

    Refused: C0/C1 control characters (terminal escapes, NUL; XML 1.0 forbids
    most), lone surrogates (not UTF-8) and the non-characters U+FFFE/U+FFFF.
    """
    for ch in value:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs") or ch in "\ufffe\uffff":
            model = (info.config or {}).get("title") or ""
            what = f"{_MODEL_NOUNS.get(model, model)} {info.field_name}".strip()
            raise ValueError(
                f"{what} {value!r} contains the control character "
                f"U+{ord(ch):04X}; use printable characters"
            )
    return value


_MODEL_NOUNS = {
    "Channel": "channel",
    "ImageSettings": "image",
    "PlateSettings": "plate",
    "PlateAcquisition": "plate acquisition",
}


DTypeStr = Annotated[str, BeforeValidator(_check_dtype)]
PositiveFinite = Annotated[float, AfterValidator(_check_finite_positive)]
FlushInterval = Annotated[float, AfterValidator(_check_flush_interval)]
HexColor = Annotated[str, AfterValidator(_check_color)]
#: A user-visible name (image, channel, plate): printable characters only.
Name = Annotated[str, AfterValidator(_check_name)]

_CHANNEL_COLORS = {
    "dapi": "0000FF",
    "hoechst": "0000FF",
    "bfp": "0000FF",
    "fitc": "00FF00",
    "gfp": "00FF00",
    "egfp": "00FF00",
    "yfp": "FFFF00",
    "tritc": "FF0000",
    "cy3": "FFA500",
    "rfp": "FF0000",
    "mcherry": "FF0000",
    "cy5": "FF00FF",
    "brightfield": "FFFFFF",
    "bf": "FFFFFF",
}
_CYCLE = ("00FF00", "FF00FF", "00FFFF", "FFFF00", "FF0000", "0000FF", "FFFFFF")


def default_color(name: str, index: int) -> str:
    """A display color for a channel, from its name (DAPI blue, FITC green...)."""
    return _CHANNEL_COLORS.get(name.strip().lower(), _CYCLE[index % len(_CYCLE)])


class FrozenModel(BaseModel):
    """Immutable base model: unknown fields are errors, `replace` re-validates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def replace(self, **changes: Any) -> Self:
        """Return a validated copy with `changes` applied."""
        return type(self).model_validate({**self.model_dump(), **changes})


class Dimension(FrozenModel):
    """One axis of an image array, in storage (NGFF) order.

    `size=None` marks an unbounded dimension (only `t`, grown by appending).
    `chunk` and `shard` are in elements; `shard` must be a multiple of `chunk`.
    """

    name: DimName
    type: Literal["time", "channel", "space"] | None = None
    size: PositiveInt | None
    chunk: PositiveInt | None = None
    shard: PositiveInt | None = None
    unit: str | None = None
    scale: PositiveFinite = 1.0

    @model_validator(mode="after")
    def _fill(self) -> Self:
        if self.type is None:
            object.__setattr__(self, "type", DIM_TYPES[self.name])
        elif self.type != DIM_TYPES[self.name]:
            raise ValueError(
                f"dimension {self.name!r}: type must be {DIM_TYPES[self.name]!r}, "
                f"got {self.type!r}"
            )
        if self.size is None and self.name != "t":
            raise ValueError(f"dimension {self.name!r}: only 't' may be unbounded")
        if self.name in ("y", "x") and (self.size or 0) > MAX_FRAME_SIDE:
            raise ValueError(
                f"dimension {self.name!r}: a frame side of {self.size} px is more "
                f"than the {MAX_FRAME_SIDE} px mmzarr writes; check the image shape"
            )
        if self.chunk is None:
            chunk = self.size if self.name in ("y", "x") else 1
            object.__setattr__(self, "chunk", chunk)
        if self.shard is not None and self.shard % (self.chunk or 1):
            raise ValueError(
                f"dimension {self.name!r}: shard {self.shard} is not a multiple of "
                f"chunk {self.chunk}"
            )
        return self

    @property
    def chunk_size(self) -> int:
        """The chunk length (resolved)."""
        return int(self.chunk or 1)

    @property
    def shard_size(self) -> int:
        """The shard length in elements (the chunk length when unsharded)."""
        return int(self.shard or self.chunk_size)


class Channel(FrozenModel):
    """A channel of an image.

    Parameters
    ----------
    name
        The label shown to users; unique within the image.
    color
        Display color (hex RRGGBB).
    config
        The channel config (preset) that acquired it, when the plan says;
        several channels may share one (e.g. DAPI at two exposures).
    exposure_ms
        The plan's exposure for this channel, if it sets one.
    """

    name: Name = Field(min_length=1)
    color: HexColor = "FFFFFF"
    config: Name | None = None
    exposure_ms: float | None = None


class StagePosition(FrozenModel):
    """Stage coordinates (µm) of an image's first plane."""

    x: float | None = None
    y: float | None = None
    z: float | None = None


class ImageSettings(FrozenModel):
    """One image (one position, or one field of a plate well) of the dataset.

    Parameters
    ----------
    key
        Path of the image's group inside the dataset: `""` for a single image,
        `"0"`, `"1"`... in a collection, `"A/1/0"` (row/column/field) in a plate.
    dimensions
        Axes in storage order (a subsequence of t, c, z, y, x ending in y, x).
    acquisition_order
        Order, outermost first, in which the non-spatial axes advance during the
        acquisition (e.g. `("t", "z", "c")` for useq's `"tpzc"`). Storage order is
        always NGFF order; backends that append use this order.
    coords
        Plan coordinates other than t/c/z that select this image (e.g.
        `{"p": 2, "g": 1}`).
    skipped
        Non-spatial storage indices that the plan never acquires (they stay at the
        fill value). With an unbounded `t` they are listed for
        `0 <= t < skip_period` and repeat with that period.
    """

    key: str
    name: Name | None = None
    dimensions: tuple[Dimension, ...]
    acquisition_order: tuple[str, ...] | None = None
    channels: tuple[Channel, ...] = ()
    stage_position: StagePosition = StagePosition()
    coords: dict[str, int] = Field(default_factory=dict)
    row: str | None = None
    column: str | None = None
    field: int | None = Field(default=None, ge=0)
    skipped: tuple[tuple[int, ...], ...] = ()
    skip_period: PositiveInt | None = None

    _skipped_set: frozenset[tuple[int, ...]] = PrivateAttr(default=frozenset())

    @model_validator(mode="after")
    def _check(self) -> Self:
        names = [d.name for d in self.dimensions]
        where = f"image {self.key!r}"
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: duplicate dimension names {names}")
        if names[-2:] != ["y", "x"] or not 2 <= len(names) <= 5:
            raise ValueError(
                f"{where}: dimensions must end in 'y', 'x' and have 2-5 axes, "
                f"got {names}"
            )
        if names != sorted(names, key=NGFF_ORDER.index):
            raise ValueError(f"{where}: dimensions must be in t,c,z,y,x order: {names}")
        for d in self.dimensions[1:]:
            if d.size is None:
                raise ValueError(f"{where}: only a leading 't' may be unbounded")
        ns = tuple(n for n in names if n in NON_SPATIAL)
        if self.acquisition_order is None:
            object.__setattr__(self, "acquisition_order", ns)
        elif sorted(self.acquisition_order) != sorted(ns):
            raise ValueError(
                f"{where}: acquisition_order {self.acquisition_order} must be a "
                f"permutation of {ns}"
            )
        if "c" in names:
            n_c = self.dim("c").size
            if self.channels and len(self.channels) != n_c:
                raise ValueError(
                    f"{where}: {len(self.channels)} channel names for a 'c' "
                    f"dimension of size {n_c}"
                )
            if not self.channels:
                chans = tuple(
                    Channel(name=f"Channel {i}", color=default_color("", i))
                    for i in range(n_c or 0)
                )
                object.__setattr__(self, "channels", chans)
            cnames = [c.name for c in self.channels]
            dupes = sorted({n for n in cnames if cnames.count(n) > 1})
            if dupes:
                raise ValueError(f"{where}: duplicate channel names {dupes}")
        elif len(self.channels) > 1:
            raise ValueError(f"{where}: {len(self.channels)} channels but no 'c' axis")
        for idx in self.skipped:
            self.check_index(idx, bounded_t=self.skip_period)
        self._skipped_set = frozenset(self.skipped)
        return self

    # ---- derived, read-only views ---------------------------------------------
    def dim(self, name: str) -> Dimension:
        """The dimension called `name` (KeyError if absent)."""
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(f"image {self.key!r} has no {name!r} dimension")

    @property
    def dim_names(self) -> tuple[str, ...]:
        """Dimension names in storage order."""
        return tuple(d.name for d in self.dimensions)

    @property
    def index_dims(self) -> tuple[Dimension, ...]:
        """The non-spatial dimensions (those a frame index addresses)."""
        return tuple(d for d in self.dimensions if d.name in NON_SPATIAL)

    @property
    def shape(self) -> tuple[int | None, ...]:
        """Array shape; `None` for an unbounded `t`."""
        return tuple(d.size for d in self.dimensions)

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(y, x) of one frame."""
        return (int(self.dim("y").size or 0), int(self.dim("x").size or 0))

    @property
    def sharded(self) -> bool:
        """Whether any dimension has shards (the array then uses `sharding_indexed`).

        Either way each dimension's chunk file holds `shard_size` elements.
        """
        return any(d.shard is not None for d in self.dimensions)

    @property
    def unbounded(self) -> bool:
        """Whether the leading `t` is unbounded."""
        return self.dimensions[0].size is None

    @property
    def frames_planned(self) -> int | None:
        """Frames the plan acquires into this image (None when unbounded)."""
        if self.unbounded:
            return None
        return math.prod(int(d.size or 0) for d in self.index_dims) - len(self.skipped)

    def is_acquired(self, index: tuple[int, ...]) -> bool:
        """Whether the plan acquires the storage index `index`."""
        if not self.skipped:
            return True
        if self.skip_period and self.dim_names[0] == "t":
            index = (index[0] % self.skip_period, *index[1:])
        return index not in self._skipped_set

    def iter_indices(self, t_range: range | None = None) -> Iterator[tuple[int, ...]]:
        """Storage indices of the acquired frames, in acquisition order.

        `t_range` restricts (or, for an unbounded `t`, bounds) the time points.
        """
        order = self.acquisition_order or ()
        ranges: dict[str, range] = {}
        for d in self.index_dims:
            if d.name == "t" and t_range is not None:
                ranges["t"] = t_range
            elif d.size is None:
                raise ValueError(f"image {self.key!r}: t is unbounded, give t_range")
            else:
                ranges[d.name] = range(d.size)
        pos = [order.index(n) for n in self.dim_names if n in NON_SPATIAL]
        for combo in itertools.product(*(ranges[n] for n in order)):
            idx = tuple(combo[i] for i in pos)
            if self.is_acquired(idx):
                yield idx

    def check_index(
        self, index: tuple[int, ...], *, bounded_t: int | None = None
    ) -> None:
        """Raise `FrameError` unless `index` is a storage index of this image.

        `bounded_t` bounds an unbounded `t` (any `t >= 0` is accepted otherwise).
        """
        dims = self.index_dims
        if len(index) != len(dims):
            raise FrameError(
                f"image {self.key!r}: index {index} has {len(index)} values for "
                f"axes {tuple(d.name for d in dims)}"
            )
        for d, v in zip(dims, index, strict=True):
            size = d.size if d.size is not None else bounded_t
            if v < 0 or (size is not None and v >= size):
                raise FrameError(
                    f"image {self.key!r}: {d.name}={v} is out of range "
                    f"[0, {size if size is not None else 'unbounded'})"
                )


class Downsample(FrozenModel):
    """Resolution levels written during acquisition (2x in y and x per level).

    Parameters
    ----------
    method
        `"mean"` (average of each 2x2 block) or `"decimate"` (its top-left pixel).
    levels
        Extra levels beyond full resolution, or `"auto"`: halve until the
        smaller side of a level is <= `min_size`.
    min_size
        The side length at which `"auto"` stops.
    """

    method: Literal["mean", "decimate"] = "mean"
    levels: PositiveInt | Literal["auto"] = "auto"
    min_size: PositiveInt = 256

    def extra_levels(self, frame_shape: tuple[int, int]) -> int:
        """Number of levels below full resolution for frames of `frame_shape`."""
        if self.levels != "auto":
            return int(self.levels)
        n, side = 0, min(frame_shape)
        while side > self.min_size:
            side = -(-side // 2)
            n += 1
        return n


class PlateAcquisition(FrozenModel):
    """One acquisition (run) of a plate."""

    id: int = Field(default=0, ge=0)
    name: Name | None = None


class PlateSettings(FrozenModel):
    """An HCS plate: its grid and the wells that hold images.

    `wells` are `"row/column"` paths such as `"A/1"`.
    """

    name: Name | None = None
    rows: tuple[str, ...] = Field(min_length=1)
    columns: tuple[str, ...] = Field(min_length=1)
    wells: tuple[str, ...] = Field(min_length=1)
    acquisitions: tuple[PlateAcquisition, ...] = (PlateAcquisition(),)

    @model_validator(mode="after")
    def _check(self) -> Self:
        for name, seq in (("rows", self.rows), ("columns", self.columns)):
            for v in seq:
                if not re.fullmatch(r"[A-Za-z0-9]+", v):
                    raise ValueError(f"plate {name}: {v!r} is not alphanumeric")
            if len(set(seq)) != len(seq):
                raise ValueError(f"plate {name}: duplicate names in {seq}")
        for w in self.wells:
            row, _, col = w.partition("/")
            if row not in self.rows or col not in self.columns:
                raise ValueError(
                    f"plate well {w!r} is outside the plate (rows {self.rows}, "
                    f"columns {self.columns})"
                )
        if len(set(self.wells)) != len(self.wells):
            raise ValueError(f"plate wells: duplicates in {self.wells}")
        return self


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
        before the next (useq `"pt..."`).
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
    max_buffer_bytes: PositiveInt = 256 * 1024**2
    on_full: OnFull = "block"
    flush_interval_s: FlushInterval = 1.0
    downsample: Downsample | None = None
    fallback_reason: str | None = None

    _lookup: dict[frozenset[tuple[str, int]], int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Self:
        keys = [im.key for im in self.images]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"images: duplicate keys {dupes}")
        for k in keys:
            if k and not _KEY_RE.match(k):
                raise ValueError(f"image key {k!r} is not a valid zarr path")
        itemsize = np.dtype(self.dtype).itemsize
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
        **options: Any,
    ) -> AcquisitionSettings:
        """Settings that keep every frame of a plan mmzarr cannot map.

        One image whose `t` grows by one per frame, in arrival order; each
        frame's own index (position, channel, z...) goes to the frame log and
        the dataset's root metadata says `fallback: reason`.

        Parameters
        ----------
        reason
            Why the plan could not be mapped (shown to users).
        image_shape, dtype, pixel_size_um
            Frame (height, width), pixel type and pixel size (µm, 1 if unknown).
        **options
            Other fields (`compression`, `max_buffer_bytes`, ...).
        """
        px = pixel_size_um if pixel_size_um and pixel_size_um > 0 else 1.0
        height, width = (int(n) for n in image_shape)
        image = ImageSettings(
            key="",
            name="fallback",
            dimensions=(
                Dimension(name="t", size=None, unit="second"),
                Dimension(name="y", size=height, unit="micrometer", scale=px),
                Dimension(name="x", size=width, unit="micrometer", scale=px),
            ),
        )
        return cls(
            layout="image",
            images=(image,),
            dtype=dtype,
            fallback_reason=reason or "the plan could not be mapped",
            **options,
        )

    @classmethod
    def from_useq(cls, seq: Any, **kwargs: Any) -> AcquisitionSettings:
        """Settings for a useq `MDASequence` (see `mmzarr._useq.settings_from_useq`).

        Parameters
        ----------
        seq
            The plan.
        **kwargs
            `image_shape`, `dtype`, `pixel_size_um`, `core`, `unbounded_t`,
            `compression`, chunk/shard and buffer options; see
            `mmzarr._useq.settings_from_useq`.
        """
        from mmzarr._useq import settings_from_useq

        return settings_from_useq(seq, **kwargs)
