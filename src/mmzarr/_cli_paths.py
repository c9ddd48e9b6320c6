"""Which paths a `mmzarr` command may use, and the error it prints otherwise.

`CLIError` is the command's one-line user-facing error. `check_output_path`
fails before the rig loads where the writer could not start (the library's own
rule, `mmzarr._claim.check_output`, worded for the command line);
`existing_dataset` finds the local dataset folder `info`, `validate` and
`finalize` read, saying when a path is missing, a file or an S3 URL.
"""

from __future__ import annotations

import errno
import os
import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["CLIError", "check_output_path", "existing_dataset", "local_dataset"]


class CLIError(Exception):
    """A user-facing error: printed on one line, exit status 1 (or `code`)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def check_output_path(out: str, overwrite: bool) -> None:
    """Fail before the rig loads where the writer could not start (same rule).

    Local paths and S3 URLs alike (`check_output`); nothing is written.
    """
    from mmzarr._claim import check_output
    from mmzarr.errors import DatasetLockedError, StorageError

    try:
        check_output(out, overwrite)
    except (DatasetLockedError, NotADirectoryError) as e:
        raise CLIError(str(e)) from e
    except FileExistsError as e:
        if overwrite:
            raise CLIError(str(e).replace("overwrite=True", "--overwrite")) from e
        try:  # suggest --overwrite only where it would not be refused in turn
            check_output(out, overwrite=True)
        except FileExistsError as refused:
            why = str(refused).replace("overwrite=True", "--overwrite")
            raise CLIError(
                f"output {out!r} already exists and --overwrite would not replace "
                f"it ({why}); choose another path"
            ) from e
        except StorageError:  # S3 unreachable now: the first answer stands
            pass
        raise CLIError(f"output {out!r} already exists; use --overwrite") from e
    except (StorageError, ValueError) as e:  # S3 unreachable; an unknown scheme
        raise CLIError(str(e)) from e


def local_dataset(command: str, out: str) -> Path:
    """The local directory `out` names; a URL is refused.

    `info`, `validate`, `finalize` (and `demo`, which validates what it wrote)
    read and write files on a local disk only.
    """
    from mmzarr._locations import parse_location

    try:
        loc = parse_location(out)
    except ValueError as e:
        if "://" not in out and not out.lower().startswith("s3:"):
            raise CLIError(str(e)) from e  # a local path (e.g. a name too long)
        raise CLIError(
            f"mmzarr {command} works on local datasets only; {out!r} is not a "
            "local path"
        ) from e
    if loc.path is None:
        assert loc.s3 is not None
        local = loc.s3.prefix.rsplit("/", 1)[-1] or "DIR"
        hint = (
            f"write it to a local path, or acquire a plan to S3 with `mmzarr "
            f"acquire PLAN {out}`"
            if command == "demo"
            else f"copy the dataset to a local disk first (e.g. `aws s3 sync "
            f"{out} {local}`, then `mmzarr {command} {local}`)"
        )
        raise CLIError(
            f"S3 URLs are not supported by mmzarr {command} ({out!r}); {hint}"
        )
    return loc.path


def existing_dataset(command: str, out: str) -> Path:
    """The local dataset folder `out` names, refused when it is none.

    A mistyped path is said to be missing, not reported as a broken dataset; a
    file (e.g. the dataset's own ``zarr.json``) is named as a file.
    """
    root = local_dataset(command, out)
    if root.is_dir():
        return root
    if root.exists():
        hint = (
            f"give its folder: `mmzarr {command} {shlex.quote(str(root.parent))}`"
            if root.name == "zarr.json"
            else "give the dataset's folder (the one holding zarr.json)"
        )
        raise CLIError(f"{out!r} is a file, not a dataset folder; {hint}")
    if root.is_symlink():  # dangling, or a loop: the link is there, its target not
        raise CLIError(
            f"{out!r} is a symbolic link {_broken_link(root)} "
            f"({os.readlink(root)!r}); fix the link"
        )
    from mmzarr._leftovers import replaced_note

    raise CLIError(f"{out!r} does not exist; {replaced_note(root) or 'check the path'}")


def _broken_link(link: Path) -> str:
    """Why the symbolic link `link` leads nowhere, in words."""
    try:
        link.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 says a loop so
        return "in a loop"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "in a loop"
    return "whose target is missing"
