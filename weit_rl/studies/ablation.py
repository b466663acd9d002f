"""The ablation's page, reports/ablation/ablation.md: every candidate against the arm it
modifies, per task; the head-start criteria from the raw runs; the variant banks. Read from the
parts' reports (written by compare) and the runs' evaluations.csv, nothing else."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from weit_rl import stats
from weit_rl.compare.arms import describe
from weit_rl.compare.results import read_evaluations
from weit_rl.studies.definition import Study

BASELINES = ("weit_plain", "distill_plain", "distill", "scratch")  # the old weit, both distills, scratch
# (f) on the control bank (b16): the arm each bank-teacher arm modifies, and weit against distill.
CONTROL_BASES = {"scratch": None, "weit_bankteach": "weit", "scratch_bankteach": "scratch", "weit": "distill"}
CONTROL = "b16"


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


def write(study: Study) -> Path:
    """Write reports/<study>/ablation.md from the study's folders; returns its path."""
    path = study.folder / "ablation.md"
    path.write_text(summary(study))
    return path


def summary(study: Study) -> str:
    main = [c for c in study.calls if c.options["study"] == study.name and "report_dir" not in c.options]
    shared, budget, freq = main[0].options.get("set", {}), main[0].options["steps"], main[0].options["eval_freq"]
    lines = [
        "# Ablation: keeping weit's head start under PPO",
        "",
        "Each task is one part of the study `reports/ablation/` (raw runs in `runs/<Env>/`, the full report "
        f"in `<Env>-ppo.md`). Definition: `configs/studies/{study.name}.yaml`; command: `weit-rl study "
        f"{study.name}` (one call per stage: {', '.join(dict.fromkeys(c.name for c in study.calls))}). "
        f"Settings shared by every arm: {describe(shared)}.",
        "AUC: expert-normalized return integrated as a step function over the 100k steps, divided by the "
        "budget; final: mean of the last 3 evaluations at or before the budget; intervals: 95% percentile "
        "bootstrap over seeds "
        "(difference of means for the comparisons, not corrected for multiplicity; the Holm-corrected "
        "verdicts of every candidate against every other arm are in each task's report).",
        "",
    ]
    for part in sorted(study.folder.glob("*-ppo.json")):
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
        lines += head_start(study.folder / "runs" / part.stem.split("-")[0], budget, freq)
    return "\n".join(lines + bank_variants(study)) + "\n"


def bank_variants(study: Study) -> list[str]:
    """(d): each variant bank's arms against the control bank's (b16), and (f) the bank-teacher
    arms against the arm each modifies, from the studies' per-run AUCs (percentile bootstrap of
    the difference of means)."""
    variants = {c.options["study"]: c for c in study.calls if c.build_bank is not None}
    cells = {
        (part.stem, name): json.loads(part.read_text())["results"]["sizes"].get("small", {})
        for name, call in variants.items()
        for part in sorted((Path(call.options["report_dir"]) / name).glob("*-ppo.json"))
    }
    if not cells:
        return []
    lines = [
        "## Bank variants: smaller blocks, more templates (candidate (d))",
        "",
        "Each bank built by `weit-rl templates` from the same expert (`banks/variants/`, the options in "
        "the study file's `build_bank`); b16 (16 templates of 16x16, the shipped settings) is the control: it "
        "is rebuilt by the current command, while the shipped bank, which the other studies use, predates "
        "standardized units (a higher template loss: its manifest) and has its own calibration set. On b16, "
        "the bank as retention teacher (candidate (f)), against the arm each modifies, and weit "
        "against distill, both from the control bank's calibration set. "
        f"Command: `weit-rl study {study.name} --call bank-b16` (and the other bank calls).",
        "",
        "| task | bank | template loss | arm | runs | step-0 return | AUC | final | AUC difference |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rng = np.random.default_rng(0)
    for (task, name), size in cells.items():
        env = task.split("-")[0]
        manifest = Path("banks") / "variants" / f"{env}-ppo-{name}.json"
        loss = f"{json.loads(manifest.read_text())['final_loss']:.4f}" if manifest.exists() else "-"
        control = cells.get((task, CONTROL), {})
        for arm, cell in size.items():
            base = CONTROL if name != CONTROL else CONTROL_BASES.get(arm)
            other = control.get(arm) if name != CONTROL else size.get(base)
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


def mean_curves(env_dir: Path, steps: int, freq: int) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """arm -> (grid, mean raw return over the arm's recorded seeds, number of seeds), read
    from the raw evaluations.csv files alone, each run as a step function on the evaluation
    grid (0, 5k, ..., 100k)."""
    grid = np.arange(0, steps + 1, freq)
    by_arm: dict[str, list[np.ndarray]] = {}
    for csv_path in sorted(env_dir.glob("*/evaluations.csv")):
        match = re.fullmatch(r"ppo-small-(.+)-s\d+", csv_path.parent.name)
        if match:
            ev = read_evaluations(csv_path)
            if ev["timesteps"][-1] >= steps:  # finished runs only
                by_arm.setdefault(match.group(1), []).append(stats.curve_at(ev["timesteps"], ev["mean_return"], grid))
    return {arm: (grid, np.mean(curves, axis=0), len(curves)) for arm, curves in by_arm.items()}


def head_start(env_dir: Path, steps: int, freq: int) -> list[str]:
    """Issue 8's head-start criteria per arm, on the mean raw return over seeds: the lowest
    evaluation as a share of step 0, final (mean of the last 3) vs step 0, and the first
    evaluation at which the arm reaches scratch's return at the end of the budget."""
    curves = mean_curves(env_dir, steps, freq)
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
        final = float(np.mean(curve[-stats.FINAL_EVALS :]))
        hit = np.flatnonzero(curve >= target)
        reach = f"{t[hit[0]]:,}" if hit.size else "never"
        share = f"{t[hit[0]] / budget:.2f}" if hit.size else "-"
        hold = f"{curve.min() / curve[0]:.0%}" if curve[0] > 0 else "-"
        lines.append(
            f"| {arm} | {n} | {curve[0]:.0f} | {hold} | {final:.0f} | {'yes' if final > curve[0] else 'no'} "
            f"| {reach} | {share} |"
        )
    return lines + [""]
