"""Acquire a well plate with pymmcore-plus and stream it into an OME-Zarr plate.

    python examples/mda_plate.py plate.ome.zarr [--small]

The plan is an ordinary useq `MDASequence`: 2 wells x 2x2 fields, 2 channels,
a 3-plane z stack and 3 time points. `MDAWriter` writes it as an HCS plate
(one `tczyx` image per field) while the acquisition runs. It runs on the
built-in demo rig; pass your own `CMMCorePlus` to use a real microscope.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import useq

import mmzarr
from mmzarr.demo import demo_core, release_core

parser = argparse.ArgumentParser(description="Acquire a plate into OME-Zarr.")
parser.add_argument("out", type=Path, help="output directory, e.g. plate.ome.zarr")
parser.add_argument("--small", action="store_true", help="a 64x64 camera (fast)")
args = parser.parse_args()

core = demo_core()
if args.small:
    core.setProperty("Camera", "SensorWidth", 64)
    core.setProperty("Camera", "SensorHeight", 64)

# grid fields that just touch: one field of view in µm
fov_w = core.getImageWidth() * core.getPixelSizeUm()
fov_h = core.getImageHeight() * core.getPixelSizeUm()
seq = useq.MDASequence(
    stage_positions=useq.WellPlatePlan(
        plate="96-well",
        a1_center_xy=(0, 0),
        selected_wells=([0, 1], [0, 1]),  # A1 and B2
        well_points_plan=useq.GridRowsColumns(
            rows=2, columns=2, fov_width=fov_w, fov_height=fov_h
        ),
    ),
    channels=["DAPI", "FITC"],
    z_plan=useq.ZRangeAround(range=2, step=1),
    time_plan=useq.TIntervalLoops(interval=0.1, loops=3),
    axis_order="tpgcz",
)

writer = mmzarr.MDAWriter(args.out, core=core, overwrite=True)
core.mda.run(seq, output=writer)  # blocks; frames are written as they arrive
writer.close()  # raises if anything went wrong during the run
release_core(core)  # done with the rig (README: Python API)

report = mmzarr.validate(args.out)
print(report.format())
print(f"wrote {writer.frames_written} frames to {args.out.resolve()}")
print(f"see it with: mmzarr info {args.out}")
sys.exit(0 if report.ok else 1)
