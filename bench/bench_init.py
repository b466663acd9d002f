"""Benchmark: (a) time to fit scalers and initialize a policy from a bank, next to building
a scratch policy; (b) PPO training steps/s of a weit-initialized policy against scratch
in the same run (after initialization both are plain SB3 MLPs: expected ratio ~1.0).

    .venv/bin/python bench/bench_init.py --env HalfCheetah --size small --steps 20000
Writes reports/bench_init.md (and .json)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from weit_rl.agents import RunConfig, build_model, init_sources, prepare
from weit_rl.envs import make_env
from weit_rl.experts import default_bank


def build(cfg: RunConfig):
    """The model and the seconds it took to build, bank loading included."""
    start = time.perf_counter()
    bank, obs_rms = init_sources(cfg)
    env = make_env(cfg.env, seed=cfg.seed, normalize=True, obs_rms=obs_rms)
    model = build_model(cfg, env, bank)
    return model, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="HalfCheetah")
    p.add_argument("--size", default="small")
    p.add_argument("--bank", default=None)
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="reports/bench_init")
    a = p.parse_args()
    torch.set_num_threads(1)
    base = prepare(RunConfig(env=a.env, algo="ppo", size=a.size, device="cpu", progress_bar=False))
    bank = a.bank or default_bank(base.env, "ppo")
    rows: dict[str, dict[str, list[float]]] = {
        "scratch": {"init_s": [], "steps_per_s": []},
        "weit": {"init_s": [], "steps_per_s": []},
    }
    for r in range(a.repeats):  # interleaved, so drift on the machine hits both alike
        for init in ("scratch", "weit"):
            cfg = prepare(
                RunConfig(
                    env=a.env, algo="ppo", size=a.size, init=init, bank=bank, seed=r, device="cpu", progress_bar=False
                )
            )
            model, init_s = build(cfg)
            start = time.perf_counter()
            model.learn(a.steps)
            rows[init]["init_s"].append(init_s)
            rows[init]["steps_per_s"].append(a.steps / (time.perf_counter() - start))
            print(f"repeat {r} {init}: init {init_s:.2f}s, {rows[init]['steps_per_s'][-1]:.0f} steps/s", flush=True)
    mean = {k: {m: sum(v) / len(v) for m, v in d.items()} for k, d in rows.items()}
    ratio = mean["weit"]["steps_per_s"] / mean["scratch"]["steps_per_s"]
    command = "python " + shlex.join(sys.argv)
    result = {
        "command": command,
        "env": base.env,
        "size": a.size,
        "net_arch": base.net_arch,
        "bank": bank,
        "steps": a.steps,
        "repeats": a.repeats,
        "raw": rows,
        "mean": mean,
        "speed_ratio_weit_over_scratch": ratio,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, torch threads 1",
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(
        f"# Initialization cost and training speed ({base.env}, PPO, size {a.size} = {base.net_arch})\n\n"
        f"Command: `{command}`  \nMachine: {result['machine']}; {a.repeats} interleaved repeats of "
        f"{a.steps} PPO steps each.\n\n"
        "| init | build + initialize policy (s) | training steps/s |\n|---|---|---|\n"
        + "".join(f"| {k} | {v['init_s']:.2f} | {v['steps_per_s']:.0f} |\n" for k, v in mean.items())
        + f"\nSpeed ratio weit / scratch: **{ratio:.3f}** (1.0 = no runtime cost). The `weit` build time "
        "includes loading the bank and fitting the scalers (300 Adam steps).\n"
    )
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
