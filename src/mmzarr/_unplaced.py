"""The unplaced siblings of a dataset: their names, and whose they are.

Frames that do not fit a dataset `x.ome.zarr` go to a sibling in the fallback
layout (`_fallback.open_unplaced`), `x.unplaced.ome.zarr` or a numbered one,
whose fallback reason begins by naming the dataset it was made for. This
module names them, tells whether `overwrite` may replace one, and finds a
dataset's own (`info`, `validate`); opening one is `_fallback`'s.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mmzarr._dataset import SETTINGS_FILE
from mmzarr._locations import as_location, parse_location
from mmzarr._lock import short_name
from mmzarr.errors import StorageError

__all__ = [
    "MAX_UNPLACED",
    "made_for",
    "replaceable_sibling",
    "unplaced_path",
    "unplaced_siblings",
]

#: Numbered siblings `open_unplaced` tries when the first is taken.
MAX_UNPLACED = 100


def unplaced_path(path: str | Path, number: int = 1, *, local: bool = False) -> str:
    """The sibling of `path` for frames that do not fit it: `x.unplaced.ome.zarr`.

    `number` > 1: `x.unplaced-2.ome.zarr`, ... (the first is taken).
    """
    text = (str(path) if local else _url_or_text(path)).rstrip("/")
    stem = text.removesuffix(".zarr").removesuffix(".ome")
    suffix = "" if number == 1 else f"-{number}"
    head, sep, name = stem.rpartition("/")
    return f"{head}{sep}{short_name(name)}.unplaced{suffix}.ome.zarr"


def unplaced_siblings(path: str | Path) -> list[str]:
    """The siblings of the local dataset `path` that keep frames that did not fit it.

    Those of `unplaced_path`'s names that exist, whose settings say they were
    made for `path` (`open_unplaced`) and that were last written since
    `path`'s settings were (an earlier run's, which `path` replaced, are not
    its): `info` and `validate` name them.
    """
    heads = tuple(made_for(path, noun, local=True) for noun in ("frame", "image"))
    since = _mtime(str(path), SETTINGS_FILE) or 0
    return [
        where
        for number in range(1, MAX_UNPLACED + 1)
        if (
            reason := _fallback_reason(
                where := unplaced_path(path, number, local=True), local=True
            )
        )
        and reason.startswith(heads)
        and _last_written(where) >= since
    ]


def _last_written(where: str) -> int:
    """When the local sibling at `where` was last written (ns; 0: never).

    The newer of its settings' mtime (written as it opens) and its root
    `zarr.json`'s (written again as it closes, with its status). A run's own
    sibling closes with the run, after the dataset's settings were last
    written: as it opened, or again while the run went on (a pixel size taken
    before the dataset's first frame, `Stream.set_pixel_size`, maybe after the
    sibling opened). An earlier run's closed before the dataset was opened.
    """
    return max(_mtime(where, SETTINGS_FILE) or 0, _mtime(where, "zarr.json") or 0)


def _mtime(where: str, key: str) -> int | None:
    """The mtime (ns) of the file `key` of the local dataset at `where`, if any."""
    try:
        return os.stat(os.path.join(where, key)).st_mtime_ns
    except OSError:
        return None


def made_for(path: str | Path, noun: str, *, local: bool = False) -> str:
    """How the fallback reason of `path`'s sibling for `noun`s begins."""
    return f"{noun}s that did not fit {_full_path(path, local=local)}: "


def _full_path(path: str | Path, *, local: bool = False) -> str:
    """`path` made absolute with links resolved, unless it is a URL (``s3://``)."""
    if local:
        return os.path.realpath(path)
    text = _url_or_text(path)
    return text if "://" in text else os.path.realpath(text)


def _url_or_text(path: str | Path) -> str:
    """`path` as text; an S3 URL as ``s3://...`` (`Path` makes it ``s3:/...``)."""
    text = str(path)
    return parse_location(text).url if text[:3].lower() == "s3:" else text


def _fallback_reason(where: str, *, local: bool = False) -> str | None:
    """The fallback reason of an mmzarr dataset at `where`, if any."""
    try:
        loc = as_location(Path(where)) if local else parse_location(where)
        data = loc.read_bytes(SETTINGS_FILE)
        reason = json.loads(data).get("fallback_reason") if data else None
    except (OSError, ValueError, AttributeError):
        return None
    return reason if isinstance(reason, str) else None


def replaceable_sibling(where: str, reason_head: str) -> bool:
    """Whether `overwrite` may replace what is at `where`.

    Nothing there, or an unplaced sibling made for the same dataset (its
    reason begins with `reason_head`, see `made_for`). `x.zarr` and
    `x.ome.zarr` have the same sibling name: the frames that did not fit one
    are never replaced by a run of the other.
    """
    try:
        if not parse_location(where).exists():
            return True
    except StorageError:  # S3 unreachable: said as such, not tried 100 times
        raise
    except (OSError, ValueError):
        return False
    reason = _fallback_reason(where)  # None: not mmzarr's (a user's folder)
    return reason is not None and reason.startswith(reason_head)
