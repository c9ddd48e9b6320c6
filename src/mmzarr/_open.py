"""`create_stream`: the I/O of opening a dataset, then a `Stream` over it.

It claims the output (`_claim`: the writer's lock, what `overwrite` may
replace, an old dataset kept until the new one has opened), writes the
settings, the summary and every group's metadata before the first frame (so a
crash leaves a readable dataset), opens the frame log and the backend, and
undoes all of it if opening fails. `Stream` (in `_stream`) takes it from there.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import wait
from typing import TYPE_CHECKING, Any

from mmzarr import _metadata
from mmzarr._claim import claim as claim_output
from mmzarr._dataset import (
    in_background,
    write_group_metadata,
    write_settings,
    write_summary,
)
from mmzarr._layout import GroupDocuments
from mmzarr._locations import parse_location
from mmzarr._routing import Router
from mmzarr._storage import S3Config
from mmzarr._stream import Stream
from mmzarr.backends import DEFAULT_BACKEND, Arrays, Limits, get_backend
from mmzarr.errors import PlanError, StorageError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from mmzarr._settings import AcquisitionSettings

__all__ = ["create_stream"]


def create_stream(
    path: str | Path,
    settings: AcquisitionSettings,
    *,
    backend: str = DEFAULT_BACKEND,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    summary: Mapping[str, Any] | None = None,
    **backend_options: Any,
) -> Stream:
    """Open a new OME-Zarr dataset at `path` for the frames `settings` describe.

    Parameters
    ----------
    path
        Output directory (conventionally ending in `.ome.zarr`), or an S3 URL
        `s3://bucket/prefix/run.ome.zarr`; endpoint, region and credentials then
        come from `storage_options` or the AWS environment variables
        (`AWS_ENDPOINT_URL[_S3]`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
        `AWS_SECRET_ACCESS_KEY`). Needs the `s3` extra.
    settings
        What will be written (`AcquisitionSettings.from_useq` or by hand).
    backend
        `"acquire-zarr"` (default), `"tensorstore"` or `"zarr-python"`.
    overwrite
        Replace an existing `path`; otherwise it is a `FileExistsError`. Only a
        dataset (a root `zarr.json` that is a zarr v3 group with `ome` or
        `mmzarr` attributes) or an empty directory is replaced; never a file, a
        symbolic link, another directory, the current working directory or one
        containing it. A local dataset is moved aside and deleted only once the
        new one has opened: if opening fails, it is put back unchanged.
    storage_options
        For S3: `endpoint_url`, `region`, `key`, `secret`, `token`.
    summary
        The microscope's state at the start, e.g. pymmcore-plus' summary
        metadata (`MDAWriter` passes it): written to `mmzarr/summary.json`
        before the first frame and mapped into the OME-XML (instrument).
    **backend_options
        Passed to the backend's constructor.

    Raises
    ------
    DatasetLockedError
        (a `StorageError` and `FileExistsError`) when another writer (or
        `mmzarr finalize`) holds the local `path`'s lock, whatever `overwrite`
        says; the message names the holder (pid, host, start time).
    FileExistsError
        When `path` exists and not `overwrite`, or it may not be replaced.
    StorageError
        (an `OSError`) when the dataset cannot be created, naming the full path.

    Examples
    --------
    >>> import numpy as np, useq
    >>> from mmzarr import AcquisitionSettings, create_stream
    >>> seq = useq.MDASequence(
    ...     channels=["DAPI", "FITC"], z_plan={"range": 2, "step": 1}
    ... )
    >>> settings = AcquisitionSettings.from_useq(
    ...     seq, image_shape=(64, 64), dtype="uint16", pixel_size_um=0.5
    ... )
    >>> with create_stream("doc.ome.zarr", settings, overwrite=True) as stream:
    ...     for event in seq:
    ...         _ = stream.append(np.zeros((64, 64), "uint16"), index=event.index)
    """
    from mmzarr._settings import AcquisitionSettings

    if not isinstance(settings, AcquisitionSettings):
        raise TypeError(
            f"settings: expected AcquisitionSettings, got {type(settings).__name__} "
            f"{settings!r}"
        )
    location = parse_location(path, storage_options)
    array_backend = get_backend(backend, **backend_options)
    name = type(array_backend).__name__
    if not location.is_local and not array_backend.capabilities.object_storage:
        raise PlanError(
            f"backend {name} cannot write to object storage ({location.url}); use "
            "backend='acquire-zarr', 'tensorstore' or 'zarr-python'"
        )
    limits = Limits.of(settings, location)
    # lock the output, move an old dataset aside (FileExistsError when it may
    # not be replaced); undone below if the new dataset does not open
    claim = claim_output(location, overwrite)
    log: _metadata.FrameLog | _metadata.SegmentedFrameLog | None = None
    opened = False  # the backend
    try:
        write_settings(location, settings)
        if summary is not None:
            write_summary(location, summary)
        ledgers = Router(settings).ledgers
        documents = GroupDocuments(settings)  # built once, written again at close
        # the group documents (~500 for a 96-well plate) are written while the
        # backend creates its arrays; both are done before the first frame
        groups = in_background(
            write_group_metadata,
            location,
            settings,
            ledgers,
            status="acquiring",
            backend=name,
            ome_xml=False,
            durable=False,
            documents=documents,
        )
        try:
            if location.path is not None:
                log = _metadata.FrameLog(
                    location.path / _metadata.FRAMES_LOG,
                    fsync_interval_s=settings.flush_interval_s,
                )
            else:
                log = _metadata.SegmentedFrameLog(location)
            # credentials a backend exports for its S3 client are removed from
            # the environment once it has opened
            with (
                contextlib.nullcontext()
                if location.is_local
                else S3Config.environment()
            ):
                array_backend.open(location, Arrays.of(settings), limits)
            opened = True
        finally:
            wait([groups])  # nothing is undone while documents are being written
        groups.result()
        # the documents of a failed close must fit on a full disk
        location.reserve_space(location.size_of("zarr.json"))
    except BaseException as e:
        # nothing acquired yet: remove what was made, put the old data back
        if opened:  # the documents failed: the backend's threads end first
            with contextlib.suppress(Exception):
                array_backend.flush(final=True)
        if isinstance(log, _metadata.FrameLog):
            with contextlib.suppress(OSError):
                log.close()  # nothing queued: closes the file
        claim.abort()
        if isinstance(e, OSError) and not isinstance(e, StorageError):
            raise StorageError(f"cannot create dataset at {location.where}: {e}") from e
        raise
    claim.commit()
    stream = Stream(
        location,
        settings,
        array_backend,
        claim=claim,
        log=log,
        limits=limits,
        documents=documents,
    )
    stream.start()
    return stream
