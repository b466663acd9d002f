"""The learner pilot's page, reports/<study>/learners.md: per task, the scratch AUC of each
candidate learner (hyperparameters and observation statistics) and the one chosen, the highest
mean AUC over the planned seeds (docs/protocol.md "Learners"). Read from the parts' reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from weit_rl.studies.definition import Study


def choose(cells: dict[str, dict[str, Any]], arms: list[str], seeds: int) -> str | None:
    """The arm with the highest mean AUC, once every arm has its planned runs (None before)."""
    if any(len(cells.get(a, {}).get("auc", [])) < seeds for a in arms):
        return None
    return max(arms, key=lambda a: sum(cells[a]["auc"]) / len(cells[a]["auc"]))


def published(study: Study, finals: dict[str, float]) -> list[str]:
    """The published trained agents beside the chosen scratch learner's return at the budget."""
    refs = study.references or {}
    if not refs:
        return []
    budget = study.calls[0].options["steps"]
    lines = [
        "",
        f"## Beside the published rl-zoo3 agents ({refs['source']})",
        "",
        "rl-zoo3 publishes one trained agent per task and its final return, no learning curve: there is no "
        f"published return at {budget:,} steps. The reference below is what rl-zoo3's learner reaches after its "
        "whole budget, on the -v3 task, with its own network; ours is the chosen scratch learner's mean return "
        f"over its last 3 evaluations at {budget:,} steps, size small (64x64, the learner's activation), on the "
        "-v5 task.",
        "",
        "| task | rl-zoo3 agent: return (std over episodes) | its steps | its network | our scratch at the budget |",
        "|---|---|---|---|---|",
    ]
    for env, ref in refs.items():
        if env == "source":
            continue
        ours = f"{finals[env]:,.0f}" if env in finals else "not decided yet"
        agent = f"{ref['return']:,.0f} ({ref['std']:,.0f}, {ref['env']})"
        lines.append(f"| {env} | {agent} | {ref['steps']:,} | {ref['net']} | {ours} |")
    return lines


def write(study: Study) -> Path:
    lines = [
        "# Learner pilot: the strongest scratch per task",
        "",
        f"Definition `configs/studies/{study.name}.yaml` (`weit-rl study {study.name}`); each task's report "
        f"`{study.name}/<Env>-ppo.md` has the curves and every pairwise test. Candidates: `zoo` = rl-zoo3's "
        "values (configs/ppo.yaml), `expert` = the task's expert recipe (configs/experts.yaml); `bank` = the "
        "bank's observation statistics adapting once per rollout with the networks' function preserved (the "
        "controlled settings), `fresh` = SB3's own running statistics. The rule, fixed before the runs: the "
        "highest mean scratch AUC over the planned seeds wins. AUC: normalized return integrated over the "
        "budget, divided by it; final: mean of the last 3 evaluations at or before the budget.",
        "",
        "| task | learner | runs | AUC (mean) | per seed | final (mean) | chosen |",
        "|---|---|---|---|---|---|---|",
    ]
    chosen: dict[str, str | None] = {}
    finals: dict[str, float] = {}
    for (env, algo), want in study.parts().items():
        path = study.folder / f"{env}-{algo}.json"
        cells = json.loads(path.read_text())["results"]["sizes"].get(want["sizes"][0], {}) if path.exists() else {}
        seeds = want["seeds"][want["sizes"][0]]
        chosen[env] = choose(cells, want["arms"], seeds)
        if chosen[env] is not None:
            ref = json.loads(path.read_text())["study"]["references"]
            score = cells[chosen[env]]["aggregate"]["final"]["mean"]["estimate"]
            finals[env] = ref["random_return"] + score * (ref["expert_return"] - ref["random_return"])
        for arm in want["arms"]:
            cell = cells.get(arm)
            if cell is None:
                lines.append(f"| {env} | {arm} | 0 / {seeds} | not run yet | | | |")
                continue
            auc = cell["auc"]
            mark = "**yes**" if chosen[env] == arm else ""
            lines.append(
                f"| {env} | {arm} | {len(auc)} / {seeds} | {sum(auc) / len(auc):.3f} | "
                f"{', '.join(f'{a:.3f}' for a in auc)} | "
                f"{cell['aggregate']['final']['mean']['estimate']:.3f} | {mark} |"
            )
    lines += ["", "Chosen learners:", ""]
    lines += [f"- {env}: {arm or 'not decided yet (runs missing)'}" for env, arm in chosen.items()]
    lines += published(study, finals)
    path = study.folder / "learners.md"
    path.write_text("\n".join(lines) + "\n")
    return path
