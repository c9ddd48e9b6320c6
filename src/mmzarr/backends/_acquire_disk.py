"""What acquire-zarr has on disk: shard files checked by their index.

acquire-zarr writes a shard file in place, on its own threads, once every chunk
of the shard has arrived or later (with `storage_dimension_order`, or frames
tiled in y/x, once more of the slab has): the chunks first, then the shard
index with its crc32c, at the end of the file. A shard whose index is there and
intact (`shard_on_disk`) is therefore complete in the OS cache (safe from a
killed process); a file without it may be a torn write. It also rewrites the
array's `zarr.json` in place with the complete rows along the first axis (time
points) as the shape.

`Landing` follows every shard that holds an accepted frame until its files are
on disk, which gives
- the frames readable, in write order: not those of an incomplete shard (e.g.
  `shards={"t": 4}` between its time points), nor those of a time point not
  yet complete (outside the shape on disk);
- the free-space check: every byte accepted but not yet confirmed on disk
  (frames held, batched, in open shards, in shards being written, over all
  arrays), counted as whole shard files (`file_disk_bytes`: index, block
  rounding), is reserved before a frame is accepted;
- the bytes in flight for the shared backpressure: those of complete shards
  not yet confirmed (an open shard needs more frames, not more time).
"""

from __future__ import annotations

import collections
import heapq
import itertools
import json
import os
import stat
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmzarr._lock import canonical, hidden_name
from mmzarr.backends._space import FreeSpaceGuard
from mmzarr.errors import StorageError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from mmzarr._storage import Location
    from mmzarr.backends._acquire_array import ArrayCursor

__all__ = [
    "LOOK_EVERY_S",
    "LOOK_PAST",
    "SIBLING_SUFFIX",
    "UNWRITTEN",
    "Landing",
    "Shard",
    "crc32c",
    "link_arrays",
    "refuse_unwritable",
    "remove_sibling",
    "shard_index",
    "shard_on_disk",
    "sibling_path",
]

#: Shards not yet on disk that a check of the oldest complete shards looks past
#: (acquire-zarr's threads finish them out of order) before it stops.
LOOK_PAST = 8
#: The shortest time between two looks at the files (`Landing.refresh`).
LOOK_EVERY_S = 0.001
#: A shard index entry of a chunk that was never written.
UNWRITTEN = 2**64 - 1


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
    return shard_index(path, index_bytes) is not None


def shard_index(path: Path | str, index_bytes: int) -> list[tuple[int, int]] | None:
    """The (offset, length) of each chunk in the shard file at `path`.

    None unless the file ends with an intact index of `index_bytes` (its crc32c
    matches) whose chunks all lie before it. A chunk never written has
    `UNWRITTEN` as its offset and length.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < index_bytes:
                return None
            f.seek(size - index_bytes)
            tail = f.read(index_bytes)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    table = tail[:-4]
    if len(tail) != index_bytes or crc32c(table) != int.from_bytes(tail[-4:], "little"):
        return None
    end = size - index_bytes
    entries = list(struct.iter_unpack("<QQ", table))
    if all(off == UNWRITTEN or off + length <= end for off, length in entries):
        return entries
    return None


class Shard:
    """One shard (its file for every y/x tile) of one array, until it is on disk."""

    __slots__ = ("array", "disk", "files", "landed", "missing", "raw", "seq", "t_max")

    def __init__(
        self, array: ArrayCursor, files: list[str], missing: int, disk: int
    ) -> None:
        self.array = array
        self.files = files  # tile files not yet confirmed on disk
        self.missing = missing  # slots not yet appended to acquire-zarr
        self.disk = disk  # disk bytes reserved for its files
        self.raw = 0  # bytes of the frames appended to it
        self.seq = -1  # write number of its first frame (-1: fill values only)
        self.t_max = -1  # largest first-axis index of a frame in it
        self.landed = False

    def check(self, root: str) -> bool:
        """Whether every file is on disk now (files confirmed are not checked again).

        `root`: the dataset's directory, as text (no `pathlib` per file: this
        runs for several shards per frame while storage is behind).
        """
        files, index_bytes = self.files, self.array.index_bytes
        while files and shard_on_disk(f"{root}/{files[-1]}", index_bytes):
            files.pop()
        return not files


class Landing:
    """Follows the shards of every accepted frame until they are on disk.

    `root`: the local dataset (None on object storage: nothing is followed, the
    buffer is then bounded by acquire-zarr alone and frames are readable only
    once the stream is closed).
    """

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._root = "" if root is None else str(root)
        self._looked = 0.0  # when `refresh` last looked at the files
        self.track = root is not None
        self.space = None if root is None else FreeSpaceGuard(root)
        self.in_flight = 0  # raw bytes of complete shards not on disk
        self.disk_reserved = 0  # disk bytes of every shard not on disk
        self._complete: collections.deque[Shard] = collections.deque()
        #: shards holding a frame, by the write number of their first frame
        self._unlanded: list[tuple[int, int, Shard]] = []
        self._tie = itertools.count()
        self._landed_marked = 0  # entries of `_unlanded` that landed

    def stop(self) -> None:
        """Everything is on disk (or failed): follow nothing more."""
        self.track = False
        self._complete.clear()
        self._unlanded.clear()
        self._landed_marked = 0
        self.in_flight = self.disk_reserved = 0

    def reserve(self, slots: Iterable[tuple[ArrayCursor, int]]) -> None:
        """Open the shards of each (cursor, slot) up to that slot, space checked.

        The disk space of them all is checked together (a frame and its
        resolution levels). Nothing is reserved when the check fails
        (`OSError(ENOSPC)`).
        """
        opens: list[tuple[ArrayCursor, int, list[tuple[int, ...]]]] = []
        for cur, lin in slots:
            if lin < cur.reserved:
                continue
            new: dict[tuple[int, ...], None] = {}
            for slot in range(max(cur.reserved, cur.next), lin + 1):
                key = cur.shard_key(slot)
                if key not in cur.shards:
                    new[key] = None
            opens.append((cur, lin, list(new)))
        nbytes = sum(len(keys) * cur.shard_disk for cur, _, keys in opens)
        if self.space is not None and nbytes:
            self.space.check(nbytes, self.disk_reserved, self._refresh_disk)
        for cur, lin, keys in opens:
            for key in keys:
                cur.shards[key] = cur.new_shard(key)
            cur.reserved = lin + 1
        self.disk_reserved += nbytes

    def mark(self, shard: Shard, seq: int) -> None:
        """Record that `shard` holds frame number `seq` (the first one counts)."""
        if seq >= 0 and shard.seq < 0:
            shard.seq = seq
            heapq.heappush(self._unlanded, (seq, next(self._tie), shard))

    def shard_of(self, cur: ArrayCursor, slot: int) -> Shard:
        """The shard of `cur`'s next slot `slot`, its disk space reserved."""
        self.reserve([(cur, slot)])
        return cur.shards[cur.shard_key(slot)]

    def appended(
        self, cur: ArrayCursor, slot: int, shard: Shard, seq: int, nbytes: int
    ) -> None:
        """Slot `slot` of `shard` was handed to acquire-zarr (frame `seq`)."""
        self.mark(shard, seq)
        shard.raw += nbytes
        shard.missing -= 1
        if cur.row_slots:
            row, pos = divmod(slot, cur.row_slots)
            if seq >= 0:
                shard.t_max = max(shard.t_max, row)
            if pos == cur.row_slots - 1:
                cur.row_ends.append((row, shard))
        if shard.missing == 0:
            del cur.shards[cur.shard_key(slot)]
            self._complete.append(shard)
            self.in_flight += shard.raw

    def refresh(self, *, force: bool = False) -> None:
        """Find which complete shards reached the disk since the last look.

        The oldest are checked first; the look stops after `LOOK_PAST` shards
        that are not there yet. At most one look every `LOOK_EVERY_S`: while
        storage is behind, `Stream` asks for every frame (`force`: look now,
        for the free-space check).
        """
        if self.root is None or not self._complete:
            return
        now = time.monotonic()
        if now - self._looked < LOOK_EVERY_S and not force:
            return
        self._looked = now
        waiting: list[Shard] = []
        while self._complete and len(waiting) < LOOK_PAST:
            shard = self._complete.popleft()
            if shard.check(self._root):
                shard.landed = True
                self.in_flight -= shard.raw
                self.disk_reserved -= shard.disk
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
        self.refresh(force=True)
        return self.disk_reserved

    def readable(self, written: int) -> int:
        """How many of the `written` frames, in write order, are readable now.

        Frames written to full-resolution arrays are counted (with their
        resolution levels). A frame is readable when its shard files are on
        disk and the array's `zarr.json` holds its index along the first axis
        for good: acquire-zarr rewrites that document in place as it goes, with
        the shape of the complete rows along that axis (it shrinks what mmzarr
        wrote), so the frame's row must be complete, its last shard on disk
        (acquire-zarr has then written every earlier shape), and the shape on
        disk must include it.
        """
        if not self.track:
            return 0
        self.refresh()
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
        return heap[0][0] if heap else written

    def _confirm_rows(self, cur: ArrayCursor) -> None:
        """Advance `cur.rows_confirmed` from the rows on disk and its `zarr.json`."""
        while cur.row_ends and cur.row_ends[0][1].landed:
            cur.rows_landed = cur.row_ends.popleft()[0] + 1
        if cur.rows_landed <= cur.rows_confirmed or self.root is None:
            return
        try:
            doc = json.loads((self.root / cur.key / "zarr.json").read_bytes())
            extent = int(doc["shape"][0])
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return  # being rewritten: look again next time
        cur.rows_confirmed = max(cur.rows_confirmed, min(cur.rows_landed, extent))


# ---- the hidden sibling acquire-zarr writes to -----------------------------------
#: Suffix of the hidden directory beside a local dataset that acquire-zarr
#: writes to: `.NAME.mmzarr-acquire-zarr` (see `AcquireZarrBackend`).
SIBLING_SUFFIX = ".mmzarr-acquire-zarr"


def sibling_path(root: Path) -> Path:
    """The hidden directory beside dataset `root` where acquire-zarr writes."""
    root = canonical(Path(root))  # `lnk/..` as the kernel reads it
    return root.parent / hidden_name(root.name, SIBLING_SUFFIX)


def link_arrays(root: Path, arrays: Mapping[str, str]) -> Path | None:
    """Make the hidden sibling of `root`: a link to each array's directory.

    `arrays`: `{link name: the array's path in the dataset}`. The array
    directories are made in the dataset; the sibling holds the links and
    nothing else. A sibling left by a killed writer is replaced. None when
    links cannot be made here (the sibling is then removed).
    """
    hidden = sibling_path(root)
    try:
        remove_sibling(hidden)  # a killed writer's
    except OSError:
        return None
    made: set[str] = set()  # directories known to exist (fewer failing mkdirs)

    def make_dir(path: str) -> None:
        if path not in made:
            os.makedirs(path, exist_ok=True)
            made.add(path)

    shadow = os.fspath(hidden)
    try:
        base = os.path.realpath(root)  # the arrays' directories are made here
        for name, key in arrays.items():
            target = os.path.join(base, key)
            make_dir(target)
            link = os.path.join(shadow, name)
            make_dir(os.path.dirname(link))
            os.symlink(target, link, target_is_directory=True)
    except (OSError, NotImplementedError):
        remove_sibling(hidden)
        return None
    return hidden


def remove_sibling(hidden: Path) -> None:
    """Remove a hidden sibling: its links first (never what they point to).

    Only a directory that holds nothing but links, directories and acquire-zarr's
    group documents (`zarr.json`) is removed; anything else there is left alone
    (`OSError`).
    """
    if hidden.is_symlink():
        raise OSError(f"{hidden} is a link, not acquire-zarr's directory: left alone")
    if not hidden.is_dir():
        return
    files: list[str] = []  # links and documents
    folders: list[str] = []  # each after its parent
    todo = [os.fspath(hidden)]
    while todo:  # entry types from the listing itself: no stat per entry
        folder = todo.pop()
        folders.append(folder)
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    todo.append(entry.path)
                elif entry.is_symlink() or entry.name == "zarr.json":
                    files.append(entry.path)
                else:
                    raise OSError(
                        f"{entry.path} is not acquire-zarr's: {hidden} left alone"
                    )
    for p in files:  # a link itself, never what it points to
        os.unlink(p)
    for folder in reversed(folders):
        os.rmdir(folder)


def refuse_unwritable(store_path: Any, location: Location, cause: Exception) -> None:
    """Raise a `StorageError` naming the folder if acquire-zarr refused it.

    acquire-zarr checks the permission bits of its store's parent folder, not
    `access(2)`: a folder of mode 555 is refused even to root, who may write
    there. Its own error says only "Failed to create Zarr stream".
    """
    if location.path is None or not isinstance(store_path, str):
        return
    folder = os.path.dirname(store_path) or "."
    try:
        mode = os.stat(folder).st_mode
    except OSError:
        return
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise StorageError(
            f"acquire-zarr cannot write in {folder!r}: the folder has no write "
            "permission bits (acquire-zarr checks them, also for root); make it "
            "writable, or use backend='tensorstore'"
        ) from cause
