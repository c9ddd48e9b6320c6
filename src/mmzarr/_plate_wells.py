"""Well selections a plate does not have, named in one line.

useq reads a mapping given as `stage_positions` as a `WellPlatePlan` and, when
that fails, drops its error and says only that stage_positions "must be a
WellPlatePlan or Sequence[Position]". A `selected_wells` outside the plate is
the usual cause: `wells_problem` names the wells that are not on the plate and
the plate's size (or, for well names, which useq does not take, the indices
to give). Plan files (`mmzarr._planfile`) and plans given as a dict
(`mmzarr._sequence.as_sequence`) use it. Reads useq's models only; no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic
import useq

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["wells_problem"]

#: At most this many wells are named in a message.
MAX_NAMED = 5


def wells_problem(plate_plan: Mapping[str, Any]) -> str | None:
    """Why useq refuses the `selected_wells` of `plate_plan`, or None.

    `plate_plan` is a `WellPlatePlan` as a mapping. None when useq takes it,
    when the rest of it is the problem, or when the selection is not one of
    the forms named here (a row, rows, or ``[rows, columns]`` of integers or
    lists of integers; well names): useq's own message then stands.

    Examples
    --------
    >>> plan = {"plate": 96, "a1_center_xy": (0, 0), "selected_wells": [[0, 8], [1, 0]]}
    >>> print(wells_problem(plan))  # doctest: +ELLIPSIS
    stage_positions.selected_wells: well (8, 0) is not on the '96-well' plate of ...
    """
    if "selected_wells" not in plate_plan:
        return None
    try:
        useq.WellPlatePlan.model_validate(plate_plan)
        return None
    except pydantic.ValidationError:
        pass
    try:
        rest = {**plate_plan, "selected_wells": None}
        plate = useq.WellPlatePlan.model_validate(rest).plate
    except pydantic.ValidationError:
        return None  # not (only) the wells: useq's message names the problem
    wells = plate_plan["selected_wells"]
    problem = _names_problem(wells, plate)
    if problem is None:
        problem = _outside(wells, plate)
    if problem is None:
        return None
    got = repr(wells)
    got = f" (got {got})" if len(got) <= 80 else ""
    return f"stage_positions.selected_wells: {problem}{got}"


def _plate_size(plate: useq.WellPlate) -> str:
    """`the '96-well' plate of 8 rows x 12 columns: ... row 0-7 (A-H) ...`."""
    names = plate.all_well_names
    first, last = str(names[0][0]), str(names[-1][-1])
    rows = f"{first.rstrip('0123456789')}-{last.rstrip('0123456789')}"
    which = f"the {plate.name!r} plate" if plate.name else "the plate"
    return (
        f"{which} of {plate.rows} rows x {plate.columns} columns: a well is "
        f"(row, column) counted from 0, row 0-{plate.rows - 1} ({rows}), "
        f"column 0-{plate.columns - 1} (1-{plate.columns})"
    )


def _named(items: list[str]) -> str:
    """`a, b, c` (the first `MAX_NAMED`, then how many more)."""
    shown = ", ".join(items[:MAX_NAMED])
    more = len(items) - MAX_NAMED
    return f"{shown} and {more} more" if more > 0 else shown


def _names_problem(wells: Any, plate: useq.WellPlate) -> str | None:
    """For well names (useq takes indices only): the indices to give instead."""
    names = [wells] if isinstance(wells, str) else wells
    if not isinstance(names, list | tuple) or not names:
        return None
    if not all(isinstance(n, str) for n in names):
        return None
    where = {
        str(name): (r, c)
        for r, row in enumerate(plate.all_well_names)
        for c, name in enumerate(row)
    }
    found = [where[n.strip().upper()] for n in names if n.strip().upper() in where]
    missing = [repr(n) for n in names if n.strip().upper() not in where]
    problem = f"useq takes well indices, not names ({_named([repr(n) for n in names])})"
    if found and not missing:
        rows, columns = [r for r, _ in found], [c for _, c in found]
        return f"{problem}: give [{rows}, {columns}]"
    verb = "is" if len(missing) == 1 else "are"
    return f"{problem}; {_named(missing)} {verb} not on {_plate_size(plate)}"


def _indices(part: Any) -> list[int] | None:
    """`part` of a selection as a list of integers (None: not that form)."""
    items = part if isinstance(part, list | tuple) else [part]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in items):
        return None
    return list(items)


def _outside(wells: Any, plate: useq.WellPlate) -> str | None:
    """The rows, or (row, column) wells, of `wells` that are not on `plate`."""
    # one part per axis: `8` or `[8]` (rows), `[0, 8]` (a well), `[[0, 8], 1]`
    parts = list(wells) if isinstance(wells, list | tuple) else [wells]
    if not 1 <= len(parts) <= 2:
        return None
    axes = [_indices(p) for p in parts]
    if any(not a for a in axes):  # not that form, or no wells (useq takes it)
        return None
    rows = axes[0] or []

    def on(i: int, n: int) -> bool:
        return -n <= i < n

    if len(axes) == 1:
        bad = [str(r) for r in dict.fromkeys(rows) if not on(r, plate.rows)]
        if not bad:
            return None
        noun = "row" if len(bad) == 1 else "rows"
        verb = "is" if len(bad) == 1 else "are"
        return f"{noun} {_named(bad)} {verb} not on {_plate_size(plate)}"
    columns = axes[1] or []
    if len(rows) != len(columns) and 1 not in (len(rows), len(columns)):
        return None  # not broadcastable: useq says so
    n = max(len(rows), len(columns))
    pairs = [
        (rows[k if len(rows) > 1 else 0], columns[k if len(columns) > 1 else 0])
        for k in range(n)
    ]
    bad = [
        f"({r}, {c})"
        for r, c in dict.fromkeys(pairs)
        if not (on(r, plate.rows) and on(c, plate.columns))
    ]
    if not bad:
        return None
    noun, verb = ("well", "is") if len(bad) == 1 else ("wells", "are")
    return f"{noun} {_named(bad)} {verb} not on {_plate_size(plate)}"
