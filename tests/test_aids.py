"""Training-time aids: critic warm-up freezes exactly the actor; retention pulls the
policy towards its teacher; the KL is the textbook one."""

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize
from torch.distributions import Normal, kl_divergence

from weit_rl import UserError
from weit_rl.agents import RunConfig, train
from weit_rl.agents.aids import CriticWarmup, Retention, actor_parameters, frozen_copy, gaussian_kl, gaussian_params
from weit_rl.agents.normalization import PreservingObsNormalization
from weit_rl.artifacts.bank import load_bank
from weit_rl.policies.sb3 import load_model

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`


def test_gaussian_kl_matches_torch():
    g = torch.Generator().manual_seed(0)
    m1, m2, s1, s2 = (torch.randn(5, 3, generator=g) for _ in range(4))
    expected = kl_divergence(Normal(m1, s1.exp()), Normal(m2, s2.exp())).sum(-1)
    assert torch.allclose(gaussian_kl(m1, s1, m2, s2), expected, atol=1e-6)


def _ppo(**kw):
    return PPO(
        "MlpPolicy",
        "Pendulum-v1",
        n_steps=64,
        batch_size=32,
        n_epochs=2,
        learning_rate=3e-3,
        policy_kwargs=dict(net_arch=[16]),
        seed=0,
        device="cpu",
        **kw,
    )


def _snapshot(params):
    return [p.detach().clone() for p in params]


def _critic_parameters(model, algo):
    return model.policy.critic.parameters() if algo == "sac" else model.policy.mlp_extractor.value_net.parameters()


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_critic_warmup_moves_only_the_critic(algo, tmp_path):
    """With retention on as well (the default recipe), which has nothing to pull meanwhile."""
    model = (
        _ppo()
        if algo == "ppo"
        else SAC(
            "MlpPolicy",
            "Pendulum-v1",
            learning_starts=16,
            batch_size=16,
            policy_kwargs=dict(net_arch=[16]),
            seed=0,
            device="cpu",
        )
    )
    actor = _snapshot(actor_parameters(model.policy))
    critic = _snapshot(_critic_parameters(model, algo))
    model.learn(128, callback=[CriticWarmup(steps=10_000), Retention(1.0, 10_000, tmp_path / "teacher.pt")])
    assert all(torch.equal(a, b) for a, b in zip(actor, actor_parameters(model.policy)))
    critic_after = _critic_parameters(model, algo)
    assert any(not torch.equal(a, b) for a, b in zip(critic, critic_after))
    assert all(p.requires_grad for p in actor_parameters(model.policy))  # unfrozen at the end


def _sac_auto_entropy():
    return SAC(
        "MlpPolicy",
        "Pendulum-v1",
        learning_starts=16,
        batch_size=16,
        ent_coef="auto_0.2",
        policy_kwargs=dict(net_arch=[16]),
        seed=0,
        device="cpu",
    )


def test_critic_warmup_holds_sacs_entropy_weight_until_the_actor_moves():
    model = _sac_auto_entropy()
    start = model.log_ent_coef.detach().clone()
    model.learn(96, callback=CriticWarmup(steps=10_000))
    assert torch.equal(model.log_ent_coef.detach(), start)  # left free, it drifts every update
    model = _sac_auto_entropy()
    model.learn(96, callback=CriticWarmup(steps=48))
    assert not torch.equal(model.log_ent_coef.detach(), start)  # tuned again once the actor is released


def _kl_to_start(model, start, obs):
    with torch.no_grad():
        return float(gaussian_kl(*gaussian_params(start, obs), *gaussian_params(model.policy, obs)).mean())


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_retention_keeps_the_policy_near_its_start(algo, tmp_path):
    def make():
        if algo == "ppo":
            return _ppo()
        return SAC(
            "MlpPolicy",
            "Pendulum-v1",
            learning_starts=16,
            batch_size=16,
            learning_rate=3e-3,
            policy_kwargs=dict(net_arch=[16]),
            seed=0,
            device="cpu",
        )

    obs = torch.as_tensor(np.stack([make().observation_space.sample() for _ in range(256)]))
    kls = {}
    for weight in (0.0, 100.0):
        model = make()
        start = frozen_copy(model.policy)
        model.learn(256, callback=Retention(weight, decay_steps=10_000, teacher_path=tmp_path / f"t{weight}.pt"))
        kls[weight] = _kl_to_start(model, start, obs)
        assert (tmp_path / f"t{weight}.pt").exists()
    assert kls[100.0] < 0.5 * kls[0.0]


def test_retention_resumes_with_the_saved_teacher(tmp_path):
    path = tmp_path / "teacher.pt"
    model = _ppo()
    model.learn(64, callback=Retention(1.0, 10_000, path))
    saved = torch.load(path, weights_only=False)["policy"]
    model.learn(64, callback=Retention(1.0, 10_000, path), reset_num_timesteps=False)
    assert all(torch.equal(saved[k], v) for k, v in torch.load(path, weights_only=False)["policy"].items())


@pytest.mark.parametrize("preserve", [True, False])
def test_the_teacher_keeps_its_function_when_the_statistics_move(preserve, tmp_path):
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=1, seed=0), norm_reward=False, clip_obs=1e9)
    env.obs_rms.count = 10.0  # few samples: the statistics move a lot in 128 steps
    model = PPO(
        "MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, policy_kwargs=dict(net_arch=[16]), seed=0, device="cpu"
    )
    model.learn(0)  # the first reset updates the statistics before any callback runs
    raw = np.random.default_rng(0).uniform([-1, -1, -8], [1, 1, 8], size=(64, 3)).astype(np.float32)

    def means(policy):
        obs = torch.as_tensor(model.get_env().normalize_obs(raw), dtype=torch.float32)
        with torch.no_grad():
            return policy.get_distribution(obs).distribution.mean

    start, mean0 = means(model.policy), env.obs_rms.mean.copy()
    retention = Retention(1.0, 10_000, tmp_path / "teacher.pt")
    aids = [PreservingObsNormalization(), retention] if preserve else [retention]
    model.learn(192, callback=aids, reset_num_timesteps=False)
    assert not np.allclose(env.obs_rms.mean, mean0, atol=1e-3)
    torch.testing.assert_close(means(retention.teacher.policy), start, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("teacher", ["expert", "bank"])
def test_the_expert_or_the_bank_can_teach_and_a_missing_one_is_refused(
    teacher, tiny_ppo_expert, tiny_ppo_bank, tmp_path
):
    cfg = dict(
        env="HalfCheetah",
        init="scratch",
        size="8",
        steps=64,
        eval_freq=64,
        eval_episodes=1,
        device="cpu",
        progress_bar=False,
        retention=1.0,
        retention_teacher=teacher,
        hyperparam_overrides={"n_steps": 32, "batch_size": 32, "n_epochs": 1},
    )
    # no teacher given and none shipped (the tests' WEIT_RL_HOME is empty): refused before the run starts
    with pytest.raises(UserError, match=f"no ppo {'expert' if teacher == 'expert' else 'template bank'} for"):
        train(RunConfig(**cfg, run_dir=str(tmp_path / "none")))
    assert not (tmp_path / "none").exists()
    source = {"expert": str(tiny_ppo_expert)} if teacher == "expert" else {"bank": str(tiny_ppo_bank)}
    run = train(RunConfig(**cfg, **source, run_dir=str(tmp_path / "run")))
    saved = torch.load(run / "teacher.pt", weights_only=False)
    if teacher == "expert":
        expert, norm = load_model(str(tiny_ppo_expert), "ppo")
        assert all(torch.equal(v, saved["policy"][k]) for k, v in expert.policy.state_dict().items())
        mean = norm.obs_rms.mean
    else:  # the bank's largest template network (16x16 in the tiny bank), not the run's 8
        assert saved["policy"]["mlp_extractor.policy_net.0.weight"].shape == (16, 17)
        mean = load_bank(tiny_ppo_bank).obs_mean.numpy()
    np.testing.assert_allclose(saved["obs_stats"][0], mean, rtol=1e-6)  # the statistics its weights expect


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_means_only_retention_leaves_the_spread_alone(algo):
    """The retention term's gradient reaches the means' weights, never the log-std's."""
    model = _ppo() if algo == "ppo" else _sac_auto_entropy()
    policy = model.policy
    retention = Retention(weight=1.0, means_only=True)
    retention.init_callback(model)
    retention.on_training_start(locals(), globals())
    with torch.no_grad():  # move the policy off its start, so that there is something to pull back
        for p in actor_parameters(policy):
            p.add_(0.3 * torch.randn_like(p))
    policy.zero_grad(set_to_none=True)
    retention._obs = torch.randn(32, *model.observation_space.shape)
    retention._add_gradient(policy)
    spread = [policy.log_std] if algo == "ppo" else list(policy.actor.log_std.parameters())
    means = list(policy.action_net.parameters()) if algo == "ppo" else list(policy.actor.mu.parameters())
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in spread)
    assert all(p.grad is not None and torch.count_nonzero(p.grad) > 0 for p in means)


def test_policy_warmup_fills_the_buffer_with_the_policys_own_actions():
    """warmup_actions=policy: the first learning_starts steps are the policy's samples (here near
    its mean, its spread pinned to SB3's minimum), not uniform actions."""
    from weit_rl.policies.fast import FastSAC

    model = FastSAC("MlpPolicy", make_vec_env("Hopper-v5", seed=0), learning_starts=300, seed=0, buffer_size=500)
    model.warmup_from_policy = True
    with torch.no_grad():
        model.actor.log_std.weight.zero_()
        model.actor.log_std.bias.fill_(-20.0)
    model.learn(200)
    buf = model.replay_buffer
    obs = torch.as_tensor(buf.observations[: buf.pos, 0]).float()
    with torch.no_grad():
        expected = torch.tanh(model.actor.get_action_dist_params(obs)[0]).numpy()
    np.testing.assert_allclose(buf.actions[: buf.pos, 0], expected, atol=1e-4)
    assert model.num_timesteps < model.learning_starts  # no update has moved the actor yet


def test_policy_warmup_needs_sac_on_the_fast_engine():
    with pytest.raises(UserError, match="fast engine"):
        train(RunConfig(env="Hopper", algo="sac", init="scratch", warmup_actions="policy", engine="stock"))


def test_retention_tied_to_progress_holds_until_the_start_is_passed(tmp_path):
    evals = tmp_path / "evaluations.csv"
    retention = Retention(weight=1.0, decay_steps=10_000, held_until=evals)
    retention.num_timesteps = 30_000
    assert retention.beta() == 1.0  # no evaluations yet: held
    evals.write_text("timesteps,mean_return\n0,100.0\n10000,80.0\n20000,99.9\n")
    assert retention.beta() == 1.0  # below the start so far: held
    evals.write_text("timesteps,mean_return\n0,100.0\n10000,80.0\n20000,99.9\n30000,100.0\n")
    assert retention.beta() == 1.0  # passed at 30k: the decay starts now
    retention.num_timesteps = 35_000
    assert retention.beta() == pytest.approx(0.5)
    retention.num_timesteps = 50_000
    assert retention.beta() == 0.0
    assert Retention(weight=1.0, decay_steps=10_000).beta() == 1.0  # linear: from step 0
