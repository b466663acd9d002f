"""One rule decides what a run reads (weit_rl.policies.init.needs): `weit-rl train` and a `weit-rl compare`
arm with the same options resolve the same bank and expert."""

import argparse

import pytest

import weit_rl.agents.config as run_config
import weit_rl.compare.sources as compare_sources
from weit_rl import compare
from weit_rl.agents import RunConfig
from weit_rl.compare.sweep import resolve

pytestmark = pytest.mark.slow  # resolves sweeps (loads banks and experts): left out of `make test-fast`

OPTIONS = [
    {"init": "scratch"},
    {"init": "scratch", "obs_stats": "fresh"},
    {"init": "scratch", "obs_stats": "fresh", "log_std": "bank"},
    {"init": "scratch", "obs_stats": "fresh", "reward_stats": "bank"},
    {"init": "scratch", "obs_stats": "fresh", "retention": 1.0, "retention_teacher": "expert"},
    {"init": "weit", "obs_stats": "fresh"},
    {"init": "distill", "obs_stats": "init"},
    {"init": "select", "obs_stats": "init"},
    {"init": "select", "obs_stats": "init", "retention": 1.0, "retention_teacher": "expert"},
    {"init": "select"},
]


@pytest.fixture
def shipped(monkeypatch, tiny_ppo_bank, tiny_ppo_expert):
    """The task's 'shipped' bank and expert are the tiny ones, for train and compare alike."""
    for module in (run_config, compare_sources):
        monkeypatch.setattr(module, "default_bank", lambda env_id, algo: str(tiny_ppo_bank))
        monkeypatch.setattr(module, "default_expert", lambda env_id, algo: str(tiny_ppo_expert))


def _sweep(options: dict, tmp_path):
    """A study of the arm and a baseline that reads nothing (scratch on fresh statistics)."""
    p = argparse.ArgumentParser()
    compare.add_arguments(p)
    over = ",".join(f"{k}={v}" for k, v in options.items())
    args = [
        "--env",
        "HalfCheetah",
        "--sizes",
        "tiny",
        "--seeds",
        "1",
        "--steps",
        "1024",
        "--arm",
        f"arm:{over}",
        "--arm",
        "base:init=scratch,obs_stats=fresh",
        "--arms",
        "arm,base",
        "--primary",
        "arm:base",
        "--out-dir",
        str(tmp_path / "runs"),
        "--report-dir",
        str(tmp_path / "reports"),
    ]
    return resolve(p.parse_args(args))


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_train_and_compare_read_the_same_sources(options, shipped, tmp_path):
    train = run_config.fill_sources(RunConfig(env="HalfCheetah", size="tiny", **options))
    cell = _sweep(options, tmp_path).config("tiny", "arm", 0)
    assert (train.bank is not None) == (cell.bank is not None), "bank"
    assert (train.expert is not None) == (cell.expert is not None), "expert"
