"""Plan files (issue #19): every key is checked, problems are one line, samples run.

useq ignores keys it does not know, so a misspelled key used to run a plan
without what it named. `mmzarr acquire` (and `--dry-run`) now stops with exit 1
and one line naming the key's path, the closest valid key and what that kind of
plan takes. The sample plans in `examples/plans/` run on the demo rig.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import pytest
import useq
import yaml

import mmzarr
import mmzarr._cli_acquire
from mmzarr._cli import main
from mmzarr._planfile import check_keys, load_plan
from tests._peer_plans import PEER_PLANS
from tests._readback import check_metadata, group_json

PLANS = Path(__file__).resolve().parent.parent / "examples" / "plans"


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# ---- misspelled and unknown keys -------------------------------------------------
@dataclass(frozen=True)
class Misspelled:
    name: str
    plan: str  # YAML
    key: str  # the path the message names
    closest: str | None  # the suggestion, if any
    takes: tuple[str, ...] = ()  # what the message says that kind takes


MISSPELLED = [
    Misspelled(
        "top-level",
        "chanels: [DAPI, FITC]\n",
        "chanels",
        "channels",
        ("MDASequence takes:", "time_plan", "z_plan"),
    ),
    Misspelled(
        "z-plan",
        "channels: [DAPI]\nz_plan: {rnage: 2}\n",
        "z_plan.rnage",
        "range",
        ("ZRangeAround (range, step)", "ZTopBottom (top, bottom, step)"),
    ),
    Misspelled(
        "time-plan",
        "time_plan: {interval: 0.1, lops: 2}\n",
        "time_plan.lops",
        "loops",
        ("TIntervalLoops (interval, loops)", "MultiPhaseTimePlan (phases)"),
    ),
    Misspelled(
        "time-plan-alone",
        "time_plan: {lops: 2}\n",
        "time_plan.lops",
        "loops",
        ("TDurationLoops (duration, loops)",),
    ),
    Misspelled(
        "time-phase",
        "time_plan:\n- {interval: 0.1, loops: 2}\n- {interval: 1, lops: 2}\n",
        "time_plan[1].lops",
        "loops",
        ("TIntervalLoops (interval, loops)",),
    ),
    Misspelled(
        "grid-plan",
        "grid_plan: {rows: 2, colums: 2}\n",
        "grid_plan.colums",
        "columns",
        ("GridRowsColumns (", "GridFromEdges (", "RandomPoints ("),
    ),
    Misspelled(
        "position",
        "stage_positions:\n- {x: 0, y: 0, nmae: left}\n",
        "stage_positions[0].nmae",
        "name",
        ("AbsolutePosition takes:", "sequence"),
    ),
    Misspelled(
        "position-sequence",
        "stage_positions:\n- {x: 0, y: 0}\n"
        "- {x: 10, y: 0, sequence: {chanels: [DAPI]}}\n",
        "stage_positions[1].sequence.chanels",
        "channels",
        ("MDASequence takes:",),
    ),
    Misspelled(
        "position-sequence-z-plan",
        "stage_positions:\n- x: 10\n  sequence: {z_plan: {range: 2, stpe: 1}}\n",
        "stage_positions[0].sequence.z_plan.stpe",
        "step",
        ("ZRangeAround (range, step)",),
    ),
    Misspelled(
        "channel",
        "channels: [DAPI, {config: FITC, exposrue: 5}]\n",
        "channels[1].exposrue",
        "exposure",
        ("Channel takes:", "config", "acquire_every"),
    ),
    Misspelled(
        "well-plate",
        "stage_positions:\n  plate: 96-well\n  a1_center_xy: [0, 0]\n"
        "  selected_well: [[0], [0]]\n",
        "stage_positions.selected_well",
        "selected_wells",
        ("WellPlatePlan takes:", "well_points_plan", "rotation"),
    ),
    Misspelled(
        "well-points",
        "stage_positions:\n  plate: 96-well\n  a1_center_xy: [0, 0]\n"
        "  well_points_plan: {rows: 1, colums: 2}\n",
        "stage_positions.well_points_plan.colums",
        "columns",
        ("GridRowsColumns (",),
    ),
    Misspelled(
        "plate-definition",
        "stage_positions:\n  plate: {rows: 2, columns: 3, well_spasing: 9}\n"
        "  a1_center_xy: [0, 0]\n",
        "stage_positions.plate.well_spasing",
        "well_spacing",
        ("WellPlate takes:",),
    ),
    Misspelled(
        "autofocus",
        "autofocus_plan: {autofocus_device_name: Z, autofocus_motor_offset: 1, "
        "axis: [p]}\n",
        "autofocus_plan.axis",
        "axes",
        ("AxesBasedAF takes:",),
    ),
    Misspelled(
        "nothing-close",
        "channels: [DAPI]\nwhatever: 1\n",
        "whatever",
        None,
        ("MDASequence takes:",),
    ),
]


def _write(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    plan = tmp_path / name
    plan.write_text(text)
    return plan


@pytest.mark.parametrize("dry_run", [False, True], ids=["acquire", "dry-run"])
@pytest.mark.parametrize("case", MISSPELLED, ids=lambda c: c.name)
def test_misspelled_key_is_an_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: Misspelled,
    dry_run: bool,
) -> None:
    plan = _write(tmp_path, case.plan)
    out = tmp_path / "out.ome.zarr"
    extra = ["--dry-run"] if dry_run else []
    code, stdout, stderr = run(capsys, "acquire", plan, out, *extra)
    assert code == 1, stdout + stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith(f"mmzarr: error: plan {str(plan)!r}: unknown key ")
    assert f"unknown key {case.key!r}" in line
    if case.closest is None:
        assert "did you mean" not in line
    else:
        assert f"(did you mean {case.closest!r}?)" in line
    for text in case.takes:
        assert text in line
    assert "Traceback" not in stderr
    assert not out.exists()
    assert "dry run" not in stdout


def test_misspelled_key_in_a_subprocess(tmp_path: Path) -> None:
    _write(tmp_path, "chanels: [DAPI]\n")
    for extra in ([], ["--dry-run"]):
        r = subprocess.run(
            [sys.executable, "-m", "mmzarr", "acquire", "plan.yaml", "o", *extra],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert r.returncode == 1, r.stdout + r.stderr
        assert r.stderr.splitlines() == [
            "mmzarr: error: plan 'plan.yaml': unknown key 'chanels' (did you mean "
            "'channels'?); MDASequence takes: metadata, axis_order, "
            "stage_positions, grid_plan, channels, time_plan, z_plan, "
            "autofocus_plan, setup, keep_shutter_open_across"
        ]
        assert not (tmp_path / "o").exists()


# ---- other plan problems: one short line each ------------------------------------
@dataclass(frozen=True)
class Problem:
    name: str
    text: str
    message: str  # the line after "mmzarr: error: " (a prefix of it)
    file: str = "plan.yaml"


PLATE = "stage_positions:\n  plate: 96-well\n  a1_center_xy: [0, 0]\n"

PROBLEMS = [
    Problem(
        "bad-number",
        "z_plan: {range: 2, step: x}\n",
        "useq rejected plan 'plan.yaml': z_plan.step: Input should be a valid "
        "number, unable to parse string as a number (got 'x')",
    ),
    Problem(
        "bad-value-in-channel",
        "channels: [DAPI, {config: FITC, exposure: -1}]\n",
        "useq rejected plan 'plan.yaml': channels[1].exposure: Input should be "
        "greater than 0 (got -1)",
    ),
    Problem(
        "bad-value-in-position",
        "stage_positions: [{x: 0}, {x: 1, y: north}]\n",
        "useq rejected plan 'plan.yaml': stage_positions[1].y: Input should be "
        "a valid number",
    ),
    Problem(
        "bad-value-in-phase",
        "time_plan: [{interval: 0.1, loops: 2}, {interval: 1, loops: many}]\n",
        "useq rejected plan 'plan.yaml': time_plan[1].loops: Input should be a "
        "valid integer",
    ),
    Problem(
        "z-plan-incomplete",
        "z_plan: {step: 1}\n",
        "plan 'plan.yaml': z_plan: missing keys: ZTopBottom needs 'top', "
        "'bottom'; ZAboveBelow needs 'above', 'below'; ZRangeAround needs 'range'",
    ),
    Problem(
        "channel-incomplete",
        "channels: [{exposure: 10}]\n",
        "plan 'plan.yaml': channels[0]: missing keys: Channel needs 'config'",
    ),
    Problem(
        "two-kinds-mixed",
        "z_plan: {range: 2, step: 1, top: 3}\n",
        "plan 'plan.yaml': z_plan: no kind takes all of 'range', 'step', 'top'; "
        "kinds: ZTopBottom (top, bottom, step);",
    ),
    Problem(
        "not-a-mapping", "- DAPI\n", "plan 'plan.yaml' must be a mapping, got list"
    ),
    Problem("empty", "", "plan 'plan.yaml' is empty"),
    Problem("empty-json", " \n", "plan 'plan.json' is empty", file="plan.json"),
    Problem(
        "bad-yaml",
        "channels: [DAPI\n  z: :\n",
        "plan 'plan.yaml' is not valid YAML/JSON:",
    ),
    Problem(
        "misspelled-json",
        json.dumps({"channels": ["DAPI"], "z_plan": {"range": 2, "setp": 1}}),
        "plan 'plan.json': unknown key 'z_plan.setp' (did you mean 'step'?)",
        file="plan.json",
    ),
    # a key given twice: YAML and JSON parsers keep its last value only
    Problem(
        "key-twice-yaml",
        "channels: [DAPI]\nz_plan: {range: 2, step: 1}\nchannels: [FITC]\n",
        "plan 'plan.yaml' is not valid YAML/JSON: key 'channels' is given twice "
        "(line 3, column 1)",
    ),
    Problem(
        "key-twice-nested-yaml",
        "stage_positions:\n  - {x: 1, y: 2, x: 3}\n",
        "plan 'plan.yaml' is not valid YAML/JSON: key 'x' is given twice",
    ),
    Problem(
        "key-twice-json",
        '{"z_plan": {"range": 2, "step": 1}, "z_plan": {"range": 4, "step": 1}}',
        "plan 'plan.json' is not valid YAML/JSON: key 'z_plan' is given twice",
        file="plan.json",
    ),
    # a plate plan's error: useq said only "stage_positions must be a
    # WellPlatePlan or Sequence[Position], got <class 'dict'>"
    Problem(
        "wells-not-on-plate",
        f"{PLATE}  selected_wells: [[0, 8, 2], [0, 1, 12]]\n",
        "useq rejected plan 'plan.yaml': stage_positions.selected_wells: wells "
        "(8, 1), (2, 12) are not on the '96-well' plate of 8 rows x 12 columns: a "
        "well is (row, column) counted from 0, row 0-7 (A-H), column 0-11 (1-12) "
        "(got [[0, 8, 2], [0, 1, 12]])",
    ),
    Problem(
        "row-not-on-plate",
        f"{PLATE}  selected_wells: 9\n",
        "useq rejected plan 'plan.yaml': stage_positions.selected_wells: row 9 is "
        "not on the '96-well' plate of 8 rows x 12 columns",
    ),
    Problem(
        "well-name",
        f"{PLATE}  selected_wells: [A1, B3]\n",
        "useq rejected plan 'plan.yaml': stage_positions.selected_wells: useq "
        "takes well indices, not names ('A1', 'B3'): give [[0, 1], [0, 2]]",
    ),
    Problem(
        "well-name-not-on-plate",
        f"{PLATE}  selected_wells: [A1, Z99]\n",
        "useq rejected plan 'plan.yaml': stage_positions.selected_wells: useq "
        "takes well indices, not names ('A1', 'Z99'); 'Z99' is not on the "
        "'96-well' plate of 8 rows x 12 columns",
    ),
    Problem(
        "plate-unknown",
        "stage_positions: {plate: 97-well, a1_center_xy: [0, 0]}\n",
        "useq rejected plan 'plan.yaml': stage_positions.plate: Unknown plate "
        "name '97-well'.",
    ),
    # time plans that go back, or that useq cannot iterate: the plan was
    # acquired in the fallback layout (or failed once the dataset was made)
    Problem(
        "interval-negative",
        "channels: [DAPI]\ntime_plan: {interval: -1, loops: 3}\n",
        "plan 'plan.yaml': time_plan: interval -1 s is negative; give 0 (as fast "
        "as possible) or more",
    ),
    Problem(
        "interval-negative-in-a-phase",
        "time_plan: [{interval: 0.1, loops: 2}, {interval: -0.5, loops: 2}]\n",
        "plan 'plan.yaml': time_plan.phases[1]: interval -0.5 s is negative",
    ),
    Problem(
        "interval-negative-in-a-position",
        "stage_positions:\n- {x: 0, sequence: {time_plan: {interval: -2, loops: 2}}}\n",
        "plan 'plan.yaml': stage_positions[0].sequence.time_plan: interval -2 s "
        "is negative",
    ),
    Problem(
        "duration-negative",
        "time_plan: {duration: -5, loops: 3}\n",
        "plan 'plan.yaml': time_plan: duration -5 s is negative; give 0 or more",
    ),
    # NaN and infinity: useq takes them; a NaN stage x wrote a null translation
    Problem(
        "position-nan",
        "stage_positions: [{x: .nan, y: 0}]\n",
        "plan 'plan.yaml': stage_positions[0].x is nan; give a finite number",
    ),
    Problem(
        "interval-infinite",
        "time_plan: {interval: .inf, loops: 2}\n",
        "plan 'plan.yaml': time_plan.interval is inf; give a finite number",
    ),
    Problem(
        "z-range-nan-json",
        '{"z_plan": {"range": NaN, "step": 1}}',
        "plan 'plan.json': z_plan.range is nan; give a finite number",
        file="plan.json",
    ),
    Problem(
        "interval-0-with-a-duration",
        "time_plan: {interval: 0, duration: 5}\n",
        "plan 'plan.yaml': time_plan: interval 0 with duration 5 s has no number "
        "of time points",
    ),
]


@pytest.mark.parametrize("case", PROBLEMS, ids=lambda c: c.name)
def test_plan_problem_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: Problem
) -> None:
    _write(tmp_path, case.text, case.file)
    code, stdout, stderr = run(
        capsys, "acquire", tmp_path / case.file, tmp_path / "o", "--dry-run"
    )
    assert code == 1, stdout + stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    expected = case.message.replace("'plan.", f"'{tmp_path}/plan.")
    assert lines[0].startswith(f"mmzarr: error: {expected}"), lines[0]


def test_a_plan_too_large_for_memory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """useq lists every time point of a plan it iterates (10^8 loops: > 3 GB):
    the MemoryError, here raised where useq lists them, was a traceback."""

    def no_memory(self: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(useq.TIntervalLoops, "deltas", no_memory)
    plan = _write(tmp_path, "time_plan: {interval: 0, loops: 100000000}\n")
    code, _, stderr = run(capsys, "acquire", plan, tmp_path / "o", "--dry-run")
    assert code == 1
    assert "Traceback" not in stderr
    assert stderr.splitlines() == [
        "mmzarr: error: out of memory: useq lists every time point, position and "
        "plane of a plan it iterates; make the plan smaller (e.g. fewer loops)"
    ]


def test_suggested_wells_are_the_named_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The indices given for well names select those wells (useq says which)."""
    names = ["B3", "A1", "H12", "C7"]
    plan = _write(tmp_path, f"{PLATE}  selected_wells: {json.dumps(names)}\n")
    code, _, stderr = run(capsys, "acquire", plan, tmp_path / "o", "--dry-run")
    assert code == 1
    given = stderr.split(": give ")[1].split(" (got ")[0]
    wells = useq.WellPlatePlan(
        plate="96-well", a1_center_xy=(0, 0), selected_wells=json.loads(given)
    )
    assert wells.selected_well_names == names


def test_a_refused_time_plan_loads_no_camera(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """useq and pymmcore-plus take a negative interval (the runner then waits
    for nothing): the plan was acquired in the fallback layout. It is refused
    before a camera is loaded or anything written."""
    seq = useq.MDASequence(time_plan={"interval": -1, "loops": 3})
    assert len(list(seq)) == 3  # useq takes it
    loaded: list[Any] = []
    monkeypatch.setattr(mmzarr._cli_acquire, "load_core", loaded.append)
    plan = _write(tmp_path, "time_plan: {interval: -1, loops: 3}\n")
    for extra in ([], ["--dry-run"]):
        code, stdout, stderr = run(capsys, "acquire", plan, tmp_path / "o", *extra)
        assert code == 1, stdout + stderr
        assert "time_plan: interval -1 s is negative" in stderr
        assert stdout == ""
    assert loaded == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.yaml"]


def test_empty_plans_are_useqs_none() -> None:
    # useq reads an empty z or time plan as none: not an incomplete one
    assert check_keys({"z_plan": {}, "time_plan": {}, "channels": ["DAPI"]}) is None


def test_long_unknown_key_is_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _write(tmp_path, json.dumps({"x" * 100_000: 1}), "plan.json")
    code, _, stderr = run(capsys, "acquire", plan, tmp_path / "o", "--dry-run")
    assert code == 1
    assert len(stderr) < 1200
    assert "unknown key 'xxxx" in stderr


# ---- what useq reads is accepted -------------------------------------------------
@pytest.mark.parametrize("plan", PEER_PLANS, ids=lambda p: p.id)
def test_plans_useq_writes_pass_the_key_check(plan: Any) -> None:
    """Plans of other projects' tests, as useq dumps them, have no unknown key."""
    for dumped in (
        json.loads(plan.seq.model_dump_json()),
        json.loads(plan.seq.model_dump_json(exclude_unset=False)),
        yaml.safe_load(plan.seq.yaml()),
    ):
        assert check_keys(dumped) is None


def test_keys_useq_renames_are_accepted() -> None:
    # a string is a channel, a list a multi-phase time plan, `row` a grid_row
    plan = {
        "channels": ["DAPI", {"config": "FITC"}],
        "time_plan": [{"interval": 0.1, "loops": 2}],
        "stage_positions": [{"x": 0, "row": 1, "col": 2}],
        "metadata": {"anything": {"goes": [1]}},
    }
    assert check_keys(plan) is None


class _Aliased(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(populate_by_name=True)
    exposure_ms: float = pydantic.Field(alias="exposureMs")
    gain: int = pydantic.Field(0, validation_alias=pydantic.AliasChoices("g", "Gain"))
    nested: _Free | None = None


class _Free(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    a: int = 0


_Aliased.model_rebuild()


def test_valid_keys_come_from_the_model() -> None:
    assert check_keys({"exposureMs": 1, "Gain": 2}, _Aliased) is None
    assert check_keys({"exposure_ms": 1, "g": 2, "nested": {"b": 1}}, _Aliased) is None
    problem = check_keys({"exposureMs": 1, "gian": 2}, _Aliased)
    assert problem is not None
    assert problem.startswith("unknown key 'gian' (did you mean 'gain'?)")
    assert "_Aliased takes: exposure_ms, exposureMs, gain, g, Gain, nested" in problem


# ---- the sample plans ------------------------------------------------------------
SAMPLES = ["grid.yaml", "multi_position_z.yaml", "plate_fields.yaml", "timelapse.yaml"]


def test_every_sample_plan_is_tested() -> None:
    assert sorted(p.name for p in PLANS.glob("*.yaml")) == SAMPLES


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_plan_dry_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    out = tmp_path / "out.ome.zarr"
    code, stdout, stderr = run(capsys, "acquire", PLANS / name, out, "--dry-run")
    assert code == 0, stdout + stderr
    assert "dry run: nothing acquired" in stdout
    assert "warning" not in stderr  # mapped, not the fallback layout
    assert not out.exists()
    channels = {"DAPI", "FITC", "TRITC", "Cy5"}  # the demo rig's (configs/demo.cfg)
    seq = load_plan(PLANS / name)
    assert {c.config for c in seq.channels} <= channels
    assert 0 < len(list(seq)) <= 60


def test_sample_plate_plan_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plate.ome.zarr"
    code, stdout, stderr = run(capsys, "acquire", PLANS / "plate_fields.yaml", out)
    assert code == 0, stdout + stderr
    assert "wrote 24 frames" in stdout  # 3 wells x 2 fields x 2 t x 2 c
    report = mmzarr.validate(out)
    assert report.ok, report.format()
    check_metadata(out)
    attrs = group_json(out)["attributes"]
    assert attrs["mmzarr"]["frames_written"] == 24
    assert attrs["mmzarr"]["status"] == "complete"
    wells = [w["path"] for w in attrs["ome"]["plate"]["wells"]]
    assert wells == ["A/1", "A/2", "B/2"]
    for well in wells:
        fields = group_json(out, well)["attributes"]["ome"]["well"]["images"]
        assert [f["path"] for f in fields] == ["0", "1"]
