"""A template-initialized PPO run on CUDA: built, initialized and trained on the GPU.
Skipped where torch sees no GPU (the CI machines)."""

import pytest
import torch
from stable_baselines3 import PPO

from weit_rl.agents import RunConfig, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_weit_run_trains_on_cuda(tiny_ppo_bank, tmp_path):
    run = train(
        RunConfig(
            env="HalfCheetah",
            size="32x2",
            bank=str(tiny_ppo_bank),
            steps=256,
            eval_freq=256,
            eval_episodes=1,
            device="cuda",
            fit_steps=20,
            run_dir=str(tmp_path / "run"),
            progress_bar=False,
            hyperparam_overrides={"n_steps": 128, "n_epochs": 1},
        )
    )
    model = PPO.load(run / "model.zip", device="cuda")
    assert all(p.is_cuda for p in model.policy.parameters())
    assert torch.isfinite(torch.cat([p.flatten() for p in model.policy.parameters()])).all()
