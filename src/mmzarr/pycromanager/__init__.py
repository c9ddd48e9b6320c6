"""Pycro-Manager front end: stream `pycromanager.Acquisition` images into OME-Zarr.

* `ZarrHook` is an `image_process_fn`: it places each image by its pycromanager
  ``Axes`` (``time``, ``position``, ``channel``, ``z``) and appends it to a
  `mmzarr.Stream`.
* `events_from_useq` turns a useq plan into pycromanager event dicts, so one plan
  drives both pymmcore-plus (`mmzarr.MDAWriter`) and Pycro-Manager.
* `unicore_backend` runs pycromanager's Python acquisition engine on a given core
  (e.g. the `mmzarr.demo` `UniMMCore`) without Java. It relies on private
  internals of pycromanager and mmpycorex and checks their versions
  (`TESTED_VERSIONS`).

This package owns the mapping between pycromanager's event dicts and image
metadata and mmzarr's frame slots (`_plan.py`), an image's place by its
``Axes`` (`_placing.py`), the ``"mmzarr"`` entry of event dicts
(`_events.py`), and how a watched acquisition ended (`_watch.py`). Dataset
shape rules come from `mmzarr._plan` (the same steps as
`AcquisitionSettings.from_useq`); storage is `mmzarr._stream`'s job. Only
`unicore_backend` imports pycromanager.
"""

from __future__ import annotations

from mmzarr.pycromanager._backend import TESTED_VERSIONS, unicore_backend
from mmzarr.pycromanager._events import events_from_useq
from mmzarr.pycromanager._hook import ZarrHook

__all__ = ["TESTED_VERSIONS", "ZarrHook", "events_from_useq", "unicore_backend"]
