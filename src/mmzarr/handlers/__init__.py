"""Front ends that feed a `Stream`: pymmcore-plus MDA handler, Pycro-Manager hook."""

from __future__ import annotations

from mmzarr.handlers._pymmcore import MDAWriter

__all__ = ["MDAWriter"]
