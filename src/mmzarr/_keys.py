"""The rules for image keys: zarr paths, each a folder of its own."""

from __future__ import annotations

import re
from collections import Counter

__all__ = ["check_image_keys"]

_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
#: top-level names the dataset uses itself (series group, mmzarr's files)
_RESERVED_TOP = ("OME", "mmzarr")
#: names Windows gives its devices, with any extension (`nul.txt`) and in any case
_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul"]
    + [f"{dev}{i}" for dev in ("com", "lpt") for i in range(10)]
)


def check_image_keys(keys: list[str]) -> None:
    """Refuse image keys that are not zarr paths, each a folder of its own.

    Refused (a `ValueError` naming the key): a key given twice, names zarr v3
    reserves (`.`, `..`, `__*`), a `zarr.json` node, the dataset's own
    top-level `OME` and `mmzarr`, an image inside another, and names Windows
    cannot hold: two paths that differ only by case (one folder on macOS and
    Windows), a name ending in `.` (Windows drops it: `a.` is `a`) and a device
    name (`con`, `nul.txt`, `COM1`, ...). A dataset acquired on Linux must
    copy whole to a Windows analysis PC.
    """
    dupes = sorted(k for k, n in Counter(keys).items() if n > 1)
    if dupes:
        raise ValueError(f"images: duplicate keys {dupes}")
    spelled: dict[str, str] = {}  # casefolded group path -> as given
    for k in keys:
        if not k:
            continue
        if not _KEY_RE.match(k):
            raise ValueError(
                f"image key {k!r} is not a valid zarr path: use letters, digits, "
                "'_', '.' and '-' in names separated by '/'"
            )
        parts = k.split("/")
        for part in parts:
            if part in (".", "..", "zarr.json") or part.startswith("__"):
                raise ValueError(
                    f"image key {k!r}: {part!r} is reserved in zarr "
                    "('.', '..', 'zarr.json' and names starting with '__')"
                )
            if part.endswith("."):
                raise ValueError(
                    f"image key {k!r}: {part!r} ends with '.', which Windows drops "
                    "from folder names ('a.' is the folder 'a' there)"
                )
            if part.split(".")[0].casefold() in _WINDOWS_DEVICES:
                raise ValueError(
                    f"image key {k!r}: {part!r} is a device name on Windows (CON, "
                    "PRN, AUX, NUL, COM0-9, LPT0-9, with any extension), not a "
                    "folder"
                )
        if parts[0].casefold() in (r.casefold() for r in _RESERVED_TOP):
            raise ValueError(
                f"image key {k!r}: {parts[0]!r} holds the dataset's own metadata "
                f"(reserved: {_RESERVED_TOP}); use another key"
            )
        for i in range(1, len(parts) + 1):
            path = "/".join(parts[:i])
            other = spelled.setdefault(path.casefold(), path)
            if other != path:
                raise ValueError(
                    f"image keys {other!r} and {path!r} differ only by case: one "
                    "folder on a case-insensitive file system (macOS, Windows)"
                )
    given = set(keys)
    for k in keys:
        parts = k.split("/")
        for i in range(1, len(parts)):
            if (outer := "/".join(parts[:i])) in given:
                raise ValueError(f"image key {k!r} is inside image {outer!r}")
