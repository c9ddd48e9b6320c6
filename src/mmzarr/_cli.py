"""The `mmzarr` command: demo, acquire, info, validate, finalize.

Owns argument parsing, the checks before an acquisition, exit statuses (130
after Ctrl-C) and turning errors into one-line messages with a non-zero exit.
The consoles, progress display and the Ctrl-C handling of a running MDA are
`mmzarr._terminal`'s. The work itself is done by the library
(`AcquisitionSettings`, `MDAWriter`, `validate`, `finalize`); plan files are
read and checked by `mmzarr._planfile`; which paths a command may use is
`mmzarr._cli_paths`' (with `CLIError`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    import useq

    from mmzarr._settings import AcquisitionSettings

from mmzarr._cli_paths import (
    CLIError,
    check_output_path,
    existing_dataset,
    local_dataset,
)
from mmzarr._info import count
from mmzarr._terminal import console, err_console, run_with_progress, say

__all__ = ["main"]


def demo_plan() -> useq.MDASequence:
    """The plate plan of `mmzarr demo`: 3 wells x 2x2 fields, 2 c, 3 z, 3 t."""
    import useq

    return useq.MDASequence(
        stage_positions=useq.WellPlatePlan(
            plate="96-well",
            a1_center_xy=(0, 0),
            selected_wells=([0, 0, 1], [0, 1, 0]),
            well_points_plan=useq.GridRowsColumns(
                rows=2, columns=2, fov_width=256, fov_height=256
            ),
        ),
        channels=["DAPI", "FITC"],
        z_plan=useq.ZRangeAround(range=2, step=1),
        time_plan=useq.TIntervalLoops(interval=0.1, loops=3),
        axis_order="tpgcz",
    )


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


#: Error lines are cut to this many characters.
MAX_ERROR = 1000


def _cut(text: str, limit: int = MAX_ERROR) -> str:
    """`text`, cut to `limit` characters with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def load_plan(path: str | Path) -> useq.MDASequence:
    """Read and check a useq plan file (see `mmzarr._planfile.load_plan`)."""
    from mmzarr._planfile import load_plan as load
    from mmzarr.errors import PlanError

    try:
        return load(path)
    except PlanError as e:
        raise CLIError(str(e)) from e


#: the cores this command loaded (released before it exits: `_release_cores`)
_CORES: list[Any] = []


def _load_core(config: str | None) -> Any:
    from mmzarr.demo import demo_core

    try:
        core = demo_core(config)
    except Exception as e:
        raise CLIError(f"cannot load config {config!r}: {_one_line(e)}") from e
    _CORES.append(core)
    return core


def _release_cores() -> None:
    """Release the loaded cores before the interpreter shuts down (`release_core`).

    A notification reaching Python while the interpreter shuts down aborted the
    process ("FATAL: exception not rethrown", ~1 in 60 runs with the demo rig),
    losing the exit status.
    """
    from mmzarr.demo import release_core

    while _CORES:
        release_core(_CORES.pop())


def _check_channels(seq: useq.MDASequence, core: Any) -> None:
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
) -> tuple[int, bool]:
    """Run `seq` on a core (demo rig or `config`) into `out` (a path or URL).

    `backend`: None for `MDAWriter`'s choice (acquire-zarr, or tensorstore for
    a plan acquire-zarr cannot take in its order). Returns the frames written
    and whether Ctrl-C cancelled the run.
    """
    from mmzarr.handlers import MDAWriter

    _check_backend(backend)
    check_output_path(out, overwrite)
    core = _load_core(config)
    settings = _settings(seq, core)
    _check_channels(seq, core)
    writer = MDAWriter(out, backend=backend, overwrite=overwrite, core=core)
    if settings is not None and settings.fallback_reason is None:
        pixels = max(im.frame_shape[0] * im.frame_shape[1] for im in settings.images)
        frame_bytes, total = pixels * settings.itemsize, settings.frames_planned
    else:
        frame_bytes, total = _fallback_progress(seq, core, settings)
    cancelled, error = run_with_progress(core, seq, writer, total, frame_bytes)
    try:
        writer.close()
    except Exception as e:
        raise CLIError(f"acquisition failed: {_one_line(e)}") from e
    if error is not None:
        raise CLIError(
            f"acquisition failed after {count(writer.frames_written, 'frame')}: "
            f"{_one_line(error)}"
        ) from error
    return writer.frames_written, cancelled


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


def _check_backend(backend: str | None) -> None:
    """Fail before anything is printed or loaded when `backend` cannot be used."""
    from mmzarr.backends import BACKENDS, DEFAULT_BACKEND

    backend = backend or DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise CLIError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)}")
    if not BACKENDS[backend].is_available():
        extra = BACKENDS[backend].extra
        hint = f'pip install "mmzarr[{extra}]"' if extra else "reinstall mmzarr"
        raise CLIError(f"backend {backend!r} is not installed: {hint}")


def _settings(seq: useq.MDASequence, core: Any) -> AcquisitionSettings | None:
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
        raise CLIError(f"nothing to acquire: {_one_line(e)}") from e
    except PlanError as e:
        reason = _one_line(e)
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
) -> None:
    """The dry-run view of a plan written in the fallback layout.

    `settings`: the fallback layout's for the camera's frames, if known.
    """
    from mmzarr._info import fallback_line

    frames = _fallback_frames(seq, core)
    if settings is not None:
        print_settings(settings, frames)
    else:
        say(fallback_line(frames))


def info(out: str) -> None:
    """Print the dataset as a tree, then the microscope's key facts."""
    from mmzarr._info import dataset_tree, microscope_lines

    root = existing_dataset("info", out)
    try:
        tree = dataset_tree(root)
    except ValueError as e:
        raise CLIError(str(e)) from e
    console.print(tree)
    for line in microscope_lines(root):
        say(line)


def _cmd_validate(out: str) -> int:
    from mmzarr._validate import validate

    report = validate(existing_dataset("validate", out))
    say(report.format(), console if report.ok else err_console)
    return 0 if report.ok else 1


def _cmd_finalize(out: str) -> int:
    from mmzarr._finalize import finalize

    root = existing_dataset("finalize", out)
    try:
        report = finalize(root)
    except (OSError, ValueError) as e:
        raise CLIError(f"cannot finalize {out!r}: {e}") from e
    say(report.format())
    return 0 if report.ok else 1


def _cmd_demo(out: str, backend: str, overwrite: bool) -> int:
    local_dataset("demo", out)  # it validates what it wrote
    _check_backend(backend)  # before the banner: a mistake is the only output
    check_output_path(out, overwrite)
    seq = demo_plan()
    say(
        f"mmzarr demo: a 3-well plate (2x2 fields, 2 channels, 3 z, 3 time points) "
        f"on the built-in demo rig -> {out}"
    )
    t0 = time.perf_counter()
    n, cancelled = run_acquisition(seq, out, backend=backend, overwrite=overwrite)
    dt = time.perf_counter() - t0
    where = Path(out).resolve()
    say(f"wrote {count(n, 'frame')} in {dt:.1f} s to {where}")
    code = _cmd_validate(out)
    # quoted for a shell: paths may hold spaces or quotes
    # (the path as a double-quoted literal, so the usual one reads plainly)
    literal = json.dumps(str(where), ensure_ascii=False)
    tree = f"import zarr; print(zarr.open_group({literal}).tree())"
    say(
        "open it with:\n"
        f"  napari --plugin napari-ome-zarr {shlex.quote(str(where))}\n"
        f"  python -c {shlex.quote(tree)}\n"
        f"  mmzarr info {shlex.quote(out)}"
    )
    return _cancelled(n, out) if cancelled else code


def _cancelled(n: int, out: str) -> int:
    """Report a Ctrl-C that was handled cleanly; exit status 130 (SIGINT)."""
    say(
        f"mmzarr: cancelled (Ctrl-C) after {count(n, 'frame')}; {out!r} is "
        "a valid dataset of what was acquired",
        err_console,
    )
    return 130


#: what `--overwrite` replaces (and what it never does)
OVERWRITE_HELP = (
    "replace OUT if it is an mmzarr/OME-Zarr dataset or an empty directory "
    "(anything else is refused)"
)


def _parser() -> argparse.ArgumentParser:
    from mmzarr import __version__
    from mmzarr.backends import BACKENDS

    p = argparse.ArgumentParser(
        prog="mmzarr",
        description="Stream microscope acquisitions into OME-Zarr v0.5.",
        epilog="Exit status: 0 ok, 1 error or invalid dataset, 130 cancelled by "
        "Ctrl-C (what was acquired stays a valid dataset).",
    )
    p.add_argument("--version", action="version", version=f"mmzarr {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    backends = sorted(BACKENDS)

    d = sub.add_parser("demo", help="acquire a small plate on the built-in demo rig")
    # outputs stay strings: `Path` would turn `s3://b/x` into `s3:/b/x`
    d.add_argument(
        "out",
        nargs="?",
        default="demo.ome.zarr",
        help="a local path (default %(default)s)",
    )
    d.add_argument("--backend", default="acquire-zarr", help=f"one of {backends}")
    d.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)

    a = sub.add_parser("acquire", help="run a useq plan (YAML/JSON) into OUT")
    a.add_argument("plan", type=Path)
    a.add_argument("out", help="a local path or an s3://bucket/prefix URL")
    a.add_argument("--config", help="Micro-Manager .cfg (default: demo rig)")
    a.add_argument(
        "--backend",
        help=f"one of {backends} (default acquire-zarr, or tensorstore for a plan "
        "acquire-zarr cannot take in its order)",
    )
    a.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    a.add_argument(
        "--dry-run",
        action="store_true",
        help="print the settings (or why the run would be refused), acquire nothing",
    )

    for name, text in (
        ("info", "show a dataset as a tree"),
        ("validate", "check a dataset (exit 1 when invalid)"),
        ("finalize", "make a crashed dataset valid"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("out", help="the dataset's folder (the one holding zarr.json)")
    return p


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        return _cmd_demo(args.out, args.backend, args.overwrite)
    if args.command == "acquire":
        _check_backend(args.backend)
        seq = load_plan(args.plan)
        if args.dry_run:
            core = _load_core(args.config)
            # a plan the rig cannot run prints no table: only why it is refused
            _check_channels(seq, core)
            settings = _settings(seq, core)
            layout = ""
            if settings is not None and settings.fallback_reason is None:
                print_settings(settings)
            else:
                _print_fallback(seq, core, settings)
                layout = " in the fallback layout"
            note, code = "", 0
            try:
                check_output_path(args.out, args.overwrite)
            except CLIError as e:
                # exit as the run would: a script checking a plan sees the refusal
                note, code = f" (acquiring would fail: {e})", e.code
            say(
                f"dry run: nothing acquired; would write {args.out}{layout}{note} "
                f"with backend {_backend_name(args.backend, settings)}"
            )
            return code
        n, cancelled = run_acquisition(
            seq,
            args.out,
            config=args.config,
            backend=args.backend,
            overwrite=args.overwrite,
        )
        say(f"wrote {count(n, 'frame')} to {args.out}")
        return _cancelled(n, args.out) if cancelled else 0
    if args.command == "info":
        info(args.out)
        return 0
    if args.command == "validate":
        return _cmd_validate(args.out)
    return _cmd_finalize(args.out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mmzarr` command."""
    import logging

    logging.getLogger("pymmcore-plus").setLevel(logging.CRITICAL)
    args = _parser().parse_args(argv)
    shown: set[str] = set()

    def show_warning(message: Warning | str, *_: Any, **__: Any) -> None:
        text = _one_line(message) if isinstance(message, Warning) else str(message)
        if text not in shown:  # the same warning from settings and writer: once
            shown.add(text)
            say(f"mmzarr: warning: {text}", err_console)

    with warnings.catch_warnings():
        # the CLI shows every warning as one line, whatever filters are set
        warnings.simplefilter("always")
        warnings.showwarning = show_warning
        try:
            return _dispatch(args)
        except CLIError as e:
            say(f"mmzarr: error: {_cut(str(e))}", err_console)
            return e.code
        except MemoryError:
            # useq lists every value of each axis of a plan it iterates: a
            # time plan of 10 million loops takes ~1.5 GB
            say(
                "mmzarr: error: out of memory: useq lists every time point, "
                "position and plane of a plan it iterates; make the plan smaller "
                "(e.g. fewer loops)",
                err_console,
            )
            return 1
        except KeyboardInterrupt:
            say("mmzarr: interrupted", err_console)
            return 130
        finally:
            _release_cores()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
