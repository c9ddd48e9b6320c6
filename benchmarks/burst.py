"""A hardware-sequenced burst on the demo camera, with and without `MDAWriter`.

pymmcore-plus' `MDAEngine` (`use_hardware_sequencing = True`) runs a time plan
at interval 0 as one sequence acquisition: the camera streams into its
circular buffer, the engine pops the frames and the relay thread hands them to
the output handler while the camera goes on. The camera is paced
(`BURST_EXPOSURE_MS` per frame, `Timing` `exposure`), faster than the MDA
section's paced camera. Variants, interleaved: no output, `MDAWriter` per
backend. Each run checks that the burst really was sequenced (one sequence
acquisition, every frame `hardware_triggered`) and records when the camera
delivered its last frame and how many frames the writer still had to write
then (they wait in pymmcore-plus' unbounded relay queue, in memory). Columns:
`wall s` from `mda.run` to the writer closed (the relay thread drains its queue
and the writer closes in `sequenceFinished` before `run` returns), `camera s`
to the camera's last frame, `after s` the difference, `behind` the frames not
yet written at the camera's last frame.

Run alone: ``python benchmarks/burst.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from _harness import (
    BACKENDS,
    DEFAULT_BACKEND,
    MB,
    MIB,
    Config,
    Target,
    log,
    median,
    remove,
    run_rounds,
    settle,
)
from _session import Section, run_alone

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import useq

TARGET_BURST = 1.10
#: the camera's time per frame: 512x512 uint16 at 2 ms is ~260 MB/s
BURST_EXPOSURE_MS = 2.0
NO_OUTPUT = "no output"
#: variant name -> backend of the `MDAWriter` variants
WRITER_BACKEND = {f"MDAWriter {b}": b for b in BACKENDS}


@dataclass
class Watch:
    """What the camera did during one run, seen from the MDA's own signals."""

    frames: int = 0
    triggered: int = 0
    sequences: int = 0
    t0: float = 0.0
    camera_s: float = float("nan")  # start -> the camera's last frame
    behind: int = 0  # frames not yet written when the camera delivered its last
    writer: Any = None
    expected: int = 0

    def start(self, writer: Any, expected: int) -> None:
        self.frames = self.triggered = self.sequences = self.behind = 0
        self.camera_s = float("nan")
        self.writer, self.expected = writer, expected
        self.t0 = time.perf_counter()

    def on_frame(self, img: np.ndarray, event: useq.MDAEvent, meta: Any) -> None:
        # called on the MDA's own thread, as each frame leaves the camera's buffer
        self.frames += 1
        self.triggered += bool(meta.get("hardware_triggered"))
        if self.frames == self.expected:
            self.camera_s = time.perf_counter() - self.t0
            if self.writer is not None:
                self.behind = self.expected - self.writer.frames_written

    def on_sequence(self, *args: Any) -> None:
        self.sequences += 1


def run(cfg: Config, scratch: Path) -> dict[str, Any]:
    import useq

    from mmzarr import MDAWriter
    from mmzarr.demo import demo_core

    logging.getLogger("pymmcore-plus").setLevel(logging.ERROR)
    core = demo_core()
    cam = core.getCameraDevice()
    core.setProperty(cam, "SensorWidth", cfg.mda_side)
    core.setProperty(cam, "SensorHeight", cfg.mda_side)
    core.setProperty(cam, "Timing", "exposure")
    core.setExposure(BURST_EXPOSURE_MS)
    core.mda.engine.use_hardware_sequencing = True  # pymmcore-plus' default
    n = cfg.mda_frames
    seq = useq.MDASequence(time_plan={"interval": 0, "loops": n})
    watch = Watch()
    core.mda.events.frameReady.connect(watch.on_frame)
    core.events.sequenceAcquisitionStarted.connect(watch.on_sequence)
    # warm up: the camera (a whole burst: the first one is slower), and each
    # backend's imports and first dataset
    core.mda.run(seq)
    warm = useq.MDASequence(time_plan={"interval": 0, "loops": 5})
    for b in WRITER_BACKEND.values():
        remove(scratch / "warm.ome.zarr")
        writer = MDAWriter(scratch / "warm.ome.zarr", backend=b, core=core)
        core.mda.run(warm, output=writer)
        writer.close()
    remove(scratch / "warm.ome.zarr")

    names = [NO_OUTPUT, *WRITER_BACKEND]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    errors: dict[str, str] = {}
    path = scratch / "burst.ome.zarr"
    reps = max(1, cfg.mda_reps - 2)

    def run_variant(name: str) -> None:
        remove(path)
        settle()
        writer = None
        if name in WRITER_BACKEND:
            writer = MDAWriter(path, backend=WRITER_BACKEND[name], core=core)
        watch.start(writer, n)
        core.mda.run(seq, output=writer)
        if writer is not None:
            writer.close()
        seconds = time.perf_counter() - watch.t0
        runs[name].append(
            {
                "wall_s": seconds,
                "camera_s": watch.camera_s,
                "behind_frames": watch.behind,
                "frames": watch.frames,
                "hardware_triggered": watch.triggered,
                "sequences": watch.sequences,
            }
        )
        if watch.frames != n or watch.triggered != n or watch.sequences != 1:
            errors[name] = (
                f"not one hardware-sequenced burst: {watch.frames}/{n} frames, "
                f"{watch.triggered} hardware-triggered, {watch.sequences} "
                "sequence acquisitions"
            )
        if writer is not None and writer.frames_written != n:
            errors[name] = f"wrote {writer.frames_written}/{n} frames"
        remove(path)

    run_rounds(names, reps, run_variant, errors, lambda n: bool(runs[n]))
    core.unloadAllDevices()

    base = median(r["wall_s"] for r in runs[NO_OUTPUT])
    frame_bytes = cfg.mda_side**2 * 2
    log(
        f"\n== hardware-sequenced burst: {cfg.mda_side}x{cfg.mda_side} uint16, "
        f"{n} frames, camera paced at {BURST_EXPOSURE_MS:g} ms/frame, median of "
        f"{reps} =="
    )
    log(
        f"{'variant':<26} {'wall s':>7} {'x no output':>12} {'camera s':>9} "
        f"{'after s':>8} {'behind':>7} {'sequenced':>10}  runs"
    )
    rows = []
    for name, rs in runs.items():
        if not rs:
            log(f"{name:<26} ERROR {errors.get(name, 'no run')}")
            continue
        wall = median(r["wall_s"] for r in rs)
        camera = median(r["camera_s"] for r in rs)
        behind = median(r["behind_frames"] for r in rs)
        after = median(r["wall_s"] - r["camera_s"] for r in rs)
        sequenced = min(r["hardware_triggered"] for r in rs)
        row = {
            "variant": name,
            "wall_s": wall,
            "ratio": wall / base,
            "camera_s": camera,
            "after_camera_s": after,
            "behind_frames": behind,
            "behind_mib": behind * frame_bytes / MIB,
            "hardware_triggered_min": sequenced,
            "runs": rs,
        }
        rows.append(row)
        note = f"  ERROR {errors[name]}" if name in errors else ""
        walls = ", ".join(f"{r['wall_s']:.2f}" for r in rs)
        log(
            f"{name:<26} {wall:7.2f} {wall / base:12.2f} {camera:9.2f} "
            f"{after:8.2f} {behind:7.0f} {sequenced:>6}/{n:<3}  {walls}{note}"
        )
    return {
        "side": cfg.mda_side,
        "frames": n,
        "exposure_ms": BURST_EXPOSURE_MS,
        "camera_mb_per_s": frame_bytes / (BURST_EXPOSURE_MS / 1e3) / MB,
        "rows": rows,
        "errors": errors,
        "no_output_s": base,
    }


def targets(burst: dict[str, Any], cfg: Config) -> list[Target]:
    """MDAWriter on each backend vs the burst without output."""
    rows = {r["variant"]: r for r in burst["rows"]}
    rate = burst["camera_mb_per_s"]
    out = []
    for name, b in WRITER_BACKEND.items():
        default = " (default backend)" if b == DEFAULT_BACKEND else ""
        label = (
            f"hardware-sequenced burst ({burst['frames']} frames, {rate:.0f} MB/s) "
            f"with MDAWriter {b}{default}: <= {TARGET_BURST}x no output"
        )
        short = f"burst {b}"
        r = rows.get(name)
        error = burst["errors"].get(name)
        if r is None or error:
            out.append(Target(label, f"ERROR {error}", False, short=short))
            continue
        note = (
            f"the camera delivered its last frame after {r['camera_s']:.2f} s "
            f"(without output: {rows[NO_OUTPUT]['camera_s']:.2f} s: the writer's "
            "CPU slows the simulated camera on 2 cores); the writer was then "
            f"{r['behind_frames']:.0f} frames ({r['behind_mib']:.0f} MiB in "
            "pymmcore-plus' relay queue) behind and finished, closed, "
            f"{r['after_camera_s']:.2f} s later; `python benchmarks/frame_profile.py` "
            "shows where its time per frame goes"
        )
        out.append(
            Target.check(
                label,
                f"{r['ratio']:.2f}x ({r['wall_s']:.2f} vs "
                f"{burst['no_output_s']:.2f} s)",
                r["ratio"],
                TARGET_BURST,
                at_most=True,
                note=note,
                short=short,
            )
        )
    return out


SECTION = Section("burst", run, targets)

if __name__ == "__main__":
    sys.exit(run_alone(SECTION, __doc__ or ""))
