"""Same command, same run (docs/protocol.md): two runs of one configuration give identical
evaluations, for every arm and both algorithms."""

import csv
import os
import re
from pathlib import Path

import pytest
import torch
import yaml
from stable_baselines3.common.callbacks import BaseCallback

from weit_rl.agents import RunConfig, train
from weit_rl.compare.runners import spawn_pool
from weit_rl.numerics import PINNED, kernel_setting, kernels, pin_kernels

pytestmark = pytest.mark.slow  # trains: left out of `make test-fast`


def _evaluations(run_dir):
    with (run_dir / "evaluations.csv").open() as f:
        return [(row["timesteps"], row["mean_return"], row["returns"]) for row in csv.DictReader(f)]


def _tiny_run(run_dir, algo, bank, n_epochs=1, **kw) -> RunConfig:
    """A few hundred steps of a tiny policy, evaluated every 128 steps on 2 episodes."""
    hyper = {"n_steps": 128, "batch_size": 32, "n_epochs": n_epochs} if algo == "ppo" else {"learning_starts": 64}
    return RunConfig(
        env="HalfCheetah",
        algo=algo,
        size="tiny",
        bank=str(bank),
        run_dir=str(run_dir),
        eval_freq=128,
        eval_episodes=2,
        fit_steps=10,
        finetune_steps=10,
        progress_bar=False,
        hyperparam_overrides=hyper,
        **kw,
    )


@pytest.mark.parametrize("algo", ["ppo", "sac"])
@pytest.mark.parametrize("init", ["scratch", "weit", "distill"])
def test_two_runs_of_one_configuration_evaluate_identically(algo, init, tmp_path, tiny_ppo_bank, tiny_sac_bank):
    bank = tiny_ppo_bank if algo == "ppo" else tiny_sac_bank
    runs = []
    for name in ("a", "b"):
        cfg = _tiny_run(tmp_path / name, algo, bank, init=init, steps=256, seed=3)
        runs.append(_evaluations(train(cfg)))
    assert len(runs[0]) >= 3 and runs[0] == runs[1]
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert saved["kernels"] == kernels()  # what it computed with, should a rerun elsewhere differ


class _Killed(BaseCallback):
    """Ends the process's training as a kill would: no checkpoint of its own."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.at:
            raise RuntimeError("killed")
        return True


@pytest.mark.parametrize("engine", ["fast", "stock"])
@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_a_run_resumed_from_its_checkpoint_continues_as_the_uninterrupted_one(
    algo, engine, tmp_path, tiny_ppo_bank, tiny_sac_bank
):
    """Weights, statistics, replay buffer, random streams and every env's MuJoCo state come
    back: the evaluations after the resume are the uninterrupted run's, bit for bit."""
    bank = tiny_ppo_bank if algo == "ppo" else tiny_sac_bank

    def cfg(name):
        return _tiny_run(
            tmp_path / name, algo, bank, n_epochs=2, init="weit", steps=768, seed=5, checkpoint_freq=256, engine=engine
        )

    whole = _evaluations(train(cfg("whole")))
    with pytest.raises(RuntimeError, match="killed"):
        train(cfg("resumed"), callbacks=[_Killed(at=450)])
    assert int((tmp_path / "resumed" / "checkpoint" / "timesteps.txt").read_text()) == 256
    resumed = _evaluations(train(cfg("resumed")))
    assert [row[0] for row in whole] == [str(s) for s in range(0, 769, 128)]
    assert resumed == whole
    diagnostics = [(tmp_path / name / "diagnostics.csv").read_text() for name in ("whole", "resumed")]
    assert diagnostics[0] == diagnostics[1]


def test_pinned_kernels_leave_a_users_choice(monkeypatch):
    env = {"ATEN_CPU_CAPABILITY": "default"}  # a stand-in: this process's environment must not change
    monkeypatch.setattr(os, "environ", env)
    pin_kernels()
    assert env == {"ATEN_CPU_CAPABILITY": "default"} | ({"MKL_CBWR": "COMPATIBLE"} if PINNED else {})


def test_the_fast_engine_pins_mkls_avx2_branch(monkeypatch):
    env: dict[str, str] = {}
    monkeypatch.setattr(os, "environ", env)
    pin_kernels("fast")
    assert env == ({"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"} if PINNED else {})


@pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"), reason="needs an x86-64 CPU with AVX2"
)
def test_workers_compute_with_the_pinned_kernels(monkeypatch):
    """compare's and the benchmarks' workers: the same kernels on any x86-64 machine."""
    for key in PINNED:
        monkeypatch.delenv(key, raising=False)
    with spawn_pool(1) as pool:
        assert pool.submit(kernel_setting).result() == "torch AVX2, MKL_CBWR=COMPATIBLE"


def test_benchmarks_that_use_torch_pin_the_kernels():
    """A benchmark that builds or trains policies computes with the kernels `weit-rl` pins, so that
    its runs are the runs the CLI trains (stock_eval.py runs stock SB3 in a child on purpose;
    train_speed.py pins each child's kernels by the engine it measures). Statistics and logs alone
    (weit_rl.stats, weit_rl.agents.tb_logs, numpy) need no pin."""
    scripts = sorted((Path(__file__).parents[1] / "bench").glob("*.py"))
    reads_only = r"(?!\.stats |\.agents\.tb_logs )"  # statistics and TensorBoard logs: no policy computed
    uses_torch = [s for s in scripts if re.search(rf"^(import torch|from weit_rl{reads_only})", s.read_text(), re.M)]
    assert len(uses_torch) >= 8
    assert [s.name for s in uses_torch if "    pin_kernels()" not in s.read_text()] == []
    assert "    pin_kernels(spec[" in (Path(__file__).parents[1] / "bench" / "train_speed.py").read_text()
