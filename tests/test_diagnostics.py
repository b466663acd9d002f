"""diagnostics.csv: one row per 1,000 steps of what the learner did, written without changing
the run; `weit-rl diagnose` prints and plots it."""

import csv
import subprocess
import sys

import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env

from weit_rl.agents import train
from weit_rl.agents.diagnostics import COLUMNS, Diagnostics
from weit_rl.policies.fast import FastSAC

from conftest import scratch_run

pytestmark = pytest.mark.slow  # trains


def _rows(path):
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_a_run_writes_one_row_per_thousand_steps(algo, tmp_path):
    run = train(scratch_run(tmp_path / "run", algo, steps=3000, rollout=500, eval_freq=1000))
    rows = _rows(run / "diagnostics.csv")
    assert list(rows[0]) == COLUMNS
    assert [int(r["timesteps"]) for r in rows] == [1000, 2000, 3000]
    filled = {c for r in rows[1:] for c in COLUMNS if r[c] != ""}
    ppo = ["value", "value_loss", "approx_kl", "clip_fraction"]
    mine = ["ent_coef", "critic_loss", "q_pi"] if algo == "sac" else ppo
    assert {"entropy", "kl_from_init", *mine} <= filled
    assert float(rows[0]["kl_from_init"]) >= 0 and float(rows[-1]["kl_from_init"]) > 0  # the policy moved


def test_a_layernorm_critic_run_keeps_its_initial_policy(tmp_path):
    """The initial policy is copied with the policy's own class: a LayerNorm critic is kept as one."""
    cfg = scratch_run(tmp_path / "run", "sac", steps=1000, rollout=500, eval_freq=1000)
    cfg.hyperparam_overrides["policy_kwargs"] = {"critic_layer_norm": True}
    run = train(cfg)
    saved = torch.load(run / "initial_policy.pt", weights_only=False)["policy"]
    assert any(".weight" in k and v.dim() == 1 for k, v in saved.items() if k.startswith("critic."))  # LayerNorm
    assert [int(r["timesteps"]) for r in _rows(run / "diagnostics.csv")] == [1000]


def test_diagnostics_leave_the_training_unchanged(tmp_path):
    params = []
    for callbacks in ([], [Diagnostics(tmp_path / "d.csv", tmp_path / "init.pt", every=100)]):
        model = FastSAC("MlpPolicy", make_vec_env("Hopper-v5", seed=1), learning_starts=100, seed=1, buffer_size=1000)
        model.learn(400, callback=callbacks)
        params.append(torch.cat([p.detach().flatten() for p in model.policy.parameters()]))
    assert torch.equal(params[0], params[1])
    assert len(_rows(tmp_path / "d.csv")) == 4


def test_diagnose_prints_a_table_and_writes_a_plot(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "evaluations.csv").write_text("timesteps,mean_return,std_return,returns\n0,1.0,0,1\n2000,5.5,0,5.5\n")
    lines = [",".join(COLUMNS)] + [f"{s},{s / 1e4},0.1,0.2,,{np.sqrt(s)},,,," for s in (1000, 2000, 3000)]
    (run / "diagnostics.csv").write_text("\n".join(lines) + "\n")
    cmd = [sys.executable, "-m", "weit_rl.cli", "diagnose", str(run), "--every", "1000"]
    cmd += ["--plot", str(tmp_path / "d.png")]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "| 2,000 | 5.5 | 0.2 | 0.1 | 0.2 | 44.72 |" in out.stdout and (tmp_path / "d.png").stat().st_size > 0
    bad = subprocess.run([*cmd[:4], str(tmp_path)], capture_output=True, text=True)  # no diagnostics there
    assert bad.returncode == 2 and "no diagnostics.csv" in bad.stderr
