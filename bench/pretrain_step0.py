"""Benchmark: step-0 returns from constrained banks (templates pre-trained into the expert) and
the post-hoc bank (templates fitted to a plain expert), for one task and algorithm. Every cell is
built and evaluated as a run starts (weit_rl.agents.evaluation.initial_return: the runner's
policy, its observation statistics, 20 deterministic episodes on seeds seed + 10000).

Grid: sizes (tiny, small, 64x3, medium, large and one above the expert, 512x2) x calibration sets
(256 and 5,000 transitions of each bank's own set) x budgets (scalers only: 300 optimizer steps,
recipe plain; and the default recipe: 300 + 2,300) x arms (weit from each bank, and distill from
the same bank's calibration set with the same optimizer steps) x 3 fitting seeds. Resumable: each
finished cell is a line of <out>.partial.jsonl, keyed by the bank's checksum.

    .venv/bin/python bench/pretrain_step0.py --env HalfCheetah --algo ppo --workers 2
Writes reports/pretraining/step0-<Env>-<algo>.md (and .json)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from concurrent.futures import as_completed
from pathlib import Path

import numpy as np

from weit_rl.agents import RunConfig, prepare
from weit_rl.agents.evaluation import initial_return
from weit_rl.artifacts.bank_file import read_manifest
from weit_rl.artifacts.experts import bank_path
from weit_rl.compare.runners import spawn_pool
from weit_rl.compare.study import portable
from weit_rl.envs import resolve_task, short_name
from weit_rl.numerics import kernel_setting, pin_kernels

SIZES = ["tiny", "small", "64x3", "medium", "large", "512x2"]
CALIBS = [256, 5000]
BUDGETS = {"scalers": {"recipe": "plain", "fit_steps": 300}, "default": {}}  # distill: the same total steps
INITS = ["weit", "distill"]


def cell(env_id: str, algo: str, bank: str, init: str, size: str, calib: int, budget: str, seed: int, episodes: int):
    cfg = RunConfig(
        env=env_id,
        algo=algo,
        size=size,
        init=init,
        seed=seed,
        device="cpu",
        bank=bank,
        calib=calib,
        eval_episodes=episodes,
        progress_bar=False,
        **BUDGETS[budget],
    )
    returns, seconds = initial_return(prepare(cfg))
    return float(np.mean(returns)), seconds, kernel_setting()


def banks_of(env_id: str, algo: str) -> dict[str, str]:
    """post-hoc, hard, soft: the banks of this task that exist."""
    named = {"post-hoc": bank_path(env_id, algo), "hard": bank_path(env_id, algo, "hard")}
    named["soft"] = bank_path(env_id, algo, "soft")
    return {name: portable(path) for name, path in named.items() if Path(path).exists()}


def markdown(res: dict) -> str:
    lo, hi = res["random"], res["expert"]
    lines = [
        f"# Step-0 returns from constrained and post-hoc banks ({res['env']}, {res['algo'].upper()})",
        "",
        __doc__.split("\n\n")[0].replace("\n", " "),
        "",
        f"Command: `{res['command']}`. Mean raw return over {res['seeds']} fitting seeds (each the mean of "
        f"{res['episodes']} episodes), its normalized score (R - random) / (expert - random) with random "
        f"{lo:.0f} and the post-hoc bank's expert {hi:.0f} in brackets, and the CPU seconds of one "
        "initialization (building the policy, fitting included, evaluation excluded: the mean over seeds). "
        "Banks: " + "; ".join(f"{n}: `{p}` (expert {res['experts'][n]:.0f})" for n, p in res["banks"].items()) + ".",
        "",
    ]
    for calib in res["calibs"]:
        for budget in BUDGETS:
            cols = [f"{init} {bank}" for bank in res["banks"] for init in INITS]
            lines += [
                f"## {calib:,} calibration transitions, budget: {budget}",
                "",
                "| size | " + " | ".join(cols) + " |",
                "|---|" + "---|" * len(cols),
            ]
            for size in res["sizes"]:
                row = []
                for bank in res["banks"]:
                    for init in INITS:
                        got = res["cells"].get(f"{bank}|{init}|{size}|{calib}|{budget}")
                        if got is None:
                            row.append("-")
                            continue
                        r, s = np.mean(got["returns"]), np.mean(got["seconds"])
                        row.append(f"{r:,.0f} ({(r - lo) / (hi - lo):.2f}), {s:.1f} s")
                lines.append(f"| {size} | " + " | ".join(row) + " |")
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="HalfCheetah")
    p.add_argument("--algo", default="ppo")
    p.add_argument("--sizes", default=",".join(SIZES))
    p.add_argument("--calibs", default=",".join(map(str, CALIBS)))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", default=None, help="default reports/pretraining/step0-<Env>-<algo>")
    a = p.parse_args()
    env_id = resolve_task(a.env)
    out = Path(a.out or f"reports/pretraining/step0-{short_name(env_id)}-{a.algo}")
    sizes, calibs, banks = a.sizes.split(","), [int(c) for c in a.calibs.split(",")], banks_of(env_id, a.algo)
    sha = {name: read_manifest(path)["tensor_sha256"] for name, path in banks.items()}
    partial = out.with_suffix(".partial.jsonl")
    pin_kernels()  # as the workers do (spawn_pool)
    setting = kernel_setting()
    done: dict[tuple, dict] = {}
    if partial.exists():  # cells computed with other kernels (weit_rl/numerics.py) would mix rounding paths
        for line in partial.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("kernels") == setting:
                done[tuple(rec["key"])] = rec
    # Seed by seed, and within a cell every bank and arm together: an interrupted grid has
    # whole comparisons rather than one bank's column.
    grid = [
        (bank, init, size, calib, budget, seed)
        for seed in range(a.seeds)
        for size in sizes
        for calib in calibs
        for budget in BUDGETS
        for bank in banks
        for init in INITS
    ]
    key = lambda g: (sha[g[0]], *g[1:], a.episodes)  # noqa: E731
    todo = [g for g in grid if key(g) not in done]
    print(f"{len(grid) - len(todo)} of {len(grid)} cells recorded in {partial}; computing {len(todo)}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with spawn_pool(a.workers) as pool, partial.open("a") as f:
        futures = {
            pool.submit(cell, env_id, a.algo, banks[g[0]], g[1], g[2], g[3], g[4], g[5], a.episodes): g for g in todo
        }
        for n, fut in enumerate(as_completed(futures), 1):
            g = futures[fut]
            ret, seconds, used = fut.result()
            rec = {"key": list(key(g)), "bank": g[0], "return": ret, "seconds": seconds, "kernels": used}
            done[key(g)] = rec
            f.write(json.dumps(rec) + "\n")
            f.flush()
            print(f"[{n}/{len(todo)}] {' '.join(map(str, g))}: {ret:.0f} ({seconds:.1f} s)", flush=True)
    manifests = {name: read_manifest(path) for name, path in banks.items()}
    res = {
        "command": "python " + shlex.join(sys.argv),
        "env": short_name(env_id),
        "algo": a.algo,
        "sizes": sizes,
        "calibs": calibs,
        "seeds": a.seeds,
        "episodes": a.episodes,
        "banks": banks,
        "experts": {n: m["expert"]["eval_return_mean"] for n, m in manifests.items()},
        "random": manifests[next(iter(banks))]["random_return"],
        "expert": manifests["post-hoc"]["expert"]["eval_return_mean"],
        "wall_s_this_call": round(time.time() - start, 1),
        "cells": {},
    }
    for g in grid:
        rec = done[key(g)]
        c = res["cells"].setdefault("|".join(map(str, g[:5])), {"returns": [], "seconds": []})
        c["returns"].append(rec["return"])
        c["seconds"].append(rec["seconds"])
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    print(f"wrote {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
