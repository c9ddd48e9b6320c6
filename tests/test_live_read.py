"""Reading a dataset while it is being acquired, and `Stream.latest`.

A producer thread appends frames and pauses mid-run; meanwhile the main thread
waits until the stream reports the frames before the pause as flushed (no clock
decides), opens the dataset with zarr-python (and yaozarrs), as napari would,
and checks the metadata and every frame reported flushed, on a local disk and
on S3 (`test_s3.py::test_read_while_acquiring_s3`, with its moto server).

README: `frames_flushed` counts frames readable by another process while
acquiring, with every backend; acquire-zarr on S3 reports them only at close.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq

import mmzarr
from tests._readback import read_zarr
from tests._waiting import wait_for

if TYPE_CHECKING:
    from pathlib import Path

SHAPE = (8, 10)
SEQ = useq.MDASequence(
    time_plan=useq.TIntervalLoops(interval=1, loops=6), channels=["DAPI", "FITC"]
)
N_BEFORE_PAUSE = 6  # t 0..2, both channels
FLUSH_S = 0.2


def frame_for(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 4000, SHAPE).astype("uint16")


class Producer(threading.Thread):
    """Appends SEQ's frames from one reused buffer, pausing after N_BEFORE_PAUSE."""

    def __init__(self, stream: mmzarr.Stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        buf = np.empty(SHAPE, "uint16")
        try:
            for n, event in enumerate(SEQ):
                if n == N_BEFORE_PAUSE:
                    self.paused.set()
                    self.resume.wait(30)
                buf[:] = frame_for(n)
                self.stream.append(buf, index=event.index)
                buf[:] = 0  # the caller reuses its buffer: latest() must not see it
            self.stream.close()
        except BaseException as e:  # reported by the main thread
            self.error = e
            self.paused.set()


def live_settings() -> mmzarr.AcquisitionSettings:
    return mmzarr.AcquisitionSettings.from_useq(
        SEQ,
        image_shape=SHAPE,
        dtype="uint16",
        pixel_size_um=0.5,
        flush_interval_s=FLUSH_S,
    )


def _expected(n_frames: int) -> dict[tuple[int, ...], np.ndarray]:
    return {
        (e.index["t"], e.index["c"]): frame_for(n)
        for n, e in enumerate(SEQ)
        if n < n_frames
    }


def reports_flushes(stream: mmzarr.Stream, backend: str) -> bool:
    """Whether `frames_flushed` counts frames while acquiring (README): where
    the backend declares it does, and on a local disk with every backend."""
    from tests.test_backend_contract import backend_class

    caps = backend_class(backend).capabilities
    return bool(caps.reports_readable) or stream.location.is_local


def live_check(
    stream: mmzarr.Stream, backend: str, open_array: Any, check_meta: Any
) -> None:
    """Mid-run: valid metadata, flushed frames read back, latest() a safe copy."""
    prod = Producer(stream)
    prod.start()
    try:
        assert prod.paused.wait(30)
        assert prod.error is None, prod.error
        assert stream.frames_written == N_BEFORE_PAUSE
        last = frame_for(N_BEFORE_PAUSE - 1)
        latest = stream.latest("")
        assert latest is not None
        np.testing.assert_array_equal(latest, last)
        latest[:] = 1  # a copy: the stream's own frame is untouched
        np.testing.assert_array_equal(stream.latest(""), last)

        if reports_flushes(stream, backend):
            # the producer waits: every frame it wrote becomes readable
            wait_for(
                "a flush reported",
                lambda: stream.frames_flushed >= N_BEFORE_PAUSE,
                seconds=60,
                every=FLUSH_S / 4,
            )
            assert stream.frames_flushed == N_BEFORE_PAUSE
        else:
            assert stream.frames_flushed == 0  # documented: known at close
        flushed = stream.frames_flushed

        root_attrs = check_meta()
        assert root_attrs["mmzarr"]["status"] == "acquiring"
        data = open_array()
        assert data.shape[-2:] == SHAPE
        for (t, c), frame in _expected(flushed).items():
            np.testing.assert_array_equal(data[t, c], frame, err_msg=f"t={t} c={c}")
    finally:
        prod.resume.set()
        prod.join(30)
    assert prod.error is None, prod.error
    assert stream.status == "complete"
    assert stream.frames_flushed == len(list(SEQ))
    data = open_array()
    for (t, c), frame in _expected(len(list(SEQ))).items():
        np.testing.assert_array_equal(data[t, c], frame)


def test_read_while_acquiring_local(tmp_path: Path, backend: str) -> None:
    import yaozarrs
    import zarr

    out = tmp_path / "live.ome.zarr"
    stream = mmzarr.create_stream(out, live_settings(), backend=backend)

    def check_meta() -> dict[str, Any]:
        yaozarrs.validate_zarr_store(str(out))
        return dict(zarr.open_group(str(out), mode="r").attrs)

    try:
        live_check(stream, backend, lambda: read_zarr(out, "0"), check_meta)
    finally:
        stream.close()
    records = mmzarr._metadata.read_frame_log(out)
    assert [r["frame"] for r in records] == list(range(len(list(SEQ))))


def test_latest_keeps_only_the_most_recent_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`latest` copies stay within LATEST_BYTES: a plate keeps its last fields'
    (three frames here: the first three images' are gone)."""
    from mmzarr import _stream

    monkeypatch.setattr(_stream, "LATEST_BYTES", 3 * 2 * SHAPE[0] * SHAPE[1])
    seq = useq.MDASequence(stage_positions=[(i, 0, 0) for i in range(6)])
    settings = mmzarr.AcquisitionSettings.from_useq(
        seq, image_shape=SHAPE, dtype="uint16", pixel_size_um=0.5
    )
    assert len(settings.images) == 6
    with mmzarr.create_stream(tmp_path / "p.ome.zarr", settings) as stream:
        buf = np.empty(SHAPE, "uint16")
        for n, event in enumerate(seq):
            buf[:] = frame_for(n)
            stream.append(buf, index=event.index)
        keys = [im.key for im in settings.images]
        # a key of no image: it read None, as an image without a recent frame
        with pytest.raises(KeyError, match=re.escape(f"images are {tuple(keys)}")):
            stream.latest("A/1")
        for n, key in enumerate(keys):
            got = stream.latest(key)
            if n < 3:
                assert got is None, key  # evicted: written longer ago
            else:
                assert got is not None, key
                np.testing.assert_array_equal(got, frame_for(n))
