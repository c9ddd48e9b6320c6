"""How much an mmzarr writer slows down a pymmcore-plus MDA on the demo camera.

A time plan at interval 0 on `mmzarr.demo.demo_core()`, with a paced camera
(`Timing` `exposure`, as a real camera) and an instant one (`Timing` `instant`,
exposure 0: frames as fast as it renders them, ~1 core). Variants, interleaved:
no output, `MDAWriter` per backend, pymmcore-plus' own ``.ome.zarr`` output
(ome-writers), and, as context, a raw durable write of the same bytes.

Run alone: ``python benchmarks/mda.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from _harness import (
    BACKENDS,
    DEFAULT_BACKEND,
    MB,
    MIB,
    Config,
    Target,
    log,
    make_ring,
    median,
    remove,
    run_raw,
    run_rounds,
    settle,
    write_alone,
)
from _session import Section, run_alone

if TYPE_CHECKING:
    from pathlib import Path

#: paced camera: MDAWriter (every backend) vs the MDA without output
TARGET_PACED = 1.05
#: instant camera: MDAWriter vs pymmcore-plus' own ome-writers output, the
#: default backend and every backend
TARGET_VS_OME_DEFAULT = 0.90
TARGET_VS_OME = 1.00
NO_OUTPUT = "no output"
OME_OUTPUT = "pymmcore-plus output=.ome.zarr (ome-writers)"
#: context, not a target: durably writing the MDA's bytes takes this long even
#: with nothing else to do (the floor for any writer on this disk)
RAW_WRITE = "raw write of the same bytes (tofile+fsync)"
#: variant name -> backend of the `MDAWriter` variants
WRITER_BACKEND = {f"MDAWriter {b}": b for b in BACKENDS}
#: context, not targets: the library by itself, no MDA and no mmzarr, writing
#: the same frames one per chunk file, durably (the CPU a writer built on it
#: cannot go below)
ALONE = {f"{b} alone (no MDA, no mmzarr)": b for b in ("acquire-zarr", "tensorstore")}


def bench_mda(cfg: Config, scratch: Path, *, exposure_ms: float) -> dict[str, Any]:
    """The MDA with and without outputs; the camera takes `exposure_ms` per frame.

    `exposure_ms=0`: the demo camera's `Timing` is `instant`; otherwise
    `exposure`.
    """
    import useq

    from mmzarr import MDAWriter
    from mmzarr.demo import demo_core

    logging.getLogger("pymmcore-plus").setLevel(logging.ERROR)
    core = demo_core()
    cam = core.getCameraDevice()
    core.setProperty(cam, "SensorWidth", cfg.mda_side)
    core.setProperty(cam, "SensorHeight", cfg.mda_side)
    core.setProperty(cam, "Timing", "exposure" if exposure_ms else "instant")
    core.setExposure(exposure_ms)
    seq = useq.MDASequence(time_plan={"interval": 0, "loops": cfg.mda_frames})
    core.mda.run(useq.MDASequence(time_plan={"interval": 0, "loops": 5}))  # warm up

    names = [NO_OUTPUT, *WRITER_BACKEND, OME_OUTPUT, RAW_WRITE, *ALONE]
    variants: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}  # process CPU s
    ring = make_ring(cfg.mda_side)
    errors: dict[str, str] = {}
    path = scratch / "mda.ome.zarr"
    reps = cfg.mda_reps if not exposure_ms else max(1, cfg.mda_reps - 2)

    def run_variant(name: str) -> None:
        remove(path)
        settle()
        c0 = os.times()
        if name in ALONE:
            t0 = time.perf_counter()
            write_alone(ALONE[name], path, [ring], cfg.mda_frames)
            seconds = time.perf_counter() - t0
        elif name == RAW_WRITE:
            seconds = run_raw(scratch / "raw.bin", ring, cfg.mda_frames).seconds
        elif name in WRITER_BACKEND:
            writer = MDAWriter(path, backend=WRITER_BACKEND[name])
            t0 = time.perf_counter()
            core.mda.run(seq, output=writer)
            writer.close()
            seconds = time.perf_counter() - t0
            if writer.frames_written != cfg.mda_frames:
                errors[name] = f"wrote {writer.frames_written}/{cfg.mda_frames} frames"
        else:  # no output, or pymmcore-plus' own .ome.zarr writer
            output: dict[str, Any] = (
                {} if name == NO_OUTPUT else {"output": str(path), "overwrite": True}
            )
            t0 = time.perf_counter()
            core.mda.run(seq, **output)
            seconds = time.perf_counter() - t0
        c1 = os.times()
        variants[name].append(seconds)
        cpu[name].append(c1.user + c1.system - c0.user - c0.system)
        remove(path)

    run_rounds(names, reps, run_variant, errors, lambda n: bool(variants[n]))
    base = median(variants[NO_OUTPUT])
    timing = f"exposure {exposure_ms:g} ms, paced" if exposure_ms else "instant"
    log(
        f"\n== MDA on the demo camera ({timing}): {cfg.mda_side}x{cfg.mda_side} "
        f"uint16, {cfg.mda_frames} frames, interval 0, median of {reps} =="
    )
    log(f"{'variant':<46} {'wall s':>7} {'x no output':>12} {'CPU s':>6}  runs")
    rows = []
    for name, times in variants.items():
        med = median(times)
        ratio = med / base
        cpu_s = median(cpu[name])
        rows.append(
            {
                "variant": name,
                "wall_s": med,
                "ratio": ratio,
                "cpu_s": cpu_s,
                "runs": times,
            }
        )
        note = f"  ERROR {errors[name]}" if name in errors else ""
        log(
            f"{name:<46} {med:7.2f} {ratio:12.2f} {cpu_s:6.2f}  "
            f"{', '.join(f'{t:.2f}' for t in times)}{note}"
        )
    return {
        "side": cfg.mda_side,
        "frames": cfg.mda_frames,
        "exposure_ms": exposure_ms,
        "timing": timing,
        "rows": rows,
        "errors": errors,
        "no_output_s": base,
        "raw_write_s": median(variants[RAW_WRITE]),
    }


def run(cfg: Config, scratch: Path) -> dict[str, Any]:
    return {
        "paced": bench_mda(cfg, scratch, exposure_ms=cfg.mda_exposure_ms),
        "instant": bench_mda(cfg, scratch, exposure_ms=0),
    }


def _targets_of(m: dict[str, Any]) -> list[Target]:
    """The MDA targets of one camera timing (paced or instant)."""
    mda = {r["variant"]: r for r in m["rows"]}
    mda_bytes = m["frames"] * m["side"] ** 2 * 2
    rate = mda_bytes / m["no_output_s"] / MB
    note = (
        f"the camera delivers {rate:.0f} MB/s; a raw durable write of the same "
        f"{mda_bytes / MIB:.0f} MiB alone takes {m['raw_write_s']:.2f} s "
        f"({m['raw_write_s'] / m['no_output_s']:.2f}x the MDA without output)"
    )
    if not m["exposure_ms"]:
        note += (
            "; the instant camera renders on one core and the writer needs the "
            "other: CPU-bound on 2 cores"
        )
    out = []
    paced = bool(m["exposure_ms"])
    ome = mda[OME_OUTPUT]
    for name, b in WRITER_BACKEND.items():
        r = mda[name]
        default = b == DEFAULT_BACKEND
        label = f"MDA ({m['timing']}, {rate:.0f} MB/s) with MDAWriter {b}" + (
            " (default backend)" if default else ""
        )
        short = f"MDA {'paced' if paced else 'instant'} {b}"
        if paced:
            out.append(
                Target.check(
                    f"{label}: <= {TARGET_PACED}x no output",
                    f"{r['ratio']:.2f}x ({r['wall_s']:.2f} vs "
                    f"{m['no_output_s']:.2f} s)",
                    r["ratio"],
                    TARGET_PACED,
                    at_most=True,
                    note=note,
                    short=short,
                )
            )
            continue
        limit = TARGET_VS_OME_DEFAULT if default else TARGET_VS_OME
        vs_ome = r["wall_s"] / ome["wall_s"]
        cpu_note = note
        if "cpu_s" in r:  # results of older runs have no CPU times
            idle = mda[NO_OUTPUT]["cpu_s"]
            cpu_note += (
                f"; CPU beyond the MDA without output: MDAWriter {b} "
                f"{r['cpu_s'] - idle:+.2f} s, ome-writers {ome['cpu_s'] - idle:+.2f} s"
            )
            alone = next((mda[a] for a, ab in ALONE.items() if ab == b), None)
            if alone is not None:
                cpu_note += (
                    f"; {b} alone writes these frames with {alone['cpu_s']:.2f} s "
                    "of CPU"
                )
        out.append(
            Target.check(
                f"{label}: <= {limit}x the time of pymmcore-plus' ome-writers output",
                f"{vs_ome:.2f}x ({r['wall_s']:.2f} vs {ome['wall_s']:.2f} s; "
                f"{r['ratio']:.2f}x vs {ome['ratio']:.2f}x no output)",
                vs_ome,
                limit,
                at_most=True,
                note=cpu_note,
                short=short,
            )
        )
    return out


def targets(mda: dict[str, Any], cfg: Config) -> list[Target]:
    """MDAWriter on each backend: paced vs no output, instant vs ome-writers."""
    return [t for m in mda.values() for t in _targets_of(m)]


def draw(ax: Any, mda: dict[str, Any]) -> None:
    """Wall time / no output per variant, paced and instant side by side."""
    labels = [r["variant"] for r in mda["paced"]["rows"]]
    y = np.arange(len(labels))
    for k, (kind, m) in enumerate(mda.items()):
        ratios = [r["ratio"] for r in m["rows"]]
        ax.barh(y + (k - 0.5) * 0.4, ratios, 0.4, label=f"{kind}: {m['timing']}")
    ax.axvline(TARGET_PACED, color="k", ls=":", label=f"{TARGET_PACED}x (paced)")
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel("wall time / MDA without output (median)")
    paced = mda["paced"]
    ax.set_title(f"MDA, demo camera {paced['side']}^2, {paced['frames']} frames")
    ax.legend(fontsize=8)
    ax.invert_yaxis()


SECTION = Section("mda", run, targets)

if __name__ == "__main__":
    sys.exit(run_alone(SECTION, __doc__ or ""))
