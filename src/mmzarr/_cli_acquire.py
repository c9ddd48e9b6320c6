"""The runs of the `mmzarr` command: the checks before one, the run, the dry run.

`run_acquisition` runs a plan on a rig (the demo rig or a config) into an
output with `MDAWriter` and a progress display; `dry_run` prints what it would
write. A plan that cannot be mapped is still acquired, in the fallback layout,
and the user is told why. Parsing arguments and exit statuses are
`mmzarr._cli`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmzarr._cli_paths import CLIError, check_output_path
from mmzarr._info import count
from mmzarr._terminal import console, err_console, run_with_progress, say

if TYPE_CHECKING:
    import useq

    from mmzarr._settings import AcquisitionSettings

__all__ = [
    "check_backend",
    "check_channels",
    "dry_run",
    "load_core",
    "one_line",
    "plan_settings",
    "release_cores",
    "run_acquisition",
    "warn_space",
]


def one_line(error: BaseException) -> str:
    """`error`'s message on one line (its type's name when it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


#: the cores this command loaded (released before it exits: `release_cores`)
_CORES: list[Any] = []


def load_core(config: str | None) -> Any:
    """A core loaded from `config` (None: the demo rig), released at exit."""
    from mmzarr.demo import demo_core

    try:
        core = demo_core(config)
    except Exception as e:
        raise CLIError(f"cannot load config {config!r}: {one_line(e)}") from e
    _CORES.append(core)
    return core


def release_cores() -> None:
    """Release the loaded cores before the interpreter shuts down (`release_core`).

    A notification reaching Python while the interpreter shuts down aborted the
    process ("FATAL: exception not rethrown", ~1 in 60 runs with the demo rig),
    losing the exit status.
    """
    from mmzarr.demo import release_core

    while _CORES:
        release_core(_CORES.pop())


def check_channels(seq: useq.MDASequence, core: Any) -> None:
    """Fail before anything is written when the plan names a channel the rig lacks."""
    plans = [seq, *(p.sequence for p in seq.stage_positions if p.sequence)]
    groups = list(core.getAvailableConfigGroups())
    for plan in plans:
        for ch in plan.channels:
            if ch.group not in groups:
                raise CLIError(
                    f"channel {ch.config!r}: config group {ch.group!r} is not "
                    f"defined on this rig; groups: {groups}"
                )
            known = list(core.getAvailableConfigs(ch.group))
            if ch.config in known:
                continue
            raise CLIError(
                f"channel {ch.config!r} (group {ch.group!r}) is not defined on this "
                f"rig; defined: {known}"
            )


def run_acquisition(
    seq: useq.MDASequence,
    out: str,
    *,
    config: str | None = None,
    backend: str | None = None,
    overwrite: bool = False,
) -> tuple[int, int]:
    """Run `seq` on a core (demo rig or `config`) into `out` (a path or URL).

    `backend`: None for `MDAWriter`'s choice (acquire-zarr, or tensorstore for
    a plan acquire-zarr cannot take in its order). Returns the frames written
    and the signal that cancelled the run (SIGINT for Ctrl-C; 0: none).
    """
    from mmzarr.handlers import MDAWriter

    check_backend(backend)
    check_output_path(out, overwrite)
    core = load_core(config)
    settings = plan_settings(seq, core)
    check_channels(seq, core)
    writer = MDAWriter(out, backend=backend, overwrite=overwrite, core=core)
    if settings is not None and settings.fallback_reason is None:
        pixels = max(im.frame_shape[0] * im.frame_shape[1] for im in settings.images)
        frame_bytes, total = pixels * settings.itemsize, settings.frames_planned
        warn_space(out, settings.bytes_planned)
    else:
        frame_bytes, total = _fallback_progress(seq, core, settings)
        warn_space(out, None if total is None else total * frame_bytes)
    cancelled, error = run_with_progress(core, seq, writer, total, frame_bytes)
    try:
        writer.close()
    except Exception as e:
        raise CLIError(f"acquisition failed: {one_line(e)}") from e
    if error is not None:
        raise CLIError(
            f"acquisition failed after {count(writer.frames_written, 'frame')}: "
            f"{one_line(error)}"
        ) from error
    return writer.frames_written, cancelled


def warn_space(out: str, nbytes: int | None) -> None:
    """Warn when a run's `nbytes` (uncompressed) exceed the free space at `out`.

    The free space of the file system `out` would be made on (its nearest
    existing folder); nothing for an S3 URL or an unbounded run (None). Not
    a refusal: compression, or a run cancelled early, may need less; a run
    that fills the disk stops with every accepted frame kept.
    """
    import shutil
    from pathlib import Path

    from rich.filesize import decimal

    from mmzarr._locations import parse_location

    loc = parse_location(out)
    if nbytes is None or loc.path is None:
        return
    above = Path(loc.path).absolute()
    while not above.is_dir() and above != above.parent:
        above = above.parent
    try:
        free = shutil.disk_usage(above).free
    except OSError:
        return  # not for a warning to fail a run
    if nbytes > free:
        say(
            f"mmzarr: warning: the plan writes up to {decimal(nbytes)} "
            f"(uncompressed) and {str(above)!r} has {decimal(free)} free: the run "
            "stops when the disk is full (the frames written until then are kept)",
            err_console,
        )


def _fallback_progress(
    seq: useq.MDASequence, core: Any, settings: AcquisitionSettings | None
) -> tuple[int, int | None]:
    """The bytes of a frame and the frames of a run in the fallback layout.

    `settings`: the fallback layout's for the camera's frames (each keeps its
    planes: an RGB frame's samples too), else the core's frame size. The
    frames are useq's image events; None when they cannot be counted.
    """
    from mmzarr._info import fallback_frame_bytes

    if settings is not None:
        frame_bytes = fallback_frame_bytes(settings)
    else:
        frame_bytes = core.getImageWidth() * core.getImageHeight()
        frame_bytes *= core.getBytesPerPixel()
    return frame_bytes, _fallback_frames(seq, core)


def _fallback_frames(seq: useq.MDASequence, core: Any) -> int | None:
    """The frames a run of `seq` acquires (useq's image events), if countable."""
    from mmzarr._from_useq import frames_acquired
    from mmzarr.errors import PlanError

    try:
        return frames_acquired(seq, core)
    except PlanError:  # the warning said why the plan cannot be mapped
        return None


def _backend_name(backend: str | None, settings: AcquisitionSettings | None) -> str:
    """The backend a run uses: `backend`, or `MDAWriter`'s choice for `settings`."""
    from mmzarr.backends import DEFAULT_BACKEND, backend_for

    if backend is not None:
        return backend
    if settings is None or settings.fallback_reason is not None:
        return DEFAULT_BACKEND  # as `MDAWriter` for the fallback layout
    return backend_for(settings)


def check_backend(backend: str | None) -> None:
    """Fail before anything is printed or loaded when `backend` cannot be used."""
    from mmzarr.backends import BACKENDS, DEFAULT_BACKEND

    backend = backend or DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise CLIError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)}")
    if not BACKENDS[backend].is_available():
        extra = BACKENDS[backend].extra
        hint = f'pip install "mmzarr[{extra}]"' if extra else "reinstall mmzarr"
        raise CLIError(f"backend {backend!r} is not installed: {hint}")


def plan_settings(seq: useq.MDASequence, core: Any) -> AcquisitionSettings | None:
    """The settings for `seq`, or those of the fallback layout it is written in.

    An unmappable plan is still acquired: `MDAWriter` keeps every frame in the
    fallback layout (settings whose `fallback_reason` says why, for the
    camera's frames; None when even those cannot be made), and the user is
    told why. A plan without frames is an error (`CLIError`).
    """
    from mmzarr._settings import AcquisitionSettings
    from mmzarr.errors import EmptyPlanError, PlanError

    try:
        return AcquisitionSettings.from_useq(seq, core=core)
    except EmptyPlanError as e:
        raise CLIError(f"nothing to acquire: {one_line(e)}") from e
    except PlanError as e:
        reason = one_line(e)
    say(
        f"mmzarr: warning: the plan cannot be mapped to OME-Zarr images "
        f"({reason}); every frame is kept in arrival order in the "
        "fallback layout (one image, the index of each frame in "
        "mmzarr/frames.jsonl)",
        err_console,
    )
    return _fallback_settings(reason, core)


def _fallback_settings(reason: str, core: Any) -> AcquisitionSettings | None:
    """The fallback layout's settings for the frames of `core`'s camera.

    As `MDAWriter` opens them at the first frame (`open_fallback`, default
    storage options); None when the camera's frames cannot be described or
    kept (a run then takes the first frame's format, or says why not).
    """
    from mmzarr._core_camera import camera_pixel_size, camera_planes
    from mmzarr._kept_planes import fallback_for

    px = camera_pixel_size(core)
    try:  # an RGB camera's frames too: (y, x, samples)
        shape, dtype = camera_planes(core)
        return fallback_for(reason, shape, dtype, pixel_size_um=px)
    except (ValueError, TypeError):
        return None


def print_settings(settings: AcquisitionSettings, frames: int | None = None) -> None:
    """The dry-run view: layout, images, shapes, chunks/shards, bytes.

    `frames`: for the fallback layout's settings, the frames the run acquires.
    """
    from mmzarr._info import settings_lines, settings_table

    console.print(settings_table(settings, frames))
    for line in settings_lines(settings, frames):
        say(line)


def _print_fallback(
    seq: useq.MDASequence, core: Any, settings: AcquisitionSettings | None
) -> int | None:
    """The dry-run view of a plan written in the fallback layout; its bytes.

    `settings`: the fallback layout's for the camera's frames, if known. The
    bytes are uncompressed; None when the frames or their size are unknown.
    """
    from mmzarr._info import fallback_frame_bytes, fallback_line

    frames = _fallback_frames(seq, core)
    if settings is None:
        say(fallback_line(frames))
        return None
    print_settings(settings, frames)
    return None if frames is None else frames * fallback_frame_bytes(settings)


def dry_run(
    seq: useq.MDASequence,
    out: str,
    *,
    config: str | None = None,
    backend: str | None = None,
    overwrite: bool = False,
) -> int:
    """Print what a run of `seq` into `out` would write; the run's exit status.

    Loads the rig (`config`, or the demo rig) and acquires nothing; a run that
    would be refused (the output path) exits as the run would.
    """
    core = load_core(config)
    # a plan the rig cannot run prints no table: only why it is refused
    check_channels(seq, core)
    settings = plan_settings(seq, core)
    layout = ""
    if settings is not None and settings.fallback_reason is None:
        print_settings(settings)
        nbytes = settings.bytes_planned
    else:
        nbytes = _print_fallback(seq, core, settings)
        layout = " in the fallback layout"
    warn_space(out, nbytes)
    note, code = "", 0
    try:
        check_output_path(out, overwrite)
    except CLIError as e:
        # exit as the run would: a script checking a plan sees the refusal
        note, code = f" (acquiring would fail: {e})", e.code
    say(
        f"dry run: nothing acquired; would write {out}{layout}{note} "
        f"with backend {_backend_name(backend, settings)}"
    )
    return code
