"""The headline study (configs/studies/headline.yaml): its compare calls, and the summary page
(weit_rl/studies/headline.py) on a synthetic study (files only, as compare records them; nothing
trains), its numbers recomputed by hand."""

import csv
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_compare import ARMS, EXPERT, RANDOM, REPS, SEED, STEPS, parse, percentile_ci, synthetic_study, write_runs

from weit_rl import compare, stats
from weit_rl.studies import load
from weit_rl.studies.headline import FINDINGS, NO_INTERVAL, NOT_RUN, findings, verdicts, write_findings, write_summary

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`

EXPECTED = {
    # Walker2d before HalfCheetah: the study order is not the name order the IQM bootstrap draws in.
    ("Walker2d", "ppo"): {  # stronger variants of two baselines stand for them: scratch_fresh and select_kl
        "sizes": ["tiny", "small"],
        "arms": ["scratch", "weit", "distill", "scratch_fresh", "select", "select_kl"],
        "seeds": {"tiny": 5, "small": 5},
        "baselines": {"scratch": "scratch_fresh", "select": "select_kl"},
    },
    ("HalfCheetah", "ppo"): {
        "sizes": ["small", "medium", "tiny"],
        "arms": ["scratch", "weit", "distill", "select"],
        "seeds": {"tiny": 6, "small": 6, "medium": 6},
    },
    ("Hopper", "sac"): {"sizes": ["small"], "arms": ["scratch", "weit", "distill"], "seeds": {"small": 5}},
}
CONTROLLED = ["obs_stats=bank", "obs_count=10000", "obs_update=preserve", "log_std=config", "reward_stats=fresh"]


def test_study_file_calls_compare_with_the_headline_protocol():
    study = load("headline")
    assert study.calls[0].name == "ppo-small" and study.calls[0].env == "HalfCheetah"
    for call in study.calls:
        args = parse(*call.argv(2))  # compare's own parser reads the call
        algo = call.options["algo"]
        assert (args.env, args.algo, args.study, args.profile) == (call.env, algo, "headline", "full")
        assert args.primary_size == "small" and args.primary == "weit:scratch"
        arms = args.inits.split(",")
        assert (
            {"weit", "distill"} <= set(arms) <= {"scratch", "weit", "distill", "select", "select_kl", "scratch_fresh"}
        )
        # the scratch the learner pilot chose: SB3's own statistics on HalfCheetah PPO, the controlled ones elsewhere
        want = "scratch_fresh" if (call.env, algo) == ("HalfCheetah", "ppo") else "scratch"
        assert want in arms and study.parts()[(call.env, algo)]["baselines"].get("scratch", "scratch") == want
        if algo == "sac":
            assert arms == ["scratch", "weit", "distill"]
        # select is trained as its paper trains it; select_kl is the earlier recipe, shown once
        defined = dict(a.split(":", 1) for a in args.arm or [])
        assert defined.get("select", "init=select,retention=0.0") == "init=select,retention=0.0"
        assert defined.get("select_kl", "init=select,retention=1.0") == "init=select,retention=1.0"
        assert defined.get("scratch_fresh", "init=scratch,obs_stats=fresh,obs_update=running") == (
            "init=scratch,obs_stats=fresh,obs_update=running"
        )
        learner = ["learner=expert"] if call.env == "Walker2d" else []  # the learner pilot's choice
        assert args.settings == (CONTROLLED + learner if algo == "ppo" else None)
        assert (args.steps, args.eval_freq, args.eval_episodes) == (
            (200_000, 10_000, 10) if algo == "ppo" else (100_000, 5_000, 10)
        )
    want = study.parts()
    assert want[("Hopper", "ppo")]["seeds"] == {"small": 10, "tiny": 5, "64x3": 5, "medium": 5}
    assert want[("Hopper", "ppo")]["planned"]["small"] == ["scratch", "weit", "distill", "select", "select_kl"]
    assert want[("Hopper", "ppo")]["planned"]["tiny"] == ["scratch", "weit", "distill", "select_kl"]
    assert want[("HalfCheetah", "ppo")]["planned"]["256x4"] == ["scratch_fresh", "weit", "distill"]
    assert want[("HalfCheetah", "sac")]["arms"] == ["scratch", "weit", "distill"]


def test_verdicts_are_holm_corrected_over_every_cell():
    cells = [
        {"estimate": 0.2, "p": 0.01},  # Holm 0.03: better
        {"estimate": -0.1, "p": 0.04},  # Holm 0.08: rejected only uncorrected
        {"estimate": 0.05, "p": 0.5},
        {"estimate": -0.3, "p": 0.012},  # 0.012 x 3, raised to the smaller one's 0.04 (monotone): worse
        {"estimate": 0.4, "p": None},  # below MIN_RUNS: not tested, not in the family
    ]
    verdicts(cells)
    assert [c["verdict"] for c in cells] == ["better", "suggestive", "inconclusive", "worse", NO_INTERVAL]
    assert cells[0]["p_holm"] == pytest.approx(0.04) and cells[3]["p_holm"] == pytest.approx(0.04)
    assert cells[1]["p_holm"] == pytest.approx(0.08) and cells[2]["p_holm"] == pytest.approx(0.5)
    assert cells[4]["p_holm"] is None


def run_auc_and_steps(run: Path) -> tuple[float, float]:
    """A run's normalized AUC (step function over the budget) and steps to 50%, by hand."""
    with (run / "evaluations.csv").open() as f:
        rows = list(csv.DictReader(f))
    t = np.minimum([float(r["timesteps"]) for r in rows], STEPS)
    s = (np.array([float(r["mean_return"]) for r in rows]) - RANDOM) / (EXPERT - RANDOM)
    auc = float(np.sum(s * np.diff(np.append(t, STEPS))) / STEPS)
    return auc, float(t[np.argmax(s >= 0.5)]) if np.any(s >= 0.5) else math.inf


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    root = tmp_path_factory.mktemp("headline")
    runs = synthetic_study(root, seeds=6)  # HalfCheetah PPO: tiny, small x scratch, weit, distill
    walker = synthetic_study(root, seeds=5, env="Walker2d")
    write_runs(walker, {"scratch_fresh": 400.0, "select": 0.0, "select_kl": 200.0}, 5, env="Walker2d")
    part = walker / "Walker2d" / "study-ppo.json"
    part.write_text(
        json.dumps(dict(json.loads(part.read_text()), inits=[*ARMS, "scratch_fresh", "select", "select_kl"]))
    )
    for seed in (3, 4):  # a cell below MIN_RUNS
        for name in ("config.yaml", "evaluations.csv"):
            (runs / "Walker2d" / f"ppo-tiny-distill-s{seed}" / name).unlink()
    for seed in range(4):  # 4 of 6 tiny scratch runs stay below 50% of the expert: a censored median
        csv_path = runs / "HalfCheetah" / f"ppo-tiny-scratch-s{seed}" / "evaluations.csv"
        lines = csv_path.read_text().splitlines()
        csv_path.write_text(
            "\n".join([lines[0], *(f"{t},{RANDOM + 50 * i},0,0" for i, t in enumerate((0, 512, 1024, 1536, 2050)))])
            + "\n"
        )
    mixed = runs / "HalfCheetah" / "ppo-small-weit-s2" / "config.yaml"  # a default changed mid-study
    mixed.write_text(yaml.safe_dump(dict(yaml.safe_load(mixed.read_text()), finetune_steps=300)))
    compare.run_compare(
        parse(
            "--study",
            "synth",
            "--report-only",
            "--report-dir",
            str(root / "reports"),
            "--reps",
            str(REPS),
            "--stats-seed",
            str(SEED),
        ),
        "test",
    )
    page = write_summary(runs.parent, root / "reports", EXPECTED, ["what a later study found"])
    return runs, page.read_text(), json.loads((root / "reports" / "summary.json").read_text())


def test_auc_difference_matches_a_hand_computation(summary):
    runs, text, data = summary
    x, y = (
        np.array([run_auc_and_steps(runs / "HalfCheetah" / f"ppo-small-{arm}-s{s}")[0] for s in range(6)])
        for arm in ("weit", "distill")
    )
    low, high = percentile_ci([x, y], lambda a, b: a.mean(axis=1) - b.mean(axis=1))
    got = data["parts"]["HalfCheetah-ppo"]["comparisons"]["small"]["distill"]
    assert (got["estimate"], got["low"], got["high"]) == pytest.approx((x.mean() - y.mean(), low, high))
    p = stats.permutation_test(x, y, np.random.default_rng(SEED), REPS)  # as the parts' reports draw it
    assert got["p"] == pytest.approx(p)
    cells = [c for part in data["parts"].values() for by in part["comparisons"].values() for c in by.values()]
    tested = [c for c in cells if c["p"] is not None]
    assert [c["p_holm"] for c in tested] == pytest.approx(list(stats.holm([c["p"] for c in tested])))
    assert len(tested) == 9  # HalfCheetah tiny/small x scratch, distill; Walker2d tiny x scratch, select; small x 3
    want = stats.decide(got["estimate"], got["p_holm"])
    assert got["verdict"] == ("suggestive" if want == "inconclusive" and p <= 0.05 else want)
    assert f"{x.mean() - y.mean():+.3f} [{low:+.3f}, {high:+.3f}] {got['verdict']} (p = {p:.3f}" in text
    assert "Holm-corrected over every cell of this table" in text
    assert "## Read with\n\n- what a later study found\n" in text
    assert "- HalfCheetah PPO: weit vs scratch at size tiny, mean AUC difference" in text  # the declared primary


def test_a_part_s_baselines_are_the_stand_ins_its_study_chose(summary):
    runs, text, data = summary
    auc = lambda arm: np.array(  # noqa: E731
        [run_auc_and_steps(runs / "Walker2d" / f"ppo-small-{arm}-s{s}")[0] for s in range(5)]
    )
    part = data["parts"]["Walker2d-ppo"]
    for base, arm in (("scratch", "scratch_fresh"), ("select", "select_kl")):
        assert part["comparisons"]["small"][base]["estimate"] == pytest.approx(auc("weit").mean() - auc(arm).mean())
        assert part["runs"]["small"][base] == 5
        assert f"- Walker2d PPO: {base} is the arm `{arm}`, " in text
        assert f"  - {arm} (the {base} baseline): " in text
    assert part["arms"] == ["scratch", "weit", "distill", "select"]  # the replaced arms only in the part's report
    assert data["iqm"]["ppo"]["small"]["scratch"]["runs"] == {"HalfCheetah": 6, "Walker2d": 5}
    assert "- HalfCheetah PPO: scratch is the arm" not in text


def test_iqm_across_tasks_is_stratified_by_task(summary):
    runs, text, data = summary
    groups = [
        np.array([run_auc_and_steps(runs / env / f"ppo-small-weit-s{s}")[0] for s in range(n)])
        for env, n in (("HalfCheetah", 6), ("Walker2d", 5))
    ]
    iqm = lambda v: np.sort(v, axis=-1)[..., v.shape[-1] // 4 : v.shape[-1] - v.shape[-1] // 4].mean(axis=-1)  # noqa
    rng = np.random.default_rng(SEED)
    draws = np.concatenate([g[rng.integers(0, g.size, size=(REPS, g.size))] for g in groups], axis=1)
    dist = iqm(draws)
    got = data["iqm"]["ppo"]["small"]["weit"]
    assert got["estimate"] == pytest.approx(iqm(np.concatenate(groups)))
    assert (got["low"], got["high"]) == pytest.approx(
        (np.quantile(dist, 0.025, method="lower"), np.quantile(dist, 0.975, method="higher"))
    )
    assert got["runs"] == {"HalfCheetah": 6, "Walker2d": 5}
    assert "## IQM across tasks" in text and "| PPO | small (64x64) | weit | " in text


def test_median_steps_to_half_the_expert_with_censoring(summary):
    runs, text, data = summary
    cells = data["parts"]["HalfCheetah-ppo"]["steps_to_50"]
    for size in ("tiny", "small"):
        for arm in ("scratch", "weit", "distill"):
            steps = np.sort([run_auc_and_steps(runs / "HalfCheetah" / f"ppo-{size}-{arm}-s{s}")[1] for s in range(6)])
            median = steps[2] if steps[2] == steps[3] else (steps[2] + steps[3]) / 2  # inf when s[3] is
            got = cells[size][arm]
            assert (got["reached"], got["n"]) == (int(np.isfinite(steps).sum()), 6)
            assert (math.inf if got["median"] == "inf" else got["median"]) == pytest.approx(median)
    assert cells["tiny"]["scratch"] == {"median": "inf", "reached": 2, "n": 6}  # the censored cell
    assert "| HalfCheetah | PPO | tiny (32x32) | censored (2/6 reached) | 1,024 (6/6 reached) |" in text
    assert "![sample efficiency against policy size](summary.png)" in text
    assert (runs.parents[1] / "summary.png").stat().st_size > 0
    for part in ("HalfCheetah-ppo", "Walker2d-ppo"):  # the parts with a report get their learning curves
        assert f"(summary-curves-{part}.png)" in text and (runs.parents[1] / f"summary-curves-{part}.png").exists()
    assert "summary-curves-Hopper-sac" not in text


def test_missing_parts_and_cells_are_not_run_yet(summary):
    _, text, data = summary
    table = text.split("## weit vs each baseline")[1].split("## IQM")[0]
    rows = {tuple(c.strip() for c in line.split("|")[1:4]): line for line in table.splitlines() if line.startswith("|")}
    medium = rows[("HalfCheetah", "PPO", "medium (128x128)")]
    assert medium.count(NOT_RUN) == 3 and "scratch 0, weit 0, distill 0, select 0 / 6" in medium
    assert rows[("HalfCheetah", "PPO", "small (64x64)")].endswith(f"| {NOT_RUN} |")  # no select runs
    assert rows[("Hopper", "SAC", "small (64x64)")].count(NOT_RUN) == 2  # the part is missing; select: not planned
    assert "- Hopper SAC: not run yet" in text and "- Hopper-sac: not run yet" in text
    assert f"({NO_INTERVAL})" in rows[("Walker2d", "PPO", "tiny (32x32)")]  # distill has 3 runs
    assert "distill 3, select 5 / 5" in rows[("Walker2d", "PPO", "tiny (32x32)")]  # select: select_kl's runs
    assert data["parts"]["Hopper-sac"]["report"] is None
    # tiny, small, medium by parameter count, whatever order the study lists them in
    assert (
        text.index("| HalfCheetah | PPO | tiny")
        < text.index("| HalfCheetah | PPO | small")
        < text.index("| HalfCheetah | PPO | medium")
    )
    assert "  - weit: fit_steps=300, **mixed** finetune_steps=0|300," in text
    assert "  - scratch: learner=zoo, warmup_steps=0, retention=" in text  # every arm's training-time options


def test_size_figure_measures_from_the_runs_curves():
    from weit_rl.studies import figures

    grid = np.array([0.0, 10.0, 20.0, 30.0])
    runs = np.array([[0.1, 0.5, 0.95, 0.9], [0.2, 0.3, 0.4, 0.92], [0.0, 0.1, 0.2, 0.3]])
    assert figures.score_at(grid, runs, 15).tolist() == [0.5, 0.3, 0.1]  # the last evaluation at or before
    assert figures.score_at(grid, runs, 30).tolist() == [0.9, 0.92, 0.3]
    assert figures.steps_to(grid, runs, 0.9).tolist() == [20.0, 30.0, math.inf]  # never: censored
    assert figures.hidden_params("small") == 64 * 64 + 64 + 64


def check_summary(summary_json: Path, study: Path) -> tuple[int, int, list[str]]:
    """Run bench/check_summary.py as a reviewer would (a program, not imported: it re-implements the
    rules apart from the library): (exit status, numbers checked, the differences it prints)."""
    cmd = [sys.executable, "bench/check_summary.py", "--summary", str(summary_json), "--study", str(study)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    *errors, last = out.stdout.splitlines()
    checked, differ = re.fullmatch(r"(\d+) numbers checked against the runs, (\d+) differ", last).groups()
    assert int(differ) == len(errors), out.stdout
    return out.returncode, int(checked), errors


def test_a_reviewer_s_check_recomputes_every_number_from_the_runs(summary, tmp_path):
    runs, text, data = summary
    status, checked, errors = check_summary(runs.parents[1] / "summary.json", runs.parent)
    assert (status, errors) == (0, []) and checked > 100
    cell = data["parts"]["Walker2d-ppo"]["comparisons"]["small"]["select"]  # against the stand-in select_kl
    cell["estimate"] += 0.01
    data["parts"]["HalfCheetah-ppo"]["comparisons"]["small"]["distill"]["verdict"] = "tie"  # no verdict the rule gives
    (tmp_path / "summary.json").write_text(json.dumps(data))
    (tmp_path / "summary.md").write_text(text)
    status, _, errors = check_summary(tmp_path / "summary.json", runs.parent)
    assert status == 1
    assert any(e.startswith("Walker2d-ppo small weit vs select: estimate: ") for e in errors)
    assert any(e.startswith("HalfCheetah-ppo small weit vs distill: verdict: ") for e in errors)
    cells = {e.split(":")[0] for e in errors}  # each tampered cell is also not shown as summary.md shows it
    assert cells == {"Walker2d-ppo small weit vs select", "HalfCheetah-ppo small weit vs distill"}


def mean_scores(runs: Path, env: str, size: str, arm: str, at: tuple[int, ...]) -> str:
    """The README cell by hand from the runs' evaluations.csv: each run's normalized score at each
    step of `at` (the last evaluation at or before it) and its final score (the mean of the last 3
    evaluations at or before the budget), each averaged over runs."""
    per_run = []
    for csv_path in sorted((runs / env).glob(f"ppo-{size}-{arm}-s*/evaluations.csv")):
        rows = np.loadtxt(csv_path, delimiter=",", skiprows=1, usecols=(0, 1))
        t, s = rows[:, 0], (rows[:, 1] - RANDOM) / (EXPERT - RANDOM)
        per_run.append([*(s[t <= b][-1] for b in at), s[t <= STEPS][-3:].mean()])
    return " / ".join(f"{v:.2f}" for v in np.mean(per_run, axis=0))


def test_readme_findings_table_is_the_runs_mean_scores(summary, tmp_path):
    runs, _, _ = summary
    at = (512, 1024)  # the synthetic runs' budget is 2,048 steps
    table = findings(runs.parent, EXPECTED, at)
    ppo, sac = table.split("\n\n**SAC**")  # one table per algorithm
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): line.split("|")[3:-1] for line in ppo.splitlines()}
    assert ppo.splitlines()[2] == "| size | init | Walker2d | HalfCheetah |"
    for size, label in (("tiny", "tiny (32x32)"), ("small", "small (64x64)")):
        for arm in ("scratch", "weit", "distill"):
            walker, cheetah = (c.strip() for c in rows[label, arm])  # the study's order
            assert cheetah == mean_scores(runs, "HalfCheetah", size, arm, at)
            stand_in = "scratch_fresh" if arm == "scratch" else arm  # Walker2d's scratch is scratch_fresh
            assert walker == mean_scores(runs, "Walker2d", size, stand_in, at)
    assert [c.strip() for c in rows["small (64x64)", "select"]] == [
        mean_scores(runs, "Walker2d", "small", "select_kl", at),
        NOT_RUN,
    ]
    assert "Walker2d scratch is the arm `scratch_fresh`" in table
    assert "| small (64x64) | scratch | not run yet |" in sac  # the SAC part has no report yet

    readme = tmp_path / "README.md"
    before, after = "# weit_rl\n\n## What the studies found\n\nProse.\n\n", "\n\nLinks.\n"
    readme.write_text(f"{before}{FINDINGS[0]}\nan old table\n{FINDINGS[1]}{after}")
    assert write_findings(readme, table)
    text = readme.read_text()
    assert text == f"{before}{FINDINGS[0]}\n\n{table.strip()}\n\n{FINDINGS[1]}{after}"  # outside: untouched
    mtime = readme.stat().st_mtime_ns
    assert not write_findings(readme, findings(runs.parent, EXPECTED, at))  # unchanged data: not rewritten
    assert readme.read_text() == text and readme.stat().st_mtime_ns == mtime
    readme.write_text("# no markers\n")
    assert not write_findings(readme, table) and readme.read_text() == "# no markers\n"
    assert not write_findings(tmp_path / "absent.md", table)
