"""The bank as a teacher: the largest auxiliary network of template learning is stored as
scalers, comes back, and acts as an SB3 policy computing that network (tests/test_aids.py: it teaches)."""

import dataclasses

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.sac.policies import SACPolicy

from weit_rl import UserError
from weit_rl.artifacts.bank import load_bank, save_bank
from weit_rl.policies.classes import policy_class_for
from weit_rl.policies.teacher import teacher_nets, teacher_obs_stats, teacher_policy


def test_the_largest_auxiliary_network_is_stored_and_comes_back(tiny_ppo_bank, tiny_sac_bank):
    for path in (tiny_ppo_bank, tiny_sac_bank):
        bank = load_bank(path)
        m = bank.manifest
        assert m["teacher_widths"] == [16, 16]  # of the conftest's aux sizes [16, 16] and [24], the most scalers
        nets = teacher_nets(bank)
        assert len(nets.critics) == m["n_critics"]
        # the stored scalers are the ones template learning trained: its fit is far better than fresh scalers'
        noise = {k: torch.randn_like(v) for k, v in bank.teacher.items()}
        fresh = teacher_nets(dataclasses.replace(bank, teacher=noise))
        assert _fit(nets, bank) < 0.5 * _fit(fresh, bank)


def _fit(nets, bank):
    data = bank.units.apply(bank.calib_set)
    return float((nets.actor(data.obs) - data.actor_target).pow(2).mean())


def test_a_bank_without_a_teacher_says_how_to_get_one(tiny_ppo_bank, tmp_path):
    old = save_bank(tmp_path / "old.safetensors", dataclasses.replace(load_bank(tiny_ppo_bank), teacher=None))
    with pytest.raises(UserError, match="stores no teacher network .* rebuild it"):
        teacher_nets(load_bank(old))


@pytest.mark.parametrize("algo", ["ppo", "sac"])
@pytest.mark.parametrize("init", ["scratch", "weit"])
def test_the_teacher_policy_is_the_teacher_network_on_raw_observations(algo, init, tiny_ppo_bank, tiny_sac_bank):
    """An SB3 policy of the asking policy's stock class with the teacher's widths, computing
    the teacher network's function on the observations the expert saw (its deterministic
    action: PPO's mean, SAC's squashed mean), whether the asking policy is stock SB3's or one
    of weit_rl's initialized classes (which must not initialize the teacher again)."""
    path = tiny_ppo_bank if algo == "ppo" else tiny_sac_bank
    bank = load_bank(path)
    cls, stock = (PPO, ActorCriticPolicy) if algo == "ppo" else (SAC, SACPolicy)
    kwargs = dict(net_arch=[8, 8], activation_fn=torch.nn.ReLU)
    policy = policy_class_for(algo) if init == "weit" else "MlpPolicy"
    kwargs |= dict(bank=str(path), init=init, fit_steps=5) if init == "weit" else {}
    like = cls(policy, make_vec_env("HalfCheetah-v5"), policy_kwargs=kwargs, seed=0, device="cpu").policy
    teacher = teacher_policy(bank, like)
    assert type(teacher) is stock and teacher.observation_space == like.observation_space
    with torch.no_grad():
        acted = torch.as_tensor(teacher._predict(bank.calib_set.obs, deterministic=True))
        out = teacher_nets(bank).actor(bank.units.apply(bank.calib_set).obs)[:, :6]
    torch.testing.assert_close(acted, out if algo == "ppo" else torch.tanh(out), atol=1e-5, rtol=1e-4)
    stats = teacher_obs_stats(bank)
    if algo == "ppo":
        np.testing.assert_allclose(stats[0], bank.obs_mean.numpy(), rtol=1e-6)
        assert torch.equal(teacher.log_std.detach(), bank.log_std)
    else:
        assert stats is None
