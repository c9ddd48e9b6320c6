"""The installed mmzarr version, from the package metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("mmzarr")
except PackageNotFoundError:  # pragma: no cover - a source tree, not installed
    __version__ = "unknown"
