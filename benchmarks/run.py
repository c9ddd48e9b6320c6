"""mmzarr benchmark: write throughput, MDA overhead, plates and memory, side by side.

Run from the repository root (in the dev environment, with ome-writers and
matplotlib installed)::

    python benchmarks/run.py            # full run, < 10 min
    python benchmarks/run.py --quick    # small sizes, < 2 min (smoke test)
    python benchmarks/run.py --out DIR  # write latest.json / latest.png to DIR

Runs every section module (`streams`, `pyramids`, `unbounded`, `mda`, `burst`,
`plate`, `memory`) in that order, checks their targets and writes `latest.json` and
`latest.png`; each section module also runs alone (`frame_profile.py`, the per-frame
profile, runs only alone). Every measurement writes real data to a
scratch directory on the same disk as the repository (never /tmp when that is
tmpfs) and deletes it afterwards. All timings include opening and closing the
dataset, and every number counts only durable data: mmzarr's backends fsync at
close, acquire-zarr and tensorstore fsync what they write; where a writer does
not (ome-writers' zarr-python and zarrs-python backends) an fsync of every file
it wrote is added to its time. See benchmarks/README.md for what each number
means.

ome-writers is a benchmark-only dependency: imported in the benchmarks only.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import burst
import mda
import memory
import plate
import pyramids
import streams
import unbounded
from _harness import DEFAULT_OUT
from _session import bench, draw_targets, parser

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

SECTIONS = (
    streams.SECTION,
    pyramids.SECTION,
    unbounded.SECTION,
    mda.SECTION,
    burst.SECTION,
    plate.SECTION,
    memory.SECTION,
)
#: order of the targets in the report and the JSON
TARGET_ORDER = (
    "streams",
    "memory",
    "pyramids",
    "unbounded",
    "mda",
    "burst",
    "plate",
)


def plot(results: dict[str, Any], path: Path) -> None:
    """Streams per size, MDA, plate, memory and the targets' margins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 2, figsize=(15, 15))
    streams.draw(axes[0], results["streams"])
    mda.draw(axes[1][0], results["mda"])
    plate.draw(axes[1][1], results["plate"])
    memory.draw(axes[2][0], results["memory"])
    draw_targets(axes[2][1], results["targets"])
    fig.suptitle(
        f"mmzarr benchmark ({results['config']['name']}), {results['started']}, "
        f"commit {results['git']['commit']}, {results['machine']['cpus']} CPUs, "
        f"load {results['machine']['loadavg_start']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(
        __doc__ or "",
        out_help="directory for latest.json/.png",
        default_out=DEFAULT_OUT,
    )
    return bench(
        p,
        p.parse_args(argv),
        SECTIONS,
        stem="latest",
        target_order=TARGET_ORDER,
        plot=plot,
    )


if __name__ == "__main__":
    sys.exit(main())
