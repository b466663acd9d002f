"""`weit-rl list`: the banks and experts under WEIT_RL_HOME with task, algorithm, return and size."""

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`


def test_list_shows_banks_and_experts(tiny_ppo_bank, tiny_ppo_expert):
    home = Path(os.environ["WEIT_RL_HOME"])
    (home / "banks").mkdir()
    shutil.copy(tiny_ppo_bank, home / "banks" / "HalfCheetah-ppo.safetensors")
    expert = home / "experts" / "HalfCheetah-ppo"
    shutil.copytree(tiny_ppo_expert, expert)
    evaluation = {"episodes": 20, "mean": 1234.4, "median": 1300.0, "min": 900.0, "returns": [1234.4] * 20}
    (expert / "manifest.json").write_text(
        json.dumps({"task": "HalfCheetah-v5", "algo": "ppo", "net_arch": [32, 32, 32], "evaluation": evaluation})
    )
    (home / "experts" / "Hopper-sac" / "candidates" / "s0").mkdir(parents=True)  # one still in training
    out = run_cli("list", cwd=home)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["kind", "task", "algo", "network", "made", "by", "MB", "return", "path"]
    bank = next(ln for ln in lines if ln.startswith("bank"))
    assert "HalfCheetah-v5" in bank and "4 templates 8x8, expert 32x32x32" in bank and "learned post hoc" in bank
    assert f"{(home / 'banks' / 'HalfCheetah-ppo.safetensors').stat().st_size / 1e6:.1f}" in bank
    shipped = next(ln for ln in lines if ln.startswith("expert") and "HalfCheetah" in ln)
    assert "1234 (median 1300, min 900, 20 episodes)" in shipped and "32x32x32" in shipped
    training = next(ln for ln in lines if "Hopper" in ln)
    assert "Hopper-v5" in training and "not shipped yet (candidates: s0)" in training


def test_list_of_an_empty_home_says_how_to_fill_it():
    out = run_cli("list", cwd=Path(os.environ["WEIT_RL_HOME"]))
    assert out.returncode == 0 and "make expert" in out.stdout
