"""Where a dataset lives: a local directory or an S3 prefix (`Location`).

Owns parsing an output path (`/data/run.ome.zarr`, `s3://bucket/prefix/run.ome.zarr`)
and the few object operations mmzarr does itself besides the arrays: writing the
group documents, settings, frame log and OME-XML (`write_bytes`, atomic on a local
disk; a PUT is atomic on S3), existence, and a preflight (`check_writable`) that
puts and deletes a probe object so wrong credentials or a missing bucket fail
before the first frame. Arrays are the backends' job; they read the endpoint,
region and bucket from `Location.s3`.

It also owns the one rule for what a writer may take over (`Location.claim`,
`check_output`):

- `overwrite=True` replaces only a dataset (`dataset_problem`: a directory whose
  root `zarr.json` is a zarr v3 group with `ome` or `mmzarr` attributes, or
  that holds `mmzarr/settings.json`) or an empty directory; never a file, a
  symbolic link, the current working directory or a directory containing it.
  Anything else is a `FileExistsError` saying why.
- A local dataset being written is locked: an exclusive `flock` on the file
  `.NAME.mmzarr-lock` beside it (beside, because the dataset directory itself
  is replaced), which records the holder (pid, host, start time). A second
  writer or `finalize` gets a `DatasetLockedError` naming the holder, whatever
  `overwrite` says. The kernel drops the lock when its process dies, so a
  crash leaves at most a stale, unlocked file. S3 has no lock.
- An old local dataset is moved aside (`.NAME.mmzarr-old-XXXXXXXX`, a rename)
  and deleted only once the new one has opened (`OutputClaim.commit`); if the
  open fails, what this writer created is removed and the old dataset renamed
  back (`OutputClaim.abort`). On S3 the old objects are deleted first (there is
  no rename), but only under a prefix that holds a dataset.

S3 settings come from `storage_options` (`endpoint_url`, `region`, `key`,
`secret`, `token`) or the usual environment variables (`AWS_ENDPOINT_URL_S3` /
`AWS_ENDPOINT_URL`, `AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). mmzarr's own objects go through
s3fs (the `s3` extra).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mmzarr.errors import DatasetLockedError, MissingDependencyError, StorageError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from mmzarr._settings import AcquisitionSettings

__all__ = [
    "LOCK_SUFFIX",
    "DatasetLock",
    "DatasetLockedError",
    "Location",
    "OutputClaim",
    "S3Config",
    "SupportsObjectStorage",
    "as_location",
    "check_output",
    "dataset_problem",
    "lock_holder",
    "parse_location",
    "write_file_atomic",
]

logger = logging.getLogger("mmzarr")

_S3_OPTIONS = ("endpoint_url", "region", "key", "secret", "token")
_PROBE = "mmzarr/.write-probe"
#: Suffix of the lock file beside a dataset being written: `.NAME.mmzarr-lock`.
LOCK_SUFFIX = ".mmzarr-lock"
_ASIDE = ".mmzarr-old-"
_SETTINGS = "mmzarr/settings.json"
#: Serializes the AWS variables set around a backend's open (`S3Config.environment`).
_ENV_LOCK = threading.RLock()
_env_block = threading.local()


@dataclass(frozen=True)
class S3Config:
    """Bucket, key prefix, endpoint, region and credentials of an S3 dataset.

    The credentials never appear in `repr` (nor in mmzarr's errors and logs).
    """

    bucket: str
    prefix: str  # no leading or trailing "/"
    endpoint_url: str | None = None
    region: str | None = None
    key: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """`s3://bucket/prefix`."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def env(self) -> dict[str, str]:
        """Credentials and region as AWS environment variables (for C++ clients)."""
        pairs = {
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_SESSION_TOKEN": self.token,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }
        return {k: v for k, v in pairs.items() if v}

    def export_env(self, backend: str) -> None:
        """Put explicit credentials/region into `os.environ` for a C++ S3 client.

        tensorstore and acquire-zarr read credentials from the environment when
        they open (and keep them). Inside an `environment` block (`Stream` wraps
        every `open_location` in one) the variables set here are removed when
        the block ends, so no secret stays in the process environment; outside
        one they stay. Variables already set are kept; a different explicit
        value is an error (the backend would use the environment's, mmzarr's own
        objects these).

        Raises
        ------
        ValueError
            When `storage_options` and the environment disagree.
        """
        with _ENV_LOCK:
            added: list[str] | None = getattr(_env_block, "added", None)
            for name, value in self.env().items():
                current = os.environ.get(name)
                if current is None:
                    os.environ[name] = value
                    if added is not None:
                        added.append(name)
                elif current != value:
                    raise ValueError(
                        f"backend {backend!r} reads S3 credentials and region from "
                        f"the environment, where {name} differs from "
                        "storage_options; unset it or pass the same value"
                    )

    @staticmethod
    @contextlib.contextmanager
    def environment() -> Iterator[None]:
        """A block whose `export_env` variables are removed when it ends.

        Holds a process-wide lock for the block, so no other thread's backend
        opens (or sees the variables) meanwhile.
        """
        with _ENV_LOCK:
            outer = getattr(_env_block, "added", None)
            added: list[str] = []
            _env_block.added = added if outer is None else outer
            try:
                yield
            finally:
                if outer is None:
                    _env_block.added = None
                    for name in added:
                        os.environ.pop(name, None)

    def redact(self, text: str) -> str:
        """`text` with the credentials replaced by `***`."""
        for value in (self.secret, self.token, self.key):
            if value:
                text = text.replace(value, "***")
        return text

    def storage_options(self) -> dict[str, Any]:
        """s3fs / fsspec keyword arguments."""
        opts: dict[str, Any] = {}
        if self.endpoint_url:
            opts["endpoint_url"] = self.endpoint_url
        if self.region:
            opts["client_kwargs"] = {"region_name": self.region}
        if self.key:
            opts["key"] = self.key
        if self.secret:
            opts["secret"] = self.secret
        if self.token:
            opts["token"] = self.token
        return opts


@runtime_checkable
class SupportsObjectStorage(Protocol):
    """A backend that can write its arrays to S3 (`open` takes a local path)."""

    def open_location(self, location: Location, settings: AcquisitionSettings) -> None:
        """Create the arrays of every image under `location`."""


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
        self._call("writing", key, lambda: self.fs.pipe_file(self._key(key), data))

    def read_bytes(self, key: str) -> bytes | None:
        """The object `key`, or None when it does not exist."""
        if self.path is not None:
            try:
                return (self.path / key).read_bytes()
            except FileNotFoundError:
                return None
        try:
            return bytes(self.fs.cat_file(self._key(key)))
        except FileNotFoundError:
            return None

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

    def exists(self) -> bool:
        """Whether anything exists at the root."""
        if self.path is not None:
            return self.path.exists() or self.path.is_symlink()
        try:
            return bool(self.fs.ls(self._key("").rstrip("/"), refresh=True))
        except FileNotFoundError:
            return False

    def check_replaceable(self) -> None:
        """Raise unless `overwrite=True` may replace what is at the root.

        Replaceable: nothing, an empty directory, or a dataset (see
        `dataset_problem`). Never a file, a symbolic link, the current working
        directory or a directory containing it.

        Raises
        ------
        FileExistsError
            Naming the path and why it is not replaced.
        """
        if self.path is None:
            if not self.exists():
                return
            problem = _dataset_problem(self.read_bytes)
            if problem is not None:
                raise FileExistsError(
                    f"refusing to replace {self.url!r}: {problem}; overwrite=True "
                    "replaces only an mmzarr/OME-Zarr dataset"
                )
            return
        problem = _local_problem(self.path)
        if problem is not None:
            raise FileExistsError(
                f"refusing to replace {_full(self.path)!r}: {problem}; "
                "overwrite=True replaces only an mmzarr/OME-Zarr dataset or an "
                "empty directory"
            )

    def claim(self, overwrite: bool) -> OutputClaim:
        """Make the root an empty dataset directory that this writer owns.

        Local: lock it (`DatasetLock`), then create it, or reuse an empty
        directory, or (`overwrite`) move the dataset there aside; the returned
        claim deletes the old dataset (`commit`) or undoes everything
        (`abort`). S3: check the bucket is writable and (`overwrite`) delete the
        dataset there.

        Raises
        ------
        DatasetLockedError
            When another writer holds the lock (whatever `overwrite` says).
        FileExistsError
            When the root exists and not `overwrite`, or it is not replaceable.
        StorageError
            When the root, its parents or the lock file cannot be created.
        """
        if self.path is None:
            # the preflight (put + delete a probe) comes first, so wrong
            # credentials or a missing bucket are reported as such
            self.check_writable()
            if self.exists():
                if not overwrite:
                    raise FileExistsError(
                        f"output {self.url!r} already exists; pass overwrite=True "
                        "to replace it"
                    )
                self.delete()
            return OutputClaim(self)
        return _claim_local(self, overwrite)

    def delete(self, *, ours: bool = False) -> None:
        """Delete everything under the root, if the root is replaceable.

        `ours`: this writer created everything there (a failed open): no check.

        Raises
        ------
        FileExistsError
            When the root is not replaceable (`check_replaceable`).
        """
        if not ours:
            self.check_replaceable()
        if self.path is not None:
            if self.path.is_dir():
                shutil.rmtree(self.path)
            return
        if self.exists():
            self._call(
                "deleting", "", lambda: self.fs.rm(self._key(""), recursive=True)
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
        self._call("deleting", _PROBE, lambda: self.fs.rm_file(self._key(_PROBE)))

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

    def _call(self, what: str, key: str, fn: Any) -> None:
        s3 = self._s3
        try:
            fn()
        except (OSError, ValueError) as e:
            raise StorageError(
                s3.redact(
                    f"{what} {s3.url}/{key} failed: {type(e).__name__}: {e} "
                    f"(endpoint {s3.endpoint_url or 'AWS default'}, bucket "
                    f"{s3.bucket!r}; check the bucket exists and the credentials "
                    "in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or storage_options)"
                )
            ) from e
        except Exception as e:  # botocore errors that s3fs does not translate
            raise StorageError(
                s3.redact(f"{what} {s3.url}/{key} failed: {type(e).__name__}: {e}")
            ) from e


def write_file_atomic(path: Path, data: bytes, *, fsync: bool) -> None:
    """Write `data` to `path` via a temporary file and `os.replace`.

    A crash leaves the old or the new content, never part of one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)


def _env(*names: str) -> str | None:
    for n in names:
        v = os.environ.get(n)
        if v:
            return v
    return None


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
        For an unknown `storage_options` key, options for a local path, or an
        S3 URL without a bucket.
    """
    if isinstance(path, Location):
        return path
    text = os.fspath(path)
    opts = dict(storage_options or {})
    unknown = sorted(set(opts) - set(_S3_OPTIONS))
    if unknown:
        raise ValueError(
            f"storage_options: unknown keys {unknown}; allowed: {list(_S3_OPTIONS)}"
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
            or _env("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
            region=opts.get("region") or _env("AWS_REGION", "AWS_DEFAULT_REGION"),
            key=opts.get("key") or _env("AWS_ACCESS_KEY_ID"),
            secret=opts.get("secret") or _env("AWS_SECRET_ACCESS_KEY"),
            token=opts.get("token") or _env("AWS_SESSION_TOKEN"),
        )
    )


def as_location(root: Path | Location) -> Location:
    """`root` as a `Location` (a `Path` is a local directory)."""
    return root if isinstance(root, Location) else Location(path=root)


# ---- what overwrite may replace ------------------------------------------------------
def _full(path: Path) -> str:
    """`path` made absolute (not resolved), for messages."""
    return os.path.abspath(path)


def _canonical(path: Path) -> Path:
    """`path` with its parent resolved (the last component is kept, even a link)."""
    if path.name in ("", ".", ".."):
        return path.resolve()
    return path.parent.resolve() / path.name


def dataset_problem(root: Path | Location) -> str | None:
    """Why `root` is not an mmzarr/OME-Zarr dataset, or None when it is one.

    A dataset's root `zarr.json` is a zarr v3 group whose attributes have `ome`
    or `mmzarr`; a dataset whose writer died before its first group document
    holds `mmzarr/settings.json`.
    """
    return _dataset_problem(as_location(root).read_bytes)


def _dataset_problem(read: Any) -> str | None:
    try:
        doc = read("zarr.json")
    except OSError as e:
        return f"its zarr.json cannot be read ({e})"
    if doc is None:
        try:
            settings = read(_SETTINGS)
        except OSError:
            settings = None
        if settings is not None and _json_object(settings) is not None:
            return None
        return "it is not a zarr dataset (no zarr.json)"
    parsed = _json_object(doc)
    if parsed is None:
        return "its zarr.json is not a JSON object"
    if parsed.get("zarr_format") != 3 or parsed.get("node_type") != "group":
        return "its zarr.json is not a zarr v3 group"
    attrs = parsed.get("attributes")
    if not isinstance(attrs, dict) or not ({"ome", "mmzarr"} & set(attrs)):
        return "its zarr.json has no 'ome' or 'mmzarr' attributes"
    return None


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _local_problem(path: Path) -> str | None:
    """Why the local `path` may not be replaced, or None (see `check_replaceable`)."""
    if path.is_symlink():
        return (
            f"it is a symbolic link (to {os.readlink(path)!r}); write to the "
            "target or remove the link"
        )
    if not path.exists():
        return None
    if not path.is_dir():
        return "it is a file, not a dataset directory"
    real, cwd = path.resolve(), Path.cwd().resolve()
    if real == cwd:
        return "it is the current working directory"
    if real in cwd.parents:
        return f"it contains the current working directory {str(cwd)!r}"
    try:
        if not any(path.iterdir()):
            return None
    except OSError as e:
        return f"it cannot be listed ({e})"
    problem = _dataset_problem(lambda key: _read_local(path / key))
    return None if problem is None else f"a non-empty directory: {problem}"


def _read_local(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


# ---- the writer's lock -----------------------------------------------------------
def lock_path(dataset: Path) -> Path:
    """The lock file of a local dataset: `.NAME.mmzarr-lock` beside it."""
    canon = _canonical(dataset)
    name = canon.name
    if len(name) > 200:  # keep within NAME_MAX
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:12]
        name = f"{name[:180]}-{digest}"
    return canon.parent / f".{name}{LOCK_SUFFIX}"


def _holder_text(data: bytes) -> str:
    doc = _json_object(data)
    if doc is None:
        return "another process (its lock file names none)"
    return (
        f"pid {doc.get('pid')} on host {doc.get('host')!r} "
        f"({doc.get('purpose', 'writing')} since {doc.get('started')})"
    )


class DatasetLock:
    """An exclusive `flock` on a dataset's lock file, held while writing.

    The lock file lives beside the dataset (`lock_path`) and records the holder.
    `release` deletes it; a process that dies releases the lock with it (the
    kernel drops the `flock`), leaving an unlocked file the next writer reuses.
    """

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, dataset: Path, purpose: str = "writing") -> DatasetLock:
        """Lock `dataset` (its parent directory must exist); never blocks long.

        Without `fcntl` (Windows) nothing is locked.

        Raises
        ------
        DatasetLockedError
            When another writer (or `finalize`) holds the lock.
        OSError
            When the lock file cannot be created.
        """
        path = lock_path(dataset)
        if fcntl is None:  # pragma: no cover
            return cls(path, None)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not _flock_exclusive(fd):
                    holder = _holder_text(os.pread(fd, 4096, 0))
                    raise DatasetLockedError(
                        f"{_full(dataset)!r} is locked by another writer: "
                        f"{holder} (lock file {str(path)!r})",
                        holder,
                    )
                # the previous holder may have deleted the file we opened
                same = os.fstat(fd)
                try:
                    now = os.stat(path)
                except FileNotFoundError:
                    now = None
                if now is None or (now.st_ino, now.st_dev) != (
                    same.st_ino,
                    same.st_dev,
                ):
                    os.close(fd)
                    continue
                record = {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started": datetime.datetime.now(datetime.UTC)
                    .isoformat(timespec="seconds")
                    .replace("+00:00", "Z"),
                    "purpose": purpose,
                    "path": str(_canonical(dataset)),
                }
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(record).encode("utf-8"), 0)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            return cls(path, fd)

    def release(self) -> None:
        """Delete the lock file and drop the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            same = os.fstat(fd)
            now = os.stat(self.path)
            if (now.st_ino, now.st_dev) == (same.st_ino, same.st_dev):
                self.path.unlink()
        except OSError:
            pass
        finally:
            os.close(fd)


def _flock_exclusive(fd: int) -> bool:
    """Take an exclusive `flock` on `fd`; False when another process holds one.

    Tries a few times over ~0.1 s: `lock_holder` (a probe) holds a shared lock
    for microseconds, which must not fail a writer that starts meanwhile.
    """
    assert fcntl is not None
    for attempt in range(5):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt < 4:
                time.sleep(0.02)
    return False


def lock_holder(dataset: Path) -> str | None:
    """Who holds the lock of the local `dataset`, or None (creates nothing)."""
    if fcntl is None:  # pragma: no cover
        return None
    try:
        fd = os.open(lock_path(dataset), os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder_text(os.pread(fd, 4096, 0))
    except OSError:
        return None
    finally:
        os.close(fd)
    return None


def check_output(path: str | os.PathLike[str], overwrite: bool) -> None:
    """Fail early, without touching anything, where a writer could not start.

    For front ends that create the dataset later (at the first frame): the
    same checks as `Location.claim`, without taking the lock.

    Raises
    ------
    DatasetLockedError
        When a writer holds the dataset's lock.
    FileExistsError
        When `path` exists and not `overwrite`, or is not replaceable.
    """
    loc = parse_location(path)
    if loc.path is None:
        return
    holder = lock_holder(loc.path)
    if holder is not None:
        raise DatasetLockedError(
            f"{_full(loc.path)!r} is locked by another writer: {holder}", holder
        )
    if loc.exists():
        if not overwrite:
            raise FileExistsError(
                f"output {str(loc.path)!r} already exists; pass overwrite=True to "
                "replace it"
            )
        loc.check_replaceable()


# ---- claiming a local output ---------------------------------------------------------
class OutputClaim:
    """What `Location.claim` did to make the root this writer's, to finish or undo.

    `commit` once the new dataset has opened (deletes the old one, moved
    aside); `abort` if it did not (removes what this writer created and puts
    the old dataset back); `release` at close (drops the lock).
    """

    def __init__(
        self,
        location: Location,
        *,
        root: Path | None = None,
        lock: DatasetLock | None = None,
        parents: list[Path] | None = None,
    ) -> None:
        self.location = location
        #: the local root, its parent resolved (see `_canonical`)
        self.root = root
        self.lock = lock
        #: parent directories this writer created, outermost first
        self.parents = parents or []
        #: the old dataset, moved aside until `commit`
        self.aside: Path | None = None
        #: this writer created the root
        self.made_root = False
        #: the root is an empty directory that existed before
        self.reused = False

    def commit(self) -> None:
        """Delete the old dataset moved aside (a failure is logged, not raised)."""
        aside, self.aside = self.aside, None
        if aside is not None:
            try:
                shutil.rmtree(aside)
            except OSError as e:
                logger.warning(
                    "mmzarr: could not delete the replaced dataset %s: %s", aside, e
                )

    def abort(self) -> None:
        """Undo the claim: remove what this writer created, restore the old dataset.

        Best effort: failures are logged (the caller is raising already).
        """
        loc = self.location
        try:
            root = self.root
            if root is None:  # S3: every object there is this writer's
                loc.delete(ours=True)
                return
            if self.made_root:
                shutil.rmtree(root)
            elif self.reused:  # it was empty: everything in it is ours
                for child in list(root.iterdir()):
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
            if self.aside is not None:
                if root.exists():  # a backend thread wrote on: its files too
                    shutil.rmtree(root)
                os.rename(self.aside, root)
                self.aside = None
            self.release()  # before the parents: the lock file sits there
            _remove_empty(self.parents)
        except Exception as e:
            logger.warning(
                "mmzarr: could not undo the creation of %s: %s%s",
                loc.url,
                e,
                f" (the old dataset is at {self.aside})" if self.aside else "",
            )
        finally:
            self.release()

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self.lock is not None:
            self.lock.release()


def _make_dirs(path: Path) -> list[Path]:
    """Create `path` and its missing parents; those created, outermost first."""
    missing: list[Path] = []
    p = path
    while not p.exists() and not p.is_symlink() and p != p.parent:
        missing.append(p)
        p = p.parent
    made: list[Path] = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise
            continue
        made.append(d)
    return made


def _claim_local(loc: Location, overwrite: bool) -> OutputClaim:
    root = loc.path
    assert root is not None
    full = _full(root)
    exists = loc.exists()
    if exists and not overwrite:
        holder = lock_holder(root)
        if holder is not None:
            raise DatasetLockedError(
                f"{full!r} is locked by another writer: {holder}", holder
            )
        raise FileExistsError(
            f"output {str(root)!r} already exists; pass overwrite=True to replace it"
        )
    if exists:
        loc.check_replaceable()  # before anything is created or locked
    canon = _canonical(root)
    try:
        made = _make_dirs(canon.parent)
    except OSError as e:
        raise StorageError(f"cannot create output {full!r}: {e}") from e
    try:
        lock = DatasetLock.acquire(root)
    except DatasetLockedError:
        _remove_empty(made)
        raise
    except OSError as e:
        _remove_empty(made)
        raise StorageError(
            f"cannot create output {full!r}: its lock file cannot be created ({e})"
        ) from e
    claim = OutputClaim(loc, root=canon, lock=lock, parents=made)
    try:
        # again, under the lock: another writer may have finished meanwhile
        empty = False
        if loc.exists():
            if not overwrite:
                raise FileExistsError(
                    f"output {str(root)!r} already exists; pass overwrite=True to "
                    "replace it"
                )
            loc.check_replaceable()
            empty = claim.reused = not any(canon.iterdir())
            if not empty:
                aside = canon.parent / f".{canon.name[:200]}{_ASIDE}"
                aside = aside.with_name(aside.name + secrets.token_hex(4))
                try:
                    os.rename(canon, aside)
                except OSError as e:
                    raise StorageError(
                        f"cannot replace {full!r}: moving it aside to "
                        f"{str(aside)!r} failed ({e})"
                    ) from e
                claim.aside = aside
        if not empty:
            try:
                canon.mkdir()
            except OSError as e:
                raise StorageError(f"cannot create output {full!r}: {e}") from e
            claim.made_root = True
    except BaseException:
        claim.abort()
        raise
    return claim


def _remove_empty(dirs: list[Path]) -> None:
    for d in reversed(dirs):
        with contextlib.suppress(OSError):
            d.rmdir()
