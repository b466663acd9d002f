"""Step-0 return against the distillation budget: does the templates' head start over a random
init survive more optimizer steps? For each total budget B of Adam steps on the bank's
calibration set (batch 256, lr 1e-3), at one size:

- `weit`: 300 steps fitting the scalers, then B - 300 steps training every assembled weight;
- `weit_scalers`: B - 300 scaler steps, then 300 full-weight steps (the split the other way);
- `distill`: B steps training a randomly initialized network (SB3's init) on the same data.

Writes reports/distill_budget.md (+ .json); --report-only rewrites the .md from the .json.

    .venv/bin/python bench/distill_budget.py --env HalfCheetah --size small --workers 2
    .venv/bin/python bench/distill_budget.py --env Walker2d --algo sac --out reports/distill_budget-Walker2d-sac
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from concurrent.futures import as_completed
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from weit_rl.agents import RunConfig, prepare
from weit_rl.agents.config import RECIPES
from weit_rl.agents.evaluation import initial_return
from weit_rl.artifacts.bank import load_bank
from weit_rl.artifacts.experts import bank_path, expert_dir
from weit_rl.compare.runners import spawn_pool
from weit_rl.envs import resolve_task, short_name
from weit_rl.numerics import pin_kernels

SCALER_STEPS = RunConfig.fit_steps  # the default recipe's scaler fit, and the full-weight steps of weit_scalers
ARMS = {  # name -> (init, fit_steps, finetune_steps) for budget b; distill trains fit + finetune steps
    "weit": lambda b: ("weit", SCALER_STEPS, b - SCALER_STEPS),
    "weit_scalers": lambda b: ("weit", b - SCALER_STEPS, SCALER_STEPS),
    "distill": lambda b: ("distill", b, 0),
}


def one(env_id: str, algo: str, size: str, calib: int | None, arm: str, budget: int, seed: int, episodes: int) -> float:
    torch.set_num_threads(1)
    init, fit, finetune = ARMS[arm](budget)
    cfg = RunConfig(
        env=env_id,
        algo=algo,
        size=size,
        init=init,
        seed=seed,
        device="cpu",
        calib=calib,
        eval_episodes=episodes,
        fit_steps=fit,
        finetune_steps=finetune,
        bank=str(bank_path(env_id, algo)),
        expert=str(expert_dir(env_id, algo)),
        progress_bar=False,
    )
    return float(np.mean(initial_return(prepare(cfg))[0]))


def calib_size(text: str) -> int | None:
    return None if text == "all" else int(text)


def markdown(res: dict) -> str:
    default = {name: SCALER_STEPS + RECIPES[name]["finetune_steps"] for name in ("default", "ft300")}
    lines = [
        f"# Step-0 return against the distillation budget ({res['env']}, {res.get('algo', 'ppo').upper()}, "
        f"size {res['size']})",
        "",
        __doc__.split("Writes")[0].strip(),
        "",
        f"The default recipe is B = {default['default']:,} (agents/config.py RECIPES); before this study it "
        f"was B = {default['ft300']:,} (recipe ft300).",
        "",
        f"Mean ± std over {res['seeds']} seeds of the mean of {res['episodes']} deterministic episodes "
        f"(evaluation seeds seed + 10000, as a run's); expert {res['expert']:.0f}. "
        f"Command: `{res['command']}`; wall time "
        f"{res['wall_s'] / 60:.1f} min.",
    ]
    for calib, by_budget in res["returns"].items():
        n = res["bank_calib"] if calib == "all" else int(calib)
        lines += [
            "",
            f"## Calibration set: the first {n:,} of the bank's {res['bank_calib']:,} transitions",
            "",
            "| budget (Adam steps) | " + " | ".join(ARMS) + " | weit - distill |",
            "|---|" + "---|" * (len(ARMS) + 1),
        ]
        for b, by_arm in by_budget.items():
            cells = {arm: np.array(by_arm[arm]) for arm in ARMS}
            diff = cells["weit"].mean() - cells["distill"].mean()
            lines.append(
                f"| {int(b):,} | "
                + " | ".join(f"{v.mean():.0f} ± {v.std():.0f}" for v in cells.values())
                + f" | {diff:+.0f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    pin_kernels()  # before torch's first operation: the kernels `weit-rl` runs with (weit_rl/numerics.py)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="HalfCheetah")
    p.add_argument("--algo", default="ppo", help="ppo or sac: the bank and expert of this algorithm")
    p.add_argument("--size", default="small")
    p.add_argument("--budgets", default="600,1300,2600,5000")
    p.add_argument("--calibs", default="all", help="calibration set sizes, comma-separated (all: the bank's set)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default="reports/distill_budget")
    p.add_argument("--report-only", action="store_true", help="rewrite the .md from the .json")
    a = p.parse_args()
    out = Path(a.out)
    if a.report_only:
        out.with_suffix(".md").write_text(markdown(json.loads(out.with_suffix(".json").read_text())))
        return
    env_id = resolve_task(a.env)
    budgets = [int(b) for b in a.budgets.split(",")]
    if min(budgets) <= SCALER_STEPS:
        sys.exit(f"every budget must exceed the {SCALER_STEPS} scaler steps, got {min(budgets)}")
    start = time.time()
    calibs = a.calibs.split(",")
    jobs = [(c, b, arm, s) for c in calibs for b in budgets for arm in ARMS for s in range(a.seeds)]
    with spawn_pool(a.workers) as pool:
        futures = {
            pool.submit(one, env_id, a.algo, a.size, calib_size(c), arm, b, s, a.episodes): (c, b, arm, s)
            for c, b, arm, s in jobs
        }
        returns: dict = {c: {str(b): {arm: [0.0] * a.seeds for arm in ARMS} for b in budgets} for c in calibs}
        for f in tqdm(as_completed(futures), total=len(futures), desc="initializations"):
            c, b, arm, s = futures[f]
            returns[c][str(b)][arm][s] = f.result()  # listed by seed
    manifest = load_bank(bank_path(env_id, a.algo)).manifest
    res = {
        "command": "python " + shlex.join(sys.argv),
        "wall_s": round(time.time() - start, 1),
        "env": short_name(env_id),
        "algo": a.algo,
        "size": a.size,
        "seeds": a.seeds,
        "episodes": a.episodes,
        "expert": manifest["expert"]["eval_return_mean"],
        "bank_calib": manifest["calib"],
        "returns": returns,
    }
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    out.with_suffix(".md").write_text(markdown(res))
    print(f"wrote {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
