"""What a writer killed while opening or replacing a local dataset leaves behind.

- `.NAME.mmzarr-old-XXXXXXXX` (`aside_path`): the old dataset, moved aside
  while its replacement opens (`_claim`); a writer killed meanwhile leaves it
  there, and `finalize`, `validate` and the next writer name it
  (`replaced_copies`).
- `.NAME.mmzarr-deleting-XXXXXXXX` (`deleting_path`): the old dataset, renamed
  so before its deletion starts (`OutputClaim.commit`); a part of it left by a
  writer killed meanwhile is not offered back, and the next writer of the same
  name deletes it (`delete_half_deleted`).
- a dataset directory holding only `mmzarr/`, empty or with the settings half
  written (`opening_leftovers`): `overwrite` may replace it, and `finalize`
  says nothing was acquired.

What `overwrite` may replace is `_replaceable`'s, the claim that uses these
names `_claim`'s; the lock is `_lock`'s.
"""

from __future__ import annotations

import glob
import logging
import re
import secrets
import shutil
from typing import TYPE_CHECKING

from mmzarr._dataset import SETTINGS_FILE
from mmzarr._lock import canonical, hidden_name
from mmzarr._storage import RESERVE_FILE
from mmzarr._writes import atomic_temp_pattern

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "aside_path",
    "delete_half_deleted",
    "deleting_path",
    "opening_leftovers",
    "replaced_copies",
    "replaced_note",
]

logger = logging.getLogger("mmzarr")

#: An old dataset moved aside while its replacement opens (`_claim.claim`):
#: `.NAME.mmzarr-old-XXXXXXXX`, renamed back if the new one fails to open.
_ASIDE = ".mmzarr-old-"
#: An old dataset being deleted (`OutputClaim.commit`) is renamed so first: a
#: writer killed meanwhile leaves a part of it, which is not offered back
#: (`replaced_copies`) and is deleted by the next writer of the same name.
_DELETING = ".mmzarr-deleting-"
#: What a writer killed before its settings were written leaves in its
#: `mmzarr/` folder: its half-written settings (`write_file_atomic`), the
#: space it kept.
_OPENING_FILES = re.compile(
    rf"^{atomic_temp_pattern(re.escape(SETTINGS_FILE.rsplit('/', 1)[1]))}$"
    rf"|^{re.escape(RESERVE_FILE.rsplit('/', 1)[1])}$"
)


def aside_path(canon: Path) -> Path:
    """A new `.NAME.mmzarr-old-XXXXXXXX` beside `canon`, for its old dataset."""
    aside = canon.parent / hidden_name(canon.name, _ASIDE)
    return aside.with_name(aside.name + secrets.token_hex(4))


def deleting_path(aside: Path) -> Path:
    """`.NAME.mmzarr-deleting-XXXXXXXX`: the name `aside` gets to be deleted."""
    return aside.with_name(
        aside.name.replace(_ASIDE, _DELETING, 1)
        if _ASIDE in aside.name
        else aside.name + _DELETING
    )


def replaced_copies(root: Path) -> list[Path]:
    """Datasets moved aside to be replaced by `root`, still there.

    A writer killed while opening `root` with `overwrite` leaves the old one
    there (`.NAME.mmzarr-old-XXXXXXXX`).
    """
    canon = canonical(root)
    return sorted(canon.parent.glob(glob.escape(hidden_name(canon.name, _ASIDE)) + "*"))


def replaced_note(root: Path) -> str:
    """Where the dataset `root` was replacing is kept, in words ("" if nowhere).

    For a message on a `root` that is missing: its writer died while replacing
    a dataset with `overwrite` (`replaced_copies`).
    """
    kept = [str(p) for p in replaced_copies(root)]
    if not kept:
        return ""
    return f"the dataset it was replacing when its writer died is kept at {kept}"


def opening_leftovers(path: Path) -> bool:
    """Whether the local `path` holds only a writer's leftovers from opening it.

    A writer killed before it wrote its settings leaves `mmzarr/`, empty or
    with those files.
    """
    try:
        entries = list(path.iterdir())
        if len(entries) != 1 or entries[0].name != "mmzarr":
            return False
        folder = entries[0]
        if folder.is_symlink() or not folder.is_dir():
            return False
        return all(
            _OPENING_FILES.match(f.name) and f.is_file() and not f.is_symlink()
            for f in folder.iterdir()
        )
    except OSError:
        return False


def delete_half_deleted(canon: Path) -> None:
    """Finish deleting old datasets of `canon`'s name whose deletion was stopped.

    Only `OutputClaim.commit` makes such a folder, right before deleting it.
    """
    prefix = hidden_name(canon.name, _DELETING)
    pattern = glob.escape(prefix) + "[0-9a-f]" * 8
    for doomed in canon.parent.glob(pattern):
        # exactly `deleting_path`'s name: a user's `.NAME.mmzarr-deleting-mine`
        # (or any longer name) is not mmzarr's to delete
        if doomed.is_dir() and not doomed.is_symlink():
            try:
                shutil.rmtree(doomed)
            except OSError as e:
                logger.warning(
                    "mmzarr: could not delete %s, a replaced dataset partly "
                    "deleted: %s",
                    doomed,
                    e,
                )
