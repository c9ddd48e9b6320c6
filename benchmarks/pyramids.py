"""What writing resolution levels during acquisition costs (issue #11).

The largest stream of the config, uncompressed, per backend: throughput of
level-0 bytes with `downsample={"levels": "auto"}` (halving until a side is
<= 256) over the same stream without levels, interleaved; the target
(issue #20) is >= `TARGET_PYRAMID` of it on every backend.

Run alone: ``python benchmarks/pyramids.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from _harness import (
    BACKENDS,
    MB,
    Config,
    Target,
    alternate,
    log,
    make_ring,
    median,
    remove,
    settle,
    write_alone,
)
from _session import Section, run_alone
from streams import run_variants

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

#: throughput with levels / without, at least
TARGET_PYRAMID = 0.7
#: context: the library alone (no mmzarr) writing the same level arrays, with
#: the level frames made beforehand, vs the full-resolution array alone
ALONE = ("acquire-zarr", "tensorstore")
#: downsample option of each case
LEVELS: dict[str, dict[str, Any]] = {
    "none": {},
    "auto": {"downsample": {"levels": "auto"}},
}


def run(cfg: Config, scratch: Path) -> dict[str, Any]:
    side, n = max(cfg.streams)
    ring = make_ring(side)
    log(f"\n-- pyramids {side}x{side} uint16, {n} frames/run, {cfg.reps} rounds --")
    cases = run_variants(scratch / "pyr.ome.zarr", ring, n, cfg.reps, LEVELS)
    alone = _alone(scratch, ring, n, cfg.reps)
    means_ms = _means_ms(ring)
    log(f"the 2x2 means of one frame's levels: {means_ms:.1f} ms")
    rows = []
    head = f"{'backend':<13} {'no levels':>10} {'levels':>8} {'ratio':>6}"
    log(f"{head} {'spread':>6}  {'alone: ratio':>12}  (MB/s of level 0)")
    for b in BACKENDS:
        plain, pyr = cases[(b, "none")].mbps, cases[(b, "auto")].mbps
        spreads = (cases[(b, "none")].spread, cases[(b, "auto")].spread)
        row = {
            "backend": b,
            "plain_mbps": plain,
            "pyramid_mbps": pyr,
            "ratio": pyr / plain,
            "spread": max(spreads),
            "side": side,
            "means_ms": means_ms,
            # a frame's time in the stream without levels
            "frame_ms": side * side * 2 / (plain * MB) * 1e3,
        }
        if b in alone:
            row["alone"] = alone[b]
        rows.append(row)
        lib = f"{alone[b]['ratio']:.2f}" if b in alone else "-"
        log(
            f"{b:<13} {plain:>10.0f} {pyr:>8.0f} {pyr / plain:>6.2f} "
            f"{max(spreads):>6.2f}  {lib:>12}"
        )
    return {"side": side, "frames": n, "rows": rows}


def _means_ms(ring: list[np.ndarray]) -> float:
    """Milliseconds of the 2x2 means of one frame's levels (median), as the
    stream computes them."""
    from mmzarr._pyramid import downsample_frame
    from mmzarr._settings import Downsample

    levels = Downsample(levels="auto").extra_levels(ring[0].shape)
    times = []
    for frame in ring * 5:
        t0 = time.perf_counter()
        for _ in range(levels):
            frame = downsample_frame(frame, "mean")
        times.append(time.perf_counter() - t0)
    return median(times) * 1e3


def _alone(
    scratch: Path, ring: list[np.ndarray], n: int, reps: int
) -> dict[str, dict[str, float]]:
    """Per library: MB/s of level 0 alone and with the level arrays, and ratio."""
    import useq

    from mmzarr import AcquisitionSettings
    from mmzarr._pyramid import all_arrays

    side = ring[0].shape[0]
    settings = AcquisitionSettings.from_useq(
        useq.MDASequence(time_plan={"interval": 0, "loops": n}),
        image_shape=(side, side),
        dtype="uint16",
        pixel_size_um=1.0,
        downsample={"levels": "auto"},
    )
    shapes = [spec.settings.frame_shape for spec in all_arrays(settings)]
    # decimated frames of each level's shape (the library's cost, not a mean's)
    levels = [
        [f[: h * 2**k : 2**k, : w * 2**k : 2**k].copy() for f in ring]
        for k, (h, w) in enumerate(shapes)
    ]
    path = scratch / "alone.zarr"
    times: dict[tuple[str, int], list[float]] = {}
    for rep in range(reps):
        for b in ALONE:
            for k in alternate([1, len(levels)], rep):
                remove(path)
                settle()
                t0 = time.perf_counter()
                write_alone(b, path, levels[:k], n)
                times.setdefault((b, k), []).append(time.perf_counter() - t0)
                remove(path)
    nbytes = n * side * side * 2
    out = {}
    for b in ALONE:
        one = nbytes / median(times[(b, 1)]) / MB
        all_ = nbytes / median(times[(b, len(levels))]) / MB
        out[b] = {"plain_mbps": one, "pyramid_mbps": all_, "ratio": all_ / one}
    return out


def targets(pyr: dict[str, Any], cfg: Config) -> list[Target]:
    """Level-0 throughput with resolution levels vs without, per backend."""
    return [
        Target.check(
            f"{pyr['side']}² stream with levels (auto) vs without, {r['backend']}: "
            f">= {TARGET_PYRAMID}x",
            f"{r['ratio']:.2f}x "
            f"({r['pyramid_mbps']:.0f} vs {r['plain_mbps']:.0f} MB/s, spread "
            f"{r.get('spread', float('nan')):.2f})",
            r["ratio"],
            TARGET_PYRAMID,
            note=_reason(r),
            short=f"levels {r['backend']}",
        )
        for r in pyr["rows"]
    ]


def _reason(row: dict[str, Any]) -> str:
    note = (
        f"the 2x2 means run on the acquisition thread: {row['means_ms']:.1f} ms per "
        f"{row['side']}² frame (measured in this run), "
        f"{row['means_ms'] / row['frame_ms']:.0%} of the {row['frame_ms']:.1f} ms "
        "a frame takes in the stream without levels"
    )
    if "alone" in row:
        a = row["alone"]
        note += (
            f"; {row['backend']} alone (no mmzarr, level frames made beforehand) "
            f"writes level 0 with the level arrays at {a['ratio']:.2f}x its "
            f"throughput without them ({a['pyramid_mbps']:.0f} vs "
            f"{a['plain_mbps']:.0f} MB/s): each level adds a chunk file per "
            "frame, fsynced"
        )
    return note


SECTION = Section("pyramids", run, targets)

if __name__ == "__main__":
    sys.exit(run_alone(SECTION, __doc__ or ""))
