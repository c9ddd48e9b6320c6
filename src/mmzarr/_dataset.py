"""The dataset's documents: settings, group metadata with the status, OME-XML.

Everything beside the pixels that makes a dataset readable and says what it
holds: `mmzarr/settings.json`, every group's `zarr.json` (the root's carries
the `mmzarr` status: frames written and missing per image, the reason of a
fallback), and `OME/METADATA.ome.xml`. `Stream` writes them at open and close,
`finalize` rewrites them for a dataset whose writer was killed. The frame log
itself is `_metadata`'s; group models are `_layout`'s.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from mmzarr import _layout, _metadata
from mmzarr._locations import as_location
from mmzarr._lock import json_object
from mmzarr._omexml import OME_XML, has_ome_xml, render_ome_xml, write_ome_xml
from mmzarr._version import __version__

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from mmzarr._routing import Ledger
    from mmzarr._settings import AcquisitionSettings
    from mmzarr._storage import Location

__all__ = [
    "SETTINGS_FILE",
    "SUMMARY_FILE",
    "ChannelRanges",
    "image_status",
    "in_background",
    "read_summary",
    "render_ome_xml_ahead",
    "write_group_metadata",
    "write_settings",
    "write_summary",
]

logger = logging.getLogger("mmzarr")
T = TypeVar("T")

#: The settings a dataset was written with, relative to its root.
SETTINGS_FILE = "mmzarr/settings.json"
#: The microscope's state when the run started (pymmcore-plus' summary
#: metadata: devices and properties, config groups, pixel size, the plan).
SUMMARY_FILE = "mmzarr/summary.json"
#: Missing slots listed per image in the status (the count is always there).
MAX_LISTED_MISSING = 10_000


#: Pixels sampled per frame for the display range (a strided grid).
RANGE_SAMPLES = 1024


class ChannelRanges:
    """The lowest and highest value acquired per image and channel.

    Integer frames are sampled on a strided grid of about `RANGE_SAMPLES`
    pixels, which costs microseconds; float frames are read whole, as their
    range is also the window's min/max (the data's bounds). It sets each
    channel's display window so that viewers open the data with a useful
    contrast.
    """

    def __init__(self, settings: AcquisitionSettings) -> None:
        self._c_axis = [
            im.dim_names.index("c") if "c" in im.dim_names else None
            for im in settings.images
        ]
        self._keys = [im.key for im in settings.images]
        self._ranges: dict[tuple[int, int], tuple[float, float]] = {}

    def update(self, image: int, index: tuple[int, ...], frame: np.ndarray) -> None:
        """Take `frame` (written at storage `index` of image number `image`) in."""
        h, w = frame.shape[-2:]
        step = max(1, math.isqrt(h * w // RANGE_SAMPLES))
        # float data has no dtype range to bound it: its window's min/max are
        # these, so every pixel is looked at (integers are sampled)
        sample = frame if frame.dtype.kind == "f" else frame[::step, ::step]
        lo, hi = float(sample.min()), float(sample.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN or inf pixels
            finite = sample[np.isfinite(sample)]
            if not finite.size:
                return
            lo, hi = float(finite.min()), float(finite.max())
        c_axis = self._c_axis[image]
        c = index[c_axis] if c_axis is not None else 0
        old = self._ranges.get((image, c))
        if old is not None:
            lo, hi = min(lo, old[0]), max(hi, old[1])
        if math.isfinite(lo) and math.isfinite(hi):
            self._ranges[(image, c)] = (lo, hi)

    def by_key(self) -> dict[str, list[tuple[float, float] | None]]:
        """`{image key: [range of channel 0, 1, ...]}` (None: nothing acquired)."""
        out: dict[str, list[tuple[float, float] | None]] = {}
        for (image, c), rng in self._ranges.items():
            channels = out.setdefault(self._keys[image], [])
            channels.extend([None] * (c + 1 - len(channels)))
            channels[c] = rng
        return out


def write_summary(root: Location, summary: Mapping[str, Any]) -> None:
    """Write `SUMMARY_FILE` (atomically): JSON of the front end's summary.

    Objects JSON cannot hold are converted (a useq plan to its dict, numpy
    values to numbers, anything else to its text).
    """
    root.write_bytes(SUMMARY_FILE, _metadata.dumps_json(dict(summary)))


def read_summary(root: Location) -> dict[str, Any] | None:
    """The dataset's `SUMMARY_FILE`, or None (none written, or unreadable)."""
    try:
        data = root.read_bytes(SUMMARY_FILE)
        doc = json.loads(data) if data else None
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def write_settings(root: Location, settings: AcquisitionSettings) -> None:
    """Write `SETTINGS_FILE`: what `finalize` and readers rebuild a dataset from."""
    root.write_bytes(
        SETTINGS_FILE, _metadata.dumps_json(settings.model_dump(mode="json"))
    )


def image_status(
    settings: AcquisitionSettings, ledgers: Sequence[Ledger]
) -> dict[str, Any]:
    """`{image key: {frames_written, [t_size,] missing_count[, missing]}}`.

    `t_size` for an unbounded `t`, whose missing slots are those before its
    last time point written (`Ledger.holes`).
    """
    out: dict[str, Any] = {}
    for im, ledger in zip(settings.images, ledgers, strict=True):
        entry: dict[str, Any] = {"frames_written": ledger.count}
        if im.unbounded:
            entry["t_size"] = ledger.t_size
        entry["missing_count"] = n = ledger.missing_count(im)
        if n <= MAX_LISTED_MISSING:  # listed, but never 100,000 of them
            entry["missing"] = ledger.missing(im)
        out[im.key] = entry
    return out


def write_group_metadata(
    root: Path | Location,
    settings: AcquisitionSettings,
    ledgers: Sequence[Ledger],
    *,
    status: str,
    backend: str,
    dropped: int = 0,
    ome_xml: bool | str = True,
    durable: bool = True,
    which: _layout.Which = "all",
    ranges: dict[str, list[tuple[float, float] | None]] | None = None,
    documents: _layout.GroupDocuments | None = None,
    keep_user_attributes: bool = False,
) -> None:
    """Write every group's `zarr.json`, with the `mmzarr` status in the root.

    `ome_xml`: also write `OME/METADATA.ome.xml` (collections and plates), from
    the frame log, or this text when it is a string (rendered beforehand).
    `durable`: fsync every document; otherwise only the root's (the others are
    rewritten with the same content, e.g. after acquire-zarr's close).
    `which`: only the root's document, the root's and the images', or the
    images' alone (`_layout.Which`; the others exist, unchanged). `ranges`:
    the values acquired per image and channel (`ChannelRanges`), for the
    display windows. `documents`: the dataset's documents built before (for
    `settings`), built again otherwise. `keep_user_attributes`: attributes
    other than mmzarr's (`ome`, `mmzarr`) found in a group's document on disk
    are kept (`finalize`: a user may have added them since).
    """
    loc = as_location(root)
    attrs: dict[str, Any] = {
        "version": __version__,
        "status": status,
        "backend": backend,
        "frames_written": sum(ledger.count for ledger in ledgers),
        "frames_planned": settings.frames_planned,
        "frames_dropped": dropped,
        # on object storage the log is a series of segments (`SegmentedFrameLog`)
        "frame_metadata": (
            _metadata.FRAMES_LOG if loc.path is not None else _metadata.FRAME_SEGMENTS
        ),
        "settings": SETTINGS_FILE,
        "images": image_status(settings, ledgers),
    }
    if settings.fallback_reason is not None:
        attrs["fallback"] = settings.fallback_reason
    if documents is None:
        documents = _layout.GroupDocuments(settings)
    docs = documents.documents(
        root_attributes={"mmzarr": attrs}, which=which, ranges=ranges
    )
    if keep_user_attributes:
        docs = _with_user_attributes(loc, docs)
    # the OME-XML before the groups: a root that says `complete` has it
    if ome_xml and has_ome_xml(settings):
        if not isinstance(ome_xml, str):
            ome_xml = render_ome_xml(
                settings, _metadata.read_frame_log(loc), read_summary(loc)
            )
        if loc.path is not None:
            write_ome_xml(loc.path, ome_xml)
        else:
            loc.write_bytes(OME_XML, ome_xml.encode("utf-8"))
    _metadata.write_groups(loc, docs, fsync_all=durable)


def _with_user_attributes(
    loc: Location, docs: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """`docs`, each with the attributes its group on disk has beside mmzarr's."""
    out = {}
    for key, doc in docs.items():
        try:
            data = loc.read_bytes(f"{key}/zarr.json" if key else "zarr.json")
        except OSError:  # unreadable: written anew, as without the option
            data = None
        old = json_object(data) if data else None
        attrs = doc.get("attributes", {})
        theirs = old.get("attributes") if old else None
        extra = (
            {k: v for k, v in theirs.items() if k not in attrs}
            if isinstance(theirs, dict)
            else {}
        )
        out[key] = {**doc, "attributes": {**extra, **attrs}} if extra else doc
    return out


def render_ome_xml_ahead(
    root: Location, settings: AcquisitionSettings
) -> Future[str] | None:
    """Start rendering the OME-XML on a thread (local collections and plates).

    `Stream.close` renders it while the backend writes its last frames; pass
    `rendered(future)` as `ome_xml` to `write_group_metadata`.
    """
    if root.path is None or not has_ome_xml(settings):
        return None
    try:
        records = _metadata.read_frame_log(root.path)
    except OSError:  # rendered after the groups, where errors are reported
        return None
    return in_background(render_ome_xml, settings, records, read_summary(root))


def in_background(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
    """Run `fn` on a thread of its own; its future.

    A plain thread, not an executor's: once the main thread has returned,
    executors take no more work ("cannot schedule new futures after
    interpreter shutdown"), while an acquisition on another thread goes on.
    """
    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:
            future.set_exception(e)
        else:
            future.set_result(result)

    threading.Thread(target=run, name="mmzarr-io").start()
    return future


def rendered(xml: Future[str] | None) -> bool | str:
    """The OME-XML text rendered ahead, or True: render it (again) when needed."""
    if xml is None:
        return True
    try:
        return xml.result()
    except Exception:  # rendered again after the groups; an error raises there
        logger.warning("mmzarr: rendering the OME-XML ahead failed", exc_info=True)
        return True
