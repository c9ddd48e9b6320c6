"""Peak memory of a long stream: does it stay bounded by `max_buffer_bytes`?

Each run in its own process (this module, called with ``--memory-child``):
stream the config's two frame counts, uncompressed, with mmzarr's default
backend and default `max_buffer_bytes`, and with ome-writers' acquire-zarr and
tensorstore backends for comparison. `growth` = the child's peak RSS (VmHWM)
minus its RSS just before the stream was created.

Run alone: ``python benchmarks/memory.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from _harness import (
    DEFAULT_BACKEND,
    MB,
    MIB,
    Config,
    Target,
    log,
    make_ring,
    remove,
    settle,
)
from _session import Section, alone_out_help, bench, parser
from streams import mmzarr_settings, ome_settings

MEM_SLACK = 128 * MIB
MEM_SAME = 0.10

#: (writer, backend) of the memory children: mmzarr's default backend (the
#: target), then ome-writers' acquire-zarr and tensorstore for comparison.
MEMORY_WRITERS = (
    ("mmzarr", DEFAULT_BACKEND),
    ("ome-writers", "acquire-zarr"),
    ("ome-writers", "tensorstore"),
)


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="utf-8") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    """Peak RSS of this process image (VmHWM).

    Not `ru_maxrss`: Linux carries the forked parent's peak RSS over `exec`
    into the child's `ru_maxrss`, so a child of a big parent would report the
    parent's size. VmHWM belongs to the child's own address space.
    """
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_child(
    writer: str, backend: str, side: int, frames: int, path: Path
) -> dict[str, Any]:
    """Runs in a subprocess: stream `frames` frames, report peak RSS growth.

    Growth is the process's peak RSS (VmHWM) minus its RSS just before the
    stream is created (after imports and the frame ring).
    """
    warnings.simplefilter("ignore")
    ring = make_ring(side)
    max_buffer: int | None = None
    if writer == "mmzarr":
        from mmzarr import create_stream

        settings = mmzarr_settings(side, frames, "none")
        max_buffer = settings.max_buffer_bytes

        def open_() -> Any:
            return create_stream(path, settings, backend=backend)

    else:
        import ome_writers as ow

        ow_settings = ome_settings(path, side, frames, backend, "none")

        def open_() -> Any:
            return ow.create_stream(ow_settings)

    gc.collect()
    base = _rss_bytes()
    sampled = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            sampled.append(_rss_bytes())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    # the ring's frames are never changed: mmzarr takes them handed over
    # (`owned`), as ome-writers takes every frame
    handed_over = {"owned": True} if writer == "mmzarr" else {}
    with open_() as stream:
        for i in range(frames):
            stream.append(ring[i % len(ring)], **handed_over)
    seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    peak = _peak_rss_bytes()
    return {
        "writer": writer,
        "backend": backend,
        "side": side,
        "frames": frames,
        "bytes": frames * side * side * 2,
        "seconds": seconds,
        "max_buffer_bytes": max_buffer,
        "baseline_rss": base,
        "peak_rss": peak,
        "growth": peak - base,
        "sampled_peak_growth": max(sampled) - base,
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def run(cfg: Config, scratch: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for writer, backend in MEMORY_WRITERS:
        for frames in cfg.mem_frames:
            path = scratch / f"mem{frames}.ome.zarr"
            remove(path)
            settle()
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--memory-child",
                f"{writer},{backend},{cfg.mem_side},{frames},{path}",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            remove(path)
            if proc.returncode != 0:
                rows.append(
                    {
                        "writer": writer,
                        "backend": backend,
                        "frames": frames,
                        "error": proc.stderr[-2000:],
                    }
                )
                continue
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    log(
        f"\n== Peak memory: {cfg.mem_side}x{cfg.mem_side} uint16, no compression, "
        "one process per run; mmzarr with the default max_buffer_bytes =="
    )
    log(
        f"{'writer':<26} {'frames':>6} {'data GB':>8} {'s':>6} {'MB/s':>6} "
        f"{'base MiB':>9} {'peak MiB':>9} {'growth MiB':>11} {'limit MiB':>10}"
    )
    for r in rows:
        name = f"{r['writer']} {r['backend']}"
        if "error" in r:
            log(f"{name:<26} {r['frames']:>6} ERROR {r['error']}")
            continue
        limit = (
            f"{(r['max_buffer_bytes'] + MEM_SLACK) / MIB:10.0f}"
            if r["max_buffer_bytes"]
            else f"{'-':>10}"
        )
        log(
            f"{name:<26} {r['frames']:>6} {r['bytes'] / 1e9:8.2f} {r['seconds']:6.1f} "
            f"{r['bytes'] / r['seconds'] / MB:6.0f} {r['baseline_rss'] / MIB:9.0f} "
            f"{r['peak_rss'] / MIB:9.0f} {r['growth'] / MIB:11.0f} {limit}"
        )
    return {"side": cfg.mem_side, "backend": DEFAULT_BACKEND, "rows": rows}


def targets(memory: dict[str, Any], cfg: Config) -> list[Target]:
    """mmzarr's growth under the buffer limit, and the same for both lengths."""
    mem = [r for r in memory["rows"] if r["writer"] == "mmzarr" and "error" not in r]
    if len(mem) != 2:
        return [Target("peak RSS growth", "child process failed", False)]
    limit = mem[0]["max_buffer_bytes"] + MEM_SLACK
    out = [
        Target(
            f"peak RSS growth, mmzarr {r['backend']}, {r['frames']} frames: "
            "<= max_buffer_bytes + 128 MiB",
            f"{r['growth'] / MIB:.0f} MiB (limit {limit / MIB:.0f} MiB)",
            r["growth"] <= limit,
            "",
            limit / max(r["growth"], 1),
            f"RSS growth {r['frames']} frames",
        )
        for r in mem
    ]
    g0, g1 = mem[0]["growth"], mem[1]["growth"]
    apart = abs(g1 - g0) / max(g0, g1, 1)
    out.append(
        Target(
            f"peak RSS growth {mem[0]['frames']} vs {mem[1]['frames']} frames "
            "within 10%",
            f"{g0 / MIB:.0f} vs {g1 / MIB:.0f} MiB ({apart:.0%} apart)",
            abs(g1 - g0) <= MEM_SAME * max(g0, g1),
            "",
            MEM_SAME / max(apart, 1e-3),
            "RSS growth same for both",
        )
    )
    return out


def draw(ax: Any, memory: dict[str, Any]) -> None:
    """Peak RSS growth per writer and length, with mmzarr's limit."""
    mem = [r for r in memory["rows"] if "error" not in r]
    short = {"mmzarr": "mmzarr", "ome-writers": "ome-w"}
    labels = [f"{short[r['writer']]}\n{r['backend']}\n{r['frames']}" for r in mem]
    ax.bar(range(len(mem)), [r["growth"] / MIB for r in mem], color="C5")
    limits = [r["max_buffer_bytes"] for r in mem if r.get("max_buffer_bytes")]
    if limits:
        ax.axhline((limits[0] + MEM_SLACK) / MIB, color="k", ls=":", label="limit")
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(mem)), labels, fontsize=7)
    ax.set_ylabel("peak RSS growth, MiB")
    ax.set_title(f"memory, {memory['side']}^2 frames")


SECTION = Section("memory", run, targets)


def main(argv: list[str] | None = None) -> int:
    """Run the memory section, or (with ``--memory-child``) one child."""
    p = parser(__doc__ or "", out_help=alone_out_help(SECTION.name))
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        warnings.simplefilter("ignore")
        writer, backend, side, frames, path = args.memory_child.split(",", 4)
        print(
            json.dumps(
                memory_child(writer, backend, int(side), int(frames), Path(path))
            )
        )
        return 0
    return bench(p, args, [SECTION], stem=SECTION.name)


if __name__ == "__main__":
    sys.exit(main())
