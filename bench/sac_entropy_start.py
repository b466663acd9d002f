"""Diagnostic: the entropy of an initialized SAC actor at step 0, on the states SAC's entropy
tuning first sees. SAC tunes its entropy coefficient on replay-buffer states, and rl-zoo3's first
10,000 steps fill that buffer with uniformly random actions; an actor fitted on the expert's states
may be wider there than the expert is. Why: in the headline's Walker2d SAC part the initialized
arms' entropy stays above its target while the coefficient winds down
(reports/headline/sac-train-logs-Walker2d.md).

Each actor is built exactly as a run builds it, from the runs' own config.yaml (a study's
`runs/<Env>/sac-<size>-<arm>-s<seed>/`), and the expert is the one its bank names. States: N steps
of uniformly random actions, and N steps of the expert acting stochastically, each from
environment seed 0. The entropy is -log pi(a|s) of SB3's squashed Gaussian (tanh correction
included), averaged over one sampled action per state.

    .venv/bin/python bench/sac_entropy_start.py reports/headline/runs/Walker2d \\
        --out reports/headline/sac-entropy-start-Walker2d.md
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import yaml
from stable_baselines3 import SAC

from weit_rl.agents import RunConfig, prepare
from weit_rl.agents.model import new_model
from weit_rl.artifacts.bank_file import read_manifest
from weit_rl.numerics import pin_kernels


def collect(env_id: str, n: int, expert: SAC | None) -> torch.Tensor:
    """n states of one environment stream from seed 0: random actions, or the expert's sampled ones."""
    env = gym.make(env_id)
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    states = []
    for _ in range(n):
        states.append(obs)
        action = env.action_space.sample() if expert is None else expert.predict(obs, deterministic=False)[0]
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return torch.as_tensor(np.array(states, dtype=np.float32))


def entropy(actor: torch.nn.Module, states: torch.Tensor) -> float:
    torch.manual_seed(0)
    with torch.no_grad():
        _, log_prob = actor.action_log_prob(states)
    return float(-log_prob.mean())


def run_config(run: Path) -> RunConfig:
    saved = yaml.safe_load((run / "config.yaml").read_text())
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    return prepare(RunConfig(**{k: v for k, v in saved.items() if k in fields}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, help="a study's raw runs for one task, e.g. reports/headline/runs/Walker2d")
    p.add_argument("--size", default="small")
    p.add_argument("--arms", default="weit,distill")
    p.add_argument("--seeds", type=int, default=3, help="runs per arm (seeds 0..N-1)")
    p.add_argument("--states", type=int, default=5000, help="states per distribution")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    pin_kernels()  # before torch's first operation: the kernels the runs were built with (weit_rl/numerics.py)
    torch.set_num_threads(1)
    arms = args.arms.split(",")
    runs = {(arm, s): args.runs / f"sac-{args.size}-{arm}-s{s}" for arm in arms for s in range(args.seeds)}
    missing = [str(r) for r in runs.values() if not (r / "config.yaml").exists()]
    if missing:
        raise SystemExit(f"no config.yaml in: {', '.join(missing)}")
    first = run_config(next(iter(runs.values())))
    expert_dir = read_manifest(first.bank)["expert"]["path"]
    expert = SAC.load(f"{expert_dir}/model.zip", device="cpu")
    states = {
        "random-action states": collect(first.env, args.states, None),
        "the expert's states": collect(first.env, args.states, expert),
    }
    target = -float(np.prod(expert.action_space.shape))
    rows = {"expert": [[entropy(expert.actor, s) for s in states.values()]]}
    for (arm, _), run in runs.items():
        actor = new_model(run_config(run)).actor
        rows.setdefault(arm, []).append([entropy(actor, s) for s in states.values()])
    command = "python bench/sac_entropy_start.py " + shlex.join(
        [args.runs.as_posix(), "--size", args.size, "--arms", args.arms, "--seeds", str(args.seeds)]
        + ["--states", str(args.states), "--out", args.out.as_posix()]
    )
    lines = [
        f"# SAC actors' entropy at step 0 ({first.env}, size {args.size})",
        "",
        f"`{command}`: the entropy of each actor as its run starts (built from the run's config.yaml), on "
        f"{args.states:,} states reached by uniformly random actions (what rl-zoo3's first "
        f"{first.hyperparams.get('learning_starts', 0):,} steps put in the replay buffer) and on {args.states:,} "
        f"states of the expert ({expert_dir}) acting stochastically; SAC's target entropy is {target:g}. "
        "Mean over the arm's runs [min, max].",
        "",
        "| actor | runs | " + " | ".join(f"entropy on {name}" for name in states) + " |",
        "|---|---|" + "---|" * len(states),
    ]
    for name, values in rows.items():
        a = np.array(values)
        cells = [f"{a[:, j].mean():.2f} [{a[:, j].min():.2f}, {a[:, j].max():.2f}]" for j in range(a.shape[1])]
        lines.append(f"| {name} | {len(values)} | " + " | ".join(cells) + " |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
