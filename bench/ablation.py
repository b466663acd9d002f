"""The initialization-recipe ablation (reports/ablation/): every candidate fix for weit's
lost head start, as named arms of one `weit-rl compare` study per task, under the same
controlled settings; then reports/ablation/ablation.md, a summary of every candidate
against the old weit (weit_plain), distill and scratch.

    python bench/ablation.py --env HalfCheetah --stage final     # trains what is missing
    python bench/ablation.py --summary-only                       # rewrites ablation.md

The study resumes from reports/ablation/runs/ (finished runs are never retrained), so the
same command continues on a new machine. Each stage is one compare call (`--stage all` runs
them in order): `core` (5 seeds), `final` (the default recipe's comparison at 10 seeds),
`recipe` (the recipe's contenders), `more` (the remaining candidates), `tuning` (the two
that helped, on top of the 600-step recipe ft300, for weit and distill alike), `controls` (the
statistics' alternatives, the noise floor, retention for scratch), `banks` (smaller blocks and
more templates: variant banks, one study each in reports/ablation/banks/; on the control bank,
the bank as retention teacher).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from weit_rl import stats
from weit_rl.compare.results import read_evaluations

STUDY = "ablation"
REPORTS = Path("reports") / STUDY
# The controlled arms (docs/protocol.md), now RunConfig's defaults too: every arm starts from the
# bank's observation statistics, which keep adapting (count 1e4 rather than the expert's ~1e6,
# which freezes them) once per rollout with the networks' function preserved
# (agents/normalization.py), with the config's exploration log_std and fresh reward statistics.
SHARED = ["obs_stats=bank", "obs_count=10000", "obs_update=preserve", "log_std=config", "reward_stats=fresh"]
PROTOCOL = ["--steps", "100000", "--eval-freq", "5000", "--eval-episodes", "10", "--sizes", "small"]
SEEDS = {"core": 5, "final": 10, "recipe": 5, "more": 5, "tuning": 5, "controls": 5}
# name -> RunConfig overrides; an arm named after an initializer is that initializer. weit and
# distill are the default recipe, chosen by this study (agents/config.py RECIPES, ft2300: scalers,
# 2,300 full-weight steps, retention 1.0 over 50k steps; distill: 2,600 steps and the same
# retention); weit_ft300 and distill_ft300 are the default before it (300 full-weight steps).
# Every candidate starts from the recipe it modifies: plain (scalers only, no retention) or ft300.
PLAIN = "recipe=plain"
FT300 = "recipe=ft300"
RETENTION = "retention=1.0,retention_steps=50000"
ARMS = {
    "core": {
        "scratch": "",
        "weit": "",
        "distill": "",
        "weit_ft300": f"init=weit,{FT300}",
        "distill_ft300": f"init=distill,{FT300}",  # the 600-step recipe
        "weit_plain": f"init=weit,{PLAIN}",  # weit before this study
        "distill_plain": f"init=distill,{PLAIN}",  # distill with weit_plain's steps
        "weit_ft": f"init=weit,{PLAIN},finetune_steps=300",  # (c) scalers, then all weights
        "distill600": f"init=distill,{PLAIN},finetune_steps=300",  # distill with weit_ft's total steps
        "weit_ret": f"init=weit,{PLAIN},{RETENTION}",  # (f) KL to the initial policy
    },
    "final": {
        "scratch": "",
        "weit": "",
        "distill": "",
        "weit_ft300": f"init=weit,{FT300}",
        "distill_ft300": f"init=distill,{FT300}",
    },
    "recipe": {
        "weit_retx": f"init=weit,{FT300},{RETENTION},retention_teacher=expert",  # (f) the expert teaches
        "scratch_retx": f"init=scratch,{RETENTION},retention_teacher=expert",  # kickstarting from scratch
        # (a), (b) before the full-weight steps: weit_ft starts higher than distill600 but, on the
        # first 3 seeds, improves less under PPO (its weights keep plain weit's large norms)
        "weit_ft_rebal": f"init=weit,{PLAIN},finetune_steps=300,rebalance=true",
        "weit_ft_pen": f"init=weit,{PLAIN},finetune_steps=300,scale_penalty=1.0",
    },
    "more": {  # the remaining candidates, and the uncontrolled comparison shown once
        "weit_rebal": f"init=weit,{PLAIN},rebalance=true",  # (a) function-preserving rescaling
        "weit_pen": f"init=weit,{PLAIN},scale_penalty=1.0",  # (b) norm penalty in scaler fitting
        "weit_fit1k": f"init=weit,{PLAIN},fit_steps=1000",  # (d) more scaler steps
        "weit_warm": f"init=weit,{PLAIN},warmup_steps=10240",  # (e) critic warm-up, actor frozen
        "weit_lr4": f"init=weit,{PLAIN},lr_scale=4.0",  # (e) PPO's learning rate
        "weit_uncontrolled": f"init=weit,{PLAIN},obs_stats=init,obs_count=1000000,obs_update=running,log_std=init",
    },
    # the two plain-recipe candidates that helped, on top of the ft300 recipe; distill gets each too. The
    # stage also held the larger budget (weit_2600, distill_2600: 2,300 full-weight steps), which won and
    # became the default: its runs are the first 5 seeds of weit and distill.
    "tuning": {
        "weit_fit1k_rec": f"init=weit,{FT300},fit_steps=1000",  # (d) 1,000 scaler steps, then 300 full-weight steps
        "distill_1300": f"init=distill,{FT300},fit_steps=1000",  # distill with weit_fit1k_rec's total steps
        "weit_lr4_rec": f"init=weit,{FT300},lr_scale=4.0",  # (e) 4x PPO learning rate
        "distill_lr4": f"init=distill,{FT300},lr_scale=4.0",
    },
    "controls": {
        "weit_still": "init=weit,lr_scale=0.0",  # noise floor: the start, never updated
        "scratch_ret": f"init=scratch,{RETENTION}",  # retention applies to every arm
        "scratch_fresh": "init=scratch,obs_stats=fresh,obs_update=running",  # SB3's own statistics
        "scratch_frozen": "init=scratch,obs_count=1000000",  # the expert's statistics, frozen
        "weit_running": f"init=weit,{PLAIN},obs_update=running",  # statistics that shift under the weights
    },
    # A `counts` stage (every arm's bank statistics counted as one rollout, obs_count=512) was planned
    # for the case that the controlled statistics cripple scratch, and dropped after 0 of 15 runs: at
    # 5 seeds, scratch_fresh (SB3's own statistics, what a scratch learner gets outside this study) vs
    # the controlled scratch (10 seeds) is +0.024 [-0.058, +0.104] AUC, no detectable effect (seeds
    # 0-2 alone had suggested a threefold gap), so the shared settings stay.
}
BASELINES = ("weit_plain", "distill_plain", "distill", "scratch")  # the old weit, both distills, scratch
# (d) smaller blocks or more templates: each variant bank is built from the same expert by the
# current `weit-rl templates` (the shipped banks predate standardized units), so b16 is the control.
# A sweep part has one bank, so each variant is its own study, reports/ablation/banks/<variant>/.
# 32 templates (k32, `--templates 32`) was planned and not run: on the control bank weit and distill
# both reach ~0.98 of the expert's AUC (10 seeds each), so no bank can make weit beat distill there.
BANK_VARIANTS = {"b16": [], "b8": ["--block", "8"]}
VARIANT_ARMS = {"weit_plain": f"init=weit,{PLAIN}", "weit": ""}  # the scalers' fit alone, and the default recipe
# (f) the bank as retention teacher (its largest template network; banks built since it is stored,
# so on the control bank only), for weit and for scratch (kickstarting without the expert):
# name -> (overrides, the arm it modifies)
TEACHER_ARMS = {
    "scratch": ("", None),
    "weit_bankteach": ("init=weit,retention_teacher=bank", "weit"),
    "scratch_bankteach": (f"init=scratch,{RETENTION},retention_teacher=bank", "scratch"),
}
# The control bank fits the expert better than the shipped one (template loss 0.0022 vs 0.0077; the
# shipped bank predates standardized units): weit against distill on it, both from its own
# calibration set, at the final stage's 10 seeds.
CONTROL_BASES = {**{arm: base for arm, (_, base) in TEACHER_ARMS.items()}, "weit": "distill"}


def run_study(env: str, stage: str, workers: int) -> None:
    """One `weit-rl compare` call: the stage's arms at its seeds; the candidates are every arm
    of the task's study so far (its earlier stages) and of this stage, but scratch and distill."""
    arms = ARMS[stage]
    study = REPORTS / "runs" / env / "study-ppo.json"
    known = list(json.loads(study.read_text())["arms"]) if study.exists() else []
    candidates = [n for n in dict.fromkeys([*known, *arms]) if n not in ("scratch", "distill")]
    flags = arm_flags(arms)
    cmd = [
        "weit-rl",
        "compare",
        "--env",
        env,
        "--algo",
        "ppo",
        "--study",
        STUDY,
        "--profile",
        "full",
        *PROTOCOL,
        "--seeds",
        str(SEEDS[stage]),
        "--set",
        *SHARED,
        *flags,
        "--arms",
        ",".join(arms),
        "--primary",
        "weit:scratch",
        "--candidates",
        ",".join(candidates),
        "--workers",
        str(workers),
    ]
    run_command(cmd)


def variant_bank(env: str, name: str) -> Path:
    path = Path("banks") / "variants" / f"{env}-ppo-{name}.safetensors"
    if not path.exists():
        run_command(["weit-rl", "templates", "--env", env, "--algo", "ppo", "--out", str(path), *BANK_VARIANTS[name]])
    return path


def run_bank_study(env: str, name: str, arms: dict[str, str], seeds: int, workers: int) -> None:
    """One compare call on variant bank `name` (its own study, reports/ablation/banks/<name>/)."""
    flags = arm_flags(arms)
    run_command(
        [
            "weit-rl",
            "compare",
            "--env",
            env,
            "--algo",
            "ppo",
            "--report-dir",
            str(REPORTS / "banks"),
            "--study",
            name,
            "--bank",
            str(variant_bank(env, name)),
            "--profile",
            "full",
            *PROTOCOL,
            "--seeds",
            str(seeds),
            "--set",
            *SHARED,
            *flags,
            "--arms",
            ",".join(arms),
            "--primary",
            "weit:weit_plain",
            "--workers",
            str(workers),
        ]
    )


def run_bank_variants(env: str, workers: int) -> None:
    """One study per variant bank: weit_plain and weit at the core stage's seeds, and on the
    control bank the bank-teacher arms, then weit and distill at the final stage's seeds."""
    for name in BANK_VARIANTS:
        teachers = {arm: over for arm, (over, _) in TEACHER_ARMS.items()} if name == "b16" else {}
        run_bank_study(env, name, VARIANT_ARMS | teachers, SEEDS["core"], workers)
        if name == "b16":
            run_bank_study(env, name, {"weit": "", "distill": ""}, SEEDS["final"], workers)


def arm_flags(arms: dict[str, str]) -> list[str]:
    """--arm NAME:OVERRIDES for every arm that is more than its initializer."""
    return [f for name, over in arms.items() if over for f in ("--arm", f"{name}:{over}")]


def study_args(doc: str, env: str) -> argparse.Namespace:
    """The options of a one-call study driver (bench/sac_start.py, bench/hopper_dip.py)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default=env)
    p.add_argument("--workers", type=int, default=1)
    return p.parse_args()


def run_arms(
    env: str,
    algo: str,
    study: str,
    arms: dict[str, str],
    options: list[str],
    primary: str,
    candidates: list[str],
    workers: int,
) -> None:
    """One `weit-rl compare` call of a study defined by its named arms (bench/sac_start.py, bench/hopper_dip.py)."""
    run_command(
        [
            "weit-rl",
            "compare",
            "--env",
            env,
            "--algo",
            algo,
            "--study",
            study,
            "--profile",
            "full",
            *options,
            *arm_flags(arms),
            "--arms",
            ",".join(arms),
            "--primary",
            primary,
            "--candidates",
            ",".join(candidates),
            "--workers",
            str(workers),
        ]
    )


def run_command(cmd: list[str]) -> None:
    print(" ".join(cmd), flush=True)
    subprocess.run([str(Path(sys.executable).parent / cmd[0]), *cmd[1:]], check=True)


def fmt(ci: dict) -> str:
    low, high = ci.get("low"), ci.get("high")
    if low is None:
        return f"{ci['estimate']:.3f}"
    return f"{ci['estimate']:.3f} [{low:.3f}, {high:.3f}]"


# What each candidate changes, so whether it helped is read against that arm: the plain-recipe
# candidates modify weit_plain, the recipe's contenders modify weit or weit_ft.
MODIFIES = {
    "weit_ft": "weit_plain",
    "weit_ret": "weit_plain",
    "weit_rebal": "weit_plain",
    "weit_pen": "weit_plain",
    "weit_fit1k": "weit_plain",
    "weit_warm": "weit_plain",
    "weit_lr4": "weit_plain",
    "weit_running": "weit_plain",
    "weit_uncontrolled": "weit_plain",
    "weit_ft300": "weit_ft",
    "weit_retx": "weit_ft300",
    "weit_ft_rebal": "weit_ft",
    "weit_ft_pen": "weit_ft",
    "distill600": "distill_plain",
    "distill_ft300": "distill600",
    "scratch_retx": "scratch",
    "scratch_ret": "scratch",
    "weit_fit1k_rec": "weit_ft300",
    "distill_1300": "distill_ft300",
    "weit_lr4_rec": "weit_ft300",
    "distill_lr4": "distill_ft300",
    "weit": "weit_ft300",
    "distill": "distill_ft300",
    "weit_still": "weit",
    "scratch_fresh": "scratch",
    "scratch_frozen": "scratch",
    "scratch_c512": "scratch",
    "weit_c512": "weit",
    "distill_c512": "distill",
}


def difference(comparisons: dict, arm: str, base: str) -> dict | None:
    """arm - base on AUC (estimate, low, high, Holm verdict), from whichever order the report holds."""
    if (arm, base) in comparisons:
        c = comparisons[(arm, base)]
        return {**c["difference"], "verdict": c.get("verdict")}
    if (base, arm) in comparisons:
        c, d = comparisons[(base, arm)], comparisons[(base, arm)]["difference"]
        flipped = {"better": "worse", "worse": "better"}
        return {
            "estimate": -d["estimate"],
            "low": -d["high"] if d.get("high") is not None else None,
            "high": -d["low"] if d.get("low") is not None else None,
            "verdict": flipped.get(c.get("verdict"), c.get("verdict")),
        }
    return None


def fmt_diff(d: dict | None) -> str:
    if d is None:
        return "-"
    return f"{d['estimate']:+.3f}" + (f" [{d['low']:+.3f}, {d['high']:+.3f}]" if d.get("low") is not None else "")


def effects(size: dict, comparisons: dict) -> list[str]:
    """Each candidate against the arm it modifies: helped (the 95% interval of the AUC difference
    above zero), hurt (below), or no detectable effect; the Holm-corrected verdict beside it."""
    lines = [
        "| candidate | modifies | seeds | AUC difference | effect | verdict (Holm, report's family) |",
        "|---|---|---|---|---|---|",
    ]
    groups: dict[str, list[str]] = {"helped": [], "hurt": [], "no detectable effect": []}
    for arm, base in MODIFIES.items():
        if arm not in size or base not in size:
            continue
        d = difference(comparisons, arm, base)
        if d is None or d.get("low") is None:
            continue
        effect = "helped" if d["low"] > 0 else "hurt" if d["high"] < 0 else "no detectable effect"
        groups[effect].append(f"{arm} (vs {base})")
        lines.append(f"| {arm} | {base} | {len(size[arm]['auc'])} | {fmt_diff(d)} | {effect} | {d['verdict']} |")
    lines += [""] + [f"- {k.capitalize()}: {', '.join(v) if v else 'none'}." for k, v in groups.items()]
    return lines + [""]


def summary() -> str:
    lines = [
        "# Ablation: keeping weit's head start under PPO",
        "",
        "Each task is one part of the study `reports/ablation/` (raw runs in `runs/<Env>/`, the full report "
        "in `<Env>-ppo.md`). Command: `python bench/ablation.py --env <Env> --stage core`, then "
        "`final`, `recipe`, `more`, `tuning` and `controls`. Settings shared by every arm: "
        + ", ".join(f"`{s}`" for s in SHARED)
        + ".",
        "AUC: expert-normalized return integrated as a step function over the 100k steps, divided by the "
        "budget; final: mean of the last 3 evaluations; intervals: 95% percentile bootstrap over seeds "
        "(difference of means for the comparisons, not corrected for multiplicity; the Holm-corrected "
        "verdicts of every candidate against every other arm are in each task's report).",
        "",
    ]
    for part in sorted(REPORTS.glob("*-ppo.json")):
        data = json.loads(part.read_text())
        size = data["results"]["sizes"].get("small", {})
        comparisons = {(c["method"], c["baseline"]): c for c in data["results"]["comparisons"] if c["size"] == "small"}
        lines += [
            f"## {part.stem}",
            "",
            "| arm | runs | step-0 return | AUC | final | AUC vs " + " | AUC vs ".join(BASELINES) + " |",
            "|---|---|---|---|---|" + "---|" * len(BASELINES),
        ]
        for arm, cell in size.items():
            row = [
                arm,
                str(len(cell["auc"])),
                f"{cell['step0_mean']['estimate']:.0f}",
                fmt(cell["aggregate"]["auc"]["mean"]),
                fmt(cell["aggregate"]["final"]["mean"]),
            ]
            row += ["-" if arm == base else fmt_diff(difference(comparisons, arm, base)) for base in BASELINES]
            lines.append("| " + " | ".join(row) + " |")
        lines += ["", "What each candidate did to the arm it modifies (AUC):", ""] + effects(size, comparisons)
        lines += head_start(REPORTS / "runs" / part.stem.split("-")[0])
    return "\n".join(lines + bank_variants())


def bank_variants() -> list[str]:
    """(d): each variant bank's arms against the control bank's (b16), and (f) the bank-teacher
    arms against the arm each modifies, from the studies' per-run AUCs (percentile bootstrap of
    the difference of means)."""
    cells = {
        (part.stem, name): json.loads(part.read_text())["results"]["sizes"].get("small", {})
        for name in BANK_VARIANTS
        for part in sorted((REPORTS / "banks" / name).glob("*-ppo.json"))
    }
    if not cells:
        return []
    lines = [
        "## Bank variants: smaller blocks, more templates (candidate (d))",
        "",
        "Each bank built by `weit-rl templates` from the same expert (`banks/variants/`, the options in "
        "`bench/ablation.py` BANK_VARIANTS); b16 (16 templates of 16x16, the shipped settings) is the control: it "
        "is rebuilt by the current command, while the shipped bank, which the other studies use, predates "
        "standardized units (a higher template loss: its manifest) and has its own calibration set. On b16, "
        "the bank as retention teacher (candidate (f), TEACHER_ARMS), against the arm each modifies, and weit "
        "against distill, both from the control bank's calibration set. "
        "Command: `python bench/ablation.py --env <Env> --stage banks`.",
        "",
        "| task | bank | template loss | arm | runs | step-0 return | AUC | final | AUC difference |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rng = np.random.default_rng(0)
    for (task, name), size in cells.items():
        env = task.split("-")[0]
        manifest = Path("banks") / "variants" / f"{env}-ppo-{name}.json"
        loss = f"{json.loads(manifest.read_text())['final_loss']:.4f}" if manifest.exists() else "-"
        control = cells.get((task, "b16"), {})
        for arm, cell in size.items():
            base = "b16" if name != "b16" else CONTROL_BASES.get(arm)
            other = control.get(arm) if name != "b16" else size.get(base)
            diff = "-"
            if other is not None:
                est, low, high = stats.bootstrap_ci(
                    [np.array(cell["auc"]), np.array(other["auc"])], stats.difference_of_means, rng
                )
                diff = f"{est:+.3f} [{low:+.3f}, {high:+.3f}] vs {base}"
            lines.append(
                f"| {env} | {name} | {loss} | {arm} | {len(cell['auc'])} | "
                f"{cell['step0_mean']['estimate']:.0f} | {fmt(cell['aggregate']['auc']['mean'])} | "
                f"{fmt(cell['aggregate']['final']['mean'])} | {diff} |"
            )
    return lines + [""]


def mean_curves(env_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """arm -> (grid, mean raw return over the arm's recorded seeds, number of seeds), read
    from the raw evaluations.csv files alone, each run as a step function on the evaluation
    grid (0, 5k, ..., 100k)."""
    steps, freq = int(PROTOCOL[PROTOCOL.index("--steps") + 1]), int(PROTOCOL[PROTOCOL.index("--eval-freq") + 1])
    grid = np.arange(0, steps + 1, freq)
    by_arm: dict[str, list[np.ndarray]] = {}
    for csv_path in sorted(env_dir.glob("*/evaluations.csv")):
        match = re.fullmatch(r"ppo-small-(.+)-s\d+", csv_path.parent.name)
        if match:
            ev = read_evaluations(csv_path)
            if ev["timesteps"][-1] >= steps:  # finished runs only
                by_arm.setdefault(match.group(1), []).append(stats.curve_at(ev["timesteps"], ev["mean_return"], grid))
    return {arm: (grid, np.mean(curves, axis=0), len(curves)) for arm, curves in by_arm.items()}


def head_start(env_dir: Path) -> list[str]:
    """Issue 8's head-start criteria per arm, on the mean raw return over seeds: the lowest
    evaluation as a share of step 0, final (mean of the last 3) vs step 0, and the first
    evaluation at which the arm reaches scratch's return at the end of the budget."""
    curves = mean_curves(env_dir)
    if "scratch" not in curves:
        return []
    t_s, scratch, _ = curves["scratch"]
    target, budget = scratch[-1], t_s[-1]
    lines = [
        f"Head start (mean raw return over seeds; scratch reaches {target:.0f} at {budget:,} steps):",
        "",
        "| arm | seeds | step 0 | lowest / step 0 | final (last 3) | final > step 0 | steps to scratch's end "
        "| share of budget |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm, (t, curve, n) in curves.items():
        final = float(np.mean(curve[-3:]))
        hit = np.flatnonzero(curve >= target)
        reach = f"{t[hit[0]]:,}" if hit.size else "never"
        share = f"{t[hit[0]] / budget:.2f}" if hit.size else "-"
        hold = f"{curve.min() / curve[0]:.0%}" if curve[0] > 0 else "-"
        lines.append(
            f"| {arm} | {n} | {curve[0]:.0f} | {hold} | {final:.0f} | {'yes' if final > curve[0] else 'no'} "
            f"| {reach} | {share} |"
        )
    return lines + [""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="HalfCheetah")
    p.add_argument("--stage", choices=[*ARMS, "banks", "all"], default="core")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--summary-only", action="store_true")
    args = p.parse_args()
    if not args.summary_only:
        for stage in [*ARMS, "banks"] if args.stage == "all" else [args.stage]:
            if stage == "banks":
                run_bank_variants(args.env, args.workers)
            else:
                run_study(args.env, stage, args.workers)
    (REPORTS / "ablation.md").write_text(summary())
    print(f"wrote {REPORTS / 'ablation.md'}")


if __name__ == "__main__":
    main()
