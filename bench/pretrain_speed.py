"""Benchmark: what the Kronecker constraint costs an expert's training speed. The expert's own
recipe (configs/experts.yaml: network, hyperparameters, statistics) trained plainly, under the
hard constraint and under the soft penalty, alternating in one process (repeat r trains plain,
hard, soft in turn), so drift on the machine hits every scheme alike. CPU seconds (one torch
thread, time.process_time) are the primary measure, wall seconds beside them.

    .venv/bin/python bench/pretrain_speed.py --env HalfCheetah --algo ppo --steps 10240 --repeats 3
Writes reports/pretraining/speed-<Env>-<algo>.md (and .json)."""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from weit_rl.agents import RunConfig, new_model, prepare
from weit_rl.agents.expert import pretraining
from weit_rl.config import expert_recipe, learner_hyperparams
from weit_rl.envs import resolve_task, short_name
from weit_rl.numerics import kernels, pin_kernels

SCHEMES = ("none", "hard", "soft")


def config(env_id: str, algo: str, scheme: str, seed: int) -> RunConfig:
    """The expert's run configuration as `weit-rl expert` builds it, without evaluation."""
    recipe = expert_recipe(algo, env_id)
    return prepare(
        RunConfig(
            env=env_id,
            algo=algo,
            size=",".join(map(str, recipe["net_arch"])),
            init="scratch",
            seed=seed,
            device="cpu",
            progress_bar=False,
            hyperparams=learner_hyperparams(algo, env_id, "expert"),
            obs_stats="fresh",
            obs_update="running",
            **pretraining(scheme),
        )
    )


def timed(cfg: RunConfig, steps: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of `steps` training steps, model construction excluded, and for
    SAC its warm-up of random actions too (no gradient step before `learning_starts`)."""
    model = new_model(cfg)
    warmup = getattr(model, "learning_starts", 0)
    if warmup:
        model.learn(warmup)
    cpu, wall = time.process_time(), time.perf_counter()
    model.learn(steps, reset_num_timesteps=not warmup)
    return time.process_time() - cpu, time.perf_counter() - wall


def markdown(res: dict) -> str:
    lines = [
        f"# Training speed under the Kronecker constraint ({res['env']}, {res['algo'].upper()}, the expert's recipe)",
        "",
        __doc__.split("\n\n")[0].replace("\n", " "),
        "",
        f"Command: `{res['command']}`; {res['repeats']} repeats of {res['steps']:,} steps per scheme; "
        f"machine: {res['machine']}. Steps per second of one core (mean over repeats, min-max in brackets).",
        "",
        "| scheme | steps/s (CPU time) | steps/s (wall) | relative to plain (CPU) |",
        "|---|---|---|---|",
    ]
    base = np.mean(res["cpu_steps_per_s"]["none"])
    for scheme in SCHEMES:
        cpu, wall = np.array(res["cpu_steps_per_s"][scheme]), np.array(res["wall_steps_per_s"][scheme])
        lines.append(
            f"| {scheme if scheme != 'none' else 'plain'} | {cpu.mean():.0f} [{cpu.min():.0f}-{cpu.max():.0f}] | "
            f"{wall.mean():.0f} [{wall.min():.0f}-{wall.max():.0f}] | {cpu.mean() / base:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="HalfCheetah")
    p.add_argument("--algo", default="ppo")
    p.add_argument("--steps", type=int, default=10_240)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=None, help="default reports/pretraining/speed-<Env>-<algo>")
    a = p.parse_args()
    pin_kernels()  # the kernels every run computes with (weit_rl/numerics.py)
    torch.set_num_threads(1)
    env_id = resolve_task(a.env)
    cpu: dict[str, list[float]] = {s: [] for s in SCHEMES}
    wall: dict[str, list[float]] = {s: [] for s in SCHEMES}
    for r in range(a.repeats):
        for scheme in SCHEMES:
            c, w = timed(config(env_id, a.algo, scheme, r), a.steps)
            cpu[scheme].append(a.steps / c)
            wall[scheme].append(a.steps / w)
            print(f"repeat {r} {scheme}: {a.steps / c:.0f} steps/s (CPU), {a.steps / w:.0f} (wall)", flush=True)
    res = {
        "command": "python " + shlex.join(sys.argv),
        "env": short_name(env_id),
        "algo": a.algo,
        "steps": a.steps,
        "repeats": a.repeats,
        "machine": f"{platform.machine()}, torch threads 1, {kernels()}",
        "cpu_steps_per_s": cpu,
        "wall_steps_per_s": wall,
    }
    out = Path(a.out or f"reports/pretraining/speed-{short_name(env_id)}-{a.algo}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    print(f"wrote {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
