"""weit_rl.agents.tb_logs reads what SB3 logged to a run's TensorBoard files: SAC's policy entropy
recovered from the entropy coefficient's loss, the Q drift per window (what bench/train_logs.py and
bench/sac_q_drift.py report per arm), and the table `weit-rl diagnose` prints from them."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from torch.utils.tensorboard import SummaryWriter

from weit_rl.agents.tb_logs import in_windows, log_table, q_drift, sac_entropy, target_entropy, window_means

WINDOWS = ((10_000, 20_000), (20_000, 30_000), (30_000, 40_000), (40_000, 50_000), (50_000, 60_000), (90_000, 100_000))


def sac_run(tmp_path, **hyperparams):
    run = tmp_path / "sac-small-weit-s0"
    (run / "tb" / "run_0").mkdir(parents=True)
    config = {"env": "Pendulum-v1", "hyperparams": hyperparams}  # one action: SB3's target -1
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return run


def log_tuned_coefficient(run, steps, true_entropy, target=-1.0):
    writer = SummaryWriter(run / "tb" / "run_0")
    for step, entropy in zip(steps, true_entropy):
        log_coef = torch.tensor(-0.5 - step / 20_000)
        log_prob = -entropy + torch.linspace(-0.3, 0.3, 256)  # a batch whose mean is -entropy
        loss = -(log_coef * (log_prob + target)).mean()  # SB3 SAC.train's ent_coef_loss
        writer.add_scalar("train/ent_coef", log_coef.exp().item(), step)
        writer.add_scalar("train/ent_coef_loss", loss.item(), step)
        writer.add_scalar("train/critic_loss", 1.0, step)
    writer.close()


def test_sac_entropy_is_recovered_from_the_entropy_coefficient_loss(tmp_path):
    run = sac_run(tmp_path)
    steps = np.arange(10_000, 100_001, 1_000)
    true_entropy = np.linspace(2.0, -9.0, len(steps))
    log_tuned_coefficient(run, steps, true_entropy)
    logged_steps, coef, entropy = sac_entropy(run)
    assert logged_steps.tolist() == steps.tolist()
    assert coef == pytest.approx(np.exp(-0.5 - steps / 20_000), rel=1e-5)
    assert entropy == pytest.approx(true_entropy, abs=1e-4)
    assert target_entropy(run) == -1.0


def test_a_configured_target_entropy_is_the_one_recovered_against(tmp_path):
    run = sac_run(tmp_path, target_entropy=-3.0)
    steps = np.arange(10_000, 20_001, 1_000)
    log_tuned_coefficient(run, steps, np.full(len(steps), 0.5), target=-3.0)
    assert target_entropy(run) == -3.0
    assert sac_entropy(run)[2] == pytest.approx(np.full(len(steps), 0.5), abs=1e-4)


def test_a_fixed_entropy_coefficient_leaves_the_entropy_unknown(tmp_path):
    run = sac_run(tmp_path)
    writer = SummaryWriter(run / "tb" / "run_0")
    for step in range(10_000, 100_001, 1_000):  # SB3 logs no ent_coef_loss when ent_coef is a number
        writer.add_scalar("train/ent_coef", 0.05, step)
        writer.add_scalar("train/critic_loss", 1.0, step)
    writer.close()
    steps, coef, entropy = sac_entropy(run)
    assert coef == pytest.approx([0.05] * len(steps)) and np.isnan(entropy).all()


def write_drifting_run(tmp_path):
    """SAC with retention on up to 50k steps; an evaluation every 5k steps."""
    run = sac_run(tmp_path)
    writer = SummaryWriter(run / "tb" / "run_0")
    for step in range(10_500, 100_001, 1_000):
        writer.add_scalar("train/actor_loss", -step / 1_000, step)
        if step <= 50_000:
            writer.add_scalar("retention/kl_to_teacher", 2.0, step)
    writer.close()
    rows = ["timesteps,mean_return"] + [f"{s},{s / 10}" for s in range(0, 100_001, 5_000)]
    (run / "evaluations.csv").write_text("\n".join(rows) + "\n")
    return run


def test_q_drift_averages_each_window_and_leaves_unlogged_ones_empty(tmp_path):
    """Per window, minus the actor loss and the retention KL (logged only while retention is on);
    the evaluation return at each window's end."""
    run = write_drifting_run(tmp_path)
    drift = q_drift(run, WINDOWS)
    expected = [np.mean([s / 1_000 for s in range(10_500, 100_001, 1_000) if lo < s <= hi]) for lo, hi in WINDOWS]
    assert drift["-actor_loss"] == pytest.approx(expected)
    assert drift["-actor_loss"] == pytest.approx(window_means(run, "train/actor_loss", WINDOWS, -1.0))
    kl = drift["kl_to_teacher"]
    assert kl[:4] == pytest.approx([2.0] * 4) and np.isnan(kl[4:]).all()
    assert drift["return"] == pytest.approx([hi / 10 for _, hi in WINDOWS])
    assert np.isnan(in_windows(np.array([5, 6]), np.array([1.0, 2.0]), [(6, 10)])).all()  # (after, up to]


def test_log_table_shows_the_logged_columns_per_window(tmp_path):
    run = sac_run(tmp_path)
    steps = np.arange(1_000, 20_001, 1_000)
    log_tuned_coefficient(run, steps, np.full(len(steps), 0.25))
    (run / "evaluations.csv").write_text("timesteps,mean_return\n0,1.0\n10000,12.5\n20000,30.0\n")
    lines = log_table(run, every=10_000).splitlines()
    assert lines[4] == "| step | return | ent_coef | entropy | critic_loss |"  # no PPO or retention columns
    step_10k = lines[6].split(" | ")
    assert step_10k[:2] == ["| 10,000", "12.5"] and float(step_10k[3]) == pytest.approx(0.25, abs=1e-3)
    assert lines[7].startswith("| 20,000 | 30.0 | ") and len(lines) == 8


def test_diagnose_prints_the_tensorboard_logs_of_a_run_without_diagnostics(tmp_path):
    """A run that kept its tb/ folder but has no diagnostics.csv (trained before it was recorded):
    `weit-rl diagnose` prints the logged table, and writes no plot (nothing to plot)."""
    run = write_drifting_run(tmp_path)
    cmd = [sys.executable, "-m", "weit_rl.cli", "diagnose", str(run), "--plot", str(tmp_path / "d.png")]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "| step | return | -actor_loss | kl_to_teacher |" in out.stdout
    assert "| 50,000 | 5,000.0 | 45 | 2 |" in out.stdout and "| 60,000 | 6,000.0 | 55 |  |" in out.stdout
    assert not (tmp_path / "d.png").exists()
