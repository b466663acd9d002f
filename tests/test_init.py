"""Initializers and the SB3 policy classes: what gets written, determinism, fitting."""

import re
import shutil

import pytest
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env

from weit_rl import UserError
from weit_rl.artifacts.bank import load_bank
from weit_rl.policies.classes import WeiTActorCriticPolicy, WeiTSACPolicy, as_stock
from weit_rl.policies.sb3 import load_model, read_weights
from weit_rl.templates.fit import (
    PolicyNets,
    distill_loss,
    evaluate_loss,
    fit_scalers,
    kron_nets,
    learn_templates,
    train_nets,
    value_scale,
)
from weit_rl.templates.kron import PlainMLP

ENV = "HalfCheetah-v5"
# The initializers' own math: weights in the bank's units (no statistics folded in), PPO's log_std
# from the source, scaler fitting alone unless a test asks for a recipe (tests/test_api.py checks
# the library defaults).
UNITS = dict(observations="normalized", log_std="source", recipe="plain")


def ppo(bank, arch, init="weit", seed=0, **kw):
    kwargs = dict(bank=str(bank), init=init, init_seed=seed, net_arch=arch, activation_fn=torch.nn.ReLU) | UNITS | kw
    return PPO(WeiTActorCriticPolicy, make_vec_env(ENV), policy_kwargs=kwargs, n_steps=64, batch_size=32, seed=seed)


def sac(bank, arch, init="weit", seed=0, **kw):
    kwargs = dict(bank=str(bank), init=init, init_seed=seed, net_arch=arch, activation_fn=torch.nn.ReLU) | UNITS | kw
    return SAC(
        WeiTSACPolicy,
        make_vec_env(ENV),
        policy_kwargs=kwargs,
        learning_starts=16,
        buffer_size=500,
        batch_size=16,
        seed=seed,
    )


def test_scaler_fitting_beats_fresh_scalers(tiny_ppo_bank):
    bank = load_bank(tiny_ppo_bank)
    fresh = kron_nets(bank.actor, bank.critic, [40, 40], 1, "relu", torch.Generator().manual_seed(0))
    data = bank.units.apply(bank.calib_set)
    fitted, losses = fit_scalers(bank.actor, bank.critic, [40, 40], data, "relu", steps=150)
    assert evaluate_loss(fitted, data) < 0.5 * evaluate_loss(fresh, data)
    assert losses[-1] < losses[0]
    assert all(not p.requires_grad for p in bank.actor.parameters())  # templates stay frozen


def test_ppo_state_dict_keys_and_shapes_are_pinned(tiny_ppo_bank):
    sd = ppo(tiny_ppo_bank, [20, 9], fit_steps=5).policy.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {
        "log_std": (6,),
        "mlp_extractor.policy_net.0.weight": (20, 17),
        "mlp_extractor.policy_net.0.bias": (20,),
        "mlp_extractor.policy_net.2.weight": (9, 20),
        "mlp_extractor.policy_net.2.bias": (9,),
        "mlp_extractor.value_net.0.weight": (20, 17),
        "mlp_extractor.value_net.0.bias": (20,),
        "mlp_extractor.value_net.2.weight": (9, 20),
        "mlp_extractor.value_net.2.bias": (9,),
        "action_net.weight": (6, 9),
        "action_net.bias": (6,),
        "value_net.weight": (1, 9),
        "value_net.bias": (1,),
    }


def test_sac_writes_the_fitted_actor_both_critics_and_target(tiny_sac_bank):
    bank = load_bank(tiny_sac_bank)
    fitted, _ = fit_scalers(bank.actor, bank.critic, [10, 7], bank.units.apply(bank.calib_set), "relu", steps=5, seed=0)
    want = bank.units.fold(fitted.materialize())  # what weit fits for this size and seed: it must land in every module
    policy = sac(tiny_sac_bank, [10, 7], fit_steps=5).policy
    actor, (head_w, head_b) = policy.actor, want["actor"][-1]
    got_actor = [(m.weight, m.bias) for m in actor.latent_pi if isinstance(m, torch.nn.Linear)]
    for (w, b), (ew, eb) in zip(got_actor, want["actor"][:-1], strict=True):
        torch.testing.assert_close(w.detach(), ew)
        torch.testing.assert_close(b.detach(), eb)
    torch.testing.assert_close(actor.mu.weight.detach(), head_w[:6])  # pre-tanh mean head
    torch.testing.assert_close(actor.mu.bias.detach(), head_b[:6])
    torch.testing.assert_close(actor.log_std.weight.detach(), head_w[6:])  # log_std head
    torch.testing.assert_close(actor.log_std.bias.detach(), head_b[6:])
    for q, expected in zip(policy.critic.q_networks, want["critics"], strict=True):
        got = [(m.weight.detach(), m.bias.detach()) for m in q if isinstance(m, torch.nn.Linear)]
        for (w, b), (ew, eb) in zip(got, expected, strict=True):
            torch.testing.assert_close(w, ew)
            torch.testing.assert_close(b, eb)
    for k, v in policy.critic.state_dict().items():
        assert torch.equal(v, policy.critic_target.state_dict()[k]), k
    assert not torch.equal(want["critics"][0][0][0], want["critics"][1][0][0])  # own scalers per Q


def test_learn_templates_lowers_the_distillation_loss(tiny_ppo_bank):
    bank = load_bank(tiny_ppo_bank)
    data = bank.units.apply(bank.calib_set)
    actor_t, critic_t, losses, _ = learn_templates(
        data,
        [[16], [8, 8]],
        n_templates=4,
        block=8,
        activation="relu",
        steps=150,
        lr=1e-2,
        batch_size=128,
        seed=0,
        progress=False,
    )
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])
    learned, _ = fit_scalers(actor_t, critic_t, [12], data, "relu", steps=50)
    untrained_t, untrained_c, _, _ = learn_templates(data, [[16]], 4, 8, "relu", steps=0, seed=0, progress=False)
    untrained, _ = fit_scalers(untrained_t, untrained_c, [12], data, "relu", steps=50)
    assert evaluate_loss(learned, data) < evaluate_loss(untrained, data)  # templates carry what was learned


def test_select_refuses_an_expert_that_does_not_fit(tiny_ppo_bank, tiny_ppo_expert, tiny_hopper_expert):
    with pytest.raises(UserError, match="observation/action sizes 11/3 but the env has 17/6"):
        ppo(tiny_ppo_bank, [16], "select", expert=str(tiny_hopper_expert))
    with pytest.raises(UserError, match="uses relu activations but the policy uses tanh"):
        PPO(
            WeiTActorCriticPolicy,
            make_vec_env(ENV),
            policy_kwargs=dict(init="select", expert=str(tiny_ppo_expert), net_arch=[16]),
        )


def test_critic_count_and_sde_are_checked(tiny_sac_bank, tiny_ppo_bank):
    with pytest.raises(UserError, match="holds 2 critic.* but the policy has 3"):
        sac(tiny_sac_bank, [8], n_critics=3)
    with pytest.raises(UserError, match="use_sde"):
        PPO(
            WeiTActorCriticPolicy,
            make_vec_env(ENV),
            use_sde=True,
            policy_kwargs=dict(bank=str(tiny_ppo_bank), activation_fn=torch.nn.ReLU, net_arch=[8]),
        )


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
    obs, target = bank.calib_set.obs, bank.calib_set.actor_target

    def action_error(model):
        with torch.no_grad():
            mean = model.policy.get_distribution(obs).distribution.mean
        return float((mean - target).pow(2).mean())

    fitted, scratch = ppo(tiny_ppo_bank, [48, 48], fit_steps=200), ppo(tiny_ppo_bank, [48, 48], "scratch")
    assert action_error(fitted) < action_error(scratch)


def test_distill_trains_all_weights_with_same_budget(tiny_ppo_bank):
    base = ppo(tiny_ppo_bank, [24, 24], "scratch").policy.state_dict()
    distilled = ppo(tiny_ppo_bank, [24, 24], "distill", fit_steps=30).policy.state_dict()
    assert not torch.equal(base["mlp_extractor.policy_net.0.weight"], distilled["mlp_extractor.policy_net.0.weight"])
    assert torch.equal(distilled["log_std"], load_bank(tiny_ppo_bank).log_std)


def test_select_copies_evenly_spaced_neurons(tiny_ppo_expert, tiny_ppo_bank):
    expert = read_weights(load_model(tiny_ppo_expert, "ppo")[0].policy)
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
        PPO(
            WeiTActorCriticPolicy,
            make_vec_env("Hopper-v5"),
            policy_kwargs=dict(bank=str(tiny_ppo_bank), activation_fn=torch.nn.ReLU),
        )
    with pytest.raises(UserError, match="activation_fn=Tanh but the bank's templates were fitted with relu"):
        PPO(
            WeiTActorCriticPolicy,
            make_vec_env(ENV),
            policy_kwargs=dict(bank=str(tiny_ppo_bank), activation_fn=torch.nn.Tanh),
        )


def test_the_policy_takes_the_banks_activation_and_finds_a_bank_by_name(tiny_ppo_bank, tmp_path, monkeypatch, capsys):
    (tmp_path / "banks").mkdir()
    shutil.copy(tiny_ppo_bank, tmp_path / "banks" / "Mine-ppo.safetensors")
    monkeypatch.setenv("WEIT_RL_HOME", str(tmp_path))
    kwargs = dict(bank="Mine-ppo", net_arch=[8], fit_steps=1, finetune_steps=0)
    model = PPO(WeiTActorCriticPolicy, make_vec_env(ENV), policy_kwargs=kwargs)
    assert model.policy.activation_fn is torch.nn.ReLU  # PPO's default is Tanh: this is the bank's
    assert model.policy.init_context.bank == str(tmp_path / "banks" / "Mine-ppo.safetensors")
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith("weit_rl: initializing the 8 PPO policy by weit from ") and said[0].endswith(
        "Mine-ppo.safetensors"
    )
    assert re.fullmatch(r"weit_rl: policy initialized in \d+\.\d s", said[1])
    with pytest.raises(UserError, match="no template bank named 'Nope-ppo'"):
        PPO(WeiTActorCriticPolicy, make_vec_env(ENV), policy_kwargs=dict(kwargs, bank="Nope-ppo"))


def test_as_stock_records_plain_sb3_classes(tiny_ppo_bank):
    model = as_stock(ppo(tiny_ppo_bank, [8], fit_steps=1))
    assert model.policy_class.__module__.startswith("stable_baselines3")
    assert "bank" not in model.policy_kwargs and model.policy_kwargs["net_arch"] == [8]


def test_weit_sac_critics_predict_the_experts_q_values_in_raw_units(tiny_sac_bank):
    data = load_bank(tiny_sac_bank).calib_set  # raw observations and Q-values, as the policy meets them

    def q_error(model):
        with torch.no_grad():
            q1, q2 = model.policy.critic(data.obs, data.actions)
        return float((torch.cat([q1, q2], 1) - data.critic_target).pow(2).mean())

    fitted, scratch = sac(tiny_sac_bank, [32, 32], fit_steps=300), sac(tiny_sac_bank, [32, 32], "scratch")
    assert q_error(fitted) < 0.25 * q_error(scratch)


def _adam_one_tensor_at_a_time(nets, params, data, steps, lr, seed, penalty=None):
    """train_nets as it was before it flattened the parameters: torch.optim.Adam on each."""
    gen, opt, scale = torch.Generator().manual_seed(seed), torch.optim.Adam(params, lr=lr), value_scale(data)
    for _ in range(steps):
        batch = data.batch(torch.randint(len(data), (min(64, len(data)),), generator=gen))
        loss = sum(distill_loss(n, batch, scale) for n in nets) / len(nets)
        loss = loss if penalty is None else loss + penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("arch", [[16, 16], [24, 24, 24]])
def test_flat_adam_gives_the_weights_of_adam_on_each_tensor_bit_for_bit(tiny_sac_bank, arch):
    """train_nets runs Adam on one flat buffer (fast for small networks); the weights must be
    those of torch.optim.Adam on every parameter, bit for bit: the committed results stand.
    Scaler fitting (templates frozen), then full-weight training with a penalty term (two critics)."""
    bank = load_bank(tiny_sac_bank)
    data = bank.units.apply(bank.calib_set)
    ours, _ = fit_scalers(bank.actor, bank.critic, arch, data, "relu", steps=25, batch_size=64, seed=3)
    ref = kron_nets(bank.actor, bank.critic, arch, 2, "relu", torch.Generator().manual_seed(3))
    params = list(ref.actor.scalers.parameters()) + [p for c in ref.critics for p in c.scalers.parameters()]
    _adam_one_tensor_at_a_time([ref], params, data, 25, 1e-2, 3)
    for a, b in zip(ours.parameters(), ref.parameters()):
        assert torch.equal(a, b)

    weights = ours.materialize()
    plain = [PolicyNets(PlainMLP(weights["actor"]), [PlainMLP(c) for c in weights["critics"]]) for _ in range(2)]
    norm = lambda: plain[0].actor.weight[0].norm() * 1e-3  # noqa: E731
    train_nets([plain[0]], list(plain[0].parameters()), data, 40, lr=1e-3, batch_size=64, seed=5, penalty=norm)
    norm_ref = lambda: plain[1].actor.weight[0].norm() * 1e-3  # noqa: E731
    _adam_one_tensor_at_a_time([plain[1]], list(plain[1].parameters()), data, 40, 1e-3, 5, penalty=norm_ref)
    for a, b in zip(plain[0].parameters(), plain[1].parameters()):
        assert torch.equal(a, b)
        assert a.grad is not None and a.grad.data_ptr() != b.grad.data_ptr()  # own gradient back, not a view
    for p in plain[0].parameters():  # each parameter owns its storage again, not a slice of the flat buffer
        assert p.untyped_storage().nbytes() == p.numel() * p.element_size()
