"""Diagnostic: what SB3's own updates did per arm, read from the TensorBoard logs of a study's
runs (their `tb/` folders, which stay on the machine that trained them; the shipped run folders
hold evaluations.csv and config.yaml only).

- SAC: the entropy coefficient near fixed steps and its minimum, the policy's entropy (recovered
  from the coefficient's loss) near the same steps and its minimum, and the critic loss of the
  first 5,000 gradient steps. Why: in the pre-training study's SAC call the arms started from the
  soft-constrained expert fall from their start while the arms started from the plain expert
  hold it (reports/pretraining/sac-train-logs.md); in the headline's Walker2d SAC part both
  initialized arms fall a second time, between 45k and 70k steps
  (reports/headline/sac-train-logs-Walker2d.md).
- PPO: the size of each update (approx_kl, clip_fraction) and the value fit (explained
  variance), averaged over windows of env steps. Why: in the headline, select trained plainly on
  HalfCheetah stays near zero for 40k steps while scratch on SB3's own statistics climbs from 10k
  (reports/headline/ppo-train-logs-HalfCheetah.md).

    .venv/bin/python bench/train_logs.py runs/pretraining/HalfCheetah --algo sac \\
        --out reports/pretraining/sac-train-logs.md
    .venv/bin/python bench/train_logs.py runs/headline/HalfCheetah --algo ppo --size small \\
        --out reports/headline/ppo-train-logs-HalfCheetah.md
    .venv/bin/python bench/train_logs.py runs/headline/Walker2d --algo sac --size small \\
        --out reports/headline/sac-train-logs-Walker2d.md
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from weit_rl.agents.tb_logs import finished_runs, sac_entropy, scalars, target_entropy, window_means

SAC_STEPS = (15_000, 20_000, 30_000, 50_000, 100_000)
PPO_WINDOWS = ((0, 40_000), (40_000, 100_000), (100_000, 200_000))  # (after, up to] in env steps
PPO_TAGS = ("approx_kl", "clip_fraction", "explained_variance")


def spread_cell(values: np.ndarray, digits: int) -> str:
    """Mean [min, max] over an arm's runs; - where any run lacks the value."""
    if not np.isfinite(values).all():
        return "-"
    return f"{values.mean():.{digits}f} [{values.min():.{digits}f}, {values.max():.{digits}f}]"


def sac_row(run: Path) -> list[float]:
    """ent_coef near each of SAC_STEPS and its minimum; the policy's entropy near the same steps
    and its minimum from 15k on; the mean critic loss of the first 5,000 gradient steps (learning
    starts at 10k). The entropy is recovered from the coefficient's loss by the library
    (weit_rl.agents.tb_logs.sac_entropy); nan where the coefficient is fixed."""
    steps, coef, entropy = sac_entropy(run)
    near = [int(np.argmin(abs(steps - s))) for s in SAC_STEPS]
    loss_steps, loss = scalars(run, "train/critic_loss")
    return [
        *coef[near],
        coef.min(),
        *entropy[near],
        entropy[steps >= 15_000].min(),
        loss[loss_steps <= 15_000].mean(),
    ]


def ppo_row(run: Path) -> list[float]:
    """Each of PPO_TAGS averaged over the updates logged in each of PPO_WINDOWS."""
    return [mean for tag in PPO_TAGS for mean in window_means(run, f"train/{tag}", PPO_WINDOWS)]


def sac_table(per_arm: dict[str, list[list[float]]], command: str, target: float) -> list[str]:
    steps = [f"{s // 1000}k" for s in SAC_STEPS]
    head = [f"ent_coef {s}" for s in steps] + ["ent_coef min"] + [f"entropy {s}" for s in steps] + ["entropy min"]
    lines = [
        f"`{command}`: SB3's `train/ent_coef` (the entropy coefficient SAC tunes so that the policy's "
        f"entropy meets its target, {target:g} here) at the logged step nearest each column and its minimum "
        "over the run; the policy's entropy at the same steps and its minimum from 15k on (recovered from "
        "`train/ent_coef_loss`, see weit_rl/agents/tb_logs.py; - where the coefficient is fixed, as SB3 then logs "
        "no loss); "
        "the mean `train/critic_loss` over the first 5,000 gradient steps; mean over the arm's finished runs "
        "[min, max].",
        "",
        "| arm | runs | " + " | ".join(head) + " | critic loss, first 5k updates |",
        "|---|---|" + "---|" * (len(head) + 1),
    ]
    digits = [3] * (len(SAC_STEPS) + 1) + [1] * (len(SAC_STEPS) + 1)  # coefficients, then entropies
    for arm, rows in per_arm.items():
        a = np.array(rows)
        cells = [spread_cell(a[:, j], d) for j, d in enumerate(digits)]
        lines.append(f"| {arm} | {len(rows)} | " + " | ".join(cells) + f" | {a[:, -1].mean():.1f} |")
    return lines


def ppo_table(per_arm: dict[str, list[list[float]]], command: str) -> list[str]:
    windows = [f"{lo // 1000}-{hi // 1000}k" for lo, hi in PPO_WINDOWS]
    lines = [
        f"`{command}`: SB3's `train/approx_kl` (how far each update moved the policy), "
        "`train/clip_fraction` and `train/explained_variance` (the value function's fit), averaged over "
        "the updates logged in each window of env steps; mean over the arm's finished runs [min, max].",
        "",
        "| arm | runs | " + " | ".join(f"{tag} {w}" for tag in PPO_TAGS for w in windows) + " |",
        "|---|---|" + "---|" * (len(PPO_TAGS) * len(windows)),
    ]
    for arm, rows in per_arm.items():
        a = np.array(rows)
        cells = [f"{a[:, j].mean():.4f} [{a[:, j].min():.4f}, {a[:, j].max():.4f}]" for j in range(a.shape[1])]
        lines.append(f"| {arm} | {len(rows)} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, help="a study's run folder for one task, e.g. runs/pretraining/HalfCheetah")
    p.add_argument("--algo", choices=("ppo", "sac"), required=True)
    p.add_argument("--size", default=None, help="only the runs of this size (default: every size)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    row = sac_row if args.algo == "sac" else ppo_row
    per_cell: dict[tuple[str, str], list[list[float]]] = defaultdict(list)
    for run, size, arm in finished_runs(args.runs, args.algo):
        if args.size in (None, size):
            per_cell[size, arm].append(row(run))
            last = run
    one_size = len({size for size, _ in per_cell}) == 1
    per_arm = {(arm if one_size else f"{size} {arm}"): rows for (size, arm), rows in per_cell.items()}
    if not per_arm:
        raise SystemExit(f"no finished {args.algo.upper()} run with TensorBoard logs under {args.runs}")
    size = f" --size {args.size}" if args.size else ""
    command = f"python bench/train_logs.py {args.runs.as_posix()} --algo {args.algo}{size} --out {args.out.as_posix()}"
    where = args.runs.as_posix() + (f", size {args.size}" if args.size else "")
    table = sac_table(per_arm, command, target_entropy(last)) if args.algo == "sac" else ppo_table(per_arm, command)
    lines = [f"# {args.algo.upper()} training logs per arm ({where})", "", *table]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
