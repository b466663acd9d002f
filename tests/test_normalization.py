"""Observation statistics that adapt while the policy's function stays the same."""

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from weit_rl.agents.normalization import PreservingObsNormalization

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`


def _model():
    # clip_obs: the function is preserved exactly for observations inside the clipping range
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=1, seed=0), norm_reward=False, clip_obs=1e9)
    env.obs_rms.count = 10.0  # few samples: the statistics move a lot in 128 steps
    # learning_rate 0: weights change only through the statistics' bookkeeping
    return PPO(
        "MlpPolicy",
        env,
        n_steps=64,
        batch_size=32,
        n_epochs=1,
        learning_rate=0.0,
        policy_kwargs=dict(net_arch=[16, 16]),
        seed=0,
        device="cpu",
    )


def _actions_values(model, raw):
    obs = torch.as_tensor(model.get_env().normalize_obs(raw), dtype=torch.float32)
    with torch.no_grad():
        return model.policy.get_distribution(obs).distribution.mean, model.policy.predict_values(obs)


@pytest.mark.parametrize("preserve", [True, False])
def test_statistics_move_and_only_preserve_keeps_the_function(preserve):
    model = _model()
    model.learn(0)  # the first reset updates the statistics before any callback runs
    raw = np.random.default_rng(0).uniform([-1, -1, -8], [1, 1, 8], size=(64, 3)).astype(np.float32)
    mean0 = model.get_env().obs_rms.mean.copy()
    before = _actions_values(model, raw)
    model.learn(192, callback=[PreservingObsNormalization()] if preserve else [], reset_num_timesteps=False)
    assert not np.allclose(model.get_env().obs_rms.mean, mean0, atol=1e-3)
    after = _actions_values(model, raw)
    same = all(torch.allclose(a, b, atol=1e-5) for a, b in zip(before, after))
    assert same == preserve
