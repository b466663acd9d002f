"""reports/summary.md (+ summary.json, summary.png): the headline study across tasks,
algorithms and sizes, read from the parts' reports (reports/headline/<Env>-<algo>.json, written
by `weit-rl compare`) and the runs' config.yaml. Parts or cells not recorded yet are shown as
"not run yet". Statistics: weit_rl.stats; every cell's verdict is a permutation test, Holm-corrected
over every cell of the page. Also the findings tables between the markers of README.md."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from weit_rl import arms, stats
from weit_rl.agents.config import absent
from weit_rl.compare.report import jsonable
from weit_rl.config import parse_size
from weit_rl.studies import figures
from weit_rl.studies.definition import Study
from weit_rl.studies.figures import role

LEVEL = "0.5"  # steps to 50% of the expert's return
NOT_RUN = "not run yet"
NO_INTERVAL = f"n < {stats.MIN_RUNS}: no interval"
BASELINES = tuple(arms.baselines())  # what the method is compared with, in the registry's order
METHOD = arms.DEFAULT_PRIMARY[0]
# config.yaml fields that differ between runs of one arm by design; any other difference is a mixed recipe.
PER_RUN = ("seed", "size", "net_arch", "run_dir", "device", "progress_bar", "expert", "code_version", "kernels")
INIT_RECIPE = ("fit_steps", "finetune_steps", "calib", "rebalance", "scale_penalty")
TRAINING = ("learner", "warmup_steps", "retention", "retention_steps", "lr_scale")  # listed for every arm
RECIPE = INIT_RECIPE + TRAINING
STAND_IN_WHY = {  # why a part's summary compares with a variant of a baseline (the study file's baselines)
    "scratch": "the strongest scratch its learner pilot found",
    "select": "the stronger of select trained plainly and with retention in the part's own runs",
}


# --- Statistics (pure) -----------------------------------------------------------------


def verdicts(cells: list[dict[str, Any]]) -> None:
    """Each cell's verdict from its permutation p-value, Holm-corrected over every tested cell
    of the page: "better"/"worse" when the corrected test rejects; "suggestive" when only the
    uncorrected one does (read as a lead, not a finding); else "inconclusive". Cells with fewer
    than MIN_RUNS runs in an arm are not tested."""
    tested = [c for c in cells if c["p"] is not None]
    for c, adjusted in zip(tested, stats.holm([c["p"] for c in tested])):
        c["p_holm"] = float(adjusted)
        c["verdict"] = stats.verdict(c["estimate"], c["p_holm"], c["p"])
    for c in cells:
        c.setdefault("p_holm", None)
        c.setdefault("verdict", NO_INTERVAL)


def pooled_iqm(*groups: np.ndarray, axis: int = 0) -> np.ndarray:
    """IQM of the runs of every group (task) together."""
    return stats.iqm(np.concatenate(groups, axis=axis), axis=axis)


def median_steps(values: list) -> dict[str, Any]:
    """Median steps-to-level over runs; censored runs ("inf") sort last, so the median is
    inf when the median run never got there."""
    v = np.array([math.inf if x == "inf" else float(x) for x in values])
    return {"median": float(stats.median(v)), "reached": int(np.isfinite(v).sum()), "n": int(v.size)}


def order_sizes(sizes: list[str]) -> list[str]:
    """By the hidden layers' parameter count (weights and biases)."""
    count = lambda w: sum(a * b for a, b in zip(w, w[1:])) + sum(w)  # noqa: E731
    return sorted(sizes, key=lambda s: count(parse_size(s)))


def size_label(size: str) -> str:
    return f"{size} ({'x'.join(map(str, parse_size(size)))})"


# --- Reading the study -----------------------------------------------------------------


def recipes(env_dir: Path, algo: str) -> dict[str, dict[str, list]]:
    """arm -> config.yaml field -> its distinct values over the arm's runs, for the recipe
    fields and any field that differs between runs (a default changed mid-study)."""
    seen: dict[str, dict[str, set]] = {}
    for path in sorted(env_dir.glob(f"{algo}-*/config.yaml")):
        m = re.fullmatch(rf"{algo}-.+-([a-z0-9_]+)-s\d+", path.parent.name)
        if m is None:  # not a run folder (a .tmp left by an interrupted copy)
            continue
        cfg = yaml.safe_load(path.read_text()) or {}
        for key in {*cfg, *RECIPE} - set(PER_RUN):
            value = cfg.get(key, absent(key))
            seen.setdefault(m[1], {}).setdefault(key, set()).add(json.dumps(value, sort_keys=True))
    out = {}
    for arm, fields in seen.items():
        keys = [k for k in fields if len(fields[k]) > 1 or k in TRAINING or (k in INIT_RECIPE and arms.reads_bank(arm))]
        out[arm] = {k: [json.loads(v) for v in sorted(fields[k])] for k in sorted(keys, key=_recipe_first)}
    return out


def _recipe_first(key: str) -> tuple[int, str]:
    return (RECIPE.index(key), "") if key in RECIPE else (len(RECIPE), key)


def scratch_first(names: list[str]) -> list[str]:
    return sorted(names, key=lambda a: a != arms.DEFAULT_PRIMARY[1])  # stable: the rest keep their order


def collect(study_dir: Path, expected: dict[tuple[str, str], dict]) -> dict[str, Any]:
    """Every number of the page, from the parts' JSON reports."""
    parts: dict[str, Any] = {}
    pooled: dict[tuple[str, str, str], dict[str, Any]] = {}
    for (env, algo), want in expected.items():
        stand_ins = want.get("baselines", {})
        path = study_dir / f"{env}-{algo}.json"
        data = json.loads(path.read_text()) if path.exists() else None
        sizes, arms = order_sizes(want["sizes"]), want["arms"]
        part: dict[str, Any] = {
            "task": env,
            "algo": algo,
            "report": None,
            "sizes": sizes,
            "arms": scratch_first([r for a in arms if (r := role(a, stand_ins))]),
            "expected_runs": want["seeds"],
            "baselines": stand_ins,
            "planned": {
                size: scratch_first([r for a in want.get("planned", {}).get(size, arms) if (r := role(a, stand_ins))])
                for size in sizes
            },
            "runs": {},
            "comparisons": {},
            "steps_to_50": {},
            "primary": None,
            "budget": None,
            "recipes": {},
        }
        parts[f"{env}-{algo}"] = part
        if data is None:
            continue
        reps, seed = data["statistics"]["reps"], data["statistics"]["seed"]
        cells = data["results"]["sizes"]
        part.update(
            report=f"{study_dir.name}/{path.stem}.md",
            budget=data["study"]["steps"],
            recipes=recipes(study_dir / "runs" / env, algo),
        )
        part["primary"] = next((c for c in data["results"]["comparisons"] if c["role"] == "primary"), None)
        for size in sizes:
            by_arm = {r: v for a, v in cells.get(size, {}).items() if (r := role(a, stand_ins))}
            part["runs"][size] = {a: len(by_arm[a]["auc"]) for a in part["arms"] if a in by_arm}
            part["steps_to_50"][size] = {
                a: median_steps(by_arm[a]["steps"][LEVEL])
                for a in part["arms"]
                if LEVEL in by_arm.get(a, {}).get("steps", {})
            }  # none on raw returns
            part["comparisons"][size] = {}
            for base in BASELINES:
                if METHOD in by_arm and base in by_arm:
                    x, y = np.array(by_arm[METHOD]["auc"]), np.array(by_arm[base]["auc"])
                    ci = stats.interval([x, y], stats.difference_of_means, seed, reps)
                    test = min(x.size, y.size) >= stats.MIN_RUNS
                    p = stats.permutation_test(x, y, np.random.default_rng(seed), reps) if test else None
                    part["comparisons"][size][base] = dict(ci, p=p, n=[int(x.size), int(y.size)], reps=reps)
            for arm in part["arms"]:
                if arm in by_arm:
                    pooled.setdefault((algo, size, arm), {"reps": reps, "seed": seed, "tasks": {}})
                    pooled[(algo, size, arm)]["tasks"][env] = by_arm[arm]["auc"]
    verdicts([c for part in parts.values() for by_base in part["comparisons"].values() for c in by_base.values()])
    iqm: dict[str, dict[str, dict[str, Any]]] = {}
    for (algo, size, arm), pool in pooled.items():
        tasks = dict(sorted(pool["tasks"].items()))  # the order of the strata fixes the draws
        ci = stats.interval(list(tasks.values()), pooled_iqm, pool["seed"], pool["reps"])
        iqm.setdefault(algo, {}).setdefault(size, {})[arm] = dict(ci, runs={t: len(v) for t, v in tasks.items()})
    return {"study": study_dir.name, "parts": parts, "iqm": iqm}


# --- The page --------------------------------------------------------------------------


def fmt(ci: dict[str, Any], sign: str = "") -> str:
    est = f"{ci['estimate']:{sign}.3f}"
    return est if ci["low"] is None else f"{est} [{ci['low']:{sign}.3f}, {ci['high']:{sign}.3f}]"


def resolution(parts: dict[str, Any]) -> str:
    """What the table's tests can resolve at all: the smallest p each run count allows against
    Holm's first threshold over the tested cells."""
    tested = [c for p in parts.values() for by in p["comparisons"].values() for c in by.values() if c["p"] is not None]
    if not tested:
        return "No cell has enough runs for a test yet."
    floors = {tuple(c["n"]): stats.smallest_p(c["n"][0], c["n"][1], reps=c["reps"]) for c in tested}
    first = stats.ALPHA / len(tested)
    text = "; ".join(f"{a} vs {b} runs: {p:.4f}" for (a, b), p in sorted(floors.items()))
    short = [f"{a} vs {b}" for (a, b), p in sorted(floors.items()) if p > first]
    return (
        f"Resolution: the smallest p a permutation test can return ({text}). Over the {len(tested)} tested cells "
        f"Holm's first threshold is 0.05 / {len(tested)} = {first:.4f}"
        + (
            f', so a cell with {" or ".join(short)} runs can at most be "suggestive", however far apart its arms are: '
            "more seeds, not a larger effect, would decide it."
            if short
            else "."
        )
    )


def cell_verdict(c: dict[str, Any]) -> str:
    if c["p"] is None:
        return f"({NO_INTERVAL})"
    return f"{c['verdict']} (p = {c['p']:.3f}, Holm {c['p_holm']:.3f})"


def steps_text(s: dict[str, Any]) -> str:
    reached = f"{s['reached']}/{s['n']} reached"
    return f"censored ({reached})" if math.isinf(s["median"]) else f"{s['median']:,.0f} ({reached})"


def primary_line(part: dict[str, Any]) -> str:
    c, head = part["primary"], f"- {part['task']} {part['algo'].upper()}: "
    if c is None:
        return head + f"{NOT_RUN} (weit and scratch at the declared size)"
    what = f"{c['method']} vs {c['baseline']} at size {c['size']}, mean AUC difference {fmt(c['difference'], '+')}"
    if not c["tested"]:
        return head + f"{what}: not tested ({c['n'][0]} and {c['n'][1]} runs, fewer than {stats.MIN_RUNS})"
    return head + f"{what}, permutation p = {c['p']:.4f}: **{c['verdict']}** ({c['n'][0]} and {c['n'][1]} runs)"


def render(s: dict[str, Any], notes: Sequence[str] = ()) -> str:
    parts = s["parts"]
    every_arm = arms.in_order([a for p in parts.values() for a in p["arms"]])
    lines = [
        "# Headline: weit across tasks, algorithms and policy sizes",
        "",
        f"Study `reports/{s['study']}/` (definition `configs/studies/{s['study']}.yaml`, run by `weit-rl study "
        f"{s['study']}`; this page: `weit-rl study {s['study']} --summary-only`). Each task and algorithm "
        "is one part with its own report (linked below), raw runs in "
        f"`{s['study']}/runs/<Env>/`. Score: normalized return (R - random) / (expert - random); **AUC**: the "
        "normalized learning curve integrated as a step function over the budget, divided by the budget. "
        f'Cells fill as the sweeps land; "{NOT_RUN}" marks a part or cell with no recorded run. '
        "`python bench/check_summary.py` recomputes every number of this page from the raw runs with "
        "numpy alone, from the rules stated here and in the parts' reports.",
        "",
        "## Primary comparison (declared before the runs)",
        "",
        "weit vs scratch, mean AUC, at the size each part declared when it started (small in "
        "the study file), one test per task: two-sided permutation test at 0.05, as the part's report "
        "states it.",
        "",
    ]
    lines += [primary_line(p) for p in parts.values()]
    lines += ["", "## Read with", "", *[f"- {note}" for note in notes]] if notes else []
    lines += [
        "",
        "## weit vs each baseline, per task, algorithm and size",
        "",
        "Difference of mean AUC (weit minus baseline) with a 95% percentile-bootstrap interval over runs (each "
        "arm resampled on its own), shown as an effect size: it is not corrected for multiplicity, and with 5 "
        "runs per arm such an interval covers the true difference in about 88% of studies, not 95% (simulated). "
        "The verdict is a two-sided permutation test per cell, **Holm-corrected over every cell of this table**: "
        '"better"/"worse" when the corrected test rejects at 0.05; "suggestive" when only the uncorrected test '
        'does (a lead for a follow-up, not a finding); else "inconclusive" (no decision, not a tie). Only the '
        f"primary comparison above is a pre-declared test. With fewer than {stats.MIN_RUNS} runs in either arm: "
        f'"{NO_INTERVAL}" (the estimate only). Runs: recorded / planned per arm.',
        "",
        "| task | algo | size | runs | " + " | ".join(f"vs {b}" for b in BASELINES) + " |",
        "|---|---|---|---|" + "---|" * len(BASELINES),
    ]
    for part in parts.values():
        for size in part["sizes"]:
            runs = part["runs"].get(size, {})
            planned = part["planned"][size]
            count = ", ".join(f"{a} {runs.get(a, 0)}" for a in planned) + f" / {part['expected_runs'][size]}"
            row = [part["task"], part["algo"].upper(), size_label(size), count]
            for base in BASELINES:
                c = part["comparisons"].get(size, {}).get(base)
                row.append("-" if base not in planned else NOT_RUN if c is None else f"{fmt(c, '+')} {cell_verdict(c)}")
            lines.append("| " + " | ".join(row) + " |")
    lines += [
        f"- {p['task']} {p['algo'].upper()}: {base} is the arm `{arm}`, {STAND_IN_WHY[base]}; the arm named {base} "
        "there is shown in the part's report only."
        for p in parts.values()
        for base, arm in p["baselines"].items()
        if arm != base
    ]
    lines += ["", resolution(parts)]
    lines += [
        "",
        "## IQM across tasks",
        "",
        "Interquartile mean of the per-run normalized AUC, the runs of every task pooled, with a 95% "
        "percentile-bootstrap CI stratified by task (runs resampled within each task, the tasks drawn in "
        "alphabetical order); no interval when a "
        f"task has fewer than {stats.MIN_RUNS} runs.",
        "",
        "| algo | size | arm | IQM across tasks [95% CI] | runs per task |",
        "|---|---|---|---|---|",
    ]
    for algo in dict.fromkeys(p["algo"] for p in parts.values()):
        mine = [p for p in parts.values() if p["algo"] == algo]
        for size in order_sizes(list(dict.fromkeys(z for p in mine for z in p["sizes"]))):
            for arm in dict.fromkeys(a for p in mine for a in p["planned"].get(size, [])):
                v = s["iqm"].get(algo, {}).get(size, {}).get(arm)
                runs = ", ".join(f"{t} {n}" for t, n in v["runs"].items()) if v else "-"
                lines.append(f"| {algo.upper()} | {size_label(size)} | {arm} | {fmt(v) if v else NOT_RUN} | {runs} |")
    lines += [
        "",
        "## Sample efficiency against policy size",
        "",
        f"Per part (rows): the normalized return at {figures.BUDGETS[0]:,} and {figures.BUDGETS[1]:,} steps and at "
        f"the budget (IQM over runs), and the steps to {figures.LEVEL:.0%} of the expert's return (median run; a "
        "run that never gets there counts as +inf, and a median that is +inf is an open triangle on the budget "
        f"line), against the policy's hidden-layer parameters (log scale). Bands: 95% percentile bootstrap over "
        f"runs ({figures.REPS:,} resamples).",
        "",
        "![sample efficiency against policy size](summary.png)",
        "",
        "Learning curves of every arm at each size (IQM over runs, 95% bootstrap band): "
        + ", ".join(
            f"[{p['task']} {p['algo'].upper()}](summary-curves-{name}.png)" for name, p in parts.items() if p["report"]
        )
        + ".",
        "",
        "## Steps to 50% of the expert's return",
        "",
        "Median over runs of the first evaluation step at which a run's score reaches 0.5; a run that never "
        'does is censored (+∞), and "censored" means the median run never got there.',
        "",
        "| task | algo | size | " + " | ".join(every_arm) + " |",
        "|---|---|---|" + "---|" * len(every_arm),
    ]
    for part in parts.values():
        for size in part["sizes"]:
            got = part["steps_to_50"].get(size, {})
            planned = part["planned"][size]
            row = ["-" if a not in planned else steps_text(got[a]) if a in got else NOT_RUN for a in every_arm]
            lines.append(f"| {part['task']} | {part['algo'].upper()} | {size_label(size)} | " + " | ".join(row) + " |")
    lines += [
        "",
        "## Parts and recipes",
        "",
        "The recipe of each arm as recorded in its runs' config.yaml (weit and distill run RunConfig's "
        "defaults): the initialization recipe of weit and distill, and every arm's learner (`zoo`: configs/"
        "<algo>.yaml, rl-zoo3's values) and training-time options; **mixed** marks a field whose value differs "
        "between runs of one arm.",
        "",
    ]
    for name, part in parts.items():
        if part["report"] is None:
            lines.append(f"- {name}: {NOT_RUN}")
            continue
        lines.append(f"- {name}: [{part['report']}]({part['report']})")
        for arm, fields in part["recipes"].items():
            text = ", ".join(
                f"{'**mixed** ' if len(v) > 1 else ''}{k}={'|'.join(map(str, v))}" for k, v in fields.items()
            )
            stands_for = next((b for b, a in part["baselines"].items() if a == arm != b), None)
            what = f" (the {stands_for} baseline)" if stands_for else ""
            lines.append(f"  - {arm}{what}: {text or 'the same configuration in every run'}")
    return "\n".join(lines) + "\n"


def figure_parts(study_dir: Path, s: dict[str, Any]) -> list[dict[str, Any]]:
    """The parts with a report, as weit_rl.studies.figures reads them."""
    return [
        {
            "title": f"{p['task']} {p['algo'].upper()}",
            "report": study_dir / f"{name}.json",
            "sizes": p["sizes"],
            "arms": p["arms"],
            "budget": p["budget"],
            "baselines": p["baselines"],
            "name": name,
        }
        for name, p in s["parts"].items()
        if p["report"] is not None
    ]


# --- The README's findings tables ------------------------------------------------------

FINDINGS = (
    "<!-- findings: weit-rl study headline --summary-only writes this table; do not edit -->",
    "<!-- end of findings -->",
)


def findings(study_dir: Path, expected: dict[tuple[str, str], dict], at: Sequence[int] = figures.BUDGETS) -> str:
    """Per algorithm, a Markdown table of the mean normalized score over runs at each step of `at`
    and the final score (stats.FINAL_EVALS), per size and initializer (rows) and task (columns),
    from the parts' JSON reports; arms stand under their role, as on summary.md."""
    blocks = []
    for algo in dict.fromkeys(a for _, a in expected):
        parts = {env: want for (env, a), want in expected.items() if a == algo}
        cells: dict[tuple[str, str | None, str], str] = {}  # a None role stands for nothing (figures.role)
        planned: set[tuple[str, str | None, str]] = set()
        budgets, stand_ins = set(), []
        for env, want in parts.items():
            bases = want.get("baselines", {})
            for size in want["sizes"]:
                planned |= {(size, role(a, bases), env) for a in want.get("planned", {}).get(size, want["arms"])}
            stand_ins += [f"{env} {base} is the arm `{arm}`" for base, arm in bases.items() if arm != base]
            path = study_dir / f"{env}-{algo}.json"
            if not path.exists():
                continue
            data = json.loads(path.read_text())
            budgets.add(data["study"]["steps"])
            grid = np.array(data["results"]["grid"])
            for size, by_arm in data["results"]["sizes"].items():
                for arm, cell in by_arm.items():
                    mean = np.array(cell["curve"]["mean"])
                    scores = [*(mean[np.searchsorted(grid, b, side="right") - 1] for b in at), np.mean(cell["final"])]
                    cells[size, role(arm, bases), env] = " / ".join(f"{v:.2f}" for v in scores)
        sizes = order_sizes(list({size for size, _, _ in planned}))
        budget = " or ".join(f"{b:,}" for b in sorted(budgets))
        lines = [
            f"**{algo.upper()}**"
            + (f", budget {budget} steps" if budgets else f" ({NOT_RUN})")
            + ": mean normalized score over runs "
            + " / ".join(f"at {b:,} steps" for b in at)
            + f" / final (mean of the last {stats.FINAL_EVALS} evaluations at or before the budget)"
            + "".join(f"; {s}" for s in stand_ins)
            + ".",
            "",
            "| size | init | " + " | ".join(parts) + " |",
            "|---|---|" + "---|" * len(parts),
        ]
        for size in sizes:
            for arm in arms.in_order([a for _, a, _ in planned if a]):
                if any((size, arm, env) in planned for env in parts):
                    missing = {env: NOT_RUN if (size, arm, env) in planned else "-" for env in parts}
                    row = [cells.get((size, arm, env), missing[env]) for env in parts]
                    lines.append(f"| {size_label(size)} | {arm} | " + " | ".join(row) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def write_findings(readme: Path, table: str) -> bool:
    """Put `table` between README's findings markers. The file is rewritten only when that text
    changes, so a rebuild of unchanged runs leaves it as it was; no file or no markers: skipped."""
    if not readme.exists():
        return False
    text = readme.read_text()
    head, begin, rest = text.partition(FINDINGS[0])
    _, end, tail = rest.partition(FINDINGS[1])
    if not (begin and end):
        return False
    new = f"{head}{begin}\n\n{table.strip()}\n\n{end}{tail}"
    if new == text:
        return False
    readme.write_text(new)
    return True


def write(study: Study) -> Path:
    """reports/summary.md (.json, .png) of the study, and the findings tables of the README beside
    reports/; returns the Markdown file."""
    page = write_summary(study.folder, study.folder.parent, study.parts(), study.notes)
    write_findings(study.folder.parent.parent / "README.md", findings(study.folder, study.parts()))
    return page


def write_summary(
    study_dir: Path, out_dir: Path, expected: dict[tuple[str, str], dict], notes: Sequence[str] = ()
) -> Path:
    """Write out_dir/summary.md, .json and .png; returns the Markdown file. `notes`: what a reader
    must know that the runs alone do not say (studies made after them)."""
    s = collect(study_dir, expected)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = figure_parts(study_dir, s)
    if parts:
        figures.size_figure(out_dir / "summary.png", parts)
        for part in parts:
            figures.curves_figure(out_dir / f"summary-curves-{part['name']}.png", part)
    (out_dir / "summary.json").write_text(json.dumps(jsonable(s), indent=1) + "\n")
    (out_dir / "summary.md").write_text(render(s, notes))
    return out_dir / "summary.md"
