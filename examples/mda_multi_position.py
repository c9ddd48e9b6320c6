"""Acquire several stage positions with pymmcore-plus into one OME-Zarr dataset.

    python examples/mda_multi_position.py positions.ome.zarr [--small]

Each position becomes its own image in a bioformats2raw collection (`0`, `1`,
...), named after the position. A position may carry its own sub-sequence:
here position "tiles" is imaged as a 1x2 grid with a deeper z stack, so its
images have a different shape from the others.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import useq

import mmzarr
from mmzarr.demo import demo_core, release_core

parser = argparse.ArgumentParser(description="Acquire positions into OME-Zarr.")
parser.add_argument("out", type=Path, help="output directory")
parser.add_argument("--small", action="store_true", help="a 64x64 camera (fast)")
args = parser.parse_args()

core = demo_core()
if args.small:
    core.setProperty("Camera", "SensorWidth", 64)
    core.setProperty("Camera", "SensorHeight", 64)

tiles = useq.MDASequence(
    grid_plan=useq.GridRowsColumns(rows=1, columns=2),
    z_plan=useq.ZRangeAround(range=4, step=1),
)
seq = useq.MDASequence(
    stage_positions=[
        useq.Position(x=0, y=0, z=0, name="left"),
        useq.Position(x=1000, y=0, z=1, name="right"),
        useq.Position(x=0, y=1000, z=0, name="tiles", sequence=tiles),
    ],
    channels=["DAPI", "Cy5"],
    z_plan=useq.ZRangeAround(range=2, step=1),
    time_plan=useq.TIntervalLoops(interval=0.1, loops=2),
)

writer = mmzarr.MDAWriter(args.out, core=core, overwrite=True)
core.mda.run(seq, output=writer)
writer.close()
release_core(core)  # done with the rig (README: Python API)

report = mmzarr.validate(args.out)
print(report.format())
for array, shape in report.arrays.items():
    print(f"  {array}: {shape}")
print(f"wrote {writer.frames_written} frames to {args.out.resolve()}")
sys.exit(0 if report.ok else 1)
