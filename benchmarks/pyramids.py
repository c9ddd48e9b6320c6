"""What writing resolution levels during acquisition costs (issue #11).

The largest stream of the config, uncompressed, per backend: throughput of
level-0 bytes with `downsample={"levels": "auto"}` (halving until a side is
<= 256) over the same stream without levels, interleaved; the target
(issue #20) is >= `TARGET_PYRAMID` of it on every backend.

Run alone: ``python benchmarks/pyramids.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from _harness import (
    BACKENDS,
    CaseResult,
    Config,
    Target,
    alternate,
    log,
    make_ring,
)
from _session import Section, run_alone
from streams import run_mmzarr

if TYPE_CHECKING:
    from pathlib import Path

#: throughput with levels / without, at least
TARGET_PYRAMID = 0.7
#: downsample option of each case
LEVELS: dict[str, dict[str, Any]] = {
    "none": {},
    "auto": {"downsample": {"levels": "auto"}},
}


def run(cfg: Config, scratch: Path) -> dict[str, Any]:
    side, n = max(cfg.streams)
    ring = make_ring(side)
    log(f"\n-- pyramids {side}x{side} uint16, {n} frames/run, {cfg.reps} rounds --")
    cases = {
        (b, lv): CaseResult("mmzarr", b, "none", side, n)
        for b in BACKENDS
        for lv in LEVELS
    }
    for rep in range(cfg.reps):
        for b in BACKENDS:
            for lv in alternate(list(LEVELS), rep):
                cases[(b, lv)].runs.append(
                    run_mmzarr(
                        scratch / "pyr.ome.zarr", ring, n, b, "none", **LEVELS[lv]
                    )
                )
    rows = []
    head = f"{'backend':<13} {'no levels':>10} {'levels':>8} {'ratio':>6}"
    log(f"{head}  (MB/s of level 0)")
    for b in BACKENDS:
        plain, pyr = cases[(b, "none")].mbps, cases[(b, "auto")].mbps
        rows.append(
            {
                "backend": b,
                "plain_mbps": plain,
                "pyramid_mbps": pyr,
                "ratio": pyr / plain,
            }
        )
        log(f"{b:<13} {plain:>10.0f} {pyr:>8.0f} {pyr / plain:>6.2f}")
    return {"side": side, "frames": n, "rows": rows}


def targets(pyr: dict[str, Any], cfg: Config) -> list[Target]:
    """Level-0 throughput with resolution levels vs without, per backend."""
    return [
        Target.check(
            f"{pyr['side']}² stream with levels (auto) vs without, {r['backend']}: "
            f">= {TARGET_PYRAMID}x",
            f"{r['ratio']:.2f}x "
            f"({r['pyramid_mbps']:.0f} vs {r['plain_mbps']:.0f} MB/s)",
            r["ratio"],
            TARGET_PYRAMID,
            note="the 2x2 mean and the level's write run on the acquisition thread",
            short=f"levels {r['backend']}",
        )
        for r in pyr["rows"]
    ]


SECTION = Section("pyramids", run, targets)

if __name__ == "__main__":
    sys.exit(run_alone(SECTION, __doc__ or ""))
