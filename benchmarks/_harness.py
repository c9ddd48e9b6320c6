"""The measuring harness every benchmark section shares.

Owns what is not specific to one measurement: the sizes of a run (`Config`),
camera-like frames, a timed open -> appends -> close -> durable write
(`time_run`) and the raw flushed write that is the disk's limit (`run_raw`),
medians and MB/s of repeated runs (`CaseResult`), and targets with their
PASS/FAIL verdict and the numbers that explain a failure (`Target`). What is
measured, and against which threshold, lives in the section modules
(`streams`, `pyramids`, `mda`, `plate`, `memory`); records, the command line
and the output are in `_session`; `run.py` runs all sections.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results"
MIB = 1024**2
MB = 1e6

#: mmzarr backends; "zarr-python" runs through the zarrs codec pipeline when
#: zarrs is installed
BACKENDS = ("acquire-zarr", "tensorstore", "zarr-python")
DEFAULT_BACKEND = "acquire-zarr"
COMPRESSIONS = ("none", "blosc-lz4", "blosc-zstd")
#: run phases of a `Run`, as printed in breakdowns
PHASES = ("open_s", "append_s", "close_s")


@dataclass(frozen=True)
class Config:
    """Sizes of one benchmark run."""

    name: str
    reps: int
    #: (frame side, frames per run) of the stream matrix
    streams: tuple[tuple[int, int], ...]
    mda_side: int
    mda_frames: int
    mda_reps: int
    #: exposure (ms) of the paced camera: 512^2 uint16 at 5 ms is ~105 MB/s
    mda_exposure_ms: float
    plate_side: int
    plate_channels: tuple[str, ...]
    plate_reps: int
    mem_side: int
    mem_frames: tuple[int, int] = (1000, 4000)


FULL = Config(
    name="full",
    reps=3,
    streams=((2048, 64), (512, 512)),
    mda_side=512,
    mda_frames=400,
    mda_reps=5,
    mda_exposure_ms=5.0,
    plate_side=512,
    plate_channels=("DAPI", "FITC"),
    plate_reps=2,
    mem_side=512,
)
QUICK = Config(
    name="quick",
    reps=1,
    streams=((512, 16), (128, 64)),
    mda_side=128,
    mda_frames=100,
    mda_reps=1,
    mda_exposure_ms=5.0,
    plate_side=64,
    plate_channels=("DAPI",),
    plate_reps=1,
    mem_side=64,
)


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def log(msg: str = "") -> None:
    print(msg, flush=True)


def median(values: Iterable[float]) -> float:
    vals = list(values)
    return float(statistics.median(vals)) if vals else float("nan")


def alternate(items: Sequence[Any], rep: int) -> list[Any]:
    """`items` in round `rep`: reversed every other round, so no case always
    goes first (and inherits the previous case's state)."""
    return list(items) if rep % 2 == 0 else list(reversed(items))


def run_rounds(
    names: Sequence[str],
    reps: int,
    run: Callable[[str], None],
    errors: dict[str, str],
    measured: Callable[[str], bool],
) -> None:
    """Run every variant `reps` times: the first (the baseline) leads every
    round, the others alternate order (`alternate`). A variant that fails is
    reported in `errors` and skipped from then on unless it measured before."""
    for rep in range(reps):
        for name in [*names[:1], *alternate(names[1:], rep)]:
            if name in errors and not measured(name):
                continue
            try:
                run(name)
            except Exception as e:  # report, keep benchmarking
                errors[name] = f"{type(e).__name__}: {e}"


def fsync_tree(path: Path) -> None:
    """fsync every file and directory under `path` (and `path` itself)."""
    names = (
        [str(path)]
        if path.is_file()
        else [
            name
            for dirpath, _, files in os.walk(path)
            for name in [*(os.path.join(dirpath, f) for f in files), dirpath]
        ]
    )
    for name in names:
        fd = os.open(name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def disk_usage(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(
        os.path.getsize(os.path.join(d, f))
        for d, _, files in os.walk(path)
        for f in files
    )


def entries(path: Path) -> int:
    """The files and directories at `path` (each one an inode the writer made)."""
    if not path.is_dir():
        return int(path.exists())
    return 1 + sum(len(dirs) + len(files) for _, dirs, files in os.walk(path))


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def settle() -> None:
    """Start a timed run with no dirty pages and no garbage from the last one."""
    gc.collect()
    os.sync()


def make_ring(side: int, n: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Camera-like uint16 frames: blobs on a background, shot and read noise.

    12-bit range, background ~100 counts, blobs up to ~3000 counts, Poisson-like
    noise (sqrt of the signal) plus read noise; blosc compresses it ~2x.
    """
    rng = np.random.default_rng(seed)
    impulses = np.zeros((side, side), np.float32)
    n_blobs = max(8, side * side // 2000)
    impulses.flat[rng.integers(0, side * side, n_blobs)] = rng.uniform(0.3, 1, n_blobs)
    sigma = max(2.0, side / 400)
    ky = np.fft.fftfreq(side)[:, None]
    kx = np.fft.rfftfreq(side)[None, :]
    kernel = np.exp(-2 * (np.pi * sigma) ** 2 * (ky**2 + kx**2))
    smooth = np.fft.irfft2(np.fft.rfft2(impulses) * kernel, s=(side, side))
    signal = (100 + 3000 * smooth / smooth.max()).astype(np.float32)
    noise_scale = np.sqrt(signal)
    ring = []
    for _ in range(n):
        noise = rng.standard_normal((side, side), dtype=np.float32)
        frame = (
            signal
            + noise * noise_scale
            + 2 * rng.standard_normal((side, side), dtype=np.float32)
        )
        ring.append(np.clip(frame, 0, 4095).astype(np.uint16))
    return ring


# ---------------------------------------------------------------------------
# timed runs
# ---------------------------------------------------------------------------


@dataclass
class Run:
    """One timed write."""

    seconds: float  # open -> durable (close, plus fsync where the writer skips it)
    open_s: float = 0.0
    append_s: float = 0.0
    close_s: float = 0.0
    sync_s: float = 0.0
    stored_bytes: int = 0
    #: the process' CPU time over the run (every thread): in user space and in
    #: the kernel (file and directory creation, page-cache copies, fsync)
    user_s: float = 0.0
    kernel_s: float = 0.0
    #: files and directories the run left at its path
    entries: int = 0


def time_run(
    path: Path,
    open_: Callable[[], Any],
    append: Callable[[Any, int], None],
    close: Callable[[Any], None],
    n: int,
    *,
    sync_after: bool = False,
) -> Run:
    """Time `open_`, `n` appends and `close` of a writer at `path`.

    `sync_after`: the writer leaves data unsynced, so fsync what it wrote and
    count that time too.
    """
    remove(path)
    settle()
    cpu0 = os.times()
    t0 = time.perf_counter()
    handle = open_()
    t1 = time.perf_counter()
    for i in range(n):
        append(handle, i)
    t2 = time.perf_counter()
    close(handle)
    t3 = time.perf_counter()
    if sync_after:
        fsync_tree(path)
    t4 = time.perf_counter()
    cpu1 = os.times()
    run = Run(
        seconds=t4 - t0,
        open_s=t1 - t0,
        append_s=t2 - t1,
        close_s=t3 - t2,
        sync_s=t4 - t3,
        stored_bytes=disk_usage(path),
        user_s=cpu1.user - cpu0.user,
        kernel_s=cpu1.system - cpu0.system,
        entries=entries(path),
    )
    remove(path)
    return run


def write_alone(
    backend: str, path: Path, rings: Sequence[Sequence[np.ndarray]], n: int
) -> None:
    """The library by itself, no mmzarr: `n` frames into each of `len(rings)`
    (t, y, x) arrays `0`, `1`, ... at `path`, one frame per chunk file, frame
    `i` of array `k` from `rings[k]`, in turn; durable when it returns."""
    if backend == "tensorstore":
        import tensorstore as ts

        stores = []
        for k, ring in enumerate(rings):
            h, w = ring[0].shape
            grid = {"name": "regular", "configuration": {"chunk_shape": [1, h, w]}}
            spec = {
                "driver": "zarr3",
                "kvstore": {"driver": "file", "path": f"{path}/{k}"},
                "metadata": {"shape": [n, h, w], "chunk_grid": grid},
                "dtype": "uint16",
                "create": True,
            }
            stores.append(ts.open(spec).result())
        writes = [
            store[i].write(ring[i % len(ring)])
            for i in range(n)
            for store, ring in zip(stores, rings, strict=True)
        ]
        for w in writes:
            w.result()
        return
    # acquire_zarr as mmzarr imports it: with its OMP_WAIT_POLICY
    from mmzarr.backends._acquire_settings import aqz

    def dim(name: str, kind: Any, size: int, chunk: int) -> Any:
        return aqz.Dimension(
            name=name,
            kind=kind,
            array_size_px=size,
            chunk_size_px=chunk,
            shard_size_chunks=1,
        )

    space = aqz.DimensionType.SPACE
    arrays = [
        aqz.ArraySettings(
            output_key=str(k),
            dimensions=[
                dim("t", aqz.DimensionType.TIME, 0, 1),
                dim("y", space, ring[0].shape[0], ring[0].shape[0]),
                dim("x", space, ring[0].shape[1], ring[0].shape[1]),
            ],
            data_type=np.uint16,
        )
        for k, ring in enumerate(rings)
    ]
    stream = aqz.ZarrStream(aqz.StreamSettings(store_path=str(path), arrays=arrays))
    for i in range(n):
        for k, ring in enumerate(rings):
            stream.append(ring[i % len(ring)], key=str(k))
    stream.close()


def run_raw(path: Path, ring: Sequence[np.ndarray], n: int) -> Run:
    """The disk's limit: the same bytes with `tofile` into one file, then fsync."""

    def open_() -> Any:
        return open(path, "wb")  # closed in close()

    def append(f: Any, i: int) -> None:
        ring[i % len(ring)].tofile(f)

    def close(f: Any) -> None:
        f.flush()
        os.fsync(f.fileno())
        f.close()

    return time_run(path, open_, append, close, n)


def mb_per_s(nbytes: int, runs: Iterable[Run]) -> list[float]:
    return [nbytes / r.seconds / MB for r in runs]


def phases(runs: Iterable[Run | dict[str, Any]], keys: Sequence[str] = PHASES) -> str:
    """Median seconds of each phase in `keys`, as "open/append/close"."""
    rows = [r if isinstance(r, dict) else asdict(r) for r in runs]
    return "/".join(f"{median(r[k] for r in rows):.2f}" for k in keys)


@dataclass
class CaseResult:
    """All runs of one (writer, backend, compression, size) case."""

    writer: str  # "raw", "mmzarr", "ome-writers"
    backend: str
    compression: str
    side: int
    frames: int
    runs: list[Run] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return self.frames * self.side * self.side * 2

    @property
    def mbps(self) -> float:
        return median(mb_per_s(self.nbytes, self.runs))

    @property
    def spread(self) -> float:
        """(max - min) / median of the runs' MB/s (noise indicator)."""
        vals = mb_per_s(self.nbytes, self.runs)
        return (max(vals) - min(vals)) / median(vals) if len(vals) > 1 else 0.0

    @property
    def ratio(self) -> float:
        """Uncompressed / stored bytes."""
        stored = median(r.stored_bytes for r in self.runs)
        return self.nbytes / stored if stored else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "writer": self.writer,
            "backend": self.backend,
            "compression": self.compression,
            "side": self.side,
            "frames": self.frames,
            "bytes": self.nbytes,
            "mb_per_s": self.mbps,
            "spread": self.spread,
            "compression_ratio": self.ratio,
            "runs": [asdict(r) for r in self.runs],
        }


# ---------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------


@dataclass
class Target:
    """One target line: what, measured, threshold, verdict, why."""

    name: str
    measured: str
    passed: bool
    note: str = ""
    #: measured / threshold, inverted for "<=" targets: >= 1 passes
    margin: float = float("nan")
    #: label for the plot
    short: str = ""

    @classmethod
    def check(
        cls,
        name: str,
        measured: str,
        value: float,
        threshold: float,
        *,
        at_most: bool = False,
        note: str = "",
        short: str = "",
    ) -> Target:
        """`value` >= `threshold` (or <= with `at_most`); `note` kept on failure."""
        passed = value <= threshold if at_most else value >= threshold
        margin = threshold / value if at_most else value / threshold
        return cls(name, measured, passed, "" if passed else note, margin, short)


def print_targets(targets: list[Target]) -> None:
    log("\n== Targets ==")
    for t in targets:
        log(f"[{'PASS' if t.passed else 'FAIL'}] {t.name}: {t.measured}")
        if t.note:
            log(f"       {t.note}")
    n_pass = sum(t.passed for t in targets)
    log(f"{n_pass}/{len(targets)} targets met")
