"""Initializers and the SB3 policy classes: what gets written, determinism, fitting."""

import pytest
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env

from weit_rl import UserError
from weit_rl.bank import load_bank
from weit_rl.fit import evaluate_loss, fit_scalers, kron_nets
from weit_rl.policies import WeiTActorCriticPolicy, WeiTSACPolicy, as_stock
from weit_rl.sb3 import load_expert, read_weights

ENV = "HalfCheetah-v5"


def ppo(bank, arch, init="weit", seed=0, **kw):
    kwargs = dict(bank=str(bank), init=init, init_seed=seed, net_arch=arch, activation_fn=torch.nn.ReLU, **kw)
    return PPO(WeiTActorCriticPolicy, make_vec_env(ENV), policy_kwargs=kwargs, n_steps=64, batch_size=32, seed=seed)


def sac(bank, arch, init="weit", seed=0, **kw):
    kwargs = dict(bank=str(bank), init=init, init_seed=seed, net_arch=arch, activation_fn=torch.nn.ReLU, **kw)
    return SAC(WeiTSACPolicy, make_vec_env(ENV), policy_kwargs=kwargs, learning_starts=16, buffer_size=500,
               batch_size=16, seed=seed)


def test_scaler_fitting_beats_fresh_scalers(tiny_ppo_bank):
    bank = load_bank(tiny_ppo_bank)
    fresh = kron_nets(bank.actor, bank.critic, [40, 40], 1, "relu", torch.Generator().manual_seed(0))
    fitted, losses = fit_scalers(bank.actor, bank.critic, [40, 40], bank.calib, "relu", steps=150)
    assert evaluate_loss(fitted, bank.calib) < 0.5 * evaluate_loss(fresh, bank.calib)
    assert losses[-1] < losses[0]
    assert all(not p.requires_grad for p in bank.actor.parameters())  # templates stay frozen


def test_ppo_state_dict_keys_and_shapes_are_pinned(tiny_ppo_bank):
    sd = ppo(tiny_ppo_bank, [20, 9], fit_steps=5).policy.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {
        "log_std": (6,),
        "mlp_extractor.policy_net.0.weight": (20, 17), "mlp_extractor.policy_net.0.bias": (20,),
        "mlp_extractor.policy_net.2.weight": (9, 20), "mlp_extractor.policy_net.2.bias": (9,),
        "mlp_extractor.value_net.0.weight": (20, 17), "mlp_extractor.value_net.0.bias": (20,),
        "mlp_extractor.value_net.2.weight": (9, 20), "mlp_extractor.value_net.2.bias": (9,),
        "action_net.weight": (6, 9), "action_net.bias": (6,), "value_net.weight": (1, 9), "value_net.bias": (1,),
    }


def test_sac_writes_actor_both_critics_and_target(tiny_sac_bank):
    model = sac(tiny_sac_bank, [10], fit_steps=5)
    policy = model.policy
    sd = policy.state_dict()
    assert sd["actor.mu.weight"].shape == (6, 10) and sd["actor.log_std.weight"].shape == (6, 10)
    assert sd["critic.qf0.0.weight"].shape == (10, 23)
    for k, v in policy.critic.state_dict().items():
        assert torch.equal(v, policy.critic_target.state_dict()[k]), k
    assert not torch.equal(sd["critic.qf0.0.weight"], sd["critic.qf1.0.weight"])  # own scalers per Q


@pytest.mark.parametrize("arch", [[1], [7, 3], [33, 33, 33, 33, 33]])
def test_weit_initializes_any_depth_and_width_deterministically(tiny_ppo_bank, arch):
    a, b = ppo(tiny_ppo_bank, arch, fit_steps=20), ppo(tiny_ppo_bank, arch, fit_steps=20)
    c = ppo(tiny_ppo_bank, arch, fit_steps=20, seed=1)
    sa, sb, sc = a.policy.state_dict(), b.policy.state_dict(), c.policy.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert torch.equal(sa["log_std"], load_bank(tiny_ppo_bank).log_std)


def test_weit_policy_imitates_expert_better_than_scratch(tiny_ppo_bank):
    bank = load_bank(tiny_ppo_bank)
    obs, target = bank.calib.obs, bank.calib.actor_target

    def action_error(model):
        with torch.no_grad():
            mean = model.policy.get_distribution(obs).distribution.mean
        return float((mean - target).pow(2).mean())

    assert action_error(ppo(tiny_ppo_bank, [48, 48], fit_steps=200)) < action_error(ppo(tiny_ppo_bank, [48, 48], "scratch"))


def test_distill_trains_all_weights_with_same_budget(tiny_ppo_bank):
    base = ppo(tiny_ppo_bank, [24, 24], "scratch").policy.state_dict()
    distilled = ppo(tiny_ppo_bank, [24, 24], "distill", fit_steps=30).policy.state_dict()
    assert not torch.equal(base["mlp_extractor.policy_net.0.weight"], distilled["mlp_extractor.policy_net.0.weight"])
    assert torch.equal(distilled["log_std"], load_bank(tiny_ppo_bank).log_std)


def test_select_copies_evenly_spaced_neurons(tiny_ppo_expert, tiny_ppo_bank):
    expert = read_weights(load_expert(tiny_ppo_expert, "ppo")[0].policy)
    model = ppo(tiny_ppo_bank, [16, 11], "select", expert=str(tiny_ppo_expert))
    got = read_weights(model.policy)
    rows0 = torch.linspace(0, 31, 16).round().long()
    rows1 = torch.linspace(0, 31, 11).round().long()
    torch.testing.assert_close(got["actor"][0][0], expert["actor"][0][0][rows0])
    torch.testing.assert_close(got["actor"][1][0], expert["actor"][1][0][rows1][:, rows0])
    torch.testing.assert_close(got["actor"][2][0], expert["actor"][3][0][:, rows1])  # output layer kept
    with pytest.raises(UserError, match="wider or deeper"):
        ppo(tiny_ppo_bank, [64, 64], "select", expert=str(tiny_ppo_expert))


def test_bank_mismatches_raise_clear_errors(tiny_ppo_bank, tiny_sac_bank):
    with pytest.raises(UserError, match="built for PPO"):
        sac(tiny_ppo_bank, [8])
    with pytest.raises(UserError, match="built for SAC"):
        ppo(tiny_sac_bank, [8])
    with pytest.raises(UserError, match="built for HalfCheetah-v5, not Hopper-v5"):
        ppo(tiny_ppo_bank, [8], task="Hopper-v5")
    with pytest.raises(UserError, match="observation/action sizes 17/6"):
        PPO(WeiTActorCriticPolicy, make_vec_env("Hopper-v5"),
            policy_kwargs=dict(bank=str(tiny_ppo_bank), activation_fn=torch.nn.ReLU))
    with pytest.raises(UserError, match="tanh"):
        PPO(WeiTActorCriticPolicy, make_vec_env(ENV), policy_kwargs=dict(bank=str(tiny_ppo_bank)))


def test_as_stock_records_plain_sb3_classes(tiny_ppo_bank):
    model = as_stock(ppo(tiny_ppo_bank, [8], fit_steps=1))
    assert model.policy_class.__module__.startswith("stable_baselines3")
    assert "bank" not in model.policy_kwargs and model.policy_kwargs["net_arch"] == [8]
