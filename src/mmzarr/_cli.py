"""The `mmzarr` command: demo, acquire, info, validate, finalize.

Owns argument parsing, exit statuses (128 + the signal after Ctrl-C, SIGTERM
or SIGHUP) and turning errors into one-line messages with a non-zero exit.
Running a plan (the checks before it, the run, the dry run) is
`mmzarr._cli_acquire`'s; the consoles, progress display and the handling of
Ctrl-C (and SIGTERM, SIGHUP) during a run are `mmzarr._terminal`'s.
The work itself is done by the library (`AcquisitionSettings`, `MDAWriter`,
`validate`, `finalize`); plan files are read and checked by
`mmzarr._planfile`; which paths a command may use is `mmzarr._cli_paths`'
(with `CLIError`).
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


from mmzarr._cli_acquire import (
    check_backend,
    dry_run,
    one_line,
    release_cores,
    run_acquisition,
)
from mmzarr._cli_paths import (
    CLIError,
    check_output_path,
    existing_dataset,
    local_dataset,
)
from mmzarr._info import count
from mmzarr._terminal import (
    console,
    err_console,
    say,
    signal_label,
    signum_of,
    stop_signals_interrupt,
)

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
    check_backend(backend)  # before the banner: a mistake is the only output
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
    return _cancelled(n, out, cancelled) if cancelled else code


def _cancelled(n: int, out: str, signum: int) -> int:
    """Report a Ctrl-C (or SIGTERM, SIGHUP) that was handled cleanly.

    The exit status is the shell's for that signal: 128 + its number.
    """
    say(
        f"mmzarr: cancelled ({signal_label(signum)}) after {count(n, 'frame')}; "
        f"{out!r} is a valid dataset of what was acquired",
        err_console,
    )
    return 128 + signum


#: what `--overwrite` replaces (and what it never does)
OVERWRITE_HELP = (
    "replace OUT if it is an mmzarr dataset (holding nothing else: not a "
    "user's labels or notes) or an empty directory (anything else is refused)"
)


def _parser() -> argparse.ArgumentParser:
    from mmzarr import __version__
    from mmzarr.backends import BACKENDS

    p = argparse.ArgumentParser(
        prog="mmzarr",
        description="Stream microscope acquisitions into OME-Zarr v0.5.",
        epilog="Exit status: 0 ok, 1 error or invalid dataset, 130 cancelled by "
        "Ctrl-C, 143 by SIGTERM, 129 by SIGHUP (what was acquired stays a valid "
        "dataset).",
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
        check_backend(args.backend)
        seq = load_plan(args.plan)
        if args.dry_run:
            return dry_run(
                seq,
                args.out,
                config=args.config,
                backend=args.backend,
                overwrite=args.overwrite,
            )
        n, cancelled = run_acquisition(
            seq,
            args.out,
            config=args.config,
            backend=args.backend,
            overwrite=args.overwrite,
        )
        say(f"wrote {count(n, 'frame')} to {args.out}")
        return _cancelled(n, args.out, cancelled) if cancelled else 0
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
        text = one_line(message) if isinstance(message, Warning) else str(message)
        if text not in shown:  # the same warning from settings and writer: once
            shown.add(text)
            say(f"mmzarr: warning: {text}", err_console)

    with warnings.catch_warnings():
        # the CLI shows every warning as one line, whatever filters are set
        warnings.simplefilter("always")
        warnings.showwarning = show_warning
        try:
            with stop_signals_interrupt():
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
        except KeyboardInterrupt as e:
            say(f"mmzarr: interrupted ({signal_label(signum_of(e))})", err_console)
            return 128 + signum_of(e)
        finally:
            release_cores()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
