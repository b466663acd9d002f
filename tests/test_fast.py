"""The fast engine (weit_rl/policies/fast.py) is SB3's algorithm: from the same state and batch one
update of each engine gives the same losses and parameters; its models load in stock SB3;
runs record their engine, and a run recorded before engines existed reads as stock."""

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from weit_rl.agents import CriticWarmup, RunConfig, train
from weit_rl.agents.config import absent, changed_fields, prepare
from weit_rl.numerics import PINNED
from weit_rl.policies.critics import LayerNormSACPolicy
from weit_rl.policies.fast import FastPPO, FastSAC, adam_step, fuse_adam

from conftest import scratch_run

TOL = 1e-5


def _twins(fast_cls, stock_cls, make, tmp_path):
    """A stock model trained a little, and a fast model loaded from its save with the same buffers."""
    stock = make(stock_cls)
    stock.save(tmp_path / "model.zip")
    fast = fast_cls.load(tmp_path / "model.zip", env=stock.get_env())
    fast.set_logger(stock.logger)
    for name in ("replay_buffer", "rollout_buffer"):
        if getattr(stock, name, None) is not None:
            setattr(fast, name, copy.deepcopy(getattr(stock, name)))
    fast._current_progress_remaining = stock._current_progress_remaining
    return stock, fast


def _same_state(a, b):
    sa, sb = a.policy.state_dict(), b.policy.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        torch.testing.assert_close(sa[name], sb[name], atol=TOL, rtol=0, msg=name)


def _sac(cls, ent_coef="auto", policy="MlpPolicy"):
    model = cls(
        policy,
        make_vec_env("Hopper-v5", seed=0),
        learning_starts=100,
        batch_size=64,
        ent_coef=ent_coef,
        policy_kwargs=dict(net_arch=[32, 32]),
        seed=0,
    )
    model.learn(300)
    return model


@pytest.mark.parametrize("ent_coef,policy", [("auto", "MlpPolicy"), (0.05, "MlpPolicy"), ("auto", LayerNormSACPolicy)])
def test_one_sac_update_of_each_engine_is_the_same(ent_coef, policy, tmp_path):
    stock, fast = _twins(FastSAC, SAC, lambda cls: _sac(cls, ent_coef, policy), tmp_path)
    assert fast._fast_plan() is not None  # the fast update, not SB3's fallback
    for step in range(3):  # the same batches and noise: the same draws, in the same order
        for model in (stock, fast):
            np.random.seed(step)
            torch.manual_seed(step)
            model.train(gradient_steps=1, batch_size=64)
        _same_state(stock, fast)
        if ent_coef == "auto":
            torch.testing.assert_close(stock.log_ent_coef, fast.log_ent_coef, atol=TOL, rtol=0)
        for key in ("train/actor_loss", "train/critic_loss", "train/ent_coef"):
            assert stock.logger.name_to_value[key] == pytest.approx(fast.logger.name_to_value[key], abs=TOL)
    # the targets moved by Polyak averaging too
    assert any(not torch.equal(a, b) for a, b in zip(fast.critic.parameters(), fast.critic_target.parameters()))


def test_a_frozen_actor_stays_frozen_on_the_fast_engine(tmp_path):
    """A critic warm-up (agents/aids.py) freezes the actor: only the critics learn."""
    fast = _sac(FastSAC)
    before = [p.detach().clone() for p in fast.actor.parameters()]
    critic_before = [p.detach().clone() for p in fast.critic.parameters()]
    fast.learn(200, callback=CriticWarmup(10_000), reset_num_timesteps=False)
    assert all(torch.equal(a, b) for a, b in zip(before, fast.actor.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(critic_before, fast.critic.parameters()))


def _ppo(cls):
    env = VecNormalize(make_vec_env("HalfCheetah-v5", seed=0))
    model = cls(
        "MlpPolicy",
        env,
        n_steps=256,
        batch_size=64,
        n_epochs=1,
        ent_coef=0.01,
        clip_range_vf=0.2,
        policy_kwargs=dict(net_arch=dict(pi=[32, 32], vf=[32, 32]), log_std_init=-1.0),
        seed=0,
    )
    model.learn(256)
    return model


def test_one_ppo_epoch_of_each_engine_is_the_same(tmp_path):
    stock, fast = _twins(FastPPO, PPO, _ppo, tmp_path)
    for model in (stock, fast):  # one epoch on the same rollout, the same minibatch order
        np.random.seed(7)
        model.train()
    _same_state(stock, fast)
    for key in ("entropy_loss", "policy_gradient_loss", "value_loss", "approx_kl", "clip_fraction", "loss"):
        assert stock.logger.name_to_value[f"train/{key}"] == pytest.approx(
            fast.logger.name_to_value[f"train/{key}"], abs=TOL
        ), key


def test_a_ppo_rollout_of_each_engine_is_the_same():
    """From the same seed, the lean rollout draws the same actions and fills the same buffer,
    through VecNormalize and time-outs' bootstraps (episodes of 300 steps, rollouts of 1,000)."""
    buffers = []
    for cls in (PPO, FastPPO):
        env = VecNormalize(make_vec_env("HalfCheetah-v5", seed=3, env_kwargs={"max_episode_steps": 300}))
        model = cls("MlpPolicy", env, n_steps=1000, batch_size=100, n_epochs=1, seed=3)
        model.learn(1000)  # one rollout (after an update the engines agree to 1e-5, not bit for bit)
        buffers.append(model.rollout_buffer)
    assert model._plan  # the lean rollout ran
    stock, fast = buffers
    for name in ("observations", "actions", "rewards", "episode_starts", "values", "log_probs", "returns"):
        np.testing.assert_array_equal(getattr(stock, name), getattr(fast, name), err_msg=name)


def test_adam_step_is_adams_step_and_runs_its_hooks():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    ours, theirs = fuse_adam(torch.optim.Adam(params, lr=0.01)), torch.optim.Adam(twins, lr=0.01, fused=True)
    calls = []
    ours.register_step_pre_hook(lambda *a: calls.append("pre"))
    ours.register_step_post_hook(lambda *a: calls.append("post"))
    for _ in range(3):
        grads = [torch.randn_like(p) for p in params]
        for p, q, g in zip(params, twins, grads):
            p.grad, q.grad = g.clone(), g.clone()
        adam_step(ours)
        theirs.step()
    assert calls == ["pre", "post"] * 3
    for p, q in zip(params, twins):
        assert torch.equal(p, q)
    assert ours.state_dict()["state"][0]["step"] == 3


LOADER = """
import sys, json
sys.modules["weit_rl"] = None  # any import of weit_rl now fails
import numpy as np
import torch
from stable_baselines3 import {algo}
torch.set_num_threads(int(sys.argv[3]))  # the test's: threads split the products, and their rounding
model = {algo}.load(sys.argv[1], device="cpu")
actions, _ = model.predict(np.load(sys.argv[2]), deterministic=True)
print(json.dumps(actions.tolist()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_a_fast_run_loads_in_stock_sb3_and_records_its_engine(algo, tmp_path):
    run = train(scratch_run(tmp_path / "run", algo, steps=256, rollout=128 if algo == "ppo" else 64, eval_freq=256))
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["engine"] == "fast"
    obs = np.random.default_rng(0).normal(size=(6, 11)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            LOADER.format(algo=algo.upper()),
            str(run / "model.zip"),
            str(tmp_path / "obs.npy"),
            str(torch.get_num_threads()),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    ours = (FastPPO if algo == "ppo" else FastSAC).load(run / "model.zip", device="cpu")
    expected, _ = ours.predict(obs, deterministic=True)
    np.testing.assert_array_equal(np.array(json.loads(out.stdout), dtype=np.float32), expected)


def test_a_config_from_before_engines_reads_as_stock():
    assert absent("engine") == "stock"
    cfg = prepare(RunConfig(env="Hopper", init="scratch", obs_stats="fresh", engine="stock"))
    saved = yaml.safe_load(yaml.safe_dump({k: v for k, v in vars(cfg).items() if k != "engine"}))
    assert changed_fields(cfg, saved) == []
    cfg.engine = "fast"
    assert changed_fields(cfg, saved) == ["engine: 'stock' -> 'fast'"]


@pytest.mark.slow
@pytest.mark.skipif(not PINNED, reason="kernels are pinned on x86-64 only")
def test_weit_rl_train_pins_the_kernels_of_its_engine(tmp_path):
    """A process reads its MKL branch once: `weit-rl train` sets it by --engine before torch starts."""
    for engine, branch in (("fast", "AVX2"), ("stock", "COMPATIBLE")):
        run = tmp_path / engine
        args = ["train", "--env", "Hopper", "--algo", "ppo", "--init", "scratch", "--obs-stats", "fresh"]
        args += ["--size", "tiny", "--steps", "64", "--eval-freq", "64", "--eval-episodes", "1", "--no-progress"]
        args += ["--engine", engine, "--run-dir", str(run), "--hyperparams", "n_steps=64", "batch_size=32"]
        env = {k: v for k, v in os.environ.items() if k not in PINNED}
        out = subprocess.run([sys.executable, "-m", "weit_rl.cli", *args], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        saved = yaml.safe_load((run / "config.yaml").read_text())
        assert saved["engine"] == engine and f"MKL_CBWR={branch}," in saved["kernels"]


def test_the_layer_norm_critic_normalizes_every_hidden_layer():
    model = SAC(LayerNormSACPolicy, make_vec_env("Hopper-v5"), policy_kwargs=dict(net_arch=[16, 8]), buffer_size=10)
    for critic in (model.critic, model.critic_target):
        for net in critic.q_networks:
            kinds = [type(m).__name__ for m in net]
            assert kinds == ["Linear", "LayerNorm", "ReLU", "Linear", "LayerNorm", "ReLU", "Linear"]
    assert set(model.critic.state_dict()) == set(model.critic_target.state_dict())
    critic_params = {id(p) for p in model.critic.parameters()}
    assert critic_params == {id(p) for group in model.critic.optimizer.param_groups for p in group["params"]}
    assert all(type(m) is not torch.nn.LayerNorm for m in model.actor.modules())
