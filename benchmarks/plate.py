"""What a 96-well plate layout costs compared with one array of the same size.

A `useq.WellPlatePlan` of all 96 wells with 2x2 fields per well and the
config's channels, settings by `AcquisitionSettings.from_useq` (layout
``plate``), written with `create_stream` and `append(frame, index=...)`, versus
one image (t = fields, c = channels) of the same bytes written the same way,
interleaved per backend.

Run alone: ``python benchmarks/plate.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
from _harness import (
    BACKENDS,
    MIB,
    Config,
    Run,
    Target,
    alternate,
    log,
    make_ring,
    mb_per_s,
    median,
    phases,
)
from _session import Section, run_alone
from streams import run_stream

if TYPE_CHECKING:
    from pathlib import Path

TARGET_PLATE = 0.8
#: the CPU phases of a run, as `phases` prints them
CPU = ("user_s", "kernel_s")


def run(cfg: Config, scratch: Path) -> dict[str, Any]:
    import useq

    from mmzarr import AcquisitionSettings

    side = cfg.plate_side
    plan = useq.WellPlatePlan(
        plate=96,
        a1_center_xy=(0, 0),
        selected_wells=(slice(None), slice(None)),
        well_points_plan=useq.GridRowsColumns(
            rows=2, columns=2, fov_width=side, fov_height=side
        ),
    )
    plate_seq = useq.MDASequence(
        stage_positions=plan, channels=list(cfg.plate_channels), axis_order="pgc"
    )
    plate_events = [e.index for e in plate_seq]
    n_fields = len(plate_events) // len(cfg.plate_channels)
    one_seq = useq.MDASequence(
        time_plan={"interval": 0, "loops": n_fields},
        channels=list(cfg.plate_channels),
        axis_order="tc",
    )
    one_events = [e.index for e in one_seq]
    common = {"image_shape": (side, side), "dtype": "uint16", "pixel_size_um": 1.0}
    plate_settings = AcquisitionSettings.from_useq(plate_seq, **common)
    one_settings = AcquisitionSettings.from_useq(one_seq, **common)
    assert plate_settings.layout == "plate", plate_settings.layout
    assert plate_settings.bytes_planned == one_settings.bytes_planned
    ring = make_ring(side)
    nbytes = int(plate_settings.bytes_planned or 0)
    path = scratch / "plate.ome.zarr"

    runs: dict[str, dict[str, list[Run]]] = {
        b: {"plate": [], "one": []} for b in BACKENDS
    }
    kinds = [("plate", plate_settings, plate_events), ("one", one_settings, one_events)]
    for rep in range(cfg.plate_reps):
        for b in BACKENDS:
            for kind, settings, events in alternate(kinds, rep):
                runs[b][kind].append(
                    run_stream(
                        path,
                        ring,
                        settings,
                        b,
                        len(events),
                        indices=events,
                        label="plate",
                    )
                )
    log(
        f"\n== Plate: 96 wells x 4 fields x {len(cfg.plate_channels)} channel(s) = "
        f"{len(plate_settings.images)} images, {len(plate_events)} frames of "
        f"{side}x{side} ({nbytes / MIB:.0f} MiB) vs one array (t={n_fields}, "
        f"c={len(cfg.plate_channels)}), median of {cfg.plate_reps} =="
    )
    log(
        f"{'backend':<13} {'plate MB/s':>10} {'one MB/s':>9} {'ratio':>6}   "
        f"plate open/append/close s    one open/append/close s"
    )
    rows = []
    for b in BACKENDS:
        p, o = runs[b]["plate"], runs[b]["one"]
        p_mbps = median(mb_per_s(nbytes, p))
        o_mbps = median(mb_per_s(nbytes, o))
        rows.append(
            {
                "backend": b,
                "plate_mb_per_s": p_mbps,
                "one_mb_per_s": o_mbps,
                "ratio": p_mbps / o_mbps,
                "plate_runs": [asdict(r) for r in p],
                "one_runs": [asdict(r) for r in o],
            }
        )
        log(
            f"{b:<13} {p_mbps:10.0f} {o_mbps:9.0f} {p_mbps / o_mbps:6.2f}   "
            f"{phases(p):<27}  {phases(o)}"
        )
    return {
        "side": side,
        "channels": list(cfg.plate_channels),
        "images": len(plate_settings.images),
        "frames": len(plate_events),
        "bytes": nbytes,
        "rows": rows,
    }


def targets(plate: dict[str, Any], cfg: Config) -> list[Target]:
    """The plate's bytes/s vs one array's, per backend."""
    return [
        Target.check(
            f"plate 96x4 {row['backend']}: >= {TARGET_PLATE}x one array's bytes/s",
            f"{row['ratio']:.2f}x ({row['plate_mb_per_s']:.0f} vs "
            f"{row['one_mb_per_s']:.0f} MB/s)",
            row["ratio"],
            TARGET_PLATE,
            note=f"open/append/close s: plate {phases(row['plate_runs'])}, "
            f"one array {phases(row['one_runs'])}; CPU user/kernel s: plate "
            f"{phases(row['plate_runs'], CPU)}, one array "
            f"{phases(row['one_runs'], CPU)}; files and directories made: plate "
            f"{_entries(row['plate_runs'])}, one array {_entries(row['one_runs'])}",
            short=f"plate {row['backend']}",
        )
        for row in plate["rows"]
    ]


def _entries(runs: list[dict[str, Any]]) -> int:
    return int(median(r.get("entries", 0) for r in runs))


def draw(ax: Any, plate: dict[str, Any]) -> None:
    """Plate vs one array MB/s per backend, with the ratio on top."""
    x = np.arange(len(plate["rows"]))
    ax.bar(x - 0.2, [r["plate_mb_per_s"] for r in plate["rows"]], 0.4, label="plate")
    ax.bar(x + 0.2, [r["one_mb_per_s"] for r in plate["rows"]], 0.4, label="one array")
    for i, r in enumerate(plate["rows"]):
        ax.annotate(f"{r['ratio']:.2f}x", (i, r["one_mb_per_s"]), ha="center")
    ax.set_xticks(x, [r["backend"] for r in plate["rows"]])
    ax.set_ylabel("MB/s")
    ax.set_title(
        f"plate {plate['images']} images, {plate['frames']} frames of "
        f"{plate['side']}^2 vs one array"
    )
    ax.legend(fontsize=8)


SECTION = Section("plate", run, targets)

if __name__ == "__main__":
    sys.exit(run_alone(SECTION, __doc__ or ""))
