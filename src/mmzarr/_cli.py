"""The `mmzarr` command: demo, acquire, info, validate, finalize.

Owns argument parsing, progress display and turning errors into one-line
messages with a non-zero exit. The work itself is done by the library
(`AcquisitionSettings`, `MDAWriter`, `validate`, `finalize`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

if TYPE_CHECKING:
    from collections.abc import Sequence

    import useq
    from rich.progress import Task

    from mmzarr._settings import AcquisitionSettings

__all__ = ["main"]

console = Console()
err_console = Console(stderr=True)


class CLIError(Exception):
    """A user-facing error: printed on one line, exit status 1 (or `code`)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def demo_plan() -> useq.MDASequence:
    """The built-in plate plan of `mmzarr demo`: 3 wells x 2x2 fields, 2 channels,
    3 z planes, 3 time points."""  # noqa: D205
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


def load_plan(path: str | Path) -> useq.MDASequence:
    """Read a useq plan from a YAML or JSON file (one-line errors)."""
    import pydantic
    import useq
    import yaml

    p = Path(path)
    if not p.is_file():
        raise CLIError(f"plan file not found: {str(p)!r}")
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        reason = " ".join(str(e).split())
        raise CLIError(f"plan {str(p)!r} is not valid YAML/JSON: {reason}") from e
    if not isinstance(data, dict):
        raise CLIError(f"plan {str(p)!r} must be a mapping, got {type(data).__name__}")
    try:
        return useq.MDASequence.model_validate(data)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "plan"
        raise CLIError(
            f"useq rejected plan {str(p)!r}: {loc}: {first['msg']} "
            f"(got {first.get('input')!r})"
        ) from e


class _RateColumn(ProgressColumn):
    """frames/s and MB/s."""

    def __init__(self, frame_bytes: int) -> None:
        super().__init__()
        self.frame_bytes = frame_bytes

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed or 0.0
        return Text(f"{speed:6.1f} frames/s {speed * self.frame_bytes / 1e6:7.1f} MB/s")


def _progress(total: int | None, frame_bytes: int) -> Progress:
    columns: list[Any] = [TextColumn("[bold]acquiring")]
    if total:
        columns += [BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    else:
        columns += [TextColumn("{task.completed} frames")]
    columns += [_RateColumn(frame_bytes), TimeElapsedColumn()]
    return Progress(*columns, console=err_console, transient=False)


def run_acquisition(
    seq: useq.MDASequence,
    out: Path,
    *,
    config: str | None = None,
    backend: str = "acquire-zarr",
    overwrite: bool = False,
) -> int:
    """Run `seq` on a core (demo rig or `config`) into `out`; returns frames."""
    from mmzarr.demo import demo_core
    from mmzarr.handlers import MDAWriter

    if out.exists() and not overwrite:
        raise CLIError(f"output {str(out)!r} already exists; use --overwrite")
    try:
        core = demo_core(config)
    except Exception as e:
        raise CLIError(f"cannot load config {config!r}: {e}") from e
    settings = _settings(seq, core, backend)
    writer = MDAWriter(out, backend=backend, overwrite=overwrite, core=core)
    frame_bytes = max(
        (im.frame_shape[0] * im.frame_shape[1] for im in settings.images), default=0
    ) * settings.itemsize
    with _progress(settings.frames_planned, frame_bytes) as progress:
        task = progress.add_task("frames", total=settings.frames_planned)
        core.mda.events.frameReady.connect(lambda *_: progress.advance(task))
        thread = core.run_mda(seq, output=writer)
        try:
            while thread.is_alive():
                thread.join(0.1)
        except KeyboardInterrupt:
            err_console.print("[yellow]cancelling (Ctrl-C)...[/]")
            core.mda.cancel()
            thread.join()
    try:
        writer.close()
    except Exception as e:
        raise CLIError(f"acquisition failed: {e}") from e
    return writer.frames_written


def _settings(seq: useq.MDASequence, core: Any, backend: str) -> AcquisitionSettings:
    from mmzarr._settings import AcquisitionSettings
    from mmzarr.backends import BACKENDS

    if backend not in BACKENDS:
        raise CLIError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)}")
    if not BACKENDS[backend].is_available():
        extra = BACKENDS[backend].extra
        raise CLIError(f'backend {backend!r} is not installed: pip install "mmzarr[{extra}]"')
    try:
        return AcquisitionSettings.from_useq(seq, core=core)
    except ValueError as e:
        raise CLIError(f"plan cannot be written: {e}") from e


def print_settings(settings: AcquisitionSettings) -> None:
    """The dry-run view: layout, images, shapes, chunks/shards, bytes."""
    table = Table(title=f"layout: {settings.layout}  dtype: {settings.dtype}")
    for col in ("image", "name", "shape", "chunks", "shards", "frames"):
        table.add_column(col)
    for im in settings.images:
        table.add_row(
            im.key or "(root)",
            im.name or "",
            "x".join("∞" if s is None else str(s) for s in im.shape),
            "x".join(str(d.chunk_size) for d in im.dimensions),
            "x".join(str(d.shard_size) for d in im.dimensions)
            if any(d.shard for d in im.dimensions)
            else "-",
            str(im.frames_planned if im.frames_planned is not None else "∞"),
        )
    console.print(table)
    if settings.plate is not None:
        console.print(f"plate {settings.plate.name}: wells {', '.join(settings.plate.wells)}")
    nbytes = settings.bytes_planned
    total = "unbounded" if nbytes is None else f"{nbytes / 1e6:.1f} MB"
    console.print(
        f"{len(settings.images)} images, {settings.frames_planned or '∞'} frames, "
        f"expected {total} uncompressed, compression {settings.compression}"
    )


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def info(out: Path) -> None:
    """Print the dataset as a tree."""
    from mmzarr._validate import array_documents

    root_json = out / "zarr.json"
    if not root_json.is_file():
        raise CLIError(f"{str(out)!r} is not a zarr v3 dataset (no zarr.json)")
    try:
        attrs = json.loads(root_json.read_text(encoding="utf-8"))["attributes"]
    except (ValueError, KeyError) as e:
        raise CLIError(f"{root_json}: unreadable ({e})") from e
    mm = attrs.get("mmzarr", {})
    ome = attrs.get("ome", {})
    layout = (
        "plate" if "plate" in ome else "collection"
        if "bioformats2raw.layout" in ome else "image"
    )
    tree = Tree(
        f"[bold]{out}[/] ({layout}, {_du(out) / 1e6:.1f} MB on disk, "
        f"status {mm.get('status', 'unknown')}, {mm.get('frames_written', '?')}"
        f"/{mm.get('frames_planned') or '∞'} frames)"
    )
    arrays = array_documents(out)
    images = mm.get("images", {})
    branches: dict[str, Tree] = {}
    for path, doc in arrays.items():
        key = path.rsplit("/", 1)[0] if "/" in path else ""
        parent = tree
        if layout == "plate":
            well = "/".join(key.split("/")[:2])
            if well not in branches:
                branches[well] = tree.add(f"well {well}")
            parent = branches[well]
        group = json.loads(
            ((out / key / "zarr.json") if key else root_json).read_text()
        )["attributes"].get("ome", {})
        chans = [c.get("label") for c in group.get("omero", {}).get("channels", [])]
        dims = "".join(doc.get("dimension_names") or [])
        written = images.get(key, {}).get("frames_written", "?")
        parent.add(
            f"{('field ' + key.split('/')[-1]) if layout == 'plate' else (key or '(root)')}"
            f": {dims} {tuple(doc['shape'])} {doc['data_type']}"
            f" channels={chans} frames={written}"
        )
    console.print(tree)


def _cmd_validate(out: Path) -> int:
    from mmzarr._validate import validate

    report = validate(out)
    (console if report.ok else err_console).print(report.format(), markup=False)
    return 0 if report.ok else 1


def _cmd_finalize(out: Path) -> int:
    from mmzarr._finalize import finalize

    try:
        report = finalize(out)
    except (OSError, ValueError) as e:
        raise CLIError(f"cannot finalize {str(out)!r}: {e}") from e
    console.print(report.format(), markup=False)
    return 0 if report.ok else 1


def _cmd_demo(out: Path, backend: str, overwrite: bool) -> int:
    seq = demo_plan()
    console.print(
        f"mmzarr demo: a 3-well plate (2x2 fields, 2 channels, 3 z, 3 time points) "
        f"on the built-in demo rig -> {out}"
    )
    t0 = time.perf_counter()
    n = run_acquisition(seq, out, backend=backend, overwrite=overwrite)
    dt = time.perf_counter() - t0
    console.print(f"wrote {n} frames in {dt:.1f} s")
    code = _cmd_validate(out)
    console.print(
        "open it with:\n"
        f"  napari --plugin napari-ome-zarr {out}\n"
        f"  python -c \"import zarr; print(zarr.open_group('{out}').tree())\"\n"
        f"  mmzarr info {out}"
    )
    return code


def _parser() -> argparse.ArgumentParser:
    from mmzarr import __version__
    from mmzarr.backends import BACKENDS

    p = argparse.ArgumentParser(
        prog="mmzarr", description="Stream microscope acquisitions into OME-Zarr v0.5."
    )
    p.add_argument("--version", action="version", version=f"mmzarr {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    backends = sorted(BACKENDS)

    d = sub.add_parser("demo", help="acquire a small plate on the built-in demo rig")
    d.add_argument("out", nargs="?", default="demo.ome.zarr", type=Path)
    d.add_argument("--backend", default="acquire-zarr", help=f"one of {backends}")
    d.add_argument("--overwrite", action="store_true")

    a = sub.add_parser("acquire", help="run a useq plan (YAML/JSON) into OUT")
    a.add_argument("plan", type=Path)
    a.add_argument("out", type=Path)
    a.add_argument("--config", help="Micro-Manager .cfg (default: demo rig)")
    a.add_argument("--backend", default="acquire-zarr", help=f"one of {backends}")
    a.add_argument("--overwrite", action="store_true")
    a.add_argument("--dry-run", action="store_true", help="print settings only")

    for name, text in (
        ("info", "show a dataset as a tree"),
        ("validate", "check a dataset (exit 1 when invalid)"),
        ("finalize", "make a crashed dataset valid"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("out", type=Path)
    return p


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        return _cmd_demo(args.out, args.backend, args.overwrite)
    if args.command == "acquire":
        seq = load_plan(args.plan)
        if args.dry_run:
            from mmzarr.demo import demo_core

            print_settings(_settings(seq, demo_core(args.config), args.backend))
            return 0
        n = run_acquisition(
            seq, args.out, config=args.config, backend=args.backend,
            overwrite=args.overwrite,
        )
        console.print(f"wrote {n} frames to {args.out}")
        return 0
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
    try:
        return _dispatch(args)
    except CLIError as e:
        err_console.print(f"mmzarr: error: {e}", markup=False, highlight=False)
        return e.code
    except KeyboardInterrupt:
        err_console.print("mmzarr: interrupted", markup=False)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
