"""The settings models themselves: validation, immutability, `locate`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from mmzarr import (
    AcquisitionSettings,
    Channel,
    Dimension,
    FrameError,
    ImageSettings,
    PlateSettings,
)


def dims(**sizes: int | None) -> tuple[Dimension, ...]:
    """Dimensions in the order given, then y=8, x=10."""
    out = [Dimension(name=n, size=s) for n, s in sizes.items()]  # type: ignore[arg-type]
    return (*out, Dimension(name="y", size=8), Dimension(name="x", size=10))


def image(key: str = "", **kwargs: Any) -> ImageSettings:
    kwargs.setdefault("dimensions", dims(t=3, c=2))
    return ImageSettings(key=key, **kwargs)


def single(**kwargs: Any) -> AcquisitionSettings:
    return AcquisitionSettings(
        layout="image", images=(image(**kwargs),), dtype="uint16"
    )


def plate_image(row: str, col: str, fld: int, **kwargs: Any) -> ImageSettings:
    return image(
        f"{row}/{col}/{fld}",
        row=row,
        column=col,
        field=fld,
        coords={"p": kwargs.pop("p")},
        **kwargs,
    )


# ---- the base model ------------------------------------------------------------------
def test_models_are_frozen() -> None:
    s = single()
    with pytest.raises(ValidationError, match="frozen"):
        s.dtype = "uint8"  # type: ignore[misc]
    d = s.images[0].dimensions[0]
    with pytest.raises(ValidationError, match="frozen"):
        d.size = 7  # type: ignore[misc]


@pytest.mark.parametrize(
    ("model", "kwargs"),
    [
        (Dimension, {"name": "t", "size": 3, "sclae": 2.0}),
        (Channel, {"name": "DAPI", "colour": "0000FF"}),
        (ImageSettings, {"key": "", "dimensions": dims(c=1), "chanels": ()}),
    ],
)
def test_unknown_fields_are_errors(model: Any, kwargs: dict[str, Any]) -> None:
    typo = next(k for k in kwargs if k in ("sclae", "colour", "chanels"))
    with pytest.raises(ValidationError, match=typo):
        model(**kwargs)


def test_acquisition_settings_typo_is_error() -> None:
    with pytest.raises(ValidationError, match="compresion"):
        AcquisitionSettings(
            layout="image",
            images=(image(),),
            dtype="uint16",
            compresion="blosc-lz4",  # type: ignore[call-arg]
        )


def test_replace_revalidates_and_copies() -> None:
    d = Dimension(name="z", size=4, scale=0.5)
    d2 = d.replace(size=6)
    assert (d.size, d2.size, d2.scale) == (4, 6, 0.5)
    with pytest.raises(ValidationError, match="greater than 0"):
        d.replace(size=0)
    with pytest.raises(ValidationError, match="got 0"):
        d.replace(scale=0)
    s = single()
    assert s.replace(compression="blosc-zstd").compression == "blosc-zstd"
    assert s.compression == "none"
    with pytest.raises(ValidationError, match="zip"):
        s.replace(compression="zip")
    with pytest.raises(ValidationError, match="uint17"):
        s.replace(dtype="uint17")


# ---- Dimension -----------------------------------------------------------------------
@pytest.mark.parametrize("scale", [0, -1.0, math.nan, math.inf])
def test_dimension_scale_must_be_positive_and_finite(scale: float) -> None:
    with pytest.raises(ValidationError, match=f"got {scale!r}"):
        Dimension(name="x", size=10, scale=scale)


def test_dimension_rules() -> None:
    assert Dimension(name="t", size=None).size is None
    with pytest.raises(ValidationError, match="only 't' may be unbounded"):
        Dimension(name="z", size=None)
    with pytest.raises(ValidationError, match="shard 3 is not a multiple of chunk 2"):
        Dimension(name="t", size=10, chunk=2, shard=3)
    with pytest.raises(ValidationError, match="'space'"):
        Dimension(name="z", size=2, type="time")
    assert Dimension(name="c", size=3).type == "channel"
    assert Dimension(name="y", size=16).chunk == 16
    assert Dimension(name="z", size=16).chunk == 1


# ---- ImageSettings -------------------------------------------------------------------
def test_image_dimensions_in_ngff_order() -> None:
    with pytest.raises(ValidationError, match=r"t,c,z,y,x order.*\['c', 't'"):
        image(dimensions=dims(c=2, t=3))
    with pytest.raises(ValidationError, match="end in 'y', 'x'"):
        image(dimensions=(Dimension(name="y", size=2), Dimension(name="t", size=2)))
    with pytest.raises(ValidationError, match="duplicate dimension names"):
        image(dimensions=(Dimension(name="t", size=2), *dims(t=2)))


def test_only_leading_t_unbounded() -> None:
    im = image(dimensions=dims(t=None, c=2))
    assert im.unbounded
    assert im.frames_planned is None
    with pytest.raises(ValidationError, match="dimension 'y': only 't'"):
        Dimension(name="y", size=None)


def test_channels() -> None:
    im = image()
    assert [c.name for c in im.channels] == ["Channel 0", "Channel 1"]
    with pytest.raises(ValidationError, match="3 channel names for a 'c' dimension"):
        image(channels=[Channel(name=n) for n in "abc"])
    with pytest.raises(ValidationError, match=r"duplicate channel names \['DAPI'\]"):
        image(channels=[Channel(name="DAPI"), Channel(name="DAPI")])
    with pytest.raises(ValidationError, match="color"):
        Channel(name="x", color="blue")
    assert Channel(name="x", color="#00ff00").color == "00FF00"
    uni = image(channels=[Channel(name="GFP-λ"), Channel(name="Ωmega")])
    again = ImageSettings.model_validate_json(uni.model_dump_json())
    assert [c.name for c in again.channels] == ["GFP-λ", "Ωmega"]


def test_skipped_and_iteration_order() -> None:
    im = image(
        dimensions=dims(t=3, c=2),
        acquisition_order=("t", "c"),
        skipped=[(1, 1)],
    )
    assert im.frames_planned == 5
    assert not im.is_acquired((1, 1))
    assert list(im.iter_indices()) == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1)]
    c_outer = im.replace(acquisition_order=("c", "t"))
    assert list(c_outer.iter_indices()) == [(0, 0), (1, 0), (2, 0), (0, 1), (2, 1)]
    with pytest.raises(ValidationError, match="c=2 is out of range"):
        im.replace(skipped=[(0, 2)])
    with pytest.raises(ValidationError, match="permutation"):
        im.replace(acquisition_order=("t", "z"))


def test_skip_period_repeats() -> None:
    im = image(dimensions=dims(t=None, c=2), skipped=[(1, 1)], skip_period=2)
    assert [im.is_acquired((t, 1)) for t in range(6)] == [True, False] * 3
    got = list(im.iter_indices(range(4)))
    assert got == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1), (3, 0)]
    with pytest.raises(ValidationError, match="t=2 is out of range"):
        image(dimensions=dims(t=None, c=2), skipped=[(2, 1)], skip_period=2)


# ---- PlateSettings -------------------------------------------------------------------
def test_well_outside_the_plate() -> None:
    with pytest.raises(ValidationError, match=r"'C/1' is outside the plate"):
        PlateSettings(rows=("A", "B"), columns=("1", "2"), wells=("A/1", "C/1"))
    with pytest.raises(ValidationError, match=r"'A/3' is outside the plate"):
        PlateSettings(rows=("A",), columns=("1", "2"), wells=("A/3",))


def test_plate_names() -> None:
    with pytest.raises(ValidationError, match="'A-1' is not alphanumeric"):
        PlateSettings(rows=("A-1",), columns=("1",), wells=("A-1/1",))
    with pytest.raises(ValidationError, match="duplicate names"):
        PlateSettings(rows=("A", "A"), columns=("1",), wells=("A/1",))
    with pytest.raises(ValidationError, match="duplicates"):
        PlateSettings(rows=("A",), columns=("1",), wells=("A/1", "A/1"))


def test_plate_images() -> None:
    plate = PlateSettings(rows=("A", "B"), columns=("1", "2"), wells=("A/1", "B/2"))
    images = (plate_image("A", "1", 0, p=0), plate_image("B", "2", 0, p=1))
    s = AcquisitionSettings(layout="plate", images=images, dtype="uint8", plate=plate)
    assert s.locate({"p": 1, "t": 2, "c": 1}) == ("B/2/0", (2, 1))
    with pytest.raises(ValidationError, match=r"duplicate keys \['A/1/0'\]"):
        s.replace(images=(images[0], plate_image("A", "1", 0, p=1)))
    with pytest.raises(ValidationError, match=r"image 'A/2/0'.*field=None"):
        s.replace(images=(images[0], image("A/2/0", coords={"p": 1})))
    with pytest.raises(ValidationError, match=r"key 'A/1/1' must be 'A/1/0'"):
        s.replace(images=(images[0], image("A/1/1", row="A", column="1", field=0)))
    with pytest.raises(ValidationError, match=r"well 'A/2' is not among"):
        s.replace(images=(images[0], plate_image("A", "2", 0, p=1)))
    with pytest.raises(ValidationError, match="needs plate="):
        s.replace(plate=None)
    # a listed well without an image: the plate metadata would name a missing group
    three = plate.model_copy(update={"wells": ("A/1", "B/2", "A/2")})
    with pytest.raises(ValidationError, match=r"wells \['A/2'\] have no image"):
        s.replace(plate=three)
    with pytest.raises(ValidationError, match="plate given but layout is 'collection'"):
        AcquisitionSettings(
            layout="collection",
            images=(image("0", coords={"p": 0}), image("1", coords={"p": 1})),
            dtype="uint8",
            plate=plate,
        )


# ---- AcquisitionSettings -------------------------------------------------------------
def test_layout_keys() -> None:
    with pytest.raises(ValidationError, match="exactly one image with key ''"):
        AcquisitionSettings(layout="image", images=(image("0"),), dtype="uint8")
    with pytest.raises(ValidationError, match=r"duplicate keys \['0'\]"):
        AcquisitionSettings(
            layout="collection", images=(image("0"), image("0")), dtype="uint8"
        )
    with pytest.raises(ValidationError, match="an image key may not be ''"):
        AcquisitionSettings(
            layout="collection", images=(image(""), image("1")), dtype="uint8"
        )
    with pytest.raises(ValidationError, match=r"'a b' is not a valid zarr path"):
        AcquisitionSettings(layout="collection", images=(image("a b"),), dtype="uint8")
    with pytest.raises(ValidationError, match=r"coords \['c'\] are storage axes"):
        AcquisitionSettings(
            layout="collection",
            images=(image("0", coords={"c": 0}), image("1", coords={"c": 1})),
            dtype="uint8",
        )
    with pytest.raises(ValidationError, match="same coords"):
        AcquisitionSettings(
            layout="collection",
            images=(image("0", coords={"p": 1}), image("1", coords={"p": 1})),
            dtype="uint8",
        )


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (("..", "0"), r"image key '\.\.': '\.\.' is reserved"),
        (("a/./b", "0"), r"'\.' is reserved"),
        (("zarr.json", "0"), r"'zarr\.json' is reserved"),
        (("0", "a/zarr.json"), r"'zarr\.json' is reserved"),
        (("__x", "0"), r"'__x' is reserved"),
        (("OME", "0"), r"'OME' holds the dataset's own metadata"),
        (("0", "mmzarr"), r"'mmzarr' holds the dataset's own metadata"),
        (("A", "a"), r"'A' and 'a' differ only by case"),
        (("x/A/1", "x/a/2"), r"'x/A' and 'x/a' differ only by case"),
        (("0", "0/1"), r"image key '0/1' is inside image '0'"),
        # Windows: a trailing '.' is dropped, device names are no folders
        (("a.", "a"), r"'a\.' ends with '\.', which Windows drops"),
        (("x/b..", "0"), r"'b\.\.' ends with '\.'"),
        (("con", "0"), r"'con' is a device name on Windows"),
        (("0", "x/NUL.txt"), r"'NUL\.txt' is a device name on Windows"),
        (("Aux", "0"), r"'Aux' is a device name"),
        (("prn.tar.gz", "0"), r"'prn\.tar\.gz' is a device name"),
        (("com1", "0"), r"'com1' is a device name"),
        (("0", "LPT9"), r"'LPT9' is a device name"),
        (("a:b", "0"), r"'a:b' is not a valid zarr path: use letters"),
        (("x?", "0"), r"'x\?' is not a valid zarr path"),
        (("a\\b", "0"), r"is not a valid zarr path"),
        (("a\tb", "0"), r"is not a valid zarr path"),
        (("a ", "0"), r"'a ' is not a valid zarr path"),
    ],
    ids=lambda v: "+".join(v) if isinstance(v, tuple) else "",
)
def test_image_keys_each_a_folder_of_their_own(
    keys: tuple[str, ...], message: str
) -> None:
    """Such keys were accepted: `OME` or `mmzarr` went into the dataset's own
    groups, `0/1` inside image `0`, `A` and `a` are one folder on macOS, `a.`
    and `a` one folder on Windows, `con` or `nul.txt` no folder there, and
    `..`, `.`, `zarr.json` failed only when the stream opened, unclearly."""
    images = tuple(image(k, coords={"p": i}) for i, k in enumerate(keys))
    with pytest.raises(ValidationError, match=message):
        AcquisitionSettings(layout="collection", images=images, dtype="uint8")


@pytest.mark.parametrize(
    "keys",
    [("console", "com10", "nul_1", "lpt", "a.b", ".a", "A/1/0"), ("con_", "x")],
    ids=lambda v: "+".join(v),
)
def test_image_keys_windows_can_hold(keys: tuple[str, ...]) -> None:
    """Names that only look like Windows' reserved ones are folders there."""
    images = tuple(image(k, coords={"p": i}) for i, k in enumerate(keys))
    s = AcquisitionSettings(layout="collection", images=images, dtype="uint8")
    assert s.keys == keys


@pytest.mark.parametrize("dtype", ["uint17", "complex64", "nonsense"])
def test_bad_dtype(dtype: str) -> None:
    with pytest.raises(ValidationError, match=dtype):
        single().replace(dtype=dtype)


def test_dtype_normalised() -> None:
    s = AcquisitionSettings(layout="image", images=(image(),), dtype=np.uint16)
    assert s.dtype == "uint16"
    assert single().replace(dtype=np.dtype(">f4")).dtype == "float32"
    with pytest.raises(ValidationError, match="unknown dtype None"):
        single().replace(dtype=None)
    assert s.itemsize == 2
    assert s.bytes_planned == 6 * 8 * 10 * 2


def test_locate() -> None:
    s = AcquisitionSettings(
        layout="collection",
        images=(
            image("0", coords={"p": 0}),
            image("1", coords={"p": 1}, dimensions=dims(z=4)),
        ),
        dtype="uint16",
    )
    assert s.locate({"p": 0, "t": 2, "c": 1}) == ("0", (2, 1))
    assert s.locate({"p": 1, "z": 3}) == ("1", (3,))
    # axes the image lacks are accepted at 0, numpy integers too
    assert s.locate({"p": np.int64(1), "z": np.int32(2), "c": 0}) == ("1", (2,))
    assert s.locate({"p": 1, "g": 0, "z": 0}) == ("1", (0,))
    with pytest.raises(FrameError, match=r"no 'c' axis.*c=1"):
        s.locate({"p": 1, "z": 0, "c": 1})
    with pytest.raises(FrameError, match=r"z=4 is out of range"):
        s.locate({"p": 1, "z": 4})
    with pytest.raises(FrameError, match=r"no image has coords \{'p': 2\}"):
        s.locate({"p": 2})
    with pytest.raises(FrameError, match="True is not an integer"):
        s.locate({"p": 0, "t": True})
    with pytest.raises(FrameError, match=r"'x' is not an integer"):
        s.locate({"p": "x", "t": 0})
    with pytest.raises(FrameError, match=r"mapping.*\[1, 1, 1\]"):
        s.locate([1, 1, 1])  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="'9'"):
        s.image("9")
    assert s.keys == ("0", "1")
    assert s.frames_planned == 6 + 4
