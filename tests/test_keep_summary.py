"""The keep study's page (weit_rl/studies/keep.py) from synthetic part reports in a tmp folder:
keep numbers as numpy computes them, a selection that waits for its runs, both stages' rules
(the pilot's 0.01 margin for today's learner included), and a rebuild that changes no byte."""

import json

import numpy as np
import pytest

from weit_rl.studies import SUMMARIES, load
from weit_rl.studies.keep import write

GRID = [0, 10_000, 20_000, 30_000]


def cell(curves, auc, final):
    """An arm's cell of a part's report, as compare writes it (no intervals under 5 runs)."""
    return {
        "auc": list(auc),
        "final": list(final),
        "aggregate": {
            "auc": {"mean": {"estimate": float(np.mean(auc)), "low": None, "high": None}},
            "final": {"mean": {"estimate": float(np.mean(final)), "low": None, "high": None}},
        },
        "curve": {"mean": np.mean(curves, axis=0).tolist(), "runs": np.asarray(curves).tolist()},
    }


def part(reports, stage, name, cells):
    path = reports / "keep" / stage / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"results": {"grid": GRID, "sizes": {"small": cells}}}))


def scratch(aucs):
    """A pilot arm with 3 runs whose mean normalized AUC is mean(aucs)."""
    return cell(np.zeros((3, len(GRID))), aucs, aucs)


def pilot(reports, fixed005_auc):
    part(
        reports,
        "pilot",
        "Walker2d-sac",
        {
            "sac_auto1": scratch([0.30, 0.30, 0.30]),
            "sac_auto01": scratch([0.20, 0.25, 0.30]),
            "sac_fixed005": scratch([fixed005_auc] * 3),
            "sac_lncritic": scratch([0.10, 0.10, 0.10]),
        },
    )


def test_the_study_registers_the_page():
    assert load("keep").summary == "keep" and SUMMARIES["keep"] is write


def test_keep_numbers_are_the_mean_curve_s_and_each_run_s(tmp_path):
    rng = np.random.default_rng(0)
    curves = {arm: rng.uniform(0.3, 1.0, (3, len(GRID))) for arm in load("keep").select("dev-hopper-ppo")[0].arms}
    part(tmp_path, "dev", "Hopper-ppo", {arm: cell(c, c.mean(axis=1), c[:, -1]) for arm, c in curves.items()})
    text = write(load("keep"), tmp_path).read_text()
    data = json.loads((tmp_path / "keep" / "summary.json").read_text())
    for arm, c in curves.items():
        mean = c.mean(axis=0)
        low = int(np.argmin(mean[1:])) + 1
        got = data["keep/dev"]["parts"]["Hopper-ppo"]["arms"][arm]["keep"]
        assert got["start"] == pytest.approx(mean[0]) and got["lowest"] == pytest.approx(mean[low])
        assert got["lowest_step"] == GRID[low] and got["keep_ratio"] == pytest.approx(mean[low] / mean[0])
        assert got["keep_ratio_per_run"] == pytest.approx(np.mean(c[:, 1:].min(axis=1) / c[:, 0]))
        assert (
            f"| {arm} | 3 / 3 | {c.mean():.3f} (n<5) | {c[:, -1].mean():.3f} | {mean[0]:.3f} | "
            f"{mean[low]:.3f} ({GRID[low]:,}) | {mean[low] / mean[0]:.3f} | {got['keep_ratio_per_run']:.3f} |"
        ) in text


def test_an_incomplete_part_waits_and_parts_without_runs_are_named(tmp_path):
    cells = {"sac_auto1": scratch([0.3, 0.3, 0.3]), "sac_auto01": cell(np.zeros((1, 4)), [0.9], [0.9])}
    part(tmp_path, "pilot", "Walker2d-sac", cells)
    text = write(load("keep"), tmp_path).read_text()
    assert "| sac_auto1 | 3 / 3 | 0.300 (n<5) | 0.300 | - | - | - | - |" in text
    assert "| sac_lncritic | 0 / 3 | not run yet |" in text
    assert "Selection waits: 4 of 12 runs recorded." in text and "Selected" not in text
    assert "Planned parts with no runs yet: Ant-sac, Hopper-sac, HalfCheetah-sac." in text
    dev = [f"{c.env}-{c.options['algo']}" for c in load("keep").calls if c.options["study"] == "keep/dev"]
    assert f"Planned parts with no runs yet: {', '.join(dev)}." in text.split("## keep/dev")[1]


@pytest.mark.parametrize(
    "fixed005, chosen",
    [(0.305, "sac_auto1"), (0.309, "sac_auto1"), (0.311, "sac_fixed005"), (0.29, "sac_auto1")],
)
def test_the_pilot_keeps_today_s_learner_on_a_difference_under_0_01(tmp_path, fixed005, chosen):
    pilot(tmp_path, fixed005)
    text = write(load("keep"), tmp_path).read_text()
    data = json.loads((tmp_path / "keep" / "summary.json").read_text())
    assert data["keep/pilot"]["parts"]["Walker2d-sac"]["selection"]["arm"] == chosen
    assert f"Selected by the rule: **{chosen}**" in text


def test_dev_selects_the_best_final_among_arms_that_keep_their_start(tmp_path):
    flat = np.array([[1.0, 0.95, 0.95, 1.0]] * 3)  # keep ratio 0.95
    dip = np.array([[1.0, 0.5, 1.0, 1.5]] * 3)  # keep ratio 0.5, the best final
    arms = {arm: cell(flat, [0.9] * 3, [1.0] * 3) for arm in load("keep").select("dev-hopper-ppo")[0].arms}
    arms["ppo_progress"] = cell(dip, [1.0] * 3, [1.5] * 3)
    arms["ppo_means"] = cell(flat, [0.9] * 3, [1.1] * 3)
    part(tmp_path, "dev", "Hopper-ppo", arms)
    write(load("keep"), tmp_path)
    data = json.loads((tmp_path / "keep" / "summary.json").read_text())
    assert data["keep/dev"]["parts"]["Hopper-ppo"]["selection"]["arm"] == "ppo_means"
    for arm in arms:  # none keeps: the highest keep ratio wins, whatever its final
        arms[arm] = cell(dip, [1.0] * 3, [1.5] * 3)
    arms["ppo_clip01"] = cell(np.array([[1.0, 0.8, 0.8, 0.8]] * 3), [0.5] * 3, [0.8] * 3)
    part(tmp_path, "dev", "Hopper-ppo", arms)
    write(load("keep"), tmp_path)
    data = json.loads((tmp_path / "keep" / "summary.json").read_text())
    assert data["keep/dev"]["parts"]["Hopper-ppo"]["selection"]["arm"] == "ppo_clip01"


def test_a_rebuild_of_the_same_reports_changes_no_byte(tmp_path):
    pilot(tmp_path, 0.4)
    page = write(load("keep"), tmp_path)
    files = [page, tmp_path / "keep" / "summary.json"]
    before = [(f.read_bytes(), f.stat().st_mtime_ns) for f in files]
    write(load("keep"), tmp_path)
    assert [(f.read_bytes(), f.stat().st_mtime_ns) for f in files] == before
