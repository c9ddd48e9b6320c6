"""Hardware-sequenced bursts through MDAWriter on the demo rig (issue #20).

pymmcore-plus' `MDAEngine` (with `use_hardware_sequencing`) merges consecutive
events that differ only in what the hardware can sequence into one
`SequencedEvent`, runs it with `startSequenceAcquisition` and pops the frames
from the circular buffer; each such frame's metadata has
`hardware_triggered: True`. On the demo rig nothing but the camera sequences
(the filter wheel and the stages do not), so a burst is a time plan at
interval 0; with channels in the outer loop (`axis_order="ct"`) each channel is
one burst.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq

import mmzarr
from tests._readback import group_json, read_zarr

if TYPE_CHECKING:
    from pathlib import Path

    from pymmcore_plus.experimental.unicore import UniMMCore

# a burst needs interval 0 (the engine does not sequence events with different
# start times), for which mmzarr warns that it writes a t scale of 1 s
pytestmark = pytest.mark.filterwarnings("ignore:time interval is unknown or 0")


@dataclass(frozen=True)
class Case:
    name: str
    plan: dict[str, Any]
    sizes: dict[str, int]  # of the written image
    bursts: int  # sequence acquisitions the engine starts


CASES = [
    Case("time", {"time_plan": {"interval": 0, "loops": 50}}, {"t": 50}, 1),
    # 120 MiB from the instant camera, faster than the writer: frames wait in
    # pymmcore-plus' queue and, past the backend's in-flight budget, in
    # backpressure; none may be lost
    Case("long", {"time_plan": {"interval": 0, "loops": 240}}, {"t": 240}, 1),
    Case(
        "channels-outer",
        {
            "channels": ["DAPI", "FITC"],
            "time_plan": {"interval": 0, "loops": 25},
            "axis_order": "ct",
        },
        {"t": 25, "c": 2},
        2,
    ),
]


class Recorder:
    """What the camera produced, independently of the writer."""

    def __init__(self, core: UniMMCore) -> None:
        self.frames: list[tuple[dict[str, int], np.ndarray, dict[str, Any]]] = []
        self.sequences = 0
        core.mda.events.frameReady.connect(self._on_frame)
        core.events.sequenceAcquisitionStarted.connect(self._on_sequence)

    def _on_frame(self, img: np.ndarray, event: useq.MDAEvent, meta: Any) -> None:
        self.frames.append((dict(event.index), np.array(img, copy=True), dict(meta)))

    def _on_sequence(self, *args: Any) -> None:
        self.sequences += 1


def frame_counter(img: np.ndarray) -> int:
    """The demo camera's frame number, stamped in the first 4 pixels' low bytes."""
    return int.from_bytes(bytes(int(v) & 0xFF for v in img[0, :4]), "little")


def plane(data: np.ndarray, dims: list[str], index: dict[str, int]) -> np.ndarray:
    """The (y, x) plane at `index`, from the array's own dimension names."""
    return data[tuple(index.get(d, 0) for d in dims[:-2])]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_burst_lands_frame_by_frame(
    core: UniMMCore, backend: str, tmp_path: Path, case: Case
) -> None:
    core.mda.engine.use_hardware_sequencing = True  # type: ignore[union-attr]
    seq = useq.MDASequence(**case.plan)
    n = len(list(seq))
    rec = Recorder(core)
    out = tmp_path / "burst.ome.zarr"
    writer = mmzarr.MDAWriter(out, backend=backend, core=core)
    core.mda.run(seq, output=writer)
    writer.close()

    # really hardware-sequenced: one sequence acquisition per burst, every
    # frame popped from the camera's buffer
    assert rec.sequences == case.bursts
    assert len(rec.frames) == n
    assert all(meta.get("hardware_triggered") is True for _, _, meta in rec.frames)
    # the camera dropped nothing: its frame counter runs without gaps
    counters = [frame_counter(img) for _, img, _ in rec.frames]
    assert counters == list(range(counters[0], counters[0] + n))

    # the writer took every frame, in the mapped layout
    assert writer.fallback_reason is None
    assert writer.frames_written == n
    assert writer.frames_ignored == 0
    assert writer.unplaced is None

    # read back with zarr-python: every frame at its event's place
    meta = group_json(out, "0")
    dims = meta["dimension_names"]
    assert dict(zip(dims[:-2], meta["shape"][:-2], strict=True)) == case.sizes
    data = read_zarr(out, "0")
    places = set()
    for index, img, _ in rec.frames:
        np.testing.assert_array_equal(plane(data, dims, index), img, str(index))
        places.add(tuple(index.get(d, 0) for d in dims[:-2]))
    assert len(places) == n  # every slot of the array holds a frame

    # the writer kept the sequenced frames' metadata in its frame log
    lines = (out / "mmzarr" / "frames.jsonl").read_text().splitlines()
    logged = [json.loads(line) for line in lines]
    assert len(logged) == n
    assert all(r["metadata"]["hardware_triggered"] is True for r in logged)


def test_without_sequencing_no_frame_is_hardware_triggered(
    core: UniMMCore,
) -> None:
    """The signals the burst test relies on are absent when not sequencing."""
    core.mda.engine.use_hardware_sequencing = False  # type: ignore[union-attr]
    rec = Recorder(core)
    core.mda.run(useq.MDASequence(time_plan={"interval": 0, "loops": 5}))
    assert len(rec.frames) == 5
    assert rec.sequences == 0
    assert not any(meta.get("hardware_triggered") for _, _, meta in rec.frames)
