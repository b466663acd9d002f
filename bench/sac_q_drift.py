"""Diagnostic: how far a SAC actor moves from its initial policy and what its critic thinks of it,
beside what it earns, read from a study's TensorBoard logs (see bench/train_logs.py).

Per arm and window of env steps, mean over the arm's finished runs [min, max]:
- `retention/kl_to_teacher`: the KL from the run's initial policy to the actor on the update
  minibatches, logged only while retention is on (the default recipe's weit and distill);
- minus SB3's `train/actor_loss`: the critic's value of the actor's own actions on replay
  states, less the entropy term (ent_coef * log_prob, a few units at most here);
- the deterministic evaluation return at the window's end (evaluations.csv).
Why: the headline's initialized SAC arms fall as retention's weight runs out (it decays to 0 at
50k steps), and holding the entropy coefficient does not stop it (reports/headline/README.md).

    .venv/bin/python bench/sac_q_drift.py runs/sac-start/Ant --out reports/sac-start/sac-q-drift-Ant.md
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from weit_rl.agents.tb_logs import finished_runs, q_drift

WINDOWS = ((10_000, 20_000), (20_000, 30_000), (30_000, 40_000), (40_000, 50_000), (50_000, 60_000), (90_000, 100_000))


def spread_cell(values: np.ndarray, digits: int) -> str:
    """Mean [min, max] over an arm's runs; - where any run lacks the value."""
    return (
        f"{values.mean():.{digits}f} [{values.min():.{digits}f}, {values.max():.{digits}f}]"
        if np.isfinite(values).all()
        else "-"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, help="a study's run folder for one task, e.g. runs/sac-start/Ant")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    per_arm: dict[str, list[list[float]]] = defaultdict(list)
    for run, size, arm in finished_runs(args.runs, "sac"):
        drift = q_drift(run, WINDOWS)  # the library's per-window KL, -actor_loss and return
        per_arm[f"{size} {arm}"].append(drift["kl_to_teacher"] + drift["-actor_loss"] + drift["return"])
    if not per_arm:
        raise SystemExit(f"no finished SAC run with TensorBoard logs under {args.runs}")
    windows = [f"{lo // 1000}-{hi // 1000}k" for lo, hi in WINDOWS]
    ends = [f"{hi // 1000}k" for _, hi in WINDOWS]
    head = [f"KL {w}" for w in windows] + [f"-actor loss {w}" for w in windows] + [f"return {e}" for e in ends]
    digits = [2] * len(WINDOWS) + [1] * len(WINDOWS) + [0] * len(WINDOWS)
    lines = [
        f"# SAC actor drift, critic values and returns per arm ({args.runs.as_posix()})",
        "",
        f"`python bench/sac_q_drift.py {args.runs.as_posix()} --out {args.out.as_posix()}`: "
        "`retention/kl_to_teacher` (KL from the initial policy, logged while retention is on) and minus "
        "`train/actor_loss` (the critic's value of the actor's actions, less the entropy term) averaged over "
        "each window of env steps, and the evaluation return at each window's end; mean over the arm's "
        "finished runs [min, max]; - where not logged.",
        "",
        "| arm | runs | " + " | ".join(head) + " |",
        "|---|---|" + "---|" * len(head),
    ]
    for arm, rows in sorted(per_arm.items()):
        a = np.array(rows)
        cells = [spread_cell(a[:, j], d) for j, d in enumerate(digits)]
        lines.append(f"| {arm} | {len(rows)} | " + " | ".join(cells) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
