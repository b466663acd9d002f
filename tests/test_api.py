"""The Python API is right by default: a policy class given a bank takes raw observations (the
bank's statistics folded into its first layers), gets the default recipe, and initializes
exactly as `weit-rl train` does for the same seed and arguments."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from weit_rl.agents import RunConfig, prepare
from weit_rl.agents.model import algo_kwargs, new_model
from weit_rl.artifacts.bank import load_bank
from weit_rl.policies.classes import WeiTActorCriticPolicy
from weit_rl.policies.sb3 import OBS_EPSILON

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`

ROOT = Path(__file__).resolve().parents[1]


def _cli_model(bank, seed=0):
    return new_model(
        prepare(
            RunConfig(
                env="HalfCheetah",
                size="small",
                init="weit",
                seed=seed,
                bank=str(bank),
                fit_steps=20,
                finetune_steps=30,
                progress_bar=False,
            )
        )
    )


def _api_model(bank, env, seed=0, **extra):
    cfg = prepare(RunConfig(env="HalfCheetah", size="small", init="weit", seed=seed, bank=str(bank)))
    kwargs = (
        dict(
            bank=str(bank),
            net_arch=[64, 64],
            activation_fn=torch.nn.ReLU,
            fit_steps=20,
            finetune_steps=30,
            log_std_init=-2.0,
            ortho_init=False,
            init_seed=seed,
        )
        | extra
    )
    return PPO(WeiTActorCriticPolicy, env, policy_kwargs=kwargs, seed=seed, **algo_kwargs("ppo", cfg.hyperparams))


def test_python_api_and_cli_give_the_same_initial_weights(tiny_ppo_bank):
    cli = _cli_model(tiny_ppo_bank)
    api = _api_model(tiny_ppo_bank, cli.get_env(), observations="normalized")
    for (name, a), b in zip(cli.policy.state_dict().items(), api.policy.state_dict().values()):
        assert torch.equal(a, b), name


def test_raw_observations_get_the_banks_statistics_folded_in(tiny_ppo_bank):
    cli = _cli_model(tiny_ppo_bank)
    api = _api_model(tiny_ppo_bank, "HalfCheetah-v5")  # as the README writes it: no VecNormalize
    bank = load_bank(tiny_ppo_bank)
    mean, std = bank.obs_mean.double().numpy(), np.sqrt(bank.obs_var.double().numpy() + OBS_EPSILON)
    raw = np.random.default_rng(0).normal(mean, std, size=(64, 17)).astype(np.float32)  # inside the clip range
    normalized = ((raw - mean) / std).astype(np.float32)
    a_cli, _ = cli.policy.predict(normalized, deterministic=True)
    a_api, _ = api.policy.predict(raw, deterministic=True)
    np.testing.assert_allclose(a_api, a_cli, atol=1e-4)
    v_cli = cli.policy.predict_values(torch.as_tensor(normalized))
    v_api = api.policy.predict_values(torch.as_tensor(raw))
    torch.testing.assert_close(v_api, v_cli, atol=1e-3, rtol=1e-4)


def test_the_readme_example_runs_as_written(tiny_ppo_bank, tmp_path):
    block = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    assert "WeiTActorCriticPolicy" in block and "model.learn(" in block
    code = block.replace("banks/HalfCheetah-ppo.safetensors", str(tiny_ppo_bank))
    code = code.replace("model.learn(100_000", "model.learn(64")
    code = code.replace("policy_kwargs=dict(", "n_steps=64, policy_kwargs=dict(fit_steps=10, finetune_steps=10, ")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "model.zip").exists()
