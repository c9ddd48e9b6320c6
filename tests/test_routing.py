"""The routing core: literal tables of where frames go (no I/O, no useq).

Settings are written by hand; every expected placement is a literal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from mmzarr import AcquisitionSettings, Dimension, FrameError, ImageSettings
from mmzarr._routing import Ledger, Placement, Router

YX = (Dimension(name="y", size=4), Dimension(name="x", size=5))


def image(key: str, coords: dict[str, int], **sizes: int | None) -> ImageSettings:
    dims = [Dimension(name=a, size=n) for a, n in sizes.items()]  # type: ignore[arg-type]
    return ImageSettings(key=key, coords=coords, dimensions=(*dims, *YX))


def settings(*images: ImageSettings, **kw: Any) -> AcquisitionSettings:
    layout = "image" if len(images) == 1 else "collection"
    return AcquisitionSettings(layout=layout, images=images, dtype="uint16", **kw)


TC = settings(image("", {}, t=2, c=2))
TWO_POS = (image("0", {"p": 0}, t=2, c=1), image("1", {"p": 1}, t=2, c=1))


@dataclass(frozen=True)
class OrderCase:
    name: str
    settings: AcquisitionSettings
    order: list[tuple[str, tuple[int, ...]]]


ORDER_CASES = [
    OrderCase("tc", TC, [("", (0, 0)), ("", (0, 1)), ("", (1, 0)), ("", (1, 1))]),
    OrderCase(
        "positions-inside-time",
        settings(*TWO_POS, positions_inside_time=True),
        [("0", (0, 0)), ("1", (0, 0)), ("0", (1, 0)), ("1", (1, 0))],
    ),
    OrderCase(
        "positions-outside-time",
        settings(*TWO_POS, positions_inside_time=False),
        [("0", (0, 0)), ("0", (1, 0)), ("1", (0, 0)), ("1", (1, 0))],
    ),
    OrderCase(
        "acquisition-order-cz-inside-t",
        settings(
            ImageSettings(
                key="",
                dimensions=(
                    Dimension(name="c", size=2),
                    Dimension(name="z", size=2),
                    *YX,
                ),
                acquisition_order=("z", "c"),
            )
        ),
        [("", (0, 0)), ("", (1, 0)), ("", (0, 1)), ("", (1, 1))],
    ),
    OrderCase(
        "skipped-slots",
        settings(
            ImageSettings(
                key="",
                dimensions=(
                    Dimension(name="t", size=2),
                    Dimension(name="c", size=2),
                    *YX,
                ),
                skipped=((1, 1),),
            )
        ),
        [("", (0, 0)), ("", (0, 1)), ("", (1, 0))],
    ),
]


def written(router: Router, index: dict[str, int] | None = None) -> Placement:
    """Place a frame and mark it written, as `Stream.append` does."""
    where = router.place(index)
    router.mark(where)
    return where


@pytest.mark.parametrize("case", ORDER_CASES, ids=lambda c: c.name)
def test_default_order(case: OrderCase) -> None:
    router = Router(case.settings)
    got = [(p.key, p.index) for p in (written(router) for _ in case.order)]
    assert got == case.order
    with pytest.raises(FrameError, match=r"one more than the plan holds"):
        router.place()


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        ({"t": 1, "c": 0}, Placement(0, "", (1, 0))),
        ({"c": 1}, Placement(0, "", (0, 1))),
        ({"t": 0, "c": 1, "p": 0}, Placement(0, "", (0, 1))),
    ],
)
def test_place_by_index(index: dict[str, int], expected: Placement) -> None:
    assert Router(TC).place(index) == expected


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ({"t": 2, "c": 0}, r"t=2 is out of range \[0, 2\)"),
        ({"t": 0, "z": 1}, r"has no 'z' axis"),
        ({"p": 3, "t": 0}, r"no image has coords \{'p': 3\}"),
        ({"t": -1}, r"t=-1 is out of range"),
    ],
)
def test_place_rejects(index: dict[str, int], message: str) -> None:
    with pytest.raises(FrameError, match=message):
        Router(settings(*TWO_POS) if "p" in index else TC).place(index)


def test_collection_placement_by_position() -> None:
    router = Router(settings(*TWO_POS))
    assert router.place({"p": 1, "t": 1, "c": 0}) == Placement(1, "1", (1, 0))
    assert router.place({"p": 0, "t": 0, "c": 0}) == Placement(0, "0", (0, 0))


def test_skip_advances_the_default_order() -> None:
    router = Router(TC)
    router.skip(3)
    assert written(router) == Placement(0, "", (1, 1))
    with pytest.raises(FrameError, match=r"skip\(1\): only 0 slot"):
        router.skip(1)


def test_ledger_marks_once_and_lists_missing() -> None:
    router = Router(TC)
    first = router.place({"t": 0, "c": 1})
    assert not router.is_written(first)
    router.mark(first)
    assert router.is_written(first)
    assert router.frames == 1
    assert router.ledgers[0].missing(TC.images[0]) == [[0, 0], [1, 0], [1, 1]]
    assert router.ledgers[0].missing_count(TC.images[0]) == 3


def test_missing_count_leaves_out_slots_the_plan_skips() -> None:
    """t=3 x c=2, channel 1 acquired at t 0 only (skipped at t 1, 2)."""
    im = ImageSettings(
        key="",
        dimensions=(
            Dimension(name="t", size=3),
            Dimension(name="c", size=2),
            *YX,
        ),
        skipped=((1, 1), (2, 1)),
    )
    s = settings(im)
    router = Router(s)
    router.mark(router.place({"t": 1, "c": 0}))
    ledger = router.ledgers[0]
    assert ledger.missing(im) == [[0, 0], [0, 1], [2, 0]]
    assert ledger.missing_count(im) == 3


def test_unbounded_t_grows_and_reports_its_size() -> None:
    s = settings(image("", {}, t=None, c=2))
    router = Router(s)
    for t in (0, 20, 5):
        written(router, {"t": t, "c": 1})
    assert router.t_sizes() == {0: 21}
    assert router.is_written(Placement(0, "", (20, 1)))
    assert not router.is_written(Placement(0, "", (20, 0)))
    assert not router.is_written(Placement(0, "", (99, 1)))


def test_a_growing_t_counts_a_gap_from_dropped_frames_too() -> None:
    """1024 empty time points are the most before a frame; after a long spell
    of dropped frames (storage behind, `on_full="drop"`) the next frames are
    not gaps: they were refused for good when counted from the last written."""
    router = Router(settings(image("", {}, t=None)))
    written(router, {"t": 0})
    with pytest.raises(FrameError, match=r"t=1026 .*1025 empty .*reached: t=0"):
        router.check_free(router.place({"t": 1026}), {"t": 1026})
    for t in range(1, 2001):
        router.drop(router.place({"t": t}))
    router.check_free(router.place({"t": 2001}), {"t": 2001})  # dropped up to t=2000
    assert written(router, {"t": 2001}).index == (2001,)
    with pytest.raises(FrameError, match=r"t=3027 .*1025 empty .*reached: t=2001"):
        router.check_free(router.place({"t": 3027}), {"t": 3027})
    assert router.t_sizes() == {0: 2002}


def test_fallback_takes_frames_in_arrival_order_whatever_their_index() -> None:
    s = AcquisitionSettings.fallback("test", image_shape=(4, 5), dtype="uint16")
    router = Router(s)
    got = [written(router, {"p": 7, "t": 3, "c": 1}).index for _ in range(3)]
    assert got == [(0,), (1,), (2,)]


def test_ledger_of_an_image_without_index_axes() -> None:
    yx = ImageSettings(key="", dimensions=YX)
    ledger = Ledger(yx)
    assert ledger.mark(())
    assert not ledger.mark(())
    assert ledger.has(())
    assert ledger.count == 1


def test_a_refused_frame_keeps_its_default_slot() -> None:
    router = Router(TC)
    first = router.place()
    assert router.place() == first  # not taken until written
    router.mark(first)
    second = router.place()
    assert second == Placement(0, "", (0, 1))
    router.drop(second)  # a dropped frame gives its slot up
    assert router.place() == Placement(0, "", (1, 0))


@pytest.mark.parametrize(
    "index",
    [
        {"t": 1, "c": 0},
        {"t": 0, "c": 1, "p": 0},
        {"c": 1},
        {"t": np.int64(1), "c": np.int64(1)},
    ],
    ids=str,
)
def test_table_lookup_agrees_with_the_settings(index: dict[str, int]) -> None:
    # the fast path and the settings' own mapping give the same placement
    router = Router(TC)
    image = TC.image_number(index)
    assert router.place(index) == Placement(image, "", TC.storage_index(image, index))


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ({"t": 1, "z": 1, "c": -1}, r"has no 'z' axis"),
        ({"t": 1, "c": 5}, r"c=5 is out of range"),
        ({"t": True}, r"is not an integer"),
    ],
)
def test_table_lookup_leaves_bad_indices_to_the_checks(
    index: dict[str, int], message: str
) -> None:
    router = Router(TC)
    router.place({"t": 0, "c": 0})  # the image is in the table now
    with pytest.raises(FrameError, match=message):
        router.place(index)
