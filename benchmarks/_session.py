"""One benchmark session: records, command line, JSON and plot output.

Owns what wraps the measurements: the machine, version and git records, the
scratch directory (refused on tmpfs, which would measure memory, not a disk),
the command line shared by `run.py` and every section module run alone,
running the sections in order with their wall times, collecting their targets,
and writing the JSON (and the plot, whose targets panel is drawn here). The
measurements themselves are in `_harness` and the section modules.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from _harness import FULL, QUICK, REPO, log, print_targets

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from _harness import Config, Target


@dataclass(frozen=True)
class Section:
    """One measured thing: `run` returns its JSON block, `targets` checks it."""

    name: str
    run: Callable[[Config, Path], dict[str, Any]]
    targets: Callable[[dict[str, Any], Config], list[Target]] | None = None


def fs_type(path: Path) -> str:
    """File system type of the mount holding `path` (from /proc/mounts)."""
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mount = parts[1]
                inside = (
                    mount == "/"
                    or resolved == mount
                    or resolved.startswith(mount.rstrip("/") + "/")
                )
                if inside and len(mount) >= len(best):
                    best, kind = mount, parts[2]
    except OSError:
        pass
    return kind


def git_state() -> dict[str, str]:
    """Commit of the repository and whether src/ has uncommitted changes."""

    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        )
        return proc.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "src_dirty": "yes" if git("status", "--porcelain", "--", "src") else "no",
    }


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in (
        "mmzarr",
        "ome-writers",
        "acquire-zarr",
        "tensorstore",
        "zarr",
        "zarrs",
        "numpy",
        "pymmcore-plus",
        "useq-schema",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def parser(
    description: str, *, out_help: str, default_out: Path | None = None
) -> argparse.ArgumentParser:
    """The command line of `run.py` and of every section module run alone."""
    p = argparse.ArgumentParser(description=description.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (< 2 min)")
    p.add_argument(
        "--out",
        type=Path,
        default=default_out,
        help=out_help,
    )
    p.add_argument(
        "--scratch",
        type=Path,
        default=None,
        help="scratch parent directory (default: next to the repository, same disk)",
    )
    return p


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def bench(
    cli: argparse.ArgumentParser,
    args: argparse.Namespace,
    sections: Sequence[Section],
    *,
    stem: str,
    target_order: Sequence[str] | None = None,
    plot: Callable[[dict[str, Any], Path], None] | None = None,
) -> int:
    """Run `sections` in order, check their targets, write `<out>/<stem>.json`.

    Targets are listed in `target_order` (section names; default: run order),
    then `plot` draws `<out>/<stem>.png` when given.
    """
    warnings.simplefilter("ignore")  # pixel-size/t-scale and ome-writers notices
    cfg = QUICK if args.quick else FULL
    scratch_parent = args.scratch or REPO.parent
    scratch = Path(tempfile.mkdtemp(prefix="mmzarr-bench-", dir=scratch_parent))
    kind = fs_type(scratch)
    if kind in ("tmpfs", "ramfs"):
        shutil.rmtree(scratch, ignore_errors=True)
        cli.error(f"scratch {scratch} is on {kind}: pick a disk with --scratch")
    t_start = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    results: dict[str, Any] = {
        "started": started,
        "config": asdict(cfg),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "mem_gib": round(
                os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1
            ),
            "scratch": str(scratch),
            "scratch_fs": kind,
            "loadavg_start": loadavg(),
        },
        "versions": versions(),
        "git": git_state(),
    }
    log(
        f"mmzarr benchmark ({cfg.name}) {started}; commit {results['git']['commit']}"
        f" (src dirty: {results['git']['src_dirty']}); scratch {scratch} ({kind}); "
        f"{os.cpu_count()} CPUs; load average {results['machine']['loadavg_start']}"
    )
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        log("WARNING: the machine is busy; timings will be noisy")
    timings: dict[str, float] = {}
    try:
        for section in sections:
            t = time.perf_counter()
            results[section.name] = section.run(cfg, scratch)
            timings[section.name] = time.perf_counter() - t
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    by_name = {s.name: s for s in sections}
    targets = [
        target
        for name in target_order or by_name
        if (check := by_name[name].targets) is not None
        for target in check(results[name], cfg)
    ]
    print_targets(targets)
    results["targets"] = [asdict(t) for t in targets]
    results["machine"]["loadavg_end"] = loadavg()
    results["sections_s"] = timings
    results["elapsed_s"] = time.perf_counter() - t_start
    written: list[Path] = []
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        json_path = args.out / f"{stem}.json"
        json_path.write_text(
            json.dumps(_jsonable(results), indent=1) + "\n", encoding="utf-8"
        )
        written.append(json_path)
        if plot is not None:
            try:
                plot(results, args.out / f"{stem}.png")
                written.append(args.out / f"{stem}.png")
            except ImportError:
                log("matplotlib is not installed: no plot (pip install matplotlib)")
    log(
        "\nsections: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        + f"; total {results['elapsed_s']:.0f} s; load average at end "
        f"{results['machine']['loadavg_end']}"
    )
    if written:
        log("wrote " + " and ".join(str(p) for p in written))
    return 0


def draw_targets(ax: Any, targets: list[dict[str, Any]]) -> None:
    """Each target's margin (>= 1 passes) on a log axis."""
    ys = np.arange(len(targets))
    ax.barh(
        ys,
        [t["margin"] for t in targets],
        color=["C2" if t["passed"] else "C3" for t in targets],
    )
    ax.axvline(1, color="k", ls=":")
    ax.set_xscale("log")
    ax.set_yticks(ys, [t["short"] for t in targets], fontsize=6)
    ax.set_xlabel("measured / target (>= 1 passes)")
    ax.set_title("targets")
    ax.invert_yaxis()


def alone_out_help(stem: str) -> str:
    return f"directory for {stem}.json (default: write nothing)"


def run_alone(
    section: Section, description: str, argv: Sequence[str] | None = None
) -> int:
    """Entry point of a section module run by itself (no plot, JSON on --out)."""
    p = parser(description, out_help=alone_out_help(section.name))
    return bench(p, p.parse_args(argv), [section], stem=section.name)
