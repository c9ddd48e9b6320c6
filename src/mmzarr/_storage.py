"""Where a dataset lives: a local directory or an S3 prefix (`Location`).

Owns the few object operations mmzarr does itself besides the arrays: writing the
group documents, settings, frame log and OME-XML (`write_bytes`, atomic on a local
disk; a PUT is atomic on S3), existence, a preflight (`check_writable`) that
puts and deletes a probe object so wrong credentials or a missing bucket fail
before the first frame, and the disk space kept for the documents written at
close (`reserve_space`). Arrays are the backends' job; they read the endpoint,
region and bucket from `Location.s3`.

Parsing an output path into one is `_locations`'; what a writer may take
over, and its lock, are `_claim`'s.

S3 settings come from `storage_options` (`endpoint_url`, `region`, `key`,
`secret`, `token`) or the usual environment variables (`AWS_ENDPOINT_URL_S3` /
`AWS_ENDPOINT_URL`, `AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). mmzarr's own objects go through
s3fs (the `s3` extra).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from typing import TYPE_CHECKING, Any

from mmzarr._s3config import S3Config
from mmzarr._writes import in_threads, write_file_atomic
from mmzarr.errors import MissingDependencyError, StorageError

if TYPE_CHECKING:
    import builtins
    from collections.abc import Mapping
    from pathlib import Path

__all__ = [
    "RESERVE_FILE",
    "Location",
    "S3Config",
]

logger = logging.getLogger("mmzarr")


#: Seconds an S3 object request (retries included) may take before it fails: a
#: server that accepts connections but never answers held s3fs (botocore's
#: 60 s read timeout, retried by botocore and s3fs) for many minutes, and with
#: it the flush thread and `close`.
S3_CALL_TIMEOUT_S = 15.0
_PROBE = "mmzarr/.write-probe"
#: the objects that make a prefix an mmzarr dataset (deleted last)
_DOCUMENTS = ("mmzarr/settings.json", "zarr.json")
#: Disk space a local dataset keeps allocated while it is written, released at
#: close for the final documents: a full disk then still takes the status.
RESERVE_FILE = "mmzarr/.space-reserve"
#: The least space reserved (more for a larger root document).
MIN_RESERVE = 256 * 1024


class Location:
    """A dataset root: a local directory (`path`) or an S3 prefix (`s3`)."""

    def __init__(self, path: Path | None = None, s3: S3Config | None = None) -> None:
        if (path is None) == (s3 is None):
            raise ValueError("Location: give exactly one of path and s3")
        self.path = path
        self.s3 = s3
        self._fs: Any = None
        self._fs_lock = threading.Lock()

    @property
    def is_local(self) -> bool:
        """Whether the dataset is on the local file system."""
        return self.path is not None

    @property
    def url(self) -> str:
        """The path or `s3://` URL, for messages."""
        return str(self.path) if self.path is not None else self._s3.url

    @property
    def where(self) -> str:
        """The absolute path or the `s3://` URL, for messages."""
        return os.path.abspath(self.path) if self.path is not None else self._s3.url

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"Location({self.url!r})"

    # ---- object operations ----------------------------------------------------
    def write_bytes(self, key: str, data: bytes, *, fsync: bool = True) -> None:
        """Write the object `key` (relative to the root); atomic on a local disk."""
        if self.path is not None:
            write_file_atomic(self.path / key, data, fsync=fsync)
            return
        self._call(
            "writing",
            key,
            lambda: self.fs.pipe_file(self._key(key), data, timeout=S3_CALL_TIMEOUT_S),
        )

    def write_many(self, objects: Mapping[str, bytes], *, fsync: bool = False) -> None:
        """Write every object of `objects` (`{key: data}`), `WRITERS` at once.

        The first failure is raised and the writes not started by then are
        not made; each object written is whole (`write_bytes`).
        """
        in_threads(
            lambda item: self.write_bytes(item[0], item[1], fsync=fsync),
            list(objects.items()),
        )

    def read_bytes(self, key: str) -> bytes | None:
        """The object `key`, or None when it does not exist."""
        if self.path is not None:
            try:
                return (self.path / key).read_bytes()
            except FileNotFoundError:
                return None

        def read() -> bytes | None:
            try:
                return bytes(
                    self.fs.cat_file(self._key(key), timeout=S3_CALL_TIMEOUT_S)
                )
            except FileNotFoundError:
                return None

        result: bytes | None = self._call("reading", key, read)
        return result

    def children(self, folder: str) -> tuple[list[str], list[str]]:
        """The names of the objects and of the folders directly in `folder`.

        `folder` is relative to the root ("" for the root itself). On a local
        disk a folder is a directory (a link to one too) and an object any
        other entry; on S3 a folder is a common prefix.

        Raises
        ------
        StorageError
            When S3 cannot be listed.
        """
        if self.path is not None:
            with os.scandir(self.path / folder) as entries:
                found = [(e.name, _is_dir(e)) for e in entries]
        else:
            where = self._key(folder).rstrip("/")

            def listed() -> list[tuple[str, bool]]:
                try:
                    got = self.fs.ls(where, detail=True, refresh=True)
                except FileNotFoundError:
                    return []
                out = []
                for e in got:
                    # the key after `where/`: "" for a prefix `where//` (a
                    # folder with no name) and for `where/` itself (an empty
                    # object some tools make as a folder's marker: skipped)
                    name = e["name"][len(where) + 1 :]
                    is_dir = e["type"] == "directory"
                    if is_dir:
                        name = name.removesuffix("/")
                    if name or is_dir or e.get("size"):  # not an empty marker
                        out.append((name, is_dir))
                return out

            found = self._call("listing", folder, listed)
        files = [name for name, is_dir in found if not is_dir]
        return files, [name for name, is_dir in found if is_dir]

    def list(self, prefix: str) -> list[str]:
        """Keys (relative to the root) of objects whose key starts with `prefix`."""
        if self.path is not None:
            parent = (self.path / prefix).parent
            if not parent.is_dir():
                return []
            rel = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
            local = [rel + child.name for child in parent.iterdir()]
            return sorted(k for k in local if k.startswith(prefix))
        base = self._key("")
        folder = self._key(prefix).rsplit("/", 1)[0]
        try:
            names = self.fs.ls(folder, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        keys = [n[len(base) :] for n in names]
        return sorted(k for k in keys if k.startswith(prefix))

    def size_of(self, key: str) -> int:
        """Bytes of the local file `key` (0: none, or on S3)."""
        if self.path is None:
            return 0
        try:
            return (self.path / key).stat().st_size
        except OSError:
            return 0

    def reserve_space(self, nbytes: int) -> None:
        """Keep disk space for the documents written at close (local only).

        Allocates `RESERVE_FILE` with room for twice `nbytes` (a document and
        its replacement) and at least `MIN_RESERVE`; `release_space` frees it.

        Raises
        ------
        OSError
            When the disk cannot take it (nothing is left allocated).
        """
        if self.path is None:
            return
        size = max(MIN_RESERVE, -(-2 * nbytes // 4096) * 4096)
        path = self.path / RESERVE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "wb") as f:
                try:
                    os.posix_fallocate(f.fileno(), 0, size)
                except (AttributeError, OSError):  # no fallocate here: write it
                    f.write(bytes(size))
                    f.flush()
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def release_space(self) -> None:
        """Free the space `reserve_space` kept (idempotent)."""
        if self.path is not None:
            with contextlib.suppress(OSError):
                (self.path / RESERVE_FILE).unlink(missing_ok=True)

    def exists(self) -> bool:
        """Whether anything exists at the root.

        Raises
        ------
        StorageError
            When S3 cannot be listed (credentials refused, endpoint unreachable).
        """
        if self.path is not None:
            return self.path.exists() or self.path.is_symlink()

        def listed() -> bool:
            root = self._key("").rstrip("/")
            try:
                names = self.fs.ls(root, refresh=True)
            except FileNotFoundError:
                names = []
            if names == [f"{root}/{_PROBE.split('/')[0]}"]:
                # only `mmzarr/`: a writer stopped between putting and deleting
                # its probe leaves it, and nothing else, if nothing is there
                return bool(self.fs.find(root) != [f"{root}/{_PROBE}"])
            if names:
                return True
            # s3fs lists a missing bucket as a missing prefix: tell them apart,
            # so that a missing bucket fails the early checks (the CLI's, before
            # the rig loads), not the first write once the MDA has started
            try:
                self.fs.info(self._s3.bucket)
            except FileNotFoundError:
                raise FileNotFoundError(
                    f"bucket {self._s3.bucket!r} does not exist"
                ) from None
            return False

        # refused credentials or an unreachable endpoint: a StorageError
        return bool(self._call("listing", "", listed))

    def delete(self) -> None:
        """Delete everything under the root, unchecked.

        Callers decide whether they may: `_claim.delete_dataset` deletes only
        what `overwrite` may replace; a failed open deletes what it created.
        """
        if self.path is not None:
            if self.path.is_dir():
                shutil.rmtree(self.path)
            return
        self._abort_uploads()
        keys = self._keys_below()
        # the documents that make it a dataset go last: a deletion stopped
        # halfway leaves a dataset that `overwrite` may still replace
        last = [k for k in keys if k in _DOCUMENTS]
        for batch in ([k for k in keys if k not in _DOCUMENTS], last):
            self._delete_keys(batch)
        left = self._keys_below()
        if left:
            raise StorageError(
                f"deleting {self.url!r}: {len(left)} objects are still there "
                f"(e.g. {left[0]!r})"
            )

    def _abort_uploads(self) -> None:
        """Abort the multipart uploads under the root a killed writer left.

        They are not listed as objects, but their parts are stored (and
        billed) until aborted. Best effort: a failure is logged.
        """
        bucket = self._s3.bucket
        prefix = self._key("").removeprefix(f"{bucket}/")

        def abort() -> None:
            page: dict[str, Any] = {}
            while True:  # 1000 uploads per page
                answer = self.fs.call_s3(
                    "list_multipart_uploads", Bucket=bucket, Prefix=prefix, **page
                )
                for upload in answer.get("Uploads", []):
                    self.fs.call_s3(
                        "abort_multipart_upload",
                        Bucket=bucket,
                        Key=upload["Key"],
                        UploadId=upload["UploadId"],
                    )
                if not answer.get("IsTruncated"):
                    return
                page = {
                    "KeyMarker": answer.get("NextKeyMarker", ""),
                    "UploadIdMarker": answer.get("NextUploadIdMarker", ""),
                }

        try:
            self._call("aborting the unfinished uploads of", "", abort)
        except StorageError as e:  # e.g. not allowed to list them: they only cost
            logger.warning("mmzarr: %s", e)

    def _keys_below(self) -> builtins.list[str]:
        """Every key under the root (relative to it), listed literally."""
        base = self._key("")

        def found() -> builtins.list[str]:
            try:
                names = self.fs.find(base.rstrip("/"))
            except FileNotFoundError:
                return []
            # `find` gives the object at the root's own key too: not the dataset's
            return sorted(n[len(base) :] for n in names if n.startswith(base))

        keys: builtins.list[str] = self._call("listing", "", found)
        return keys

    def _delete_keys(self, keys: builtins.list[str]) -> None:
        """Delete exactly `keys` (relative to the root), 1000 per request.

        By S3's own call: fsspec's `rm` reads `[`, `*` and `?` in a path as a
        pattern (which matched other datasets) and cannot name a key ending
        in `/` (a folder's marker).
        """
        bucket = self._s3.bucket
        for start in range(0, len(keys), 1000):
            objects = [
                {"Key": self._key(k).removeprefix(f"{bucket}/")}
                for k in keys[start : start + 1000]
            ]
            answer = self._call(
                "deleting",
                "",
                lambda objects=objects: self.fs.call_s3(
                    "delete_objects",
                    Bucket=bucket,
                    Delete={"Objects": objects, "Quiet": True},
                ),
            )
            if errors := answer.get("Errors"):
                raise StorageError(
                    f"deleting {self.url!r}: {len(errors)} objects were not "
                    f"deleted (e.g. {errors[0].get('Key')!r}: "
                    f"{errors[0].get('Message')})"
                )

    def check_writable(self) -> None:
        """Put and delete a probe object: a clear error for bad credentials/bucket.

        Raises
        ------
        StorageError
            When the bucket does not exist, the credentials are refused or the
            endpoint cannot be reached.
        """
        if self.path is not None:
            return
        self.write_bytes(_PROBE, b"")
        self._call(
            "deleting",
            _PROBE,
            lambda: self.fs.rm_file(self._key(_PROBE), timeout=S3_CALL_TIMEOUT_S),
        )

    # ---- helpers ----------------------------------------------------------------
    @property
    def _s3(self) -> S3Config:
        assert self.s3 is not None
        return self.s3

    def _key(self, key: str) -> str:
        s3 = self._s3
        return "/".join(p for p in (s3.bucket, s3.prefix, key) if p) + (
            "/" if not key else ""
        )

    @property
    def fs(self) -> Any:
        """The s3fs file system (created on first use)."""
        with self._fs_lock:
            if self._fs is None:
                try:
                    import s3fs  # type: ignore[import-untyped]
                except ImportError as e:
                    raise MissingDependencyError(
                        'writing to S3 needs s3fs: pip install "mmzarr[s3]"'
                    ) from e
                self._fs = s3fs.S3FileSystem(
                    skip_instance_cache=True,
                    use_listings_cache=False,
                    **self._s3.storage_options(),
                )
            return self._fs

    def _call(self, what: str, key: str, fn: Any) -> Any:
        """`fn()`, its result; an error is a `StorageError` naming the object."""
        s3 = self._s3
        try:
            return fn()
        except (OSError, ValueError) as e:
            why = str(e) or (
                f"no answer within {S3_CALL_TIMEOUT_S:.0f} s"
                if isinstance(e, TimeoutError)
                else ""
            )
            raise StorageError(
                s3.redact(
                    f"{what} {s3.url}/{key} failed: {type(e).__name__}: {why} "
                    f"(endpoint {s3.endpoint_url or 'AWS default'}, bucket "
                    f"{s3.bucket!r}; check the bucket exists and the credentials "
                    "in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or storage_options)"
                )
            ) from e
        except Exception as e:  # botocore errors that s3fs does not translate
            raise StorageError(
                s3.redact(f"{what} {s3.url}/{key} failed: {type(e).__name__}: {e}")
            ) from e


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """Whether `entry` is a directory (or a link to one); a link in a loop is not."""
    try:
        return entry.is_dir()
    except OSError:
        return False
