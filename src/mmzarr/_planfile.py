"""Plan files: read a useq plan from YAML or JSON and check it before useq does.

Owns the limits on a plan file (its size, no YAML aliases), the check that every
key of the raw document is one that useq reads, and turning useq's validation
errors into one short line. useq's models ignore keys they do not know, so
without the check a misspelled ``chanels:`` would run a plan without channels.
The valid keys are read from the useq models themselves (`model_fields` and
their aliases, after each model's own before-validators have normalised the
input), so they follow the installed useq. A plate plan's error, which useq
drops, is named (wells not on the plate: `mmzarr._plate_wells`), and a time
plan that goes back or that useq cannot iterate is refused
(`_sequence.check_time_plans`): the CLI stops before it loads a camera or
writes anything. Every problem is a `PlanError` whose message is one line.
What a plan means for the dataset is `from_useq`'s business, not this module's.
"""

from __future__ import annotations

import collections.abc
import difflib
import functools
import json
import math
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic
import useq
import yaml

from mmzarr._plate_wells import wells_problem
from mmzarr._sequence import check_time_plans
from mmzarr.errors import PlanError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["MAX_MESSAGE", "MAX_PLAN_BYTES", "check_keys", "load_plan", "plan_from"]

#: The largest plan file `load_plan` reads (a plan is a few KB).
MAX_PLAN_BYTES = 1024**2
#: Errors about a plan are cut to this many characters.
MAX_MESSAGE = 500

_SEQUENCES = (
    list,
    tuple,
    set,
    frozenset,
    collections.abc.Sequence,
    collections.abc.Set,
)


def load_plan(path: str | Path) -> useq.MDASequence:
    """Read a useq plan from a YAML or JSON file.

    At most `MAX_PLAN_BYTES`; YAML aliases are refused; every key must be one
    useq reads (`check_keys`); messages are cut to `MAX_MESSAGE` characters.

    Raises
    ------
    PlanError
        For a missing, too large or unparsable file, an unknown key or a plan
        useq rejects, with a one-line message naming the file and the key.
    """
    p = Path(path)
    name = repr(str(p))
    if p.is_dir():
        raise PlanError(f"plan file {name} is a directory: give a YAML or JSON file")
    if not p.is_file():
        raise PlanError(f"plan file not found: {name}")
    size = p.stat().st_size
    if size > MAX_PLAN_BYTES:
        raise PlanError(
            f"plan {name} is {size} bytes, more than the {MAX_PLAN_BYTES} "
            "bytes a plan file may have"
        )
    try:
        text = p.read_text(encoding="utf-8")
        if p.suffix == ".json":
            # an empty file is an empty plan, as in YAML (not a JSON syntax error)
            data = (
                json.loads(text, object_pairs_hook=_unique_keys)
                if text.strip()
                else None
            )
        else:
            data = yaml.load(text, Loader=_plan_loader())  # a SafeLoader
    except RecursionError as e:
        raise PlanError(f"plan {name} is nested too deeply") from e
    except (ValueError, yaml.YAMLError) as e:
        reason = _one_line(e)
        mark = getattr(e, "problem_mark", None)
        if isinstance(e, yaml.MarkedYAMLError) and mark is not None:
            reason = f"{e.problem} (line {mark.line + 1}, column {mark.column + 1})"
        raise PlanError(_cut(f"plan {name} is not valid YAML/JSON: {reason}")) from e
    return plan_from(data, name=name)


def plan_from(data: Any, name: str = "") -> useq.MDASequence:
    """An `MDASequence` from the raw document of a plan file (see `load_plan`).

    `name` (the file, quoted) is named in messages.

    Examples
    --------
    >>> plan_from({"channels": ["DAPI"], "z_plan": {"range": 2, "step": 1}}).shape
    (1, 3)
    """
    plan = f"plan {name}" if name else "plan"
    if data is None:
        raise PlanError(f"{plan} is empty")
    if not isinstance(data, dict):
        raise PlanError(f"{plan} must be a mapping, got {type(data).__name__}")
    try:
        problem = check_keys(data) or _not_a_number(data)
        if problem is not None:
            raise PlanError(_cut(f"{plan}: {problem}", 2 * MAX_MESSAGE))
        seq = useq.MDASequence.model_validate(data)
    except pydantic.ValidationError as e:
        why = _plate_problem(data) or _short(e, data)
        raise PlanError(_cut(f"useq rejected {plan}: {why}")) from e
    except RecursionError as e:
        raise PlanError(f"{plan} is nested too deeply") from e
    try:
        # a time plan that goes back is nonsense input, refused before a run
        # (the writers keep such a plan's frames in the fallback layout)
        check_time_plans(seq)
    except PlanError as e:
        raise PlanError(_cut(f"{plan}: {e}")) from e
    return seq


def _plate_problem(data: dict[str, Any]) -> str | None:
    """Why useq would not read `stage_positions` as a plate plan, or None.

    useq drops that error: it says only that stage_positions "must be a
    WellPlatePlan or Sequence[Position]". Wells not on the plate are named
    (`wells_problem`); another problem is useq's plate-plan error, short.
    """
    plate_plan = data.get("stage_positions")
    if not isinstance(plate_plan, dict):
        return None
    try:
        useq.WellPlatePlan.model_validate(plate_plan)
    except pydantic.ValidationError as e:
        return wells_problem(plate_plan) or _short(e, plate_plan, "stage_positions")
    return None


def check_keys(
    data: dict[str, Any], model: type[pydantic.BaseModel] = useq.MDASequence
) -> str | None:
    """The first problem with the keys of `data`, at any depth, or None.

    A key `model` would not read is named with its path (``z_plan.rnage``),
    the closest valid key and the keys that kind of plan takes (every kind,
    for a union such as a z plan). Required keys missing from a non-empty
    mapping are problems too, and so are keys of a union that no single kind
    takes (``z_plan: {range: 2, top: 1}``): useq would drop one of them.

    Examples
    --------
    >>> check_keys({"z_plan": {"rnage": 2}}).split(";")[0]
    "unknown key 'z_plan.rnage' (did you mean 'range'?)"
    """
    return _check(data, model, "")


# ---- the key check ---------------------------------------------------------------
def _members(annotation: Any) -> tuple[Any, ...]:
    """The alternatives of a type (unions flattened, `Annotated` unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return tuple(m for a in typing.get_args(annotation) for m in _members(a))
    return (annotation,)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)


def _free_form(annotation: Any) -> bool:
    """True for a type any mapping fits (`Any`, `dict[str, Any]`)."""
    origin = typing.get_origin(annotation) or annotation
    return annotation is Any or (
        isinstance(origin, type) and issubclass(origin, collections.abc.Mapping)
    )


def _items(annotation: Any, n: int) -> list[Any] | None:
    """The type of each of `n` items when `annotation` is a sequence, else None."""
    origin = typing.get_origin(annotation)
    if origin not in _SEQUENCES:
        return None
    args = typing.get_args(annotation)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return [args[i] if i < len(args) else Any for i in range(n)]
    return [args[0] if args else Any] * n


def _normalised(model: type[pydantic.BaseModel], data: Any) -> dict[Any, Any] | None:
    """`data` as `model` reads it after its before-validators; None if no mapping.

    useq reads a string as a Channel, a list as a multi-phase time plan and
    `row` as a position's `grid_row` this way; the keys are checked after.
    """
    value: Any = dict(data) if isinstance(data, dict) else data
    validators = model.__pydantic_decorators__.model_validators.values()
    for validator in reversed(list(validators)):  # pydantic runs the last first
        if validator.info.mode != "before":
            continue
        try:
            value = validator.func(value)
        except Exception:  # useq's own validation will say what is wrong
            return None
        value = dict(value) if isinstance(value, dict) else value
    return value if isinstance(value, dict) else None


@functools.cache
def _field_keys(model: type[pydantic.BaseModel]) -> Mapping[str, str]:
    """`{key: field name}` for every key `model` reads (names and aliases)."""
    config = model.model_config
    by_name = config.get("populate_by_name") or config.get("validate_by_name")
    keys: dict[str, str] = {}
    for name, field in model.model_fields.items():
        aliases: list[str] = [field.alias] if field.alias else []
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, pydantic.AliasChoices) else [alias]
        for choice in choices:
            key = choice.path[0] if isinstance(choice, pydantic.AliasPath) else choice
            if isinstance(key, str):
                aliases.append(key)
        if by_name or not aliases:
            keys[name] = name
        keys.update(dict.fromkeys(aliases, name))
    return types.MappingProxyType(keys)


def _missing(model: type[pydantic.BaseModel], data: dict[Any, Any]) -> list[str]:
    """The required fields of `model` that `data` does not give."""
    given = {_field_keys(model).get(k) for k in data if isinstance(k, str)}
    return [
        name
        for name, field in model.model_fields.items()
        if field.is_required() and name not in given
    ]


def _not_a_number(data: Any, path: str = "") -> str | None:
    """Where the document holds a NaN or infinite number (useq takes them)."""
    if isinstance(data, float) and not math.isfinite(data):
        return f"{path or 'the plan'} is {data}; give a finite number"
    items: Any = ()
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    for key, value in items:
        if (problem := _not_a_number(value, _join(path, key))) is not None:
            return problem
    return None


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _takes(models: list[type[pydantic.BaseModel]]) -> str:
    """What `models` read: the keys of one, or of each kind of a union."""
    keys = [list(_field_keys(m)) for m in models]
    if len(models) == 1:
        return f"{models[0].__name__} takes: {', '.join(keys[0])}"
    common = [k for k in keys[0] if all(k in other for other in keys)]
    kinds = "; ".join(
        f"{m.__name__} ({', '.join(k for k in mine if k not in common)})"
        for m, mine in zip(models, keys, strict=True)
    )
    return f"kinds: {kinds}" + (f"; all take {', '.join(common)}" if common else "")


def _unknown(path: str, key: Any, valid: list[str], takes: str) -> str:
    close = difflib.get_close_matches(str(key), valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {_cut(_join(path, str(key)), 100)!r}{hint}; {takes}"


def _check(data: Any, annotation: Any, path: str) -> str | None:
    """The first key problem of `data` read as `annotation`, or None."""
    members = _members(annotation)
    if isinstance(data, dict) and any(_free_form(m) for m in members):
        return None
    models = [
        (m, normal)
        for m in members
        if _is_model(m) and (normal := _normalised(m, data)) is not None
    ]
    if models:
        return _check_models(data, models, path)
    if not isinstance(data, list):
        return None
    problem = None
    for member in members:  # the first sequence type that fits
        item_types = _items(member, len(data))
        if item_types is not None:
            problem = _check_items(data, item_types, path)
            if problem is None:
                return None
    return problem


def _check_items(data: list[Any], item_types: list[Any], path: str) -> str | None:
    for i, (item, item_type) in enumerate(zip(data, item_types, strict=True)):
        problem = _check(item, item_type, _join(path, i))
        if problem is not None:
            return problem
    return None


def _check_models(
    raw: Any, models: list[tuple[type[pydantic.BaseModel], dict[Any, Any]]], path: str
) -> str | None:
    """Check a mapping against the model(s) that may read it (a union's kinds).

    `models` pairs each model with `raw` as that model reads it.
    """
    where = path or "plan"
    fitting = [
        (m, data)
        for m, data in models
        if _allows_extra(m) or all(k in _field_keys(m) for k in data)
    ]
    if not fitting:
        takes = _takes([m for m, _ in models])
        every = list(dict.fromkeys(k for m, _ in models for k in _field_keys(m)))
        for key in raw if isinstance(raw, dict) else models[0][1]:
            if all(key in data and key not in _field_keys(m) for m, data in models):
                return _unknown(path, key, every, takes)
        keys = ", ".join(repr(k) for k in models[0][1])
        return f"{where}: no kind takes all of {keys}; {takes}"
    complete = [(m, d) for m, d in fitting if not d or not _missing(m, d)]
    if not complete:
        needs = "; ".join(
            f"{m.__name__} needs {', '.join(map(repr, _missing(m, d)))}"
            for m, d in fitting
        )
        return f"{where}: missing keys: {needs}"
    problem = None
    for model, data in complete:
        problem = _check_fields(model, raw, data, path)
        if problem is None:
            return None
    return problem


def _allows_extra(model: type[pydantic.BaseModel]) -> bool:
    return model.model_config.get("extra") == "allow"


def _check_fields(
    model: type[pydantic.BaseModel], raw: Any, data: dict[Any, Any], path: str
) -> str | None:
    """Check the value of each key of `data` (`raw` as `model` reads it)."""
    keys = _field_keys(model)
    for key, value in data.items():
        if key in keys:
            # a list read as {"phases": list} is still the user's `time_plan[1]`
            where = path if value is raw else _join(path, key)
            problem = _check(value, model.model_fields[keys[key]].annotation, where)
            if problem is not None:
                return problem
    return None


# ---- useq's errors, short --------------------------------------------------------
def _short(error: pydantic.ValidationError, data: Any, root: str = "") -> str:
    """The most useful of useq's errors, on one line, with the user's key path.

    `root` is the path of `data` in the plan (empty: `data` is the plan).

    Union kinds and validator names in pydantic's location are dropped (the
    user wrote ``z_plan.step``, not ``z_plan.ZRangeAround.step``); an error
    about a value the user gave is preferred to one about a missing key of
    some other kind.
    """
    errors = error.errors(include_url=False)
    located = [(*_path(e["loc"], data, e.get("input")), e) for e in errors]
    where, _, err = next((x for x in located if x[1]), located[0])
    where = f"{root}.{where}" if root and where else root or where
    reason = _cut(_one_line(err["msg"].removeprefix("Value error, ")), 300)
    got = repr(err.get("input"))
    if err["loc"] and err["type"] != "missing" and len(got) <= 80:
        reason += f" (got {got})"
    return f"{where or 'plan'}: {reason}"


def _path(loc: tuple[int | str, ...], data: Any, value: Any) -> tuple[str, bool]:
    """`loc` as a path of the user's keys, and whether it names `value` given.

    useq builds channels and positions in a validator, which drops their index
    from `loc`: the item whose rest of `loc` holds `value` is named instead.
    """
    path, node, given = "", data, True
    for i, part in enumerate(loc):
        if isinstance(node, list) and not isinstance(part, int):
            item = _find_item(node, loc[i:], value)
            if item is not None:
                path, node = _join(path, item), node[item]
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif i == len(loc) - 1:  # a key the user did not give
            given = False
        else:  # a union kind or a validator: not the user's
            continue
        path = _join(path, part)
    return path, given and bool(loc)


def _find_item(items: list[Any], loc: tuple[int | str, ...], value: Any) -> int | None:
    """The index of the first of `items` whose `loc` holds `value`, if any."""
    for i, item in enumerate(items):
        node, found = item, False
        for part in loc:  # parts that name no key of the item are union kinds
            found = isinstance(node, dict) and part in node
            node = node[part] if found else node
        if found and node == value:
            return i
    return None


# ---- helpers ---------------------------------------------------------------------
def _plan_loader() -> type:
    """A YAML SafeLoader that refuses aliases (`*name`).

    An alias repeats a node without its text: nine nested lists of aliases
    ("billion laughs") make a few hundred bytes expand to gigabytes when the
    plan is validated. Plans have no use for them.
    """

    class PlanLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"YAML aliases (*{event.anchor}) are not allowed in a plan",
                    event.start_mark,
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            # a key given twice would silently take its last value only
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key == "<<":  # a merge key
                    continue
                if isinstance(key, collections.abc.Hashable) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"key {key!r} is given twice",
                        key_node.start_mark,
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return PlanLoader


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (only its last value counted)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} is given twice")
        out[key] = value
    return out


def _one_line(error: BaseException | str) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _cut(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text`, cut to `limit` characters with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"
