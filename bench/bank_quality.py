"""Zero-shot quality of the shipped banks: the return of each initialized policy at
step 0 (before any RL), for several sizes, initializers, calibration budgets and
fitting seeds, next to the expert and scratch. Writes reports/banks.md (and .json). Each
task's table is kept in reports/banks.partial/ as it finishes, so an interrupted run resumes
(with the same settings and banks) and recomputes only the tasks it lacks.

    .venv/bin/python bench/bank_quality.py --envs HalfCheetah,Hopper,Walker2d,Ant --algos ppo,sac
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import time
from concurrent.futures import as_completed
from pathlib import Path

import numpy as np
import torch

from weit_rl.agents import RunConfig, prepare
from weit_rl.agents.config import RECIPES
from weit_rl.agents.evaluation import initial_return
from weit_rl.artifacts.bank import load_bank
from weit_rl.artifacts.experts import bank_path, expert_dir
from weit_rl.compare.runners import spawn_pool
from weit_rl.envs import resolve_task, short_name
from weit_rl.numerics import pin_kernels
from weit_rl.policies.init import INITIALIZERS, select_fits
from weit_rl.templates.kron import KronMLP

SIZES = ["tiny", "small", "medium", "large", "100x2", "64x4"]  # 100: not a multiple of 16; 64x4: deeper than expert
BANK_INITS = [name for name, init in INITIALIZERS.items() if init.needs_bank]  # fitted on N calibration transitions


def zero_shot(
    env_id: str, algo: str, size: str, init: str, seed: int, calib: int | None, episodes: int, **overrides
) -> tuple[float, float]:
    """Mean deterministic return at step 0 and the seconds initialization took, as a run starts
    and evaluates (weit_rl.agents.evaluation.initial_return); overrides are RunConfig fields."""
    cfg = prepare(
        RunConfig(
            env=env_id,
            algo=algo,
            size=size,
            init=init,
            seed=seed,
            device="cpu",
            calib=calib,
            eval_episodes=episodes,
            bank=str(bank_path(env_id, algo)),
            expert=str(expert_dir(env_id, algo)),
            progress_bar=False,
            **overrides,
        )
    )
    returns, seconds = initial_return(cfg)
    return float(np.mean(returns)), seconds


def task_table(env_id: str, algo: str, budgets: list[int], seeds: int, episodes: int) -> dict:
    torch.set_num_threads(1)
    start = time.time()
    bank = load_bank(bank_path(env_id, algo))
    expert_arch = bank.manifest["expert"]["net_arch"]
    rows = {}
    for size in SIZES:
        widths = prepare(RunConfig(env=env_id, size=size)).net_arch
        row: dict = {
            "widths": widths,
            "scalers": KronMLP(bank.actor, widths).scalers.count() + KronMLP(bank.critic, widths).scalers.count(),
        }
        row["scratch"] = [zero_shot(env_id, algo, size, "scratch", s, None, episodes)[0] for s in range(seeds)]
        row["select"] = (
            None
            if not select_fits(widths, expert_arch)
            else [zero_shot(env_id, algo, size, "select", s, None, episodes)[0] for s in range(seeds)]
        )
        for budget in budgets:
            for init in BANK_INITS:
                runs = [zero_shot(env_id, algo, size, init, s, budget, episodes) for s in range(seeds)]
                row[f"{init}@{budget}"] = [r for r, _ in runs]
                row[f"{init}@{budget}_seconds"] = float(np.mean([t for _, t in runs]))
        rows[size] = row
        print(f"{env_id} {algo} {size}: done", flush=True)
    return {
        "expert_return": bank.manifest["expert"]["eval_return_mean"],
        "expert_arch": expert_arch,
        "bank": bank.manifest,
        "rows": rows,
        "seconds": round(time.time() - start, 1),
    }


def fmt(values: list[float] | None) -> str:
    return "n/a" if values is None else f"{np.mean(values):.0f} ± {np.std(values):.0f}"


def markdown(results: dict, budgets: list[int], seeds: int, episodes: int, command: str, seconds: float) -> str:
    fit, ft = RunConfig.fit_steps, RECIPES["default"]["finetune_steps"]
    out = [
        "# Zero-shot quality of the template banks\n",
        f"Return of each initialized policy **at step 0, before any RL**, mean ± std over {seeds} fitting seeds "
        f"(each the mean of {episodes} deterministic episodes). `weit` is the default recipe "
        f"(agents/config.py RECIPES): {fit} Adam steps fitting the scalers on the first N calibration "
        f"transitions of the bank, then {ft} steps training every weight of the assembled network on the same "
        f"transitions; `distill` trains a randomly initialized target network on them for the same total, "
        f"{fit + ft} steps; `select` copies evenly spaced expert neurons (n/a: the target is deeper or wider than "
        "the expert); `scratch` is SB3's default init. Observations as a run starts: the bank's statistics "
        "for PPO, raw for SAC.\n",
        f"Command: `{command}`  \nMachine: {platform.machine()}, {os.cpu_count()} cpus; "
        f"compute time {seconds / 60:.1f} min (summed over tasks).\n",
    ]
    for name, res in results.items():
        b = res["bank"]
        out.append(
            f"\n## {name}\n\nExpert {'x'.join(map(str, res['expert_arch']))}: return "
            f"{res['expert_return']:.0f}. Bank: {b['n_templates']} templates of {b['block']}x{b['block']}, "
            f"{b['samples']} distillation samples, {b['calib']} calibration transitions.\n"
        )
        head = ["size", "scalers", "scratch", "select"] + [f"{i} N={n}" for n in budgets for i in BANK_INITS]
        out.append("| " + " | ".join(head) + " | weit fit s |")
        out.append("|" + "---|" * (len(head) + 1))
        for size, row in res["rows"].items():
            cells = [
                f"{size} ({'x'.join(map(str, row['widths']))})",
                str(row["scalers"]),
                fmt(row["scratch"]),
                fmt(row["select"]),
            ] + [fmt(row[f"{i}@{n}"]) for n in budgets for i in BANK_INITS]
            out.append("| " + " | ".join(cells) + f" | {row[f'weit@{budgets[-1]}_seconds']:.1f} |")
        wins = [
            (size, n)
            for size, row in res["rows"].items()
            for n in budgets
            if np.mean(row[f"weit@{n}"]) > np.mean(row[f"distill@{n}"])
        ]
        out.append(
            f"\n`weit` beats `distill` (mean) in {len(wins)} of {len(res['rows']) * len(budgets)} "
            f"size x budget cells: {', '.join(f'{s}@{n}' for s, n in wins) or 'none'}.\n"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    pin_kernels()  # before torch's first operation: the kernels `weit-rl` runs with (weit_rl/numerics.py)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", default="HalfCheetah,Hopper,Walker2d,Ant")
    p.add_argument("--algos", default="ppo,sac")
    p.add_argument("--budgets", default="256,1000,5000")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default="reports/banks")
    a = p.parse_args()
    tasks = [(resolve_task(e), algo) for e in a.envs.split(",") for algo in a.algos.split(",")]
    tasks = [
        (e, algo) for e, algo in tasks if bank_path(e, algo).exists() and (expert_dir(e, algo) / "model.zip").exists()
    ]
    budgets = [int(b) for b in a.budgets.split(",")]
    out = Path(a.out)
    partial = out.with_name(out.name + ".partial")
    settings = {"budgets": budgets, "seeds": a.seeds, "episodes": a.episodes, "recipe": RECIPES["default"]}
    results = {}
    for e, algo in tasks:  # finished tasks of an interrupted run with the same settings and bank
        done = partial / f"{short_name(e)}-{algo}.json"
        if done.exists():
            saved = json.loads(done.read_text())
            if (
                saved["settings"] == settings
                and saved["bank_sha256"] == load_bank(bank_path(e, algo)).manifest["tensor_sha256"]
            ):
                results[done.stem] = saved["result"]
    todo = [(e, algo) for e, algo in tasks if f"{short_name(e)}-{algo}" not in results]
    print(f"{len(results)} of {len(tasks)} tasks recorded in {partial}; computing {len(todo)}", flush=True)
    partial.mkdir(parents=True, exist_ok=True)
    with spawn_pool(max(1, min(a.workers, len(todo)))) as pool:
        futures = {
            pool.submit(task_table, e, algo, budgets, a.seeds, a.episodes): f"{short_name(e)}-{algo}"
            for e, algo in todo
        }
        for f in as_completed(futures):
            name, result = futures[f], f.result()
            record = {"settings": settings, "bank_sha256": result["bank"]["tensor_sha256"], "result": result}
            (partial / f"{name}.json").write_text(json.dumps(record, indent=2, default=str))
            results[name] = result
    results = {f"{short_name(e)}-{algo}": results[f"{short_name(e)}-{algo}"] for e, algo in tasks}
    command = "python " + shlex.join(sys.argv)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "results": results}, indent=2, default=str))
    seconds = sum(r["seconds"] for r in results.values())
    out.with_suffix(".md").write_text(markdown(results, budgets, a.seeds, a.episodes, command, seconds))
    shutil.rmtree(partial)
    print(f"wrote {out.with_suffix('.md')} for {', '.join(results)}")


if __name__ == "__main__":
    main()
