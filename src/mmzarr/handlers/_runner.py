"""What `MDAWriter` reads of pymmcore-plus.

The core whose run outputs to a writer, its runner's outputs, the cameras of
a core, and the frames' events and metadata.
"""

from __future__ import annotations

import gc
import warnings
from typing import TYPE_CHECKING, Any

from mmzarr._cameras import CAMERA_AXIS, Camera
from mmzarr._core_camera import camera_pixel_size, core_dtype

if TYPE_CHECKING:
    from collections.abc import Mapping

    import useq

    from mmzarr._settings import AcquisitionSettings

__all__ = [
    "PassedSlots",
    "cameras_of_core",
    "core_running",
    "cores_listing",
    "errored",
    "frame_metadata",
    "plain_index",
    "running_core",
    "runs",
]


def running_core() -> Any:
    """The global pymmcore-plus core, without creating one."""
    try:
        from pymmcore_plus.core import _mmcore_plus
    except ImportError:  # pragma: no cover
        return None
    ref = getattr(_mmcore_plus, "_instance", None)
    return ref() if ref is not None else None


def runs(core: Any, writer: object) -> bool:
    """Whether `core`'s runner has `writer` among the outputs of its run.

    False when the global core runs another acquisition than the writer's
    (another core's); True when the runner cannot say.
    """
    outputs = _outputs(core)
    return outputs is None or any(o is writer for o in outputs)


def _outputs(core: Any) -> tuple[object, ...] | None:
    """The outputs of `core`'s runner's run; None when the runner cannot say."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return tuple(core.mda.get_output_handlers())
    except Exception:  # an older or newer runner
        return None


def core_running(writer: object) -> Any:
    """The pymmcore-plus core whose MDA outputs to `writer`, if one is found.

    The global core when its runner lists `writer` among its outputs (or
    cannot say); else another live core whose runner does: one made beside
    the global core (``UniMMCore()`` twice in a notebook), found once per run
    by `cores_listing`. None when no core runs `writer` (its methods called by
    hand): its frames then say all.
    """
    found = running_core()
    if found is not None and runs(found, writer):
        return found
    return next(iter(cores_listing(writer, but=found)), None)


def cores_listing(writer: object, but: Any = None) -> list[Any]:
    """The live cores other than `but` whose runner lists `writer` as an output.

    Found among the objects that refer to pymmcore-plus' core classes (an
    instance refers to its class), never in a list of every object Python
    tracks: such a list holds, while it lives, the tuples other threads are
    still building, and CPython then raises SystemError in a thread that grows
    one (the MDA's runner, iterating its plan).
    """
    try:
        from pymmcore_plus import CMMCorePlus
    except ImportError:  # pragma: no cover
        return []
    classes = _subclasses(CMMCorePlus)
    referrers = gc.get_referrers(*classes)
    cores = [obj for obj in referrers if type(obj) in classes]
    del referrers  # (instances, and what names the classes: no tuple being built)
    return [core for core in cores if core is not but and _lists(core, writer)]


def _subclasses(cls: type) -> tuple[type, ...]:
    """`cls` and every class derived from it."""
    found: list[type] = [cls]
    todo = [cls]
    while todo:
        subs: list[type] = todo.pop().__subclasses__()
        new = [sub for sub in subs if sub not in found]
        found += new
        todo += new
    return tuple(found)


def _lists(core: Any, writer: object) -> bool:
    """Whether `core`'s runner lists `writer` among its outputs (False: unknown)."""
    outputs = _outputs(core)
    return outputs is not None and any(o is writer for o in outputs)


def errored(core: Any, writer: object, sequence: object = None) -> bool:
    """Whether `core`'s run of `sequence` with `writer` among its outputs raised.

    pymmcore-plus emits `sequenceFinished` alike when its run raised (e.g. the
    camera failed), then raises the exception from `run`; its runner's status
    says why the run finished. False when the runner cannot say, or when its
    status is another run's: the relay thread delivers `sequenceFinished`
    after the runner has finished, and a run started meanwhile (`run_mda`
    again before the last frames were handed over) has replaced its status.
    """
    if core is None or not runs(core, writer):
        return False
    current = getattr(core.mda, "_sequence", sequence)  # no public accessor
    if sequence is not None and current is not sequence:
        return False
    try:
        reason = core.mda.status.finish_reason
    except Exception:  # an older or newer runner
        return False
    return str(getattr(reason, "value", reason)) == "errored"


def cameras_of_core(core: Any) -> tuple[Camera, ...]:
    """The camera channels of `core`'s selected camera when it has several.

    For runs without summary metadata. Micro-Manager's Multi Camera adapter
    requires one frame shape for all its cameras, so each has the core's.
    """
    try:
        n = int(core.getNumberOfCameraChannels()) if core is not None else 1
        if n <= 1:
            return ()
        shape = (int(core.getImageHeight()), int(core.getImageWidth()))
        dtype = core_dtype(core)
        px = camera_pixel_size(core)
        return tuple(
            Camera(str(core.getPhysicalCameraDevice(k)), shape, dtype, px)
            for k in range(n)
        )
    except Exception:  # a core without these: one camera, as before
        return ()


def plain_index(index: Mapping[str, int]) -> dict[str, int]:
    """A useq index with its axes as plain text, for messages."""
    return {str(getattr(k, "value", k)): v for k, v in index.items()}


def frame_metadata(
    event: useq.MDAEvent,
    meta: dict[str, Any],
    last_stage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What is worth keeping of pymmcore-plus' frame metadata, JSON-ready.

    Each axis is where pymmcore-plus says the stage was (its `position`,
    read from the stage for this frame), not where the event asked it to go:
    a stage that failed to move, or stopped off target, leaves the frame
    where the stage was. A hardware-triggered frame's metadata has no
    `position`: an axis its event sets is the event's (the sequence moved it
    there), another has not moved since `last_stage` (the previous frame's
    stage, or the summary's position at the start).
    """
    measured = meta.get("position")
    if not isinstance(measured, dict):
        measured = {}
    before = measured or dict(last_stage or {})

    def where(axis: str, planned: float | None) -> Any:
        if measured.get(axis) is not None:
            return measured[axis]
        return before.get(axis) if planned is None else planned

    out: dict[str, Any] = {
        "runner_time_ms": meta.get("runner_time_ms"),
        "exposure_ms": meta.get("exposure_ms", event.exposure),
        "camera_device": meta.get("camera_device"),
        "pixel_size_um": meta.get("pixel_size_um"),
        "channel": event.channel.config if event.channel else None,
        "stage": {
            axis: where(axis, value)
            for axis, value in (
                ("x", event.x_pos),
                ("y", event.y_pos),
                ("z", event.z_pos),
            )
        },
    }
    if event.pos_name:
        out["position_name"] = event.pos_name
    if CAMERA_AXIS in event.index:  # which camera (its label: camera_device)
        out[CAMERA_AXIS] = event.index[CAMERA_AXIS]
    for key in ("position", "property_values", "camera_metadata", "hardware_triggered"):
        if key in meta:
            out[key] = meta[key]
    return out


#: storage axis names, acquisition order, sizes (the first may be 0: unbounded)
_Spec = tuple[tuple[str, ...], tuple[str, ...], dict[str, int]]


class PassedSlots:
    """The slots of each image an in-order run went past without a frame.

    pymmcore-plus runs a plan's events one after another, each image's frames
    in its `acquisition_order`, and each camera's frames of an event in event
    order (several cameras: one frame per camera and event, emitted in (event,
    camera) order, also for a hardware-sequenced burst): when a frame comes,
    the slots of its image (and camera) before it in that order that got none
    never will (the camera failed to snap one, a burst ended short). A frame
    that comes behind the last one (out of order) passes nothing.

    `cameras` > 1: each image's `c` axis holds every camera's channels,
    channel-major (plan channel `c` of camera `cam` at `c * cameras + cam`, as
    `camera_layout`'s `"channels"` makes it); each camera's frames are followed
    on their own, so a camera whose frames come late, or are missing, passes
    none of another camera's slots. With one image per camera (`"images"`)
    give 1: each image is one camera's.
    """

    def __init__(self, settings: AcquisitionSettings, cameras: int = 1) -> None:
        self._keys = {im.key: i for i, im in enumerate(settings.images)}
        self._cameras = max(int(cameras), 1)
        #: per (image, camera): the acquisition sequence number of its last frame
        self._last: dict[tuple[int, int], int] = {}
        #: per image: storage axis names, acquisition order, sizes (per camera)
        self._specs: list[_Spec | None] = []
        ncam = self._cameras
        for im in settings.images:
            names = tuple(d.name for d in im.index_dims)
            order = tuple(im.acquisition_order or names)
            sizes: dict[str, int | None] = {d.name: d.size for d in im.index_dims}
            if (
                sorted(order) != sorted(names)
                or any(sizes[a] is None for a in order[1:])
                or (
                    ncam > 1 and (int(sizes.get("c") or 0) % ncam or not sizes.get("c"))
                )
            ):
                self._specs.append(None)
                continue
            per_camera = {a: int(sizes[a] or 0) for a in order}
            if ncam > 1:
                per_camera["c"] //= ncam
            self._specs.append((names, order, per_camera))

    def passed(
        self, key: str, index: tuple[int, ...]
    ) -> tuple[int, list[tuple[int, ...]]]:
        """Image number of `key`; the storage indices passed since its last frame.

        With several cameras in `c`, those of the frame's camera (`c % cameras`).
        """
        image = self._keys[key]
        spec = self._specs[image]
        if spec is None:
            return image, []
        names, order, sizes = spec
        at = dict(zip(names, index, strict=True))
        cam = 0
        if self._cameras > 1:
            cam, at["c"] = at["c"] % self._cameras, at["c"] // self._cameras
        seq = 0
        for n in order:  # the first axis may be unbounded: its size is not needed
            seq = seq * sizes[n] + at[n]
        last = self._last.get((image, cam), -1)
        self._last[(image, cam)] = max(seq, last)
        out = []
        for s in range(last + 1, seq):
            values: dict[str, int] = {}
            for n in reversed(order[1:]):
                s, values[n] = divmod(s, sizes[n])
            if order:
                values[order[0]] = s
            if self._cameras > 1:
                values["c"] = values["c"] * self._cameras + cam
            out.append(tuple(values[n] for n in names))
        return image, out
