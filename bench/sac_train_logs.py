"""Diagnostic: SAC's entropy coefficient and critic loss per arm, read from the TensorBoard logs
of a study's runs (their `tb/` folders, which stay on the machine that trained them; the shipped
run folders hold evaluations.csv and config.yaml only).

Why: in the pre-training study's SAC call the arms started from the soft-constrained expert fall
from their start while the arms started from the plain expert hold it; SB3 logs what SAC's own
updates did (train/ent_coef, train/critic_loss), which the evaluations cannot show.

    .venv/bin/python bench/sac_train_logs.py runs/pretraining/HalfCheetah --out reports/pretraining/sac-train-logs.md
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

STEPS = (15_000, 20_000, 30_000, 50_000, 100_000)
RUN = re.compile(r"sac-(?P<size>[^-]+)-(?P<arm>.+)-s(?P<seed>\d+)$")


def scalars(run: Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """One tag over the whole run; a resumed run has several event files, the later one wins."""
    by_step: dict[int, float] = {}
    for events in sorted(run.glob("tb/*/events*"), key=lambda f: f.stat().st_mtime):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            by_step.update({p.step: p.value for p in acc.Scalars(tag)})
    steps = sorted(by_step)
    return np.array(steps), np.array([by_step[s] for s in steps])


def row(run: Path) -> list[float]:
    """ent_coef near each of STEPS, its minimum, and the mean critic loss of the first 5,000
    gradient steps (learning starts at 10k)."""
    steps, coef = scalars(run, "train/ent_coef")
    at = [float(coef[np.argmin(abs(steps - s))]) for s in STEPS]
    loss_steps, loss = scalars(run, "train/critic_loss")
    return [*at, float(coef.min()), float(loss[loss_steps <= 15_000].mean())]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, help="a study's run folder for one task, e.g. runs/pretraining/HalfCheetah")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    per_arm: dict[str, list[list[float]]] = defaultdict(list)
    for run in sorted(args.runs.iterdir()):
        m = RUN.match(run.name)
        if m and any(run.glob("tb/*/events*")) and (run / "model.zip").exists():  # finished runs only
            per_arm[m["arm"]].append(row(run))
    if not per_arm:
        raise SystemExit(f"no finished SAC run with TensorBoard logs under {args.runs}")
    head = " | ".join(f"{s // 1000}k" for s in STEPS)
    lines = [
        f"# SAC training logs per arm ({args.runs.as_posix()})",
        "",
        f"`python bench/sac_train_logs.py {args.runs.as_posix()} --out {args.out.as_posix()}`: SB3's "
        "`train/ent_coef` (the entropy coefficient SAC tunes towards its target entropy, -6 here) at "
        "the logged step nearest each column, its minimum over the run, and the mean `train/critic_loss` "
        "over the first 5,000 gradient steps; mean over the arm's finished runs [min, max].",
        "",
        f"| arm | runs | ent_coef {head} | ent_coef min | critic loss, first 5k updates |",
        "|---|---|" + "---|" * (len(STEPS) + 1) + "---|",
    ]
    for arm, rows in per_arm.items():
        a = np.array(rows)
        cells = [f"{a[:, j].mean():.3f} [{a[:, j].min():.3f}, {a[:, j].max():.3f}]" for j in range(a.shape[1] - 1)]
        lines.append(f"| {arm} | {len(rows)} | " + " | ".join(cells) + f" | {a[:, -1].mean():.1f} |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
