"""Stream numpy frames into OME-Zarr: no microscope, no pymmcore-plus.

    python examples/stream_numpy.py frames.ome.zarr [--small]

Describe the acquisition once (here with a useq plan; `AcquisitionSettings` can
also be built by hand), open a stream with `create_stream`, and `append` each
frame with its index as it is produced. The dataset is valid OME-Zarr after
every frame, and `close` (the `with` block) records what was acquired.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import useq

import mmzarr

parser = argparse.ArgumentParser(description="Stream numpy frames into OME-Zarr.")
parser.add_argument("out", type=Path, help="output directory")
parser.add_argument("--small", action="store_true", help="32x32 frames, 2 t")
args = parser.parse_args()

height, width = (32, 32) if args.small else (512, 512)
seq = useq.MDASequence(
    time_plan=useq.TIntervalLoops(interval=0.5, loops=2 if args.small else 10),
    channels=["DAPI", "FITC"],
    z_plan=useq.ZRangeAround(range=4, step=1),
    axis_order="tpcz",
)
settings = mmzarr.AcquisitionSettings.from_useq(
    seq,
    image_shape=(height, width),
    dtype="uint16",
    pixel_size_um=0.65,
    compression="blosc-zstd",
)


def make_frame(t: int, c: int, z: int) -> np.ndarray:
    """A stand-in for a camera: a ramp offset by the frame's t, c and z."""
    ramp = np.add.outer(np.arange(height), np.arange(width))
    return (ramp + 1000 * t + 100 * c + 10 * z).astype("uint16")


with mmzarr.create_stream(args.out, settings, overwrite=True) as stream:
    for event in seq:
        t, c, z = (event.index[k] for k in "tcz")
        stream.append(make_frame(t, c, z), index=event.index)

report = mmzarr.validate(args.out)
print(report.format())
print(f"wrote {stream.frames_written} frames {settings.images[0].shape}")
print(f"to {args.out.resolve()}")
sys.exit(0 if report.ok else 1)
