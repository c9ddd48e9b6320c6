"""Independent read-back helpers for tests: zarr-python, tensorstore, validators.

Nothing here uses mmzarr's own reader; metadata is checked with yaozarrs and
ome-zarr-models, pixels with zarr-python and tensorstore.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path


def read_zarr(root: Path, array: str) -> np.ndarray:
    import zarr

    return np.asarray(zarr.open_array(str(root / array), mode="r")[...])


def read_tensorstore(root: Path, array: str) -> np.ndarray:
    import tensorstore as ts

    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(root / array)}}
    return np.asarray(ts.open(spec, open=True).result().read().result())


def array_of(key: str) -> str:
    return f"{key}/0" if key else "0"


def group_json(root: Path, key: str = "") -> dict[str, Any]:
    path = root / key / "zarr.json" if key else root / "zarr.json"
    return json.loads(path.read_text())


def check_metadata(root: Path) -> None:
    """yaozarrs + ome-zarr-models accept every group of the dataset."""
    import yaozarrs
    import zarr

    yaozarrs.validate_zarr_store(str(root))
    try:
        from ome_zarr_models.v05 import HCS, BioFormats2Raw, Image
    except ImportError:  # pragma: no cover - python 3.10
        return
    attrs = group_json(root)["attributes"]["ome"]
    grp = zarr.open_group(str(root), mode="r")
    if "multiscales" in attrs:
        Image.from_zarr(grp)
    elif "plate" in attrs:
        # HCS.from_zarr validates (as `Well` / `Image`) every well group and
        # field group that exists (each twice over); that they all exist is
        # checked here (validating each again took ~40 s for a 384-field plate)
        HCS.from_zarr(grp)
        for w in attrs["plate"]["wells"]:
            zarr.open_group(str(root / w["path"]), mode="r")
            for f in group_json(root, w["path"])["attributes"]["ome"]["well"]["images"]:
                zarr.open_group(str(root / w["path"] / f["path"]), mode="r")
    else:
        # BioFormats2Raw.from_zarr validates the images "0", "1", ... up to the
        # first missing one (its `image_paths`); any other series is checked here
        collection = BioFormats2Raw.from_zarr(grp)
        validated = set(collection.image_paths) if collection.members else set()
        for s in group_json(root, "OME")["attributes"]["ome"]["series"]:
            if s not in validated:
                Image.from_zarr(zarr.open_group(str(root / s), mode="r"))


def assert_frames(
    root: Path, frames: dict[tuple[str, tuple[int, ...]], np.ndarray]
) -> None:
    """Every appended frame reads back equal with zarr-python AND tensorstore."""
    keys = {k for k, _ in frames}
    for key in keys:
        a = read_zarr(root, array_of(key))
        b = read_tensorstore(root, array_of(key))
        np.testing.assert_array_equal(a, b)
        for (k, idx), frame in frames.items():
            if k == key:
                np.testing.assert_array_equal(a[idx], frame, err_msg=f"{k} {idx}")
