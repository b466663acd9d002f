"""Session fixtures: tiny HalfCheetah experts (PPO, SAC) and template banks built from
them with the project's own functions, small enough to keep `make test` fast."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from weit_rl.artifacts.build_bank import build_bank

TASK = "HalfCheetah-v5"
ARCH = [32, 32, 32]
torch.set_num_threads(1)


def _expert(root: Path, algo: str) -> Path:
    out = root / f"expert-{algo}"
    out.mkdir()
    env = make_vec_env(TASK, n_envs=1, seed=0)
    kwargs = dict(net_arch=ARCH, activation_fn=torch.nn.ReLU)
    if algo == "ppo":
        env = VecNormalize(env)
        model = PPO("MlpPolicy", env, policy_kwargs=kwargs, n_steps=256, batch_size=64, n_epochs=2, seed=0)
        model.learn(256)
        env.save(str(out / "vecnormalize.pkl"))
    else:
        model = SAC("MlpPolicy", env, policy_kwargs=kwargs, learning_starts=64, buffer_size=1000, batch_size=32, seed=0)
        model.learn(128)
    model.save(out / "model.zip")
    return out


def _bank(expert: Path, root: Path, algo: str, **kw) -> Path:
    kw = dict(samples=1000, calib=400, steps=30, n_templates=4, block=8, aux_sizes=[[16, 16], [24]]) | kw
    return build_bank(str(expert), TASK, algo, str(root / f"bank-{algo}.safetensors"), command="tests", **kw)


@pytest.fixture(autouse=True)
def no_shipped_artifacts(tmp_path_factory, monkeypatch):
    """Tests never pick up the banks and experts shipped in the checkout."""
    monkeypatch.setenv("WEIT_RL_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture(scope="session")
def tiny_ppo_expert(tmp_path_factory) -> Path:
    return _expert(tmp_path_factory.mktemp("ppo"), "ppo")


@pytest.fixture(scope="session")
def tiny_sac_expert(tmp_path_factory) -> Path:
    return _expert(tmp_path_factory.mktemp("sac"), "sac")


@pytest.fixture(scope="session")
def tiny_hopper_expert(tmp_path_factory) -> Path:
    """An untrained PPO expert of another task (Hopper: 11-dim observations, 3 actions)."""
    out = tmp_path_factory.mktemp("hopper")
    PPO(
        "MlpPolicy",
        make_vec_env("Hopper-v5"),
        policy_kwargs=dict(net_arch=ARCH, activation_fn=torch.nn.ReLU),
        n_steps=64,
        seed=0,
    ).save(out / "model.zip")
    return out


@pytest.fixture(scope="session")
def tiny_ppo_bank(tiny_ppo_expert, tmp_path_factory) -> Path:
    return _bank(tiny_ppo_expert, tmp_path_factory.mktemp("bank"), "ppo")


@pytest.fixture(scope="session")
def tiny_sac_bank(tiny_sac_expert, tmp_path_factory) -> Path:
    return _bank(tiny_sac_expert, tmp_path_factory.mktemp("bank"), "sac")


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`weit-rl ARGS` in a subprocess, as a user would run it."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", "weit_rl.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def scratch_run(run_dir: Path, algo: str, steps: int, rollout: int, **kw: Any) -> Any:
    """A tiny scratch run on Hopper with fresh statistics (no bank), one evaluation episode:
    PPO rollouts of `rollout` steps, SAC updates from step `rollout`."""
    from weit_rl.agents import RunConfig

    hyper = {"n_steps": rollout, "batch_size": 32, "n_epochs": 1} if algo == "ppo" else {"learning_starts": rollout}
    settings = dict(env="Hopper", algo=algo, size="tiny", init="scratch", obs_stats="fresh", steps=steps)
    settings |= dict(eval_episodes=1, run_dir=str(run_dir), progress_bar=False, hyperparam_overrides=hyper)
    return RunConfig(**(settings | kw))
