"""Constraint-based pre-training: hard and soft constrained PPO/SAC experts, their stock export
and the bank that takes their templates."""

import subprocess
import sys

import pytest
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.utils import polyak_update

import weit_rl.agents.expert as expert_mod
from weit_rl.artifacts.bank import load_bank
from weit_rl.artifacts.build_bank import build_bank
from weit_rl.policies.constrained import ConstrainedActorCriticPolicy, ConstrainedSACPolicy, export_stock
from weit_rl.policies.sb3 import read_weights
from weit_rl.templates.kron import KronMLP, TemplateSet
from weit_rl.templates.pretrain import soft_penalty, write_compositions

ALGOS = {
    "ppo": (PPO, ConstrainedActorCriticPolicy, {"n_steps": 64, "batch_size": 32, "n_epochs": 1}),
    "sac": (SAC, ConstrainedSACPolicy, {"learning_starts": 32, "batch_size": 32, "buffer_size": 500}),
}


def _model(algo, constraint, seed=0):
    cls, policy, kwargs = ALGOS[algo]
    policy_kwargs = dict(constraint=constraint, n_templates=4, block=8, net_arch=[24, 20], penalty=0.1)
    return cls(policy, "Hopper-v5", policy_kwargs=policy_kwargs, seed=seed, device="cpu", **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_hard_layers_are_their_compositions_and_export_exactly(algo, tmp_path):
    model = _model(algo, "hard")
    model.learn(96)  # a few updates: the cached rollout weights must follow the optimizer
    krons = model.policy.krons()
    weights = read_weights(model.policy)
    for (w, b), (cw, cb) in zip(weights["actor"], krons["actor"].materialize()):
        assert torch.allclose(w, cw, atol=1e-6) and torch.allclose(b, cb, atol=1e-6)
    for i, critic in enumerate(weights["critics"]):
        for (w, b), (cw, cb) in zip(critic, krons[f"critic{i}"].materialize()):
            assert torch.allclose(w, cw, atol=1e-6) and torch.allclose(b, cb, atol=1e-6)
    export_stock(model, tmp_path / "model.zip")
    stock = type(model).load(tmp_path / "model.zip", device="cpu")
    assert type(stock.policy).__name__ in ("ActorCriticPolicy", "SACPolicy")
    for a, b in zip(read_weights(stock.policy)["actor"], weights["actor"]):
        assert torch.allclose(a[0], b[0], atol=1e-6) and torch.allclose(a[1], b[1], atol=1e-6)


def test_rollout_cache_follows_parameter_changes():
    net = KronMLP(TemplateSet(5, 3, 2, 4), [6], "relu")
    with torch.no_grad():
        before = net.layer(0)[0].clone()
        net.scalers.weight[0].mul_(2.0)  # an optimizer step writes in place
        after = net.layer(0)[0]
    assert torch.allclose(after, 2 * before)


def test_sac_target_critic_follows_polyak_updates():
    model = _model("sac", "hard")
    critic, target = model.policy.critic, model.policy.critic_target
    obs, act = torch.randn(4, 11), torch.randn(4, 3)
    with torch.no_grad():
        before = target(obs, act)[0].clone()  # assembled once, as a training step does
        for p in critic.parameters():
            p.add_(0.1 * torch.randn_like(p))
        polyak_update(critic.parameters(), target.parameters(), 1.0)  # SAC's own update, through .data
        after = target(obs, act)[0]
        assert not torch.allclose(after, before)
        assert torch.allclose(after, critic(obs, act)[0], atol=1e-6)


def test_soft_penalty_is_zero_exactly_at_compositions():
    torch.manual_seed(0)
    net = KronMLP(TemplateSet(5, 3, 2, 4), [6, 7], "relu")
    layers = [[torch.nn.Linear(5, 6)], [torch.nn.Linear(6, 7)], [torch.nn.Linear(7, 2), torch.nn.Linear(7, 1)]]
    penalty = lambda: soft_penalty(1.0, [(net, layers)]).item()  # noqa: E731
    assert penalty() > 0
    write_compositions([(net, layers)])
    assert penalty() == 0.0
    with torch.no_grad():
        layers[2][1].bias.add_(1e-3)
    assert penalty() > 0


@pytest.mark.slow
def test_soft_penalty_pulls_weights_towards_the_composition():
    model = _model("ppo", "soft")
    tied = model.policy.tied
    start = soft_penalty(1.0, tied).item()
    assert start == 0.0  # starts in template form
    model.learn(128)
    assert 0.0 < soft_penalty(1.0, tied).item()  # RL moved the weights, the penalty keeps them near


LOADER = """
import sys
sys.modules["weit_rl"] = None  # any import of weit_rl now fails
from stable_baselines3 import {algo}
model = {algo}.load(sys.argv[1], device="cpu")
print(type(model.policy).__name__)
"""


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "sac"])
@pytest.mark.parametrize("scheme", ["hard", "soft"])
def test_constrained_expert_end_to_end_and_its_bank(algo, scheme, tmp_path, monkeypatch):
    recipe = {
        "net_arch": [16, 16],
        "steps": 128,
        "seeds": [0],
        "eval_freq": 64,
        "keep": "last",
        "hyperparams": {"n_steps": 64, "batch_size": 32, "n_epochs": 1}
        if algo == "ppo"
        else {"learning_starts": 32, "batch_size": 32, "buffer_size": 500},
    }
    monkeypatch.setattr(expert_mod, "expert_recipe", lambda algo, env_id: recipe)
    monkeypatch.setattr(expert_mod, "EVAL_EPISODES", 2)
    out = tmp_path / "expert"
    manifest = expert_mod.train_expert(
        "Hopper-v5", algo, None, None, "cpu", out, "tests", progress_bar=False, pretrain=scheme
    )
    assert manifest["pretraining"]["constraint"] == scheme
    loaded = subprocess.run(
        [sys.executable, "-c", LOADER.format(algo=algo.upper()), str(out / "model.zip")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == ("ActorCriticPolicy" if algo == "ppo" else "SACPolicy")
    bank = load_bank(build_bank(str(out), "Hopper", algo, str(tmp_path / "bank.safetensors"), samples=200, calib=100))
    trained = ALGOS[algo][0].load(out / "candidates" / "s0" / "model.zip", device="cpu")
    krons = trained.policy.krons()
    for mine, theirs in ((bank.actor, krons["actor"].templates), (bank.critic, krons["critic0"].templates)):
        for (name, a), b in zip(mine.state_dict().items(), theirs.state_dict().values()):
            assert torch.equal(a, b), name  # bit-identical
    assert bank.manifest["pretraining"]["constraint"] == scheme and bank.manifest["template_steps"] == 0
    assert bank.manifest["teacher_widths"] == [16, 16]
