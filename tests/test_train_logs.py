"""bench/train_logs.py recovers SAC's policy entropy from what SB3 logs; bench/sac_q_drift.py
reads its windows."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch.utils.tensorboard import SummaryWriter


def load_script():
    spec = importlib.util.spec_from_file_location("train_logs", Path(__file__).parents[1] / "bench/train_logs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sac_entropy_is_recovered_from_the_entropy_coefficient_loss(tmp_path):
    train_logs = load_script()
    run = tmp_path / "sac-small-weit-s0"
    (run / "tb" / "run_0").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"env": "Pendulum-v1"}))  # one action: target -1
    writer = SummaryWriter(run / "tb" / "run_0")
    steps = np.arange(10_000, 100_001, 1_000)
    true_entropy = np.linspace(2.0, -9.0, len(steps))
    for step, entropy in zip(steps, true_entropy):
        log_coef = torch.tensor(-0.5 - step / 20_000)
        log_prob = -entropy + torch.linspace(-0.3, 0.3, 256)  # a batch whose mean is -entropy
        loss = -(log_coef * (log_prob + -1.0)).mean()  # SB3 SAC.train's ent_coef_loss
        writer.add_scalar("train/ent_coef", log_coef.exp().item(), step)
        writer.add_scalar("train/ent_coef_loss", loss.item(), step)
        writer.add_scalar("train/critic_loss", 1.0, step)
    writer.close()
    row = train_logs.sac_row(run)
    n = len(train_logs.SAC_STEPS)
    entropy_at = row[n + 1 : 2 * n + 1]
    expected = [true_entropy[np.argmin(abs(steps - s))] for s in train_logs.SAC_STEPS]
    assert entropy_at == pytest.approx(expected, abs=1e-4)
    assert row[2 * n + 1] == pytest.approx(true_entropy.min(), abs=1e-4)  # the minimum from 15k on
    assert train_logs.target_entropy(run) == -1.0


def test_a_fixed_entropy_coefficient_leaves_the_entropy_unknown(tmp_path):
    train_logs = load_script()
    run = tmp_path / "sac-small-weit-s0"
    (run / "tb" / "run_0").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"env": "Pendulum-v1"}))
    writer = SummaryWriter(run / "tb" / "run_0")
    for step in range(10_000, 100_001, 1_000):  # SB3 logs no ent_coef_loss when ent_coef is a number
        writer.add_scalar("train/ent_coef", 0.05, step)
        writer.add_scalar("train/critic_loss", 1.0, step)
    writer.close()
    row = train_logs.sac_row(run)
    n = len(train_logs.SAC_STEPS)
    assert row[: n + 1] == pytest.approx([0.05] * (n + 1))
    assert np.isnan(row[n + 1 : 2 * n + 2]).all()
    table = train_logs.sac_table({"weit": [row]}, "cmd", -1.0)
    assert table[-1].count("| - ") == n + 1


def test_q_drift_averages_each_window_and_leaves_unlogged_ones_empty(tmp_path, monkeypatch):
    """bench/sac_q_drift.py: per window, minus the actor loss and the retention KL (logged only
    while retention is on, here to 50k); the evaluation return at each window's end."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))
    spec = importlib.util.spec_from_file_location("sac_q_drift", Path(__file__).parents[1] / "bench/sac_q_drift.py")
    q_drift = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(q_drift)
    run = tmp_path / "sac-small-weit-s0"
    (run / "tb" / "run_0").mkdir(parents=True)
    writer = SummaryWriter(run / "tb" / "run_0")
    for step in range(10_500, 100_001, 1_000):
        writer.add_scalar("train/actor_loss", -step / 1_000, step)
        if step <= 50_000:
            writer.add_scalar("retention/kl_to_teacher", 2.0, step)
    writer.close()
    rows = ["timesteps,mean_return"] + [f"{s},{s / 10}" for s in range(0, 100_001, 5_000)]
    (run / "evaluations.csv").write_text("\n".join(rows) + "\n")

    minus_actor_loss = q_drift.window_means(run, "train/actor_loss", -1.0)
    expected = [
        np.mean([s / 1_000 for s in range(10_500, 100_001, 1_000) if lo < s <= hi]) for lo, hi in q_drift.WINDOWS
    ]
    assert minus_actor_loss == pytest.approx(expected)
    kl = q_drift.window_means(run, "retention/kl_to_teacher")
    assert kl[:4] == pytest.approx([2.0] * 4) and np.isnan(kl[4:]).all()
    assert q_drift.returns_at_ends(run) == pytest.approx([hi / 10 for _, hi in q_drift.WINDOWS])
