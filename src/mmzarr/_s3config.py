"""An S3 dataset's bucket, prefix, endpoint, region and credentials (`S3Config`).

They come from `storage_options` (`S3_OPTIONS`) or the usual environment
variables (`env_value`); a backend whose S3 client reads only the environment
gets them there for the time of its open (`S3Config.export_env`,
`S3Config.environment`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["S3_OPTIONS", "S3Config", "env_value"]

#: The keys `storage_options` may have.
S3_OPTIONS = ("endpoint_url", "region", "key", "secret", "token")
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


def env_value(*names: str) -> str | None:
    """The first of the environment variables `names` that is set and not empty."""
    for n in names:
        v = os.environ.get(n)
        if v:
            return v
    return None
