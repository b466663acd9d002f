"""An initialized model saved by weit_rl loads and acts identically in stock SB3, in a
fresh process where importing weit_rl is impossible."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env

from weit_rl.policies.classes import WeiTActorCriticPolicy, WeiTSACPolicy, as_stock

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`

LOADER = """
import sys, json
sys.modules["weit_rl"] = None  # any import of weit_rl now fails
import numpy as np
from stable_baselines3 import {algo}
model = {algo}.load(sys.argv[1], device="cpu")
obs = np.load(sys.argv[2])
actions, _ = model.predict(obs, deterministic=True)
print(json.dumps(actions.tolist()))
"""


@pytest.mark.parametrize("algo", ["PPO", "SAC"])
def test_stock_sb3_loads_initialized_model(algo, tiny_ppo_bank, tiny_sac_bank, tmp_path):
    env = make_vec_env("HalfCheetah-v5")
    kwargs = dict(init="weit", net_arch=[19, 13], activation_fn=torch.nn.ReLU, fit_steps=20)
    if algo == "PPO":
        model = PPO(WeiTActorCriticPolicy, env, policy_kwargs=kwargs | {"bank": str(tiny_ppo_bank)}, n_steps=64)
    else:
        model = SAC(WeiTSACPolicy, env, policy_kwargs=kwargs | {"bank": str(tiny_sac_bank)}, buffer_size=100)
    as_stock(model).save(tmp_path / "model.zip")
    obs = np.random.default_rng(0).normal(size=(8, 17)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    out = subprocess.run(
        [sys.executable, "-c", LOADER.format(algo=algo), str(tmp_path / "model.zip"), str(tmp_path / "obs.npy")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(np.array(json.loads(out.stdout), dtype=np.float32), expected)
