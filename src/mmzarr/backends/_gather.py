"""Shards gathered in memory: a shard's frames held until the plan's are all in.

Writing one frame into an existing shard makes tensorstore and zarr-python
read, decode and rewrite the whole shard; `ShardGatherer` holds a shard's
frames until every frame the plan acquires in it has arrived, so that
`_shards.GatheringBackend` writes the shard in one call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mmzarr._settings import ImageSettings

__all__ = ["Block", "ShardGatherer"]


@dataclass
class Block:
    """The frames of one shard gathered so far."""

    start: tuple[int, ...]
    data: np.ndarray  # shard extent (non-spatial) + (y, x), fill value 0
    filled: np.ndarray  # bool, shard extent (non-spatial)
    missing: int  # planned frames not yet received
    #: frame numbers added since the block was last written
    seqs: list[int] = field(default_factory=list)
    #: a write of it was issued: later ones replace a file readers may read
    written: bool = False
    #: frames written while the shard was incomplete, not counted readable yet
    held: list[int] = field(default_factory=list)


@dataclass
class ShardGatherer:
    """Holds frames of one array per shard until the shard is complete.

    A shard is complete when every index the plan acquires in it has a frame
    (`ImageSettings.is_acquired`); slots the plan skips stay at the fill value.
    Shards that were written are remembered, so a late frame for one is
    recognised (the caller then writes it alone).
    """

    image: ImageSettings
    dtype: np.dtype[Any]
    block: tuple[int, ...] = field(init=False)  # shard extent (non-spatial)
    open: dict[tuple[int, ...], Block] = field(init=False, default_factory=dict)
    written: set[tuple[int, ...]] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.block = tuple(d.shard_size for d in self.image.index_dims)

    @property
    def active(self) -> bool:
        """Whether a shard holds more than one frame (else nothing is gathered)."""
        return math.prod(self.block) > 1

    def key(self, index: tuple[int, ...]) -> tuple[int, ...]:
        """Grid coordinates of the shard holding `index`."""
        return tuple(i // b for i, b in zip(index, self.block, strict=True))

    def add(self, index: tuple[int, ...], frame: np.ndarray) -> Block:
        """Copy `frame` into its shard's block (made when first needed)."""
        key = self.key(index)
        blk = self.open.get(key)
        if blk is None:
            blk = self.open[key] = self._new(key)
        local = tuple(i - s for i, s in zip(index, blk.start, strict=True))
        blk.data[local] = frame
        if not blk.filled[local]:
            blk.filled[local] = True
            if self.image.is_acquired(index):
                blk.missing -= 1
        return blk

    def take(self, blk: Block) -> None:
        """Stop gathering the complete shard `blk` (it is written now)."""
        key = self.key(blk.start)
        del self.open[key]
        self.written.add(key)

    def _new(self, key: tuple[int, ...]) -> Block:
        start = tuple(k * b for k, b in zip(key, self.block, strict=True))
        extent = tuple(
            b if d.size is None else min(b, d.size - s)
            for b, d, s in zip(self.block, self.image.index_dims, start, strict=True)
        )
        planned = sum(
            self.image.is_acquired(
                tuple(s + o for s, o in zip(start, off, strict=True))
            )
            for off in np.ndindex(*extent)
        )
        return Block(
            start=start,
            data=np.zeros(extent + self.image.frame_shape, dtype=self.dtype),
            filled=np.zeros(extent, dtype=bool),
            missing=planned,
        )
