"""What an unbounded `t` costs: the same stream with `unbounded_t=True` vs bounded.

The smallest stream of the config (per-frame costs dominate), uncompressed, per
backend: a time plan written with `t` sized from the plan, and the same frames
with `unbounded_t=True` (as the fallback layout, event generators and
`MDAWriter(..., template=seq)` write), interleaved. The array's shape then
grows as frames arrive: acquire-zarr's `zarr.json` is rewritten once per
flush, tensorstore and zarr-python grow `t` ahead (`_shards.t_ahead`).
mmzarr's own target (not issue #20's): >= `TARGET_UNBOUNDED` of the bounded
stream on every backend.

Run alone: ``python benchmarks/unbounded.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from _harness import BACKENDS, Config, Target, log, make_ring
from _session import Section, run_alone
from streams import run_variants

if TYPE_CHECKING:
    from pathlib import Path

#: throughput with an unbounded t / bounded, at least
TARGET_UNBOUNDED = 0.9
#: settings option of each case
KINDS: dict[str, dict[str, Any]] = {
    "bounded": {},
    "unbounded": {"unbounded_t": True},
}


def run(cfg: Config, scratch: Path) -> dict[str, Any]:
    side, n = min(cfg.streams)
    ring = make_ring(side)
    log(f"\n-- unbounded t, {side}x{side} uint16, {n} frames/run, {cfg.reps} rounds --")
    cases = run_variants(scratch / "unbounded.ome.zarr", ring, n, cfg.reps, KINDS)
    rows = []
    log(f"{'backend':<13} {'bounded':>8} {'unbounded':>10} {'ratio':>6} {'spread':>6}")
    for b in BACKENDS:
        bounded, unbounded = cases[(b, "bounded")], cases[(b, "unbounded")]
        spread = max(bounded.spread, unbounded.spread)
        ratio = unbounded.mbps / bounded.mbps
        rows.append(
            {
                "backend": b,
                "bounded_mbps": bounded.mbps,
                "unbounded_mbps": unbounded.mbps,
                "ratio": ratio,
                "spread": spread,
            }
        )
        log(
            f"{b:<13} {bounded.mbps:>8.0f} {unbounded.mbps:>10.0f} {ratio:>6.2f} "
            f"{spread:>6.2f}"
        )
    return {"side": side, "frames": n, "rows": rows}


def targets(result: dict[str, Any], cfg: Config) -> list[Target]:
    """Throughput with an unbounded t vs bounded, per backend."""
    return [
        Target.check(
            f"{result['side']}² stream with an unbounded t vs bounded, "
            f"{r['backend']}: >= {TARGET_UNBOUNDED}x",
            f"{r['ratio']:.2f}x ({r['unbounded_mbps']:.0f} vs "
            f"{r['bounded_mbps']:.0f} MB/s, spread {r['spread']:.2f})",
            r["ratio"],
            TARGET_UNBOUNDED,
            note="the array's shape grows as frames arrive (a metadata write "
            "per growth)",
            short=f"unbounded {r['backend']}",
        )
        for r in result["rows"]
    ]


SECTION = Section("unbounded", run, targets)

if __name__ == "__main__":
    sys.exit(run_alone(SECTION, __doc__ or ""))
