"""Turning an output path or URL into a `Location`.

`parse_location` reads `/data/run.ome.zarr` or `s3://bucket/prefix/run.ome.zarr`
(S3 settings from `storage_options` or the environment, see `_storage`), and
refuses now what could never be written (an empty path, an unknown scheme, a
name longer than the file system takes); `as_location` takes a `Path` as a local
directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmzarr._s3config import S3_OPTIONS, S3Config, env_value
from mmzarr._storage import Location

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["as_location", "parse_location"]


def parse_location(
    path: str | os.PathLike[str] | Location,
    storage_options: Mapping[str, Any] | None = None,
) -> Location:
    """A `Location` for a local path or an `s3://bucket/prefix` URL.

    `s3:/bucket/prefix` (an S3 URL that went through `pathlib.Path`) is accepted
    too. `storage_options` (S3 only) override the environment variables.

    Raises
    ------
    ValueError
        For an empty path, an unknown `storage_options` key, options for a
        local path, a local name longer than its file system takes, or an S3
        URL without a bucket.
    """
    if isinstance(path, Location):
        return path
    text = os.fspath(path)
    if not text.strip():  # Path("") is the current folder
        raise ValueError(f"the path is empty ({text!r}); give the dataset's path")
    opts = dict(storage_options or {})
    unknown = sorted(set(opts) - set(S3_OPTIONS))
    if unknown:
        raise ValueError(
            f"storage_options: unknown keys {unknown}; allowed: {list(S3_OPTIONS)}"
        )
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    if scheme != "s3":
        if "://" in text and len(scheme) > 1:
            raise ValueError(
                f"output {text!r}: unsupported scheme {scheme!r}; use a local path "
                "or s3://bucket/prefix"
            )
        if opts:
            raise ValueError("storage_options apply to s3:// paths only")
        _check_name_lengths(Path(text))
        return Location(path=Path(text))
    rest = text.split(":", 1)[1].lstrip("/")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"output {text!r}: no bucket (s3://bucket/prefix)")
    return Location(
        s3=S3Config(
            bucket=bucket,
            prefix=prefix.strip("/"),
            endpoint_url=opts.get("endpoint_url")
            or env_value("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
            region=opts.get("region") or env_value("AWS_REGION", "AWS_DEFAULT_REGION"),
            key=opts.get("key") or env_value("AWS_ACCESS_KEY_ID"),
            secret=opts.get("secret") or env_value("AWS_SECRET_ACCESS_KEY"),
            token=opts.get("token") or env_value("AWS_SESSION_TOKEN"),
        )
    )


def _check_name_lengths(path: Path) -> None:
    """Refuse now a path with a name longer than its file system takes.

    It could never be created: the writer would fail only when the run starts
    (`File name too long`).
    """
    above = path.absolute().parent
    while not _is_there(above) and above != above.parent:
        above = above.parent
    try:
        limit = os.pathconf(above, "PC_NAME_MAX")
    except (OSError, ValueError):  # not known here (e.g. Windows)
        limit = 255
    for part in path.parts:
        if (size := len(os.fsencode(part))) > limit:
            raise ValueError(
                f"output {str(path)!r}: the name {part[:24] + '...'!r} is {size} "
                f"bytes, and the file system takes at most {limit}; use a shorter name"
            )


def _is_there(path: Path) -> bool:
    """Whether `path` exists; False when it cannot (e.g. a name too long)."""
    try:
        return path.exists()
    except OSError:
        return False


def as_location(root: Path | Location) -> Location:
    """`root` as a `Location` (a `Path` is a local directory)."""
    return root if isinstance(root, Location) else Location(path=root)
