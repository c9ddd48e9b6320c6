"""`finalize(path)`: turn a dataset whose writer died into a valid one.

A killed writer leaves group metadata saying `acquiring`, arrays whose shape may
not match what reached the disk (an unbounded `t`), and a frame log. Finalizing
keeps every frame whose chunks are on disk, sets unbounded arrays' `t` to the
time points that hold data, and rewrites the group metadata with status
`interrupted` and the frames that are there. Only `zarr.json` files are
rewritten; no chunk is touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmzarr import _layout, _metadata
from mmzarr._settings import AcquisitionSettings
from mmzarr._stream import SETTINGS_FILE, _Written, write_group_metadata
from mmzarr._validate import ValidationReport, array_documents, frame_is_complete, validate

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["finalize"]


def finalize(path: str | Path) -> ValidationReport:
    """Make a crashed mmzarr dataset valid; returns the validation afterwards.

    Raises
    ------
    FileNotFoundError
        If `path` has no mmzarr settings (not written by mmzarr).
    """
    from pathlib import Path

    root = Path(path)
    settings_file = root / SETTINGS_FILE
    if not settings_file.is_file():
        raise FileNotFoundError(
            f"{str(settings_file)!r} not found: only datasets written by mmzarr can "
            "be finalized"
        )
    settings = AcquisitionSettings.model_validate_json(
        settings_file.read_text(encoding="utf-8")
    )
    root_attrs = _metadata.read_json(root / "zarr.json").get("attributes", {})
    old = root_attrs.get("mmzarr", {})
    status = old.get("status", "acquiring")
    docs = array_documents(root)
    written = [_Written(im) for im in settings.images]
    index_of = {im.key: i for i, im in enumerate(settings.images)}
    for rec in _metadata.read_frame_log(root):
        i = index_of.get(rec.get("image", ""))
        if i is None:
            continue
        im = settings.images[i]
        doc = docs.get(_layout.array_path(im))
        if doc is None:
            continue
        index = tuple(int(v) for v in rec.get("index", []))
        if frame_is_complete(root, _layout.array_path(im), doc, index, im.unbounded):
            written[i].mark(index, im.unbounded)
    for i, im in enumerate(settings.images):
        apath = _layout.array_path(im)
        if im.unbounded and apath in docs:
            doc = docs[apath]
            if doc["shape"][0] != written[i].t_size:
                doc["shape"][0] = written[i].t_size
                _metadata.write_json_atomic(root / apath / "zarr.json", doc)
    if status == "acquiring":
        status = "interrupted"
    write_group_metadata(
        root,
        settings,
        written,
        status=status,
        backend=old.get("backend", "unknown"),
        dropped=int(old.get("frames_dropped", 0)),
    )
    return validate(root)
