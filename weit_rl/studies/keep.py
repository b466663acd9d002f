"""The keep study's page, reports/keep/summary.md (+ summary.json, the same numbers): per stage
and part, each arm's runs, normalized AUC, final score and how it keeps its start (stats.keep),
and where the part's selection stands by the rule the study file wrote before its runs. Read
from the parts' reports (written by compare), nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from weit_rl import stats
from weit_rl.recipe import starts_fresh
from weit_rl.studies.definition import Study

CURRENT = "sac_auto1"  # today's SAC learner (ent_coef tuned from 1.0, configs/sac.yaml)
MARGIN = 0.01  # a pilot winner must beat today's learner by this much mean normalized AUC
KEEP = 0.9  # the development rule's least keep ratio

# Each stage's rule, as the study file's description writes it.
RULES = {
    "keep/pilot": "the candidate with the highest mean of normalized AUC over its runs (scratch), unless it is "
    f"less than {MARGIN} above {CURRENT}'s (today's learner), which is then kept",
    "keep/dev": f"among the arms whose keep ratio is at least {KEEP}, the highest mean final score (then the "
    f"highest mean of normalized AUC); if none reaches {KEEP}, the highest keep ratio. Applied to every arm of "
    "the part, the default recipe included",
}


def pilot_rule(arms: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The learner: the highest mean AUC; a difference under MARGIN keeps today's learner."""
    best = max(arms, key=lambda a: arms[a]["auc"])
    top, now = arms[best]["auc"], arms[CURRENT]["auc"]
    if best == CURRENT:
        return best, f"the highest mean of normalized AUC ({top:.3f})"
    said = f"{best}'s mean of normalized AUC ({top:.3f}) is the highest, {top - now:.3f} above {CURRENT}'s ({now:.3f})"
    return (CURRENT, f"{said}, under {MARGIN}: today's learner is kept") if top - now < MARGIN else (best, said)


def dev_rule(arms: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The recipe: of the arms that keep (ratio >= KEEP), the highest mean final, then AUC."""
    kept = [a for a in arms if arms[a]["keep"]["keep_ratio"] >= KEEP]
    if not kept:
        best = max(arms, key=lambda a: arms[a]["keep"]["keep_ratio"])
        return (
            best,
            f"no arm's keep ratio reaches {KEEP}; the highest keep ratio ({arms[best]['keep']['keep_ratio']:.3f})",
        )
    best = max(kept, key=lambda a: (arms[a]["final"], arms[a]["auc"]))
    return best, (
        f"keep ratio at least {KEEP}: {', '.join(kept)}; of these, the highest mean final score "
        f"({arms[best]['final']:.3f}, mean of normalized AUC {arms[best]['auc']:.3f})"
    )


CHOOSE = {"keep/pilot": pilot_rule, "keep/dev": dev_rule}


def stage_kind(folder: str) -> str:
    """A stage's later rounds (keep/dev2, keep/dev3) follow its rule (keep/dev)."""
    return folder.rstrip("0123456789")


def planned(study: Study) -> dict[str, dict[str, dict[str, Any]]]:
    """stage folder -> part ("<Env>-<algo>") -> its size and arms, each with its planned runs and
    initializer, in the study file's order."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for call in study.calls:
        part = out.setdefault(call.options["study"], {}).setdefault(
            f"{call.env}-{call.options['algo']}", {"size": call.options["sizes"][0], "arms": {}}
        )
        for arm, over in call.arms.items():
            part["arms"][arm] = {"planned": call.options["seeds"], "init": over.get("init", arm)}
    return out


def measure(grid: list[float], cell: dict[str, Any], init: str) -> dict[str, Any]:
    """One arm's numbers from its cell of a part's report; stats.keep on its per-run normalized
    curves for an initialized arm (a scratch start is ~0: no ratio to read)."""
    auc, final = cell["aggregate"]["auc"]["mean"], cell["aggregate"]["final"]["mean"]
    return {
        "runs": len(cell["auc"]),
        "auc": auc["estimate"],
        "auc_low": auc["low"],
        "auc_high": auc["high"],
        "final": final["estimate"],
        "keep": None if starts_fresh(init) else stats.keep(np.asarray(grid), np.asarray(cell["curve"]["runs"])),
    }


def collect(study: Study, reports: Path) -> dict[str, Any]:
    """Every number of the page: per stage, each recorded part's arms and selection, and the
    planned parts with no runs yet."""
    out: dict[str, Any] = {}
    for folder, parts in planned(study).items():
        stage: dict[str, Any] = {"parts": {}, "no_runs_yet": []}
        for name, part in parts.items():
            path = reports / folder / f"{name}.json"
            if not path.exists():
                stage["no_runs_yet"].append(name)
                continue
            results = json.loads(path.read_text())["results"]
            cells = results["sizes"].get(part["size"], {})
            arms = {
                arm: {"planned": want["planned"], **measure(results["grid"], cells[arm], want["init"])}
                if arm in cells
                else {"planned": want["planned"], "runs": 0}
                for arm, want in part["arms"].items()
            }
            done = sum(min(a["runs"], a["planned"]) for a in arms.values())
            total = sum(a["planned"] for a in arms.values())
            selection: dict[str, Any] = {"recorded": done, "planned": total, "arm": None, "why": None}
            if done == total and stage_kind(folder) in CHOOSE:
                selection["arm"], selection["why"] = CHOOSE[stage_kind(folder)](arms)
            stage["parts"][name] = {"size": part["size"], "arms": arms, "selection": selection}
        out[folder] = stage
    return out


def fmt_auc(a: dict[str, Any]) -> str:
    if a["auc_low"] is None:
        return f"{a['auc']:.3f} (n<5)"
    return f"{a['auc']:.3f} [{a['auc_low']:.3f}, {a['auc_high']:.3f}]"


def row(arm: str, a: dict[str, Any]) -> str:
    if a["runs"] == 0:
        return f"| {arm} | 0 / {a['planned']} | not run yet | | | | | |"
    k = a["keep"]
    kept = (
        ["-"] * 4
        if k is None
        else [
            f"{k['start']:.3f}",
            f"{k['lowest']:.3f} ({k['lowest_step']:,.0f})",
            f"{k['keep_ratio']:.3f}",
            f"{k['keep_ratio_per_run']:.3f}",
        ]
    )
    return f"| {arm} | {a['runs']} / {a['planned']} | {fmt_auc(a)} | {a['final']:.3f} | " + " | ".join(kept) + " |"


def page(study: Study, data: dict[str, Any]) -> str:
    lines = [
        "# Keep and grow: where the study stands",
        "",
        f"Written by `weit-rl study {study.name} --summary-only` from the parts' reports "
        "(`reports/keep/<stage>/<Env>-<algo>.json`); never edited by hand. Definition and rules: "
        f"`configs/studies/{study.name}.yaml`.",
        "",
        "AUC: the mean over runs of each run's normalized AUC (normalized return integrated over the budget, "
        "divided by it), with its 95% percentile-bootstrap interval over runs where the report has one (none "
        "under 5 runs: n<5). Final: the mean over runs of each run's final score (mean of its last 3 normalized "
        "evaluations). Start: the mean normalized step-0 score; lowest (step): the lowest point after step 0 of "
        "the mean normalized curve (mean over runs at each evaluation), and its step; keep ratio: lowest / "
        "start; per-run keep ratio: the mean over runs of each run's lowest point after step 0 over its own "
        "start (reported, never selected on). Scratch arms start near 0: no keep numbers (-).",
        "",
    ]
    for folder, stage in data.items():
        lines += [
            f"## {folder}",
            "",
            f"Selection rule: {RULES.get(stage_kind(folder), 'none written for this stage')}.",
            "",
        ]
        for name, part in stage["parts"].items():
            lines += [
                f"### {name} (size {part['size']})",
                "",
                "| arm | runs / planned | AUC (mean) | final (mean) | start | lowest (step) | keep ratio "
                "| per-run keep ratio |",
                "|---|---|---|---|---|---|---|---|",
                *(row(arm, a) for arm, a in part["arms"].items()),
                "",
            ]
            s = part["selection"]
            if s["recorded"] < s["planned"]:
                lines.append(f"Selection waits: {s['recorded']} of {s['planned']} runs recorded.")
            elif s["arm"] is None:
                lines.append("All runs recorded; no selection rule for this stage.")
            else:
                lines.append(f"Selected by the rule: **{s['arm']}**: {s['why']}.")
            lines.append("")
        if stage["no_runs_yet"]:
            lines += [f"Planned parts with no runs yet: {', '.join(stage['no_runs_yet'])}.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def rewrite(path: Path, text: str) -> None:
    """Write only a change, so a rebuild of unchanged runs leaves the file byte for byte."""
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def write(study: Study, reports: Path = Path("reports")) -> Path:
    """Write reports/<study>/summary.md and summary.json; returns the page's path."""
    data = collect(study, reports)
    out = reports / study.name
    rewrite(out / "summary.json", json.dumps(data, indent=1) + "\n")
    rewrite(out / "summary.md", page(study, data))
    return out / "summary.md"
