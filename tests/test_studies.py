"""Studies as data (configs/studies/, weit_rl/studies/): every shipped study file reads, each call
is a valid compare call whose arms are the file's, the candidate rule, clear errors, and a
report rebuilt from a shipped study folder with the shipped AUCs."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from weit_rl import UserError
from weit_rl.compare.arms import parse_arm
from weit_rl.studies import compare_args, load, names, resolved, run_study
from weit_rl.studies.definition import parse

ROOT = Path(__file__).resolve().parents[1]


def test_every_shipped_study_is_a_file_with_a_folder():
    assert {"ablation", "headline", "hopper-dip", "learner-pilot", "quick", "sac-start"} <= set(names())
    for name in names():
        study = load(name)
        folders = {call.options["study"] for call in study.calls}  # a call may write to a sub-folder
        assert any((ROOT / "reports" / f / "runs").is_dir() for f in folders), f"{name} has no study folder"
        assert study.calls and study.description


@pytest.mark.parametrize("name", names())
def test_calls_are_compare_calls_with_the_files_arms(name):
    study = load(name)
    raw = yaml.safe_load((ROOT / "configs" / "studies" / f"{name}.yaml").read_text())
    for call in study.calls:
        args = compare_args(resolved(call, study).argv())
        assert args.env == call.env and args.study == call.options["study"]
        assert args.inits.split(",") == list(call.arms)
        defined = dict(parse_arm(text) for text in args.arm or [])
        for arm in call.arms:
            want = raw["arms"][arm] or {}
            if want:  # the definition compare reads is the file's, value for value
                assert defined[arm] == {"init": want["init"], **{k: v for k, v in want.items() if k != "init"}}
            else:
                assert arm not in defined


def test_candidates_all_but_adds_the_recorded_arms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = parse(
        "demo",
        {
            "description": "d",
            "compare": {"candidates": {"all_but": ["scratch"]}, "sizes": ["small"], "seeds": 5},
            "arms": {"scratch": {}, "weit": {}, "weit_x": {"init": "weit", "fit_steps": 10}},
            "calls": [{"name": "a", "env": "Hopper", "arms": ["scratch", "weit_x"]}],
        },
    )
    assert resolved(study.calls[0], study).options["candidates"] == ["weit_x"]
    part = tmp_path / "reports" / "demo" / "runs" / "Hopper" / "study-ppo.json"
    part.parent.mkdir(parents=True)
    part.write_text(json.dumps({"arms": {"scratch": {"init": "scratch"}, "weit": {"init": "weit"}}}))
    assert resolved(study.calls[0], study).options["candidates"] == ["weit", "weit_x"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"calls": [{"name": "a", "env": "Hopper", "arms": ["nope"]}]}, "arms nope are not defined"),
        ({"compare": {"workers": 2}}, "unknown keys workers"),
        ({"calls": [{"name": "a", "arms": ["weit"]}]}, "env is required"),
        ({"calls": [{"name": "a", "env": "Hopper", "arms": ["weit"]}] * 2}, "given twice"),
        (
            {"baselines": {"Hopper-ppo": {"scratch": "scratch_fresh"}}},
            "Hopper-ppo: scratch_fresh is not an arm of a call",
        ),
        ({"baselines": {"Walker2d-ppo": {"scratch": "weit"}}}, "Walker2d-ppo: weit is not an arm of a call"),
        ({"baselines": {"Hopper-ppo": {"distill": "weit"}}}, "distill is not a baseline a part may replace"),
    ],
)
def test_bad_study_files_say_what_is_wrong(change, message):
    d = {"description": "d", "arms": {"weit": {}}, "calls": [{"name": "a", "env": "Hopper", "arms": ["weit"]}]}
    with pytest.raises(UserError, match=message):
        parse("demo", {**d, **change})


def test_a_part_names_its_stand_ins_for_baselines():
    arms = {
        "scratch": {},
        "weit": {},
        "scratch_fresh": {"init": "scratch", "obs_stats": "fresh"},
        "select_kl": {"init": "select", "retention": 1.0},
    }
    calls = [
        {
            "name": "a",
            "env": ["Hopper", "Ant"],
            "sizes": ["small"],
            "seeds": 5,
            "arms": ["scratch", "weit", "scratch_fresh", "select_kl"],
        }
    ]
    chosen = {"Hopper-ppo": {"scratch": "scratch_fresh", "select": "select_kl"}, "Ant-ppo": {"select": "select_kl"}}
    study = parse("demo", {"description": "d", "arms": arms, "calls": calls, "baselines": chosen})
    assert study.parts()[("Hopper", "ppo")]["baselines"] == {"scratch": "scratch_fresh", "select": "select_kl"}
    assert study.parts()[("Ant", "ppo")]["baselines"] == {"select": "select_kl"}


def test_a_stand_in_takes_its_baseline_s_name():
    from weit_rl.studies.figures import role

    chosen = {"scratch": "scratch_fresh", "select": "select_kl"}
    assert [role(a, chosen) for a in ("scratch_fresh", "scratch", "select_kl", "select", "weit")] == [
        "scratch",
        None,  # the arm it replaces: in the part's report only
        "select",
        None,
        "weit",
    ]
    assert [role(a, {}) for a in ("scratch", "select_kl")] == ["scratch", "select_kl"]


def test_unknown_study_and_call_name_the_known_ones():
    with pytest.raises(UserError, match="studies: .*headline"):
        load("nope")
    with pytest.raises(UserError, match="calls: ppo-small, ppo-sizes, ppo-above-expert"):
        load("headline").select(call="nope")


@pytest.mark.slow
def test_summary_only_rebuilds_a_shipped_report_with_its_aucs(tmp_path, monkeypatch):
    shipped = ROOT / "reports" / "sac-start"
    shutil.copytree(shipped / "runs", tmp_path / "reports" / "sac-start" / "runs")
    monkeypatch.chdir(tmp_path)
    run_study("sac-start", summary_only=True)
    got = json.loads((tmp_path / "reports" / "sac-start" / "HalfCheetah-sac.json").read_text())["results"]["sizes"]
    want = json.loads((shipped / "HalfCheetah-sac.json").read_text())["results"]["sizes"]
    assert {arm: cell["auc"] for arm, cell in got["small"].items()} == {
        arm: cell["auc"] for arm, cell in want["small"].items()
    }
