"""Are templates task-agnostic? Step-0 returns of policies initialized from hidden templates
shared across tasks (weit_rl/artifacts/shared_templates.py), next to each task's own shipped bank.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/cross_task.py

Builds, under OUT/banks/ (banks already there are reused, so an interrupted run resumes):
- shared/: one bank per task, the templates learned jointly on all tasks' expert data with
  the hidden templates shared (input/output templates per task);
- without-<HeldOut>/: the same on every task but the held-out one;
- heldout-<HeldOut>/: the held-out task's bank, its hidden templates those of without-<HeldOut>/
  (frozen), its input/output templates and scalers fitted on its calibration set alone.
Then measures, per task, the step-0 deterministic return of a small (64x64) PPO policy as the
runner builds it (agents: prepare, init_sources, build_model; evaluation on make_eval_env, seeds
seed + 10000, the bank's observation statistics): init weit from the shared bank, the own bank
(banks/<Env>-ppo.safetensors) and, for the held-out task, the held-out bank; distill (own bank)
and scratch for reference; each under the default recipe and "scalers only" (finetune_steps 0).
Each measurement is appended to OUT/step0.partial.jsonl as it finishes, so a rerun skips it.
Writes OUT/step0.md and OUT/step0.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from weit_rl.agents import RunConfig, prepare
from weit_rl.agents.evaluation import initial_return
from weit_rl.artifacts.bank import load_bank, read_manifest
from weit_rl.artifacts.experts import bank_path
from weit_rl.artifacts.provenance import code_version
from weit_rl.artifacts.shared_templates import build_shared_banks, hidden_sha256
from weit_rl.envs import resolve_task, short_name
from weit_rl.numerics import pin_kernels

RECIPES = {"default": None, "scalers only": 0}  # finetune_steps: None takes the default recipe's


def bank_set(out: Path, tasks: list[str], args: argparse.Namespace, **kw) -> list[Path]:
    """The banks of `tasks` in `out`, built unless all are there already."""
    paths = [out / bank_path(resolve_task(t), "ppo").name for t in tasks]
    source = kw.get("hidden_from") and read_manifest(kw["hidden_from"])["tensor_sha256"]
    if all(
        p.exists() and (read_manifest(p)["shared_hidden"]["source"] or {}).get("tensor_sha256") == source for p in paths
    ):  # the held-out bank is current only if its hidden templates still are
        print(f"reusing {', '.join(map(str, paths))}", flush=True)
        return paths
    return build_shared_banks(
        tasks,
        "ppo",
        out,
        samples=args.samples,
        calib=args.calib,
        steps=args.steps,
        seed=0,
        command="python " + shlex.join(sys.argv),
        replace=True,
        **kw,
    )


def step0(env_id: str, init: str, bank: Path, seed: int, finetune_steps: int | None, episodes: int) -> float:
    """Mean deterministic return at step 0, the policy and envs built as `weit-rl train` builds them."""
    cfg = prepare(
        RunConfig(
            env=env_id,
            algo="ppo",
            size="small",
            init=init,
            seed=seed,
            device="cpu",
            bank=str(bank),
            eval_episodes=episodes,
            finetune_steps=finetune_steps,
            progress_bar=False,
        )
    )
    return float(np.mean(initial_return(cfg)[0]))


def cells(tasks: list[str], held_out: str, banks: dict[str, dict[str, Path]]) -> list[tuple[str, str, str, str]]:
    """(task, init, bank name, recipe) to measure."""
    out = []
    for task in tasks:
        names = ["own", "shared"] + (["held-out"] if task == held_out else [])
        for recipe in RECIPES:
            out += [(task, "weit", name, recipe) for name in names] + [(task, "distill", "own", recipe)]
        out.append((task, "scratch", "own", "-"))
    return out


def summary(values: list[float], lo: float, hi: float) -> dict:
    norm = [(v - lo) / (hi - lo) for v in values]
    return {
        "returns": values,
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "normalized_mean": float(np.mean(norm)),
        "normalized_std": float(np.std(norm)),
    }


def bank_rows(banks: dict[str, dict[str, Path]]) -> list[str]:
    rows = [
        "| task | bank | hidden templates learned on | fitted on | template loss (last step) | "
        "64x64 scaler-fit loss | hidden sha256 | size |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, named in banks.items():
        for name, path in named.items():
            bank = load_bank(path)
            m = bank.manifest
            s = m.get("shared_hidden") or {"tasks": [m["task"]], "fitted_on": "samples"}
            data = f"{m['samples']} transitions" if s["fitted_on"] == "samples" else f"calibration ({m['calib']})"
            rows.append(
                f"| {task} | {name} | {', '.join(short_name(t) for t in s['tasks'])} | {data} | "
                f"{m['final_loss']:.4f} | {m['scaler_fit_loss_64x64']:.4f} | "
                f"{hidden_sha256(bank.actor, bank.critic)[:12]} | "
                f"{path.stat().st_size / 1e6:.2f} MB |"
            )
    return rows


def markdown(res: dict) -> str:
    a = res["settings"]
    out = [
        "# Shared hidden templates across tasks: step-0 returns\n",
        f"Can one set of hidden templates serve several tasks? Banks for {', '.join(a['tasks'])} (PPO experts "
        "256x3) were learned with the hidden (16x16) templates shared across tasks, input and output templates "
        f"per task ({a['steps']} template-learning steps, {a['samples']} expert transitions per task, the "
        "configs/templates.yaml auxiliary sizes for each task, loss averaged over tasks). The held-out "
        f"{a['held_out']} bank takes the hidden templates learned on the other tasks only, frozen, and fits its "
        f"input/output templates and auxiliary scalers on {a['held_out']}'s calibration set alone "
        f"({a['calib']} transitions, standardized by their own statistics): no more data than scaler fitting "
        "uses.\n",
        f"Each cell: the step-0 return (before any RL) of a 64x64 PPO policy built as `weit-rl train` builds "
        f"it, mean ± std over {a['seeds']} fitting seeds, each the mean of {a['episodes']} deterministic "
        "episodes (eval seeds seed + 10000, the bank's observation statistics); in brackets the normalized "
        "score (return - random) / (expert - random), random and expert returns from the own bank's manifest. "
        "`default`: the runner's default recipe (300 scaler-fitting steps, then the recipe's full-weight "
        "distillation steps on the calibration set); `scalers only`: finetune_steps 0. `distill` and "
        "`scratch` use the own bank (its calibration set and statistics). `own` is the shipped bank "
        "(banks/<Env>-ppo.safetensors, templates learned on that task alone).\n",
        f"Command: `{res['command']}`  \nMachine: {platform.machine()}, {os.cpu_count()} CPUs, shared with "
        f"other jobs (run under nice); time: banks {res['bank_seconds'] / 60:.1f} min (their manifests' "
        f"`seconds`), step-0 measurements {res['step0_seconds'] / 60:.1f} min (summed over cells), this "
        f"invocation {res['seconds'] / 60:.1f} min wall.  \nCode: {res['code_version']}\n",
    ]
    out.append("\n## Step-0 return [normalized]\n")
    out.append("| task | expert | random | init | bank | default | scalers only |")
    out.append("|---|---|---|---|---|---|---|")
    for task, t in res["tasks"].items():
        for key in dict.fromkeys(k.rsplit(" | ", 1)[0] for k in t["cells"]):
            init, name = key.split(" | ")
            vals = [t["cells"].get(f"{key} | {r}") or t["cells"].get(f"{key} | -") for r in RECIPES]
            text = [
                f"{v['mean']:.0f} ± {v['std']:.0f} [{v['normalized_mean']:.2f} ± {v['normalized_std']:.2f}]"
                for v in vals
            ]
            out.append(f"| {task} | {t['expert']:.0f} | {t['random']:.0f} | {init} | {name} | {' | '.join(text)} |")
    out.append("\n## Shared or held-out vs own bank (weit, normalized mean, difference)\n")
    out.append("| task | bank | default | scalers only |")
    out.append("|---|---|---|---|")
    for task, t in res["tasks"].items():
        for name in ("shared", "held-out"):
            if f"weit | {name} | default" not in t["cells"]:
                continue
            diff = [
                t["cells"][f"weit | {name} | {r}"]["normalized_mean"]
                - t["cells"][f"weit | own | {r}"]["normalized_mean"]
                for r in RECIPES
            ]
            out.append(f"| {task} | {name} | {diff[0]:+.2f} | {diff[1]:+.2f} |")
    out.append("\n## The banks\n")
    out.append(
        "Template loss: the last step's distillation loss of the task's auxiliary networks (standardized "
        "units); 64x64 scaler-fit loss: the bank's own check, fresh 64x64 scalers fitted for 300 steps on its "
        "calibration set with the templates frozen (each bank's own calibration set: the shipped banks' "
        "and the new ones' come from separate recordings of the same expert); hidden sha256: of the four hidden "
        "template tensors (actor and critic hid_w, hid_b), equal where they are shared bit for bit.\n"
    )
    out += res["bank_table"]
    return "\n".join(out) + "\n"


def main() -> None:
    pin_kernels()  # before torch's first operation: the kernels `weit-rl` runs with (weit_rl/numerics.py)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="HalfCheetah,Hopper,Walker2d,Ant")
    p.add_argument("--held-out", default="Walker2d")
    p.add_argument("--samples", type=int, default=50_000)
    p.add_argument("--calib", type=int, default=5_000)
    p.add_argument("--steps", type=int, default=3_000, help="template-learning steps")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--out", default="reports/pretraining/cross_task")
    a = p.parse_args()
    torch.set_num_threads(1)
    start, code = time.time(), code_version()  # the code this process imported, not what the tree holds later
    tasks, out = a.tasks.split(","), Path(a.out)
    others = [t for t in tasks if t != a.held_out]
    shared = bank_set(out / "banks" / "shared", tasks, a)
    without = bank_set(out / "banks" / f"without-{a.held_out}", others, a)
    (held,) = bank_set(out / "banks" / f"heldout-{a.held_out}", [a.held_out], a, hidden_from=str(without[0]))
    banks = {t: {"own": bank_path(resolve_task(t), "ppo"), "shared": s} for t, s in zip(tasks, shared)}
    banks[a.held_out]["held-out"] = held
    sha = {str(p): read_manifest(p)["tensor_sha256"] for named in banks.values() for p in named.values()}

    partial = out / "step0.partial.jsonl"
    done = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            rec = json.loads(line)
            done[(rec["task"], rec["init"], rec["bank"], rec["recipe"], rec["seed"], rec["sha"], rec["episodes"])] = rec
    todo = [(c, s) for c in cells(tasks, a.held_out, banks) for s in range(a.seeds)]
    with partial.open("a") as f:
        for (task, init, name, recipe), seed in tqdm(todo, desc="step-0 returns", mininterval=5.0):
            path = banks[task][name]
            key = (task, init, name, recipe, seed, sha[str(path)], a.episodes)
            if key in done:
                continue
            begin = time.time()
            ret = step0(resolve_task(task), init, path, seed, RECIPES.get(recipe), a.episodes)
            rec = dict(zip(("task", "init", "bank", "recipe", "seed", "sha", "episodes"), key), ret=ret)
            done[key] = rec = rec | {"seconds": round(time.time() - begin, 1)}
            f.write(json.dumps(rec) + "\n")
            f.flush()
            tqdm.write(f"{task} {init} {name} {recipe} seed {seed}: {ret:.0f}")

    res = {
        "command": "OMP_NUM_THREADS=1 nice -n 10 python " + shlex.join(sys.argv),
        "settings": vars(a) | {"tasks": tasks, "held_out": a.held_out},
        "seconds": time.time() - start,
        # compute time whichever run made them: a set's last bank counts from the set's start
        "bank_seconds": sum(max(read_manifest(p)["seconds"] for p in ps) for ps in (shared, without, [held])),
        "step0_seconds": sum(
            done[(t, i, n, r, seed, sha[str(banks[t][n])], a.episodes)].get("seconds", 0.0)
            for (t, i, n, r), seed in todo
        ),
        "code_version": code,
        "tasks": {},
    }
    for task in tasks:
        m = load_bank(banks[task]["own"]).manifest
        lo, hi = m["random_return"], m["expert"]["eval_return_mean"]
        t = res["tasks"][task] = {
            "expert": hi,
            "random": lo,
            "banks": {k: str(v) for k, v in banks[task].items()},
            "cells": {},
        }
        for c_task, init, name, recipe in cells(tasks, a.held_out, banks):
            if c_task == task:
                key = (task, init, name, recipe)
                rets = [done[(*key, s, sha[str(banks[task][name])], a.episodes)]["ret"] for s in range(a.seeds)]
                t["cells"][f"{init} | {name} | {recipe}"] = summary(rets, lo, hi)
    listed = {t: dict(named) for t, named in banks.items()}  # with the held-out bank's source set
    for t, path in zip(others, without):
        listed[t][f"without {a.held_out}"] = path
    res["bank_table"] = bank_rows(listed)
    res["bank_bytes"] = {str(p): p.stat().st_size for named in listed.values() for p in named.values()}
    (out / "step0.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "step0.md").write_text(markdown(res))
    print(f"wrote {out / 'step0.md'} in {res['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
