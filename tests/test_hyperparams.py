"""Hyperparameter overrides from the command line (rl-zoo3's --hyperparams): values are
YAML (never eval), checked against the algorithm's schema, and recorded in config.yaml."""

import pytest
import yaml
from stable_baselines3 import PPO

from weit_rl import UserError
from weit_rl.agents import RunConfig, train
from weit_rl.config import apply_overrides, hyperparams, parse_overrides


def test_values_are_yaml_and_dotted_keys_nest():
    got = parse_overrides(
        [
            "n_steps=1024",
            "learning_rate=1e-4",
            "normalize=false",
            "target_kl=null",
            "policy_kwargs.log_std_init=-1",
            "clip_range=0.1",
        ]
    )
    assert got == {
        "n_steps": 1024,
        "learning_rate": 1e-4,
        "normalize": False,
        "target_kl": None,
        "policy_kwargs": {"log_std_init": -1},
        "clip_range": 0.1,
    }
    assert parse_overrides(["ent_coef=__import__('os').getcwd()"]) == {"ent_coef": "__import__('os').getcwd()"}


@pytest.mark.parametrize(
    "items,message",
    [
        (["n_steps"], "key=value pairs"),
        (["n_steps=[1"], "not a YAML value"),
    ],
)
def test_malformed_overrides(items, message):
    with pytest.raises(UserError, match=message):
        parse_overrides(items)


def test_overrides_merge_policy_kwargs_and_are_checked():
    base = hyperparams("ppo", "Hopper-v5")
    merged = apply_overrides(base, parse_overrides(["n_steps=1024", "policy_kwargs.log_std_init=-1"]), "ppo")
    assert merged["n_steps"] == 1024 and merged["policy_kwargs"]["log_std_init"] == -1
    assert merged["policy_kwargs"]["activation_fn"] == base["policy_kwargs"]["activation_fn"]  # kept
    assert base["n_steps"] == 512  # not modified in place
    with pytest.raises(UserError, match=r"--hyperparams .*n_stepz is not a known key: use one of .*n_steps"):
        apply_overrides(base, {"n_stepz": 3}, "ppo")
    with pytest.raises(UserError, match="n_steps is str 'many': write an integer"):
        apply_overrides(base, {"n_steps": "many"}, "ppo")
    with pytest.raises(UserError, match="learning_starts is not a known key"):  # a SAC key for PPO
        apply_overrides(base, {"learning_starts": 10}, "ppo")


def test_overrides_reach_the_model_and_config_yaml(tmp_path):
    run = train(
        RunConfig(
            env="HalfCheetah",
            init="scratch",
            size="8",
            steps=128,
            eval_freq=128,
            eval_episodes=1,
            device="cpu",
            run_dir=str(tmp_path / "run"),
            progress_bar=False,
            hyperparam_overrides={"n_steps": 128, "n_epochs": 1, "gamma": 0.9},
        )
    )
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["hyperparam_overrides"] == {"n_steps": 128, "n_epochs": 1, "gamma": 0.9}
    assert saved["hyperparams"]["n_steps"] == 128 and saved["hyperparams"]["batch_size"] == 64  # the rest: config
    model = PPO.load(run / "model.zip")
    assert (model.n_steps, model.n_epochs, model.gamma) == (128, 1, 0.9)


@pytest.mark.parametrize(
    "algo,item,message",
    [
        ("ppo", "learning_rate=0", "learning_rate is 0: use a number > 0"),
        ("ppo", "gamma=1.5", "gamma is 1.5: use a number in (0, 1]"),
        ("ppo", "n_steps=0", "n_steps is 0: use an integer >= 1"),
        ("ppo", "n_epochs=0", "n_epochs is 0: use an integer >= 1"),
        ("ppo", "batch_size=1", "batch_size must be >= 2 while PPO normalizes advantages"),  # SB3's assertion
        ("ppo", "clip_range_vf=0", "clip_range_vf is 0: use a number > 0 or null"),
        ("ppo", "policy_kwargs.squash_output=true", "squash_output needs use_sde=true"),
        ("ppo", "policy_kwargs.n_critics=2", "n_critics is not a known key"),  # SAC's policy takes it, PPO's does not
        ("sac", "policy_kwargs.ortho_init=false", "ortho_init is not a known key: use one of activation_fn, clip_mean"),
        ("sac", "policy_kwargs.n_critics=0", "n_critics is 0: use an integer >= 1"),
        ("sac", "tau=0", "tau is 0: use a number in (0, 1]"),
        ("sac", "target_update_interval=0", "target_update_interval is 0"),
        ("sac", "ent_coef=auto_0", "ent_coef is 'auto_0': use a number, auto, or auto_<starting value > 0>"),
        ("sac", "optimize_memory_usage=true", "optimize_memory_usage=true is refused by SB3's ReplayBuffer"),
    ],
)
def test_values_sb3_cannot_take(algo, item, message):
    with pytest.raises(UserError) as err:
        apply_overrides(hyperparams(algo, "Hopper-v5"), parse_overrides([item]), algo)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "algo,items",
    [
        ("ppo", ["gamma=1", "gae_lambda=0", "target_kl=null", "clip_range_vf=null"]),
        ("ppo", ["batch_size=1", "normalize_advantage=false"]),
        ("sac", ["ent_coef=auto_0.1", "gradient_steps=-1", "learning_starts=0", "policy_kwargs.n_critics=1"]),
    ],
)
def test_edge_values_sb3_takes_pass(algo, items):
    apply_overrides(hyperparams(algo, "Hopper-v5"), parse_overrides(items), algo)
