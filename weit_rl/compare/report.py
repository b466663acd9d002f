"""Writing the report of a study's <Env>/<algo> part beside runs/: <Env>-<algo>.md,
<Env>-<algo>.json and three figures <Env>-<algo>-<figure>.png (FIGURES)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from weit_rl import UserError, plots, stats
from weit_rl.artifacts.provenance import code_version, hardware
from weit_rl.compare.arms import arm_definition, describe, settings_text
from weit_rl.compare.results import analyse, load_runs
from weit_rl.compare.results import timing as run_timing
from weit_rl.compare.study import definition, portable, portable_command
from weit_rl.config import hyperparams, parse_size

if TYPE_CHECKING:
    from weit_rl.compare.sweep import Sweep

AUC_TEXT = (
    "the integral over [0, budget] of the step-function learning curve (each evaluation's mean return "
    "holds until the next evaluation; steps past the budget count as the budget), divided by the budget: "
    "the mean score over training"
)
FIGURES = ("learning_curves", "steps_to_level", "performance_profile")
NORMALIZATION = {
    "expert-random": "(R - random) / (expert - random): 0 is the random policy, 1 the expert",
    "expert-only": "**R / expert (fallback)**: the bank records no `random_return`, so 0 is a return of zero, "
    "not the random policy's return",
    "raw": "**raw returns**: no expert return is recorded, so scores are not normalized and steps-to-level "
    "is not computed",
}


def _num(v: float | None, raw: bool) -> str:
    if v is None:
        return "-"
    if math.isinf(v):
        return "∞"
    return f"{v:,.1f}" if raw else f"{v:.3f}"


def _ci(v: dict[str, Any] | None, raw: bool) -> str:
    """ "estimate [low, high]", or the estimate alone where there is no interval (n < 5)."""
    if v is None:
        return "-"
    if v["low"] is None:
        return _num(v["estimate"], raw)
    return f"{_num(v['estimate'], raw)} [{_num(v['low'], raw)}, {_num(v['high'], raw)}]"


def _reference(refs: dict[str, Any], key: str, name: str) -> str:
    value = refs.get(f"{key}_return")
    return f"{name} {value:,.1f} ({refs.get(f'{key}_source')})" if value is not None else f"{name}: not recorded"


def _steps(v: float) -> str:
    return "not reached" if math.isinf(v) else f"{v:,.0f}"


def _median_steps(v: dict[str, Any]) -> str:
    m = v["median"]
    head = f"{v['reached']}/{v['n']} reached; median {_steps(m['estimate'])}"
    if m["low"] is None:
        return head
    high = "not reached" if math.isinf(m["high"]) else f"{m['high']:,.0f}"
    return f"{head} [{_steps(m['low'])}, {high}]"


def _verdict_sentence(c: dict[str, Any], raw: bool) -> str:
    what = f"{c['method']} vs {c['baseline']} at size {c['size']}"
    if not c["tested"]:
        return (
            f"{what} (AUC): **not tested**: {c['n'][0]} and {c['n'][1]} runs, fewer than {stats.MIN_RUNS} per "
            "arm, so intervals and tests are not meaningful; see the runs."
        )
    what += ", mean AUC difference"
    p = f"permutation p = {c['p']:.4f}" + (f", Holm-adjusted {c['p_holm']:.4f}" if "p_holm" in c else "")
    word = {
        "better": f"**{c['method']} better**",
        "worse": f"**{c['method']} worse**",
        "suggestive": "**suggestive** (only the uncorrected test rejects: a lead for a follow-up, not a finding)",
        "inconclusive": "**inconclusive** (no decision either way; not a tie)",
    }[c["verdict"]]
    return f"{what} {_ci(c['difference'], raw)}; {p}: {word}."


def _undecidable(c: dict[str, Any]) -> bool:
    return c.get("p_holm_best", 0.0) > stats.ALPHA


def _resolution_note(rows: list[dict[str, Any]], tested: int) -> list[str]:
    """Why some secondary tests could not reject whatever their runs held: per run counts,
    the permutation test's smallest p and the best Holm-adjusted p it leads to."""
    if not rows:
        return []
    counts = {tuple(c["n"]): (c["p_floor"], c["p_holm_best"]) for c in rows}
    why = "; ".join(
        f"with {a} and {b} runs the smallest p is {floor:.4f}, adjusted at best {best:.4f}"
        for (a, b), (floor, best) in counts.items()
    )
    return [
        "",
        f"‡ Undecidable at these run counts: even if every test of the family reached the smallest p its "
        f"run counts allow, Holm over {tested} tests would leave these above {stats.ALPHA} ({why}). Their "
        '"inconclusive" or "suggestive" says the runs are too few for this family, not that the difference is '
        "small.",
    ]


def _report_dir_option(sweep: Sweep) -> str:
    """--report-dir as the rebuild command needs it (compare's default is runs/)."""
    return "" if sweep.report_dir == Path("runs") else f" --report-dir {portable(sweep.report_dir)}"


def render(sweep: Sweep, meta: dict[str, Any], r: dict[str, Any], timing: dict[str, Any]) -> str:
    """The Markdown report."""
    raw = r["normalization"] == "raw"
    refs = sweep.references
    (method, baseline), candidates = sweep.primary, sweep.candidates or sweep.primary[:1]
    t, env, part = timing, sweep.study_file.parent.name, sweep.part
    normalizes = bool(hyperparams(sweep.algo, sweep.env_id).get("normalize", False))
    lines = [
        f"# Sample efficiency: {sweep.env_id}, {sweep.algo.upper()} (study `{sweep.study}`)",
        "",
        f"- Raw data: `runs/{env}/` beside this file ({meta['recorded']} runs: each run's evaluations.csv and "
        f"config.yaml; `runs/{env}/{sweep.study_file.name}` holds this part's settings and reference returns). "
        f"`weit-rl compare --study {sweep.study} --env {env} --algo {sweep.algo}{_report_dir_option(sweep)} "
        "--report-only` rebuilds this "
        "report from them alone (without --env: the report of every task and algorithm of the study)",
        f"- Command: `{meta['command']}`",
        f"- Code: weit_rl {meta['code_version']}",
        f"- Hardware: {meta['hardware']}",
        f"- Wall time of this command: {meta['wall_s'] / 60:.1f} min, "
        + (
            f"{meta['trained_now']} runs trained now ({meta['workers']} in parallel, backend {meta['backend']})"
            if meta["trained_now"]
            else "no training (report from recorded runs)"
        ),
    ]
    if last := meta.get("last_training"):
        lines.append(
            f"- Runs last trained by: `{last['command']}` ({last['created']}, {last['trained_now']} runs in "
            f"{last['wall_s'] / 60:.1f} min, {last['workers']} in parallel, weit_rl {last['code_version']})"
        )
    if t["runs_timed"]:
        lines.append(
            f"- Training time summed over {t['runs_timed']} of {t['runs']} runs: {t['wall_s'] / 3600:.2f} h, "
            f"of which **{t['eval_share']:.1%} evaluating** (evaluations.csv columns wall_s, eval_s)"
        )
    else:
        lines.append("- Training time and evaluation share: not recorded (evaluations.csv without wall_s/eval_s)")
    lines += [
        f"- Grid: sizes {', '.join(f'{s} {parse_size(s)}' for s in sweep.sizes)}; arms {', '.join(sweep.inits)}; "
        f"seeds {', '.join(map(str, sweep.seeds))}; budget {sweep.steps:,} steps per run (profile {sweep.profile})",
        "- Arms (RunConfig overrides; anything beyond init departs from the controlled arms of docs/protocol.md): "
        + "; ".join(f"`{a}`: {describe(sweep.arms.get(a, arm_definition(a)))}" for a in sweep.inits),
        f"- {settings_text(sweep.settings, sweep.algo, normalizes)}. Every arm gets the sweep's bank "
        f"({portable(sweep.bank) or 'none'})"
        + (" for its observation statistics" if normalizes else "")
        + "; the expert only where its initializer needs it",
        f"- Evaluation: at step 0, every {sweep.eval_freq:,} steps and at the end, {sweep.eval_episodes} "
        f"deterministic episode{'s' if sweep.eval_episodes > 1 else ''} each, on environment seeds training "
        "seed + 10,000 (disjoint from training)",
        f"- Scores: {NORMALIZATION[r['normalization']]}. {_reference(refs, 'expert', 'Expert return')}; "
        f"{_reference(refs, 'random', 'random policy')}",
        f"- Per run: **AUC** is {AUC_TEXT}; **final score** is the mean of the last {stats.FINAL_EVALS} "
        "evaluations; **step-0 return** is the raw mean return of the evaluation at step 0 (the head start the "
        "initialization gives); **steps to L** is the step of the first evaluation whose score reaches L = "
        f"{', '.join(f'{x:.0%}' for x in stats.LEVELS)} of the expert's (normalized) return; a run that never "
        'does is censored ("not reached", counted as +∞ in the median)',
        f"- Aggregates over runs: mean and IQM (interquartile mean: the mean after dropping the ⌊n/4⌋ lowest and "
        f"⌊n/4⌋ highest runs, so nothing is dropped below 4 runs) with 95% percentile-bootstrap intervals: "
        f"{meta['reps']:,} resamples of the runs with replacement, bounds at the 2.5% and 97.5% order statistics, "
        f"every interval drawn from a fresh numpy `default_rng({meta['stats_seed']})`. With fewer than "
        f"{stats.MIN_RUNS} runs in an arm no interval or verdict is given, only the runs",
        f"- Test: the primary comparison, declared before the runs, is {method} vs {baseline} on AUC at size "
        f"{sweep.primary_size}: two-sided permutation test of the difference of mean AUC (exact over all splits "
        f"when there are at most {meta['reps']:,}, else {meta['reps']:,} random permutations), at "
        f"{stats.ALPHA}. Secondary comparisons (each candidate, {', '.join(candidates)}, vs every other arm at "
        f"every size, AUC; a pair counted once) use the same test with Holm's correction at {stats.ALPHA} over "
        'their family. "Inconclusive" means the test did not reject: no claim either way. P(improvement) and '
        "performance profiles are descriptive only. Expect wide "
        "intervals: docs/protocol.md estimates about 30 seeds per arm to detect a 0.1 difference in normalized AUC at "
        "80% power",
    ]
    if meta["missing"]:
        lines.append(f"- **Missing runs** (not recorded, left out): {', '.join(meta['missing'])}")
    lines += [f"- Note: {n}" for n in sweep.notes] + ["", "## Primary comparison", ""]
    comps = r["comparisons"]
    primary = [c for c in comps if c["role"] == "primary"]
    lines.append(
        _verdict_sentence(primary[0], raw)
        if primary
        else f"Not available: the study has no {method} and {baseline} runs at size {sweep.primary_size}."
    )
    secondary = [c for c in comps if c["role"] == "secondary"]
    if secondary:
        tested = sum(c["tested"] for c in secondary)
        lines += [
            "",
            f"## Secondary comparisons (Holm-corrected over {tested} tests)",
            "",
            "Differences are candidate minus baseline (mean over runs, 95% bootstrap CI); P(candidate > "
            f"baseline) is in {part}.json. Verdict: better or worse where the Holm-adjusted p is at most "
            f"{stats.ALPHA}; suggestive where only the unadjusted p is (a lead for a follow-up, not a finding); "
            "else inconclusive.",
            "",
            "| candidate | baseline | size | runs | AUC difference [95% CI] | p | Holm p | verdict | "
            "final difference [95% CI] |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for c in secondary:
            p = "-" if c["p"] is None else f"{c['p']:.4f}"
            holm = f"{c['p_holm']:.4f}" if "p_holm" in c else "-"
            mark = " ‡" if _undecidable(c) else ""
            lines.append(
                f"| {c['method']} | {c['baseline']} | {c['size']} | {c['n'][0]}, {c['n'][1]} | "
                f"{_ci(c['difference'], raw)} | {p} | {holm} | {c['verdict']}{mark} | "
                f"{_ci(c['final_difference'], raw)} |"
            )
        lines += _resolution_note([c for c in secondary if _undecidable(c)], tested)
    lines += ["", "## Results per size", ""]
    if any(len(c["runs"]) < stats.MIN_RUNS for by_init in r["sizes"].values() for c in by_init.values()):
        lines += [
            f"**Some arms have fewer than {stats.MIN_RUNS} runs: intervals are not meaningful there, so "
            "their values below are plain estimates without intervals, and no verdict is given; the runs "
            "are listed at the end.**",
            "",
        ]
    for size, by_init in r["sizes"].items():
        lines += [
            f"### {size} {parse_size(size)}",
            "",
            "| arm | runs | step-0 return (raw) | AUC mean | AUC IQM | final mean | final IQM |",
            "|---|---|---|---|---|---|---|",
        ]
        for init, cell in by_init.items():
            a, f = cell["aggregate"]["auc"], cell["aggregate"]["final"]
            lines.append(
                f"| {init} | {len(cell['runs'])} | {_ci(cell['step0_mean'], True)} | {_ci(a['mean'], raw)} "
                f"| {_ci(a['iqm'], raw)} | {_ci(f['mean'], raw)} | {_ci(f['iqm'], raw)} |"
            )
        if not raw:
            levels = list(next(iter(by_init.values()))["levels"])
            lines += [
                "",
                "Steps to reach a fraction of the expert's return (runs reaching it; median over runs, "
                "censored runs as +∞, [95% CI]):",
                "",
                "| arm | " + " | ".join(f"{float(x):.0%} of expert" for x in levels) + " |",
                "|---" * (1 + len(levels)) + "|",
            ]
            for init, cell in by_init.items():
                lines.append(f"| {init} | " + " | ".join(_median_steps(cell["levels"][x]) for x in levels) + " |")
        lines.append("")
    unit = "return" if raw else "normalized score"
    lines += [
        "## Figures",
        "",
        f"Learning curves (mean {unit} over runs, each run read as its last evaluation at "
        "or before each step of the grid; shaded: pointwise 95% bootstrap interval, drawn only with at least 5 "
        "runs; thin lines: single runs):",
        "",
        f"![learning curves]({part}-learning_curves.png)",
        "",
    ]
    if not raw:
        lines += [
            "Steps to reach 25/50/75% of the expert's return (median over runs with 95% interval; hatched: "
            "the median run did not reach it):",
            "",
            f"![steps to level]({part}-steps_to_level.png)",
            "",
        ]
    lines += [
        f"Performance profiles of the final {unit} (fraction of runs above τ, 95% bootstrap band; descriptive):",
        "",
        f"![performance profile]({part}-performance_profile.png)",
        "",
        "## Runs",
        "",
    ]
    for size, by_init in r["sizes"].items():
        levels = list(next(iter(by_init.values()))["steps"])
        lines += [
            f"### {size}",
            "",
            "| run | AUC | final | " + " | ".join(f"steps to {float(x):.0%}" for x in levels) + " |",
            "|---" * (3 + len(levels)) + "|",
        ]
        for cell in by_init.values():
            for i, name in enumerate(cell["runs"]):
                steps = " | ".join(_steps(cell["steps"][x][i]) for x in levels)
                lines.append(f"| {name} | {_num(cell['auc'][i], raw)} | {_num(cell['final'][i], raw)} | {steps} |")
        lines.append("")
    return "\n".join(lines)


def figures(out: Path, results: dict[str, Any], budget: int, reps: int, seed: int) -> None:
    """The three PNGs, out-<figure>.png (out: the folder and the part's name); the
    performance profiles' bands use the same fresh-generator rule."""
    sizes, raw = results["sizes"], results["normalization"] == "raw"
    unit = "return" if raw else "normalized score"
    png = {name: out.with_name(f"{out.name}-{name}.png") for name in FIGURES}
    plots.learning_curves(png["learning_curves"], np.array(results["grid"]), sizes, f"mean {unit}")
    if not raw:
        plots.level_steps(png["steps_to_level"], sizes, budget)
    finals = np.concatenate([c["final"] for by_init in sizes.values() for c in by_init.values()])
    taus = np.linspace(min(0.0, finals.min()), max(finals.max(), 0.0 if raw else 1.0) + 1e-9, 101)
    profile = lambda s, axis: stats.performance_profile(s, taus, axis)  # noqa: E731
    profiles: dict[str, dict[str, plots.Profile]] = {
        size: {
            init: stats.bootstrap_ci([c["final"]], profile, np.random.default_rng(seed), reps)
            if len(c["final"]) >= stats.MIN_RUNS
            else (profile(np.array(c["final"]), 0), None, None)
            for init, c in by_init.items()
        }
        for size, by_init in sizes.items()
    }
    plots.performance_profiles(png["performance_profile"], taus, profiles, f"final {unit} (τ)")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # never a half-written report


def jsonable(obj: Any) -> Any:
    """JSON-safe copy: +inf (never reached) becomes the string "inf", NaN becomes null."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return None if math.isnan(obj) else ("inf" if math.isinf(obj) else float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _last_training(previous: Path) -> dict[str, Any] | None:
    """The record of the command that last trained runs, from the report a rebuild replaces:
    a rebuild that trains nothing must not erase how the runs were made and how long they took."""
    if not previous.exists():
        return None
    old = json.loads(previous.read_text()).get("meta", {})
    if not old.get("trained_now"):
        return old.get("last_training")
    return {k: old[k] for k in ("command", "created", "wall_s", "trained_now", "workers", "code_version")}


def write_report(sweep: Sweep, meta: dict[str, Any], reps: int = stats.REPS, stats_seed: int = 0) -> Path:
    """Aggregate the part's recorded runs into <Env>-<algo>.md, .json and three PNGs in
    the study folder; returns the Markdown file."""
    runs, missing = load_runs(sweep)
    if not runs:
        raise UserError(
            f"no recorded runs of this grid under {sweep.study_file.parent}: run the sweep first "
            "(the same command without --report-only)"
        )
    results = analyse(sweep, runs, reps, stats_seed)
    timing = run_timing(runs)
    out = sweep.study_dir
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(
        meta,
        command=portable_command(meta["command"]),
        missing=missing,
        recorded=len(runs),
        reps=reps,
        stats_seed=stats_seed,
        code_version=code_version(),
        hardware=hardware(sweep.device),
    )
    if not meta["trained_now"] and (last := _last_training(out / f"{sweep.part}.json")):
        meta["last_training"] = last
    document = {
        "meta": meta,
        "study": definition(sweep),
        "study_folder": portable(out),
        "study_file": portable(sweep.study_file),
        "statistics": {
            "alpha": stats.ALPHA,
            "min_runs": stats.MIN_RUNS,
            "reps": reps,
            "seed": stats_seed,
            "final_evals": stats.FINAL_EVALS,
            "levels": list(stats.LEVELS),
            "auc": AUC_TEXT,
            "normalization": NORMALIZATION[results["normalization"]],
            "interval": "percentile bootstrap: quantile(method='lower') at 0.025 and "
            "quantile(method='higher') at 0.975, fresh default_rng(seed) each",
            "infinity": "steps never reached are written as the string 'inf'",
        },
        "timing": timing,
        "results": results,
    }
    report, text = out / f"{sweep.part}.md", render(sweep, meta, results, timing)
    if not meta["trained_now"] and _unchanged(out / f"{sweep.part}.json", document, report, text):
        print(f"report unchanged: {report} (same runs, same analysis; files kept)")
        return report
    figures(out / sweep.part, results, sweep.steps, reps, stats_seed)
    _write_text(out / f"{sweep.part}.json", json.dumps(jsonable(document), indent=1) + "\n")
    _write_text(report, text)
    print(f"report written: {report}")
    return report


# What only says when and where a report was rebuilt: a rebuild that changes nothing else keeps
# the files as they are, so rebuilding a shipped study leaves the repository clean.
REBUILD_META = ("command", "backend", "workers", "wall_s", "created", "code_version", "hardware")
REBUILD_LINES = ("- Command:", "- Code:", "- Hardware:", "- Wall time of this command:")


def _unchanged(json_path: Path, document: dict[str, Any], md_path: Path, text: str) -> bool:
    raw = document["results"]["normalization"] == "raw"  # raw returns have no steps-to-level figure
    figures = [md_path.with_name(f"{md_path.stem}-{n}.png") for n in FIGURES if not (raw and n == "steps_to_level")]
    if not all(p.exists() for p in (json_path, md_path, *figures)):  # a deleted figure is drawn again
        return False
    old, new = json.loads(json_path.read_text()), json.loads(json.dumps(jsonable(document)))
    for doc in (old, new):
        for key in REBUILD_META:
            doc.get("meta", {}).pop(key, None)
    lines = lambda t: [x for x in t.splitlines() if not x.startswith(REBUILD_LINES)]  # noqa: E731
    return old == new and lines(md_path.read_text()) == lines(text)
