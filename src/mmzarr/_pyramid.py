"""Resolution levels: which arrays exist, and 2x downsampling of frames.

Every image has its full-resolution array (level 0) and, with
`settings.downsample`, extra levels each halving y and x. `arrays(settings)`
lists every array the backends create: first level 0 of every image (so array
number `i` is image `i`), then the lower levels. `downsample_frame` computes a
level's frame from the level above it as each frame arrives (acquire-zarr 0.10's
own pyramids also halve z and are not used).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mmzarr._layout import array_path

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mmzarr._settings import AcquisitionSettings, ImageSettings

__all__ = [
    "ArraySpec",
    "Levels",
    "all_arrays",
    "downsample_frame",
    "level_count",
    "level_image",
]


@dataclass(frozen=True)
class ArraySpec:
    """One array to create: image number, level, path and level-sized settings."""

    number: int
    image: int
    level: int
    path: str
    settings: ImageSettings


def level_count(settings: AcquisitionSettings, image: ImageSettings) -> int:
    """Levels of `image`, full resolution included."""
    if settings.downsample is None:
        return 1
    return 1 + settings.downsample.extra_levels(image.frame_shape)


def level_image(image: ImageSettings, level: int) -> ImageSettings:
    """`image` with y and x halved `level` times (sizes rounded up)."""
    if level == 0:
        return image
    dims = []
    for d in image.dimensions:
        if d.name in ("y", "x"):
            size = -(-int(d.size or 1) // 2**level)
            d = d.replace(size=size, scale=d.scale * 2**level).within_size()
        dims.append(d)
    return image.replace(dimensions=tuple(dims))


def all_arrays(settings: AcquisitionSettings) -> tuple[ArraySpec, ...]:
    """Every array of the dataset: level 0 of each image first, then lower levels."""
    specs = [
        ArraySpec(i, i, 0, array_path(im), im) for i, im in enumerate(settings.images)
    ]
    for i, im in enumerate(settings.images):
        for level in range(1, level_count(settings, im)):
            specs.append(
                ArraySpec(
                    len(specs), i, level, array_path(im, level), level_image(im, level)
                )
            )
    return tuple(specs)


def downsample_frame(frame: np.ndarray, method: str) -> np.ndarray:
    """Halve a (y, x) frame: 2x2 `mean` (edges replicated) or `decimate`.

    Integer means round half up (`(a + b + c + d + 2) // 4`), computed in a
    wider integer type (64-bit ones by quotients and remainders); float means
    are computed in float64, from quarters (no overflow).
    """
    if method == "decimate":
        return np.ascontiguousarray(frame[::2, ::2])
    y, x = frame.shape
    if y % 2 or x % 2:
        frame = np.pad(frame, ((0, y % 2), (0, x % 2)), mode="edge")
    dt = frame.dtype
    if np.issubdtype(dt, np.integer) and dt.itemsize == 8:
        return _mean_of_64bit(frame)
    if np.issubdtype(dt, np.integer):
        wide = np.dtype(np.uint32 if dt.itemsize <= 2 and dt.kind == "u" else np.int64)
        # rows first (contiguous), then columns; a shift is the floor division
        rows = np.add(frame[0::2], frame[1::2], dtype=wide)
        acc = np.add(rows[:, 0::2], rows[:, 1::2])
        acc += 2
        acc >>= 2
        out: np.ndarray = acc.astype(dt)
        return out
    # quarters first: dividing by 4 is exact, and the sum cannot overflow
    quarter = np.multiply(frame, 0.25, dtype=np.float64)
    rows64 = np.add(quarter[0::2], quarter[1::2])
    acc64 = np.add(rows64[:, 0::2], rows64[:, 1::2])
    out = acc64.astype(dt)
    return out


def _mean_of_64bit(frame: np.ndarray) -> np.ndarray:
    """`downsample_frame`'s 2x2 mean of an (even-sized) int64/uint64 frame.

    Four such values can sum past the dtype: with `v = 4 q + r` (`0 <= r < 4`),
    `(a + b + c + d + 2) // 4` is the sum of the quotients plus
    `(the remainders' sum + 2) // 4`, and neither sum overflows.
    """
    q, r = np.divmod(frame, frame.dtype.type(4))
    out: np.ndarray = q[0::2, 0::2] + q[1::2, 0::2] + q[0::2, 1::2] + q[1::2, 1::2]
    rest = r[0::2, 0::2] + r[1::2, 0::2] + r[0::2, 1::2] + r[1::2, 1::2] + 2
    out += rest // 4
    return out


class Levels:
    """The resolution levels of each image: computed from each frame as it comes."""

    def __init__(self, settings: AcquisitionSettings) -> None:
        self.method = settings.downsample.method if settings.downsample else ""
        #: per image number, the array numbers of its levels (finest first)
        self.arrays: list[list[int]] = [[] for _ in settings.images]
        for spec in all_arrays(settings):
            if spec.level:
                self.arrays[spec.image].append(spec.number)

    def frames(self, image: int, frame: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """(array number, frame) of each level of image number `image`."""
        for number in self.arrays[image]:
            frame = downsample_frame(frame, self.method)
            yield number, frame
