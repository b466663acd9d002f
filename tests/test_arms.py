"""The arm registry (weit_rl/arms.py): one entry makes an arm that a sweep runs by name and that
its report, its figures and the summary page show, with no other file changed."""

import json

import pytest
from test_compare import EXPERT, RANDOM, REPS, STEPS, parse, write_runs

from weit_rl import UserError, arms, compare, plots
from weit_rl.agents import prepare
from weit_rl.compare import study
from weit_rl.studies.headline import findings, write_summary

pytestmark = pytest.mark.slow  # builds a study (files only) and its figures


def test_the_registry_names_known_initializers_roles_and_distinct_colours():
    arms.check_registry()
    assert arms.default_sweep() == ["scratch", "weit", "distill", "select"]
    assert arms.baselines() == ["scratch", "distill", "select"]
    assert len({a.color for a in arms.ARMS.values()}) == len(arms.ARMS)
    assert arms.in_order(["mine", "select", "weit", "mine"]) == ["weit", "select", "mine"]


def test_a_broken_entry_is_refused(monkeypatch):
    monkeypatch.setitem(arms.ARMS, "net2net", arms.Arm("net2net", "method", "#000000", "not an initializer yet"))
    with pytest.raises(ValueError, match="net2net"):
        arms.check_registry()


def test_a_new_arm_is_one_registry_entry(monkeypatch, tmp_path, tiny_ppo_bank):
    monkeypatch.setitem(
        arms.ARMS,
        "weit_plain",
        arms.Arm("weit", "method", "#8c564b", "weit without its fine-tuning", settings={"recipe": "plain"}),
    )
    argv = ["--env", "HalfCheetah", "--sizes", "tiny,small", "--seeds", "5", "--steps", str(STEPS)]
    argv += ["--eval-freq", "512", "--eval-episodes", "10", "--study", "reg", "--bank", str(tiny_ppo_bank)]
    argv += ["--arms", "scratch,weit,weit_plain", "--out-dir", str(tmp_path / "runs")]
    argv += ["--report-dir", str(tmp_path / "reports")]
    sweep = compare.resolve(parse(*argv))

    # The sweep runs it by name, with its settings, in a folder of its own.
    cfg = prepare(sweep.config("tiny", "weit_plain", 0))
    assert (cfg.init, cfg.recipe, cfg.finetune_steps, cfg.retention) == ("weit", "plain", 0, 0.0)
    assert cfg.run_dir.endswith("ppo-tiny-weit_plain-s0")
    d = study.definition(sweep)
    assert d["arms"]["weit_plain"] == {"init": "weit", "recipe": "plain"}
    with pytest.raises(UserError, match="uses init=weit"):
        compare.resolve(parse(*argv, "--arm", "weit_plain:init=distill"))

    # Its report: the definition, a row, a colour of its own in the figures.
    d["references"] = {"expert_return": EXPERT, "random_return": RANDOM, "expert_source": "t", "random_source": "t"}
    study.write_study(sweep.study_file, d)
    write_runs(sweep.runs_root, {"scratch": 0.0, "weit": 800.0, "weit_plain": 600.0}, 5)
    report_only = ["--study", "reg", "--report-only", "--report-dir", str(tmp_path / "reports"), "--reps", str(REPS)]
    compare.run_compare(parse(*report_only), "test")
    text = (sweep.study_dir / "HalfCheetah-ppo.md").read_text()
    assert "`weit_plain`: init=weit, recipe=plain" in text and "| weit_plain | 5 |" in text
    assert plots.color("weit_plain") == "#8c564b"
    data = json.loads((sweep.study_dir / "HalfCheetah-ppo.json").read_text())["results"]
    assert set(data["sizes"]["small"]) == {"scratch", "weit", "weit_plain"}

    # The summary page and the README's findings table.
    expected = {
        ("HalfCheetah", "ppo"): {
            "sizes": ["tiny", "small"],
            "arms": ["scratch", "weit", "weit_plain"],
            "seeds": {"tiny": 5, "small": 5},
        }
    }
    page = write_summary(sweep.study_dir, tmp_path / "reports", expected, []).read_text()
    assert "| task | algo | size | scratch | weit | weit_plain |" in page
    assert "| PPO | small (64x64) | weit_plain |" in page  # the IQM across tasks
    assert "| small (64x64) | weit_plain |" in findings(sweep.study_dir, expected)
