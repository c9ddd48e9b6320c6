"""The component models of `AcquisitionSettings`: dimensions, channels, images, plates.

Each model only validates: defaults that depend on other fields (a dimension's
type and chunk, an image's acquisition order and channel names) are filled in
by `mode="before"` validators, before pydantic builds the frozen object. This
module knows nothing of plans (`_slots.py`, `_from_useq.py`), of the dataset
as a whole (`_settings.py`) or of NGFF metadata (`_layout.py`); the types of
single fields (dtype, color, name) are in `_fields.py`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    PrivateAttr,
    model_validator,
)

from mmzarr._fields import (
    UM_PER_UNIT,
    HexColor,
    Name,
    check_finite_positive,
    default_color,
    dtype_name,
)
from mmzarr.errors import FrameError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Self

    import numpy as np

__all__ = [
    "Channel",
    "Dimension",
    "FrozenModel",
    "ImageSettings",
    "PlateAcquisition",
    "PlateSettings",
    "StagePosition",
    "check_finite_positive",
    "default_color",
    "dtype_name",
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
Compression = Literal["none", "blosc-lz4", "blosc-zstd"]
#: The largest frame side (y or x, in pixels) mmzarr writes.
MAX_FRAME_SIDE = 65536


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
    `scale` is the physical size of one step (> 0; for `z` negative when the
    stack was acquired downwards: plane k is at plane 0's z + k * scale).
    """

    name: DimName
    type: Literal["time", "channel", "space"] | None = None
    size: PositiveInt | None
    chunk: PositiveInt | None = None
    shard: PositiveInt | None = None
    unit: str | None = None
    scale: float = 1.0

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        """Fill `type` from the name, and `chunk` (a whole frame in y/x, else 1)."""
        if not isinstance(data, Mapping) or data.get("name") not in DIM_TYPES:
            return data  # not a dict, or a bad name: validation says why
        name = data["name"]
        fill: dict[str, Any] = {}
        if data.get("type") is None:
            fill["type"] = DIM_TYPES[name]
        if data.get("chunk") is None:
            fill["chunk"] = data.get("size") if name in ("y", "x") else 1
        return {**data, **fill}

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.type != DIM_TYPES[self.name]:
            raise ValueError(
                f"dimension {self.name!r}: type must be {DIM_TYPES[self.name]!r}, "
                f"got {self.type!r}"
            )
        if (
            not math.isfinite(self.scale)
            or self.scale == 0
            or (self.scale < 0 and self.name != "z")
        ):
            raise ValueError(
                f"dimension {self.name!r}: scale must be a finite number > 0 "
                f"(< 0 only for z, a stack acquired downwards), got {self.scale!r}"
            )
        if self.size is None and self.name != "t":
            raise ValueError(f"dimension {self.name!r}: only 't' may be unbounded")
        if self.name in ("y", "x") and (self.size or 0) > MAX_FRAME_SIDE:
            raise ValueError(
                f"dimension {self.name!r}: a frame side of {self.size} px is more "
                f"than the {MAX_FRAME_SIDE} px mmzarr writes; check the image shape"
            )
        if self.shard is not None and self.shard % (self.chunk or 1):
            raise ValueError(
                f"dimension {self.name!r}: shard {self.shard} is not a multiple of "
                f"chunk {self.chunk}"
            )
        return self

    @property
    def step_um(self) -> float | None:
        """`scale` in µm; None without a length unit (e.g. a pixel size unknown)."""
        um = UM_PER_UNIT.get(self.unit or "")
        return None if um is None else self.scale * um

    @property
    def chunk_size(self) -> int:
        """The chunk length (resolved)."""
        return int(self.chunk or 1)

    @property
    def shard_size(self) -> int:
        """The shard length in elements (the chunk length when unsharded)."""
        return int(self.shard or self.chunk_size)

    def within_size(self) -> Dimension:
        """The axis with a frame side's chunk and a shard cut to cover `size`.

        Past the end of a bounded axis they would hold only empty space, which
        a backend still sizes its buffers (acquire-zarr) and the free-space
        check by.
        """
        if self.size is None:
            return self
        chunk = self.chunk_size
        if self.name in ("y", "x"):
            chunk = min(chunk, self.size)
        shard = self.shard
        if shard is not None:
            shard = min(shard, -(-self.size // chunk) * chunk)
        if (chunk, shard) == (self.chunk_size, self.shard):
            return self
        return self.replace(chunk=chunk, shard=shard)


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
    """Stage coordinates (µm) of an image's first plane (None: unknown)."""

    x: float | None = Field(default=None, allow_inf_nan=False)
    y: float | None = Field(default=None, allow_inf_nan=False)
    z: float | None = Field(default=None, allow_inf_nan=False)


def _names_and_sizes(dims: Any) -> list[tuple[Any, Any]] | None:
    """(name, size) of each not yet validated dimension; None if not readable."""
    if not isinstance(dims, (list, tuple)):
        return None
    out: list[tuple[Any, Any]] = []
    for d in dims:
        if isinstance(d, Dimension):
            out.append((d.name, d.size))
        elif isinstance(d, Mapping):
            out.append((d.get("name"), d.get("size")))
        else:
            return None
    return out


def _count(value: Any) -> int | None:
    """`value` as a count > 0 when pydantic will read it as one (3, 3.0, "3")."""
    if isinstance(value, bool):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    ok = n == value or (isinstance(value, str) and value.strip() == str(n))
    return n if ok and n > 0 else None


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

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        """Fill `acquisition_order` (storage order) and `channels` (numbered)."""
        if not isinstance(data, Mapping):
            return data
        dims = _names_and_sizes(data.get("dimensions"))
        if dims is None:
            return data  # validation says what is wrong with them
        fill: dict[str, Any] = {}
        if data.get("acquisition_order") is None:
            fill["acquisition_order"] = tuple(n for n, _ in dims if n in NON_SPATIAL)
        n_c = _count(next((size for name, size in dims if name == "c"), None))
        if not data.get("channels") and n_c is not None:
            fill["channels"] = tuple(
                Channel(name=f"Channel {i}", color=default_color("", i))
                for i in range(n_c)
            )
        return {**data, **fill}

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
        storage = sorted(set(self.coords) & {"t", "c", "z", "y", "x"})
        if storage:
            raise ValueError(
                f"{where}: coords {storage} are storage axes: coords select the "
                "image by the plan's other axes (e.g. p, g)"
            )
        ns = tuple(n for n in names if n in NON_SPATIAL)
        if sorted(self.acquisition_order or ()) != sorted(ns):
            raise ValueError(
                f"{where}: acquisition_order {self.acquisition_order} must be a "
                f"permutation of {ns}"
            )
        if "c" in names:
            n_c = self.dim("c").size
            if len(self.channels) != n_c:
                raise ValueError(
                    f"{where}: {len(self.channels)} channel names for a 'c' "
                    f"dimension of size {n_c}"
                )
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
    def pixel_size_um(self) -> float | None:
        """The x pixel size in µm; None when unknown (no unit: `pixel_axis`)."""
        return self.dim("x").step_um

    def frame_problem(
        self, frame: np.ndarray, dtype: np.dtype[Any] | str
    ) -> str | None:
        """Why `frame` is not a frame of this image of `dtype` (None: it is)."""
        if frame.dtype != dtype:
            return (
                f"image {self.key!r}: frame dtype {frame.dtype} does not match "
                f"the dataset dtype {dtype}"
            )
        if frame.shape != self.frame_shape:
            return (
                f"image {self.key!r}: frame shape {frame.shape} does not match "
                f"the image's (y, x) shape {self.frame_shape}"
            )
        return None

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
