"""Streaming to S3: every backend and layout against a local S3 server (moto).

The server (moto's standalone server, from the test extra) runs on 127.0.0.1 in
this process; each test gets its own key prefix and the AWS environment
variables pointing at it. Everything is read back through the S3 API only:
boto3 for objects, zarr-python (s3fs) and tensorstore (s3 driver) for pixels,
yaozarrs for metadata.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import useq

import mmzarr
from mmzarr.errors import StorageError
from tests._readback import array_of
from tests.test_cli import PLAN_YAML, small_config
from tests.test_live_read import live_check, live_settings
from tests.test_mda import Capture
from tests.test_stream import COLLECTION, PLATE, TCZYX, frame_for, write_plan

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pymmcore_plus.experimental.unicore import UniMMCore

BUCKET = "mmzarr-test"
REGION = "us-east-1"


def _start_server() -> tuple[Any, str]:
    """A moto S3 server on 127.0.0.1 (a free port) with the test bucket; its URL."""
    pytest.importorskip("moto.server", reason="moto[server] (test extra) not installed")
    pytest.importorskip("s3fs", reason="s3fs (s3 extra) not installed")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    _client(endpoint).create_bucket(Bucket=BUCKET)
    return server, endpoint


def _use_server(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> str:
    """Set the AWS environment for `endpoint`; a fresh `s3://` prefix."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return f"s3://{BUCKET}/{uuid.uuid4().hex}/run.ome.zarr"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server shared by the session, with the test bucket."""
    server, endpoint = _start_server()
    yield endpoint
    server.stop()


@pytest.fixture
def s3_url(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh `s3://` prefix, with the AWS environment set for the server."""
    return _use_server(monkeypatch, s3_endpoint)


# ---- read-back helpers: S3 API only ------------------------------------------------
def _client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _prefix(url: str) -> str:
    return url.removeprefix(f"s3://{BUCKET}/")


def s3_keys(endpoint: str, url: str) -> list[str]:
    pages = _client(endpoint).get_paginator("list_objects_v2")
    prefix = _prefix(url) + "/"
    return [
        o["Key"][len(prefix) :]
        for page in pages.paginate(Bucket=BUCKET, Prefix=prefix)
        for o in page.get("Contents", [])
    ]


def s3_json(endpoint: str, url: str, key: str) -> Any:
    obj = _client(endpoint).get_object(Bucket=BUCKET, Key=f"{_prefix(url)}/{key}")
    return json.loads(obj["Body"].read())


def zarr_store(endpoint: str, url: str) -> Any:
    from zarr.storage import FsspecStore

    return FsspecStore.from_url(
        url,
        read_only=True,
        storage_options={
            "endpoint_url": endpoint,
            "key": "testing",
            "secret": "testing",
            "use_listings_cache": False,
        },
    )


def read_zarr_s3(endpoint: str, url: str, array: str) -> np.ndarray:
    import zarr

    return np.asarray(zarr.open_array(zarr_store(endpoint, f"{url}/{array}"))[...])


def read_tensorstore_s3(endpoint: str, url: str, array: str) -> np.ndarray:
    import tensorstore as ts

    spec = {
        "driver": "zarr3",
        "kvstore": {
            "driver": "s3",
            "bucket": BUCKET,
            "path": f"{_prefix(url)}/{array}/",
            "endpoint": endpoint,
            "aws_region": REGION,
        },
    }
    return np.asarray(ts.open(spec, open=True).result().read().result())


def check_metadata_s3(endpoint: str, url: str) -> None:
    """yaozarrs accepts the dataset, read over S3 (fsspec)."""
    import yaozarrs

    opts = {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        "anon": False,  # yaozarrs defaults s3:// to anonymous
    }
    group = yaozarrs.open_group(url, storage_options=opts)
    yaozarrs.validate_zarr_store(group)


def assert_frames_s3(
    endpoint: str, url: str, frames: dict[tuple[str, tuple[int, ...]], np.ndarray]
) -> None:
    """Every appended frame reads back over S3 with zarr-python AND tensorstore."""
    for key in {k for k, _ in frames}:
        a = read_zarr_s3(endpoint, url, array_of(key))
        b = read_tensorstore_s3(endpoint, url, array_of(key))
        np.testing.assert_array_equal(a, b)
        for (k, idx), frame in frames.items():
            if k == key:
                np.testing.assert_array_equal(a[idx], frame, err_msg=f"{k} {idx}")


# ---- streams ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("seq", "layout", "n_images"),
    [(TCZYX, "image", 1), (COLLECTION, "collection", 3), (PLATE, "plate", 8)],
    ids=["image", "collection", "plate"],
)
def test_layouts_roundtrip_s3(
    s3_endpoint: str,
    s3_url: str,
    backend: str,
    seq: useq.MDASequence,
    layout: str,
    n_images: int,
) -> None:
    frames = write_plan(s3_url, seq, backend)  # type: ignore[arg-type]
    check_metadata_s3(s3_endpoint, s3_url)
    keys = s3_keys(s3_endpoint, s3_url)
    assert "mmzarr/settings.json" in keys
    assert (layout != "image") == ("OME/METADATA.ome.xml" in keys)
    root = s3_json(s3_endpoint, s3_url, "zarr.json")["attributes"]
    assert root["mmzarr"]["status"] == "complete"
    assert root["mmzarr"]["frames_written"] == len(frames)
    assert len(root["mmzarr"]["images"]) == n_images
    assert not any(k.startswith("mmzarr/.write-probe") for k in keys)
    log = mmzarr._metadata.read_frame_log(mmzarr._locations.parse_location(s3_url))
    assert len(log) == len(frames)
    assert_frames_s3(s3_endpoint, s3_url, frames)


def test_existing_s3_output_needs_overwrite(
    s3_endpoint: str, s3_url: str, backend: str
) -> None:
    write_plan(s3_url, TCZYX, backend)  # type: ignore[arg-type]
    settings = mmzarr.AcquisitionSettings.from_useq(
        TCZYX, image_shape=(8, 10), dtype="uint16", pixel_size_um=0.5
    )
    with pytest.raises(FileExistsError, match="already exists"):
        mmzarr.create_stream(s3_url, settings, backend=backend)
    with mmzarr.create_stream(s3_url, settings, backend=backend, overwrite=True) as s:
        s.append(frame_for(99), index={"t": 0, "c": 0, "z": 0})
    data = read_zarr_s3(s3_endpoint, s3_url, "0")
    np.testing.assert_array_equal(data[0, 0, 0], frame_for(99))
    # the old run's frames are gone (acquire-zarr ends t at the last frame)
    assert not any(k.startswith("0/c/1/") for k in s3_keys(s3_endpoint, s3_url))
    assert not data[1:].any()


def test_storage_options_override_environment(
    s3_endpoint: str, s3_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing there
    settings = mmzarr.AcquisitionSettings.from_useq(
        useq.MDASequence(time_plan={"interval": 1, "loops": 2}),
        image_shape=(8, 10),
        dtype="uint16",
        pixel_size_um=0.5,
    )
    opts = {"endpoint_url": s3_endpoint, "region": REGION}
    with mmzarr.create_stream(
        s3_url, settings, backend=backend, storage_options=opts
    ) as s:
        for t in range(2):
            s.append(frame_for(t), index={"t": t})
    data = read_zarr_s3(s3_endpoint, s3_url, "0")
    np.testing.assert_array_equal(data[1], frame_for(1))


# ---- errors before the first frame ------------------------------------------------
def _tiny_settings() -> mmzarr.AcquisitionSettings:
    return mmzarr.AcquisitionSettings.from_useq(
        useq.MDASequence(time_plan={"interval": 1, "loops": 2}),
        image_shape=(8, 10),
        dtype="uint16",
        pixel_size_um=0.5,
    )


def test_missing_bucket_fails_at_create(s3_url: str, backend: str) -> None:
    url = s3_url.replace(BUCKET, "no-such-bucket-mmzarr")
    with pytest.raises(mmzarr.StorageError, match="no-such-bucket-mmzarr"):
        mmzarr.create_stream(url, _tiny_settings(), backend=backend)


def test_wrong_credentials_fail_at_create(
    s3_endpoint: str, s3_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import settings as moto_settings

    # make the in-process moto server check access keys (it accepts any by default)
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(mmzarr.StorageError, match="credentials"):
        mmzarr.create_stream(s3_url, _tiny_settings(), backend=backend)
    monkeypatch.undo()
    assert s3_keys(s3_endpoint, s3_url) == []


def unreachable_endpoint(monkeypatch: pytest.MonkeyPatch) -> int:
    """Point S3 at a port nobody listens on (one attempt per call); the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return port


def test_unreachable_endpoint_fails_at_create(
    s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = unreachable_endpoint(monkeypatch)
    with pytest.raises(mmzarr.StorageError, match=str(port)):
        mmzarr.create_stream(s3_url, _tiny_settings(), backend="zarr-python")


def test_backend_without_object_storage_refuses_s3(
    s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmzarr.backends import Capabilities, Progress

    class LocalOnly:
        capabilities = Capabilities(object_storage=False)

        def open(self, location: Any, arrays: Any, limits: Any) -> None:
            raise AssertionError("not reached")

        def write(
            self, array: int, index: Any, frame: Any, levels: Any = ()
        ) -> None: ...

        def flush(self, *, final: bool = False) -> Progress:
            return Progress()

    from mmzarr import _open

    monkeypatch.setattr(_open, "get_backend", lambda name, **kw: LocalOnly())
    with pytest.raises(mmzarr.PlanError, match="LocalOnly cannot write to object"):
        mmzarr.create_stream(s3_url, _tiny_settings())


@pytest.mark.parametrize("backend", ["acquire-zarr", "tensorstore"])
def test_explicit_credentials_must_match_environment(s3_url: str, backend: str) -> None:
    """These backends' S3 clients read the environment: a conflict is an error."""
    with pytest.raises(ValueError, match="AWS_ACCESS_KEY_ID differs"):
        mmzarr.create_stream(
            s3_url, _tiny_settings(), backend=backend, storage_options={"key": "x"}
        )


def test_bad_s3_urls() -> None:
    with pytest.raises(ValueError, match="no bucket"):
        mmzarr._locations.parse_location("s3://")
    with pytest.raises(ValueError, match="unknown keys"):
        mmzarr._locations.parse_location("s3://b/p", {"endpoint": "x"})
    with pytest.raises(ValueError, match="unsupported scheme"):
        mmzarr._locations.parse_location("gs://b/p")
    loc = mmzarr._locations.parse_location("s3:/bucket/a/b.ome.zarr")  # via Path
    assert loc.url == "s3://bucket/a/b.ome.zarr"


# ---- MDAs ---------------------------------------------------------------------
MDA_PLANS = {
    "image": useq.MDASequence(
        time_plan=useq.TIntervalLoops(interval=0.01, loops=2),
        channels=["DAPI", "FITC"],
        z_plan=useq.ZRangeAround(range=2, step=1),
    ),
    "collection": useq.MDASequence(
        stage_positions=[(0, 0, 0), (10, 10, 1)],
        channels=["DAPI", "FITC"],
    ),
    "plate": useq.MDASequence(
        stage_positions=useq.WellPlatePlan(
            plate="24-well",
            a1_center_xy=(0, 0),
            selected_wells=([0, 1], [1, 3]),
        ),
        channels=["DAPI"],
    ),
}


@pytest.mark.parametrize("layout", sorted(MDA_PLANS))
def test_mda_s3(
    core: UniMMCore, s3_endpoint: str, s3_url: str, backend: str, layout: str
) -> None:
    seq = MDA_PLANS[layout]
    cap = Capture(core)
    writer = mmzarr.MDAWriter(s3_url, core=core, backend=backend)
    core.mda.run(seq, output=writer)
    writer.close()
    assert len(cap.frames) == len(list(seq)) == writer.frames_written
    check_metadata_s3(s3_endpoint, s3_url)
    root = s3_json(s3_endpoint, s3_url, "zarr.json")["attributes"]
    assert root["mmzarr"]["status"] == "complete"
    settings = mmzarr.AcquisitionSettings.model_validate(
        s3_json(s3_endpoint, s3_url, "mmzarr/settings.json")
    )
    assert settings.layout == layout
    arrays: dict[str, np.ndarray] = {}
    for event, img in cap.frames:
        key, idx = settings.locate(event.index)
        if key not in arrays:
            arrays[key] = read_zarr_s3(s3_endpoint, s3_url, array_of(key))
        np.testing.assert_array_equal(arrays[key][idx], img, err_msg=str(event.index))


# ---- read while acquiring ------------------------------------------------------


def test_read_while_acquiring_s3(s3_endpoint: str, s3_url: str, backend: str) -> None:
    import yaozarrs
    import zarr

    stream = mmzarr.create_stream(s3_url, live_settings(), backend=backend)

    def check_meta() -> dict[str, Any]:
        opts = {
            "endpoint_url": s3_endpoint,
            "key": "testing",
            "secret": "testing",
            "anon": False,
        }
        yaozarrs.validate_zarr_store(yaozarrs.open_group(s3_url, storage_options=opts))
        group = zarr.open_group(zarr_store(s3_endpoint, s3_url), mode="r")
        # the frame log is uploaded with each flush
        log = mmzarr._metadata.read_frame_log(mmzarr._locations.parse_location(s3_url))
        assert len(log) >= stream.frames_flushed
        return dict(group.attrs)

    try:
        live_check(
            stream,
            backend,
            lambda: read_zarr_s3(s3_endpoint, s3_url, "0"),
            check_meta,
        )
    finally:
        stream.close()


# ---- a server that goes away ------------------------------------------------------
#: README ("Crash safety"): with the server gone, `append` fails within this long.
FAILS_WITHIN_S = 25


@pytest.fixture
def dying_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    """A moto server of this test's own (its URL, the server to stop)."""
    server, endpoint = _start_server()
    url = _use_server(monkeypatch, endpoint)
    stopped = False

    class Server:
        def stop(self) -> None:
            nonlocal stopped
            server.stop()
            stopped = True

    yield url, Server()
    if not stopped:
        server.stop()


def _write_until_the_server_is_gone(url: str, server: Any, backend: str) -> None:
    """Append to `url` until `server`, stopped after 5 frames, makes it fail."""
    settings = mmzarr.AcquisitionSettings.from_useq(
        useq.MDASequence(time_plan={"interval": 0.01, "loops": 10_000}),
        image_shape=(64, 64),
        dtype="uint16",
        pixel_size_um=0.5,
        flush_interval_s=0.1,
    )
    stream = mmzarr.create_stream(url, settings, backend=backend)
    frame = np.ones((64, 64), "uint16")
    for _ in range(5):
        stream.append(frame)
    server.stop()
    t0 = time.monotonic()
    error: StorageError | None = None
    while time.monotonic() - t0 < FAILS_WITHIN_S + 5:
        try:
            stream.append(frame)
        except StorageError as e:
            error = e
            break
        time.sleep(0.01)
    took = time.monotonic() - t0
    assert error is not None, f"append still accepted frames after {took:.0f} s"
    assert took < FAILS_WITHIN_S, took
    assert url in str(error)
    t0 = time.monotonic()
    with pytest.raises(StorageError, match=re.escape(url)):
        stream.close()
    assert time.monotonic() - t0 < FAILS_WITHIN_S + 5
    assert stream.status == "failed"


def test_server_gone_fails_append_in_bounded_time(
    dying_s3: tuple[str, Any],
    s3_endpoint: str,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server stops mid-run: `append` raises a `StorageError` naming the URL
    within `FAILS_WITHIN_S` on every backend (issue #22, item 9); close too.

    Then a failed stream does not hold up the next: a stream whose server died
    leaves writes that its library retries for a while, and a new stream to a
    working server must not queue behind them (tensorstore's S3 request limit
    is shared by the process by default: the next stream's open timed out).
    (One test: each half needs a dead server's stream, ~10-30 s to fail.)"""
    url, server = dying_s3
    _write_until_the_server_is_gone(url, server, backend)
    # a failed S3 stream does not hold up the next
    url = _use_server(monkeypatch, s3_endpoint)
    with mmzarr.create_stream(url, _tiny_settings(), backend=backend) as stream:
        stream.append(np.full((8, 10), 7, "uint16"))
        stream.append(np.full((8, 10), 9, "uint16"))
    data = read_zarr_s3(s3_endpoint, url, "0")
    expected = np.stack([np.full((8, 10), 7, "uint16"), np.full((8, 10), 9, "uint16")])
    np.testing.assert_array_equal(data.reshape(2, 8, 10), expected)


# ---- the mmzarr command ----------------------------------------------------------
def mmzarr_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The `mmzarr` command, with this test's AWS environment (`s3_url`)."""
    return subprocess.run(
        [sys.executable, "-m", "mmzarr", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_acquire_s3_keeps_the_url(
    s3_endpoint: str, s3_url: str, tmp_path: Path
) -> None:
    """`s3://b/x` is said and written as such, not as `s3:/b/x` (a `Path`)."""
    (tmp_path / "plan.yaml").write_text(PLAN_YAML)
    cfg = str(small_config(tmp_path))
    before = sorted(tmp_path.rglob("*"))
    r = mmzarr_cli(
        "acquire", "plan.yaml", s3_url, "--config", cfg, "--dry-run", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert f"would write {s3_url} with backend" in r.stdout
    assert s3_keys(s3_endpoint, s3_url) == []
    r = mmzarr_cli("acquire", "plan.yaml", s3_url, "--config", cfg, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"wrote 6 frames to {s3_url}\n" in r.stdout
    root = s3_json(s3_endpoint, s3_url, "zarr.json")["attributes"]["mmzarr"]
    assert (root["status"], root["frames_written"]) == ("complete", 6)
    assert sorted(tmp_path.rglob("*")) == before  # nothing local (no `s3:` folder)


def _put(endpoint: str, url: str, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        _client(endpoint).put_object(
            Bucket=BUCKET, Key=f"{_prefix(url)}/{key}", Body=body
        )


#: The root document of an OME-Zarr dataset (what `overwrite` may replace).
DATASET = {  # mmzarr's: --overwrite may replace it
    "zarr.json": json.dumps(
        {
            "zarr_format": 3,
            "node_type": "group",
            "attributes": {"ome": {}, "mmzarr": {}},
        }
    ).encode()
}
NOT_A_DATASET = {"notes.txt": b"keep me"}


def test_check_output_s3(s3_endpoint: str, s3_url: str) -> None:
    """The CLI's and the hook's early check reads S3, and writes nothing there."""
    from mmzarr._claim import check_output

    check_output(s3_url, overwrite=False)  # nothing there yet
    assert s3_keys(s3_endpoint, s3_url) == []  # not even the writability probe
    _put(s3_endpoint, s3_url, NOT_A_DATASET)
    with pytest.raises(FileExistsError, match=re.escape(f"output {s3_url!r} already")):
        check_output(s3_url, overwrite=False)
    with pytest.raises(FileExistsError, match="not a zarr dataset"):
        check_output(s3_url, overwrite=True)
    _put(s3_endpoint, s3_url, DATASET)
    with pytest.raises(FileExistsError, match=re.escape("write ('notes.txt')")):
        check_output(s3_url, overwrite=True)  # a dataset holding a user's notes
    _client(s3_endpoint).delete_object(
        Bucket=BUCKET, Key=f"{_prefix(s3_url)}/notes.txt"
    )
    check_output(s3_url, overwrite=True)  # a dataset: replaceable
    assert s3_keys(s3_endpoint, s3_url) == ["zarr.json"]


def test_check_output_s3_wrong_credentials(
    s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import settings as moto_settings

    from mmzarr._claim import check_output

    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(StorageError, match="credentials"):
        check_output(s3_url, overwrite=False)


@dataclass(frozen=True)
class Existing:
    name: str
    objects: dict[str, bytes]
    args: tuple[str, ...]
    message: str  # {url}: the output


EXISTING = [
    Existing("exists", DATASET, (), "output '{url}' already exists; use --overwrite"),
    Existing(  # not told to use --overwrite, which would refuse it in turn
        "exists-not-a-dataset",
        NOT_A_DATASET,
        (),
        "output '{url}' already exists and --overwrite would not replace it "
        "(refusing to replace '{url}': it is not a zarr dataset (no zarr.json); "
        "--overwrite replaces only an mmzarr dataset); choose another path",
    ),
    Existing(
        "overwrite-not-a-dataset",
        NOT_A_DATASET,
        ("--overwrite",),
        "refusing to replace '{url}': it is not a zarr dataset (no zarr.json); "
        "--overwrite replaces only an mmzarr dataset",
    ),
]


@pytest.mark.parametrize("case", EXISTING, ids=lambda c: c.name)
def test_cli_existing_s3_output_is_refused_before_acquiring(
    s3_endpoint: str, s3_url: str, tmp_path: Path, case: Existing
) -> None:
    """As for a local output: one line, nothing acquired, nothing written."""
    (tmp_path / "plan.yaml").write_text(PLAN_YAML)
    cfg = str(small_config(tmp_path))
    _put(s3_endpoint, s3_url, case.objects)
    message = case.message.format(url=s3_url)
    acquire = ("acquire", "plan.yaml", s3_url, "--config", cfg, *case.args)
    r = mmzarr_cli(*acquire, "--dry-run", cwd=tmp_path)
    assert r.returncode == 1, r.stderr  # as the run: a refused plan is no success
    assert f"would write {s3_url} (acquiring would fail: {message}) with" in r.stdout
    r = mmzarr_cli(*acquire, cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"mmzarr: error: {message}"]  # no progress
    assert r.stdout == ""
    assert sorted(s3_keys(s3_endpoint, s3_url)) == sorted(case.objects)


def test_check_output_s3_missing_bucket(s3_url: str) -> None:
    """A missing bucket fails the early check, naming it (not a missing prefix)."""
    from mmzarr._claim import check_output

    url = s3_url.replace(BUCKET, "no-such-bucket-mmzarr")
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-mmzarr' does not"):
        check_output(url, overwrite=False)


def test_cli_missing_bucket_is_refused_before_acquiring(
    s3_endpoint: str, s3_url: str, tmp_path: Path
) -> None:
    """As an existing output: `--dry-run` says it, `acquire` acquires nothing."""
    (tmp_path / "plan.yaml").write_text(PLAN_YAML)
    cfg = str(small_config(tmp_path))
    url = s3_url.replace(BUCKET, "no-such-bucket-mmzarr")
    acquire = ("acquire", "plan.yaml", url, "--config", cfg)
    r = mmzarr_cli(*acquire, "--dry-run", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "(acquiring would fail: " in r.stdout
    assert "bucket 'no-such-bucket-mmzarr' does not exist" in r.stdout
    r = mmzarr_cli(*acquire, cwd=tmp_path)
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1, r.stderr  # no progress, no MDA
    assert r.stderr.startswith("mmzarr: error: ")
    assert "no-such-bucket-mmzarr" in r.stderr


def test_root_names_the_frame_log_it_has_s3(s3_endpoint: str, s3_url: str) -> None:
    """The root's `frame_metadata` names where the frame log is on S3."""
    with mmzarr.create_stream(s3_url, _tiny_settings()) as stream:
        for t in range(2):
            stream.append(frame_for(t), index={"t": t})
    root = s3_json(s3_endpoint, s3_url, "zarr.json")["attributes"]["mmzarr"]
    keys = s3_keys(s3_endpoint, s3_url)
    where = root["frame_metadata"]
    assert any(k == where or k.startswith(where) for k in keys), (where, keys)


# ---- a server that hangs ----------------------------------------------------------
@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An endpoint that accepts connections and never answers (a hung server)."""
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)  # read nothing, answer nothing

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    done.set()
    listener.close()
    for conn in held:
        conn.close()


def test_hung_server_fails_object_requests_in_bounded_time(
    silent_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documents and the frame log (s3fs) fail within `S3_CALL_TIMEOUT_S` when the
    server takes the connection but never answers: the flush thread, and `close`
    waiting for it, hung for minutes (botocore's 60 s read timeout, retried)."""
    import threading

    monkeypatch.setattr(mmzarr._storage, "S3_CALL_TIMEOUT_S", 2.0, raising=False)
    url = "s3://bucket/prefix/run.ome.zarr"
    loc = mmzarr._locations.parse_location(
        url,
        {
            "endpoint_url": silent_endpoint,
            "region": REGION,
            "key": "testing",
            "secret": "testing",
        },
    )
    errors: list[BaseException] = []

    def call(fn: Any) -> None:
        try:
            fn()
        except BaseException as e:  # collected for the assertions
            errors.append(e)

    for fn in (
        lambda: loc.write_bytes("mmzarr/frames/000000.jsonl", b"{}\n"),
        lambda: loc.read_bytes("zarr.json"),
    ):
        thread = threading.Thread(target=call, args=(fn,), daemon=True)
        thread.start()
        thread.join(30)  # far beyond the 2 s bound; the unbounded call takes minutes
        assert not thread.is_alive(), "still waiting for a server that never answers"
    assert len(errors) == 2
    for e in errors:
        assert isinstance(e, StorageError), repr(e)
        assert url in str(e)
        assert "no answer within 2 s" in str(e)


def test_acquire_zarr_on_a_server_that_stops_answering_gives_up(
    s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """acquire-zarr's S3 client has no request timeout: its append and close
    blocked for ever on a server that took connections and never answered.
    Each call now has a deadline (here 1 s); a call past it fails the stream,
    and close does not call acquire-zarr again (it would block too)."""
    import threading

    monkeypatch.setattr("mmzarr.backends._base.OBJECT_STORAGE_TIMEOUT_S", 1.0)
    stream = mmzarr.create_stream(s3_url, _tiny_settings(), backend="acquire-zarr")
    stream.append(frame_for(0))
    backend = stream._backend
    released = threading.Event()

    class Unanswered:  # acquire-zarr waiting on uploads that never finish
        def append(self, *args: Any, **kwargs: Any) -> None:
            released.wait()

        def close(self) -> None:
            released.wait()

    real, backend._stream = backend._stream, Unanswered()
    errors: list[BaseException] = []

    def close() -> None:
        try:
            stream.close()
        except BaseException as e:  # collected for the assertions
            errors.append(e)

    try:
        closing = threading.Thread(target=close, daemon=True)
        closing.start()
        closing.join(30)  # far beyond the 1 s deadline; without it: for ever
        assert not closing.is_alive(), "close still waits for the server"
    finally:
        released.set()
        real.close()
    assert len(errors) == 1
    assert isinstance(errors[0], StorageError), repr(errors[0])
    assert s3_url in str(errors[0])
    assert "S3 stopped answering" in str(errors[0])
    assert stream.status == "failed"
