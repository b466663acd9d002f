"""The command line: smoke runs of PPO and SAC, resume after a kill, and bad input."""

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli


def evals(run: Path) -> list[int]:
    with (run / "evaluations.csv").open() as f:
        return [int(r["timesteps"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_train_smoke_from_tiny_bank(algo, tiny_ppo_bank, tiny_sac_bank, tmp_path):
    bank = tiny_ppo_bank if algo == "ppo" else tiny_sac_bank
    run = tmp_path / "run"
    out = run_cli("train", "--env", "HalfCheetah", "--algo", algo, "--size", "24x2", "--bank", str(bank),
                  "--steps", "300", "--eval-freq", "150", "--eval-episodes", "1", "--run-dir", str(run), "--no-progress")
    assert out.returncode == 0, out.stderr
    for name in ("model.zip", "config.yaml", "command.txt", "evaluations.csv"):
        assert (run / name).exists(), name
    assert (run / "vecnormalize.pkl").exists() == (algo == "ppo")
    assert any((run / "tb").rglob("events.out.tfevents*"))
    assert evals(run)[0] == 0 and evals(run)[-1] >= 300
    assert not (run / "checkpoint").exists()
    if algo == "ppo":  # `weit-rl eval` reloads the run with its normalization statistics
        out = run_cli("eval", str(run), "--env", "HalfCheetah", "--episodes", "1")
        assert out.returncode == 0 and '"mean_return"' in out.stdout, out.stderr


def test_killed_run_resumes_from_checkpoint(tiny_ppo_bank, tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "weit_rl.cli", "train", "--env", "HalfCheetah", "--size", "16", "--bank",
            str(tiny_ppo_bank), "--steps", "200000", "--eval-freq", "2048", "--eval-episodes", "1",
            "--checkpoint-freq", "2048", "--run-dir", str(run), "--no-progress"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (run / "checkpoint" / "timesteps.txt").exists() and time.time() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = int((run / "checkpoint" / "timesteps.txt").read_text())
    assert saved >= 2048 and not (run / "model.zip").exists()
    out = run_cli("train", *args[4:-1], "--steps", str(saved + 2048), "--no-progress")
    assert out.returncode == 0, out.stderr
    assert f"resuming {run} from step {saved}" in out.stderr
    steps = evals(run)
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] >= saved + 2048
    assert (run / "model.zip").exists() and not (run / "checkpoint").exists()


BAD = [
    (["train", "--env", "Pong", "--bank", "{ppo}"], "unknown task 'Pong'"),
    (["train", "--env", "HalfCheetah", "--init", "magic", "--bank", "{ppo}"], "unknown initializer 'magic'"),
    (["train", "--env", "HalfCheetah", "--algo", "dqn", "--bank", "{ppo}"], "unknown algorithm 'dqn'"),
    (["train", "--env", "HalfCheetah", "--size", "0x2", "--bank", "{ppo}"], "invalid size '0x2'"),
    (["train", "--env", "HalfCheetah", "--size", "abc", "--bank", "{ppo}"], "invalid size 'abc'"),
    (["train", "--env", "HalfCheetah", "--size=-5", "--bank", "{ppo}"], "invalid size '-5'"),
    (["train", "--env", "HalfCheetah", "--bank", "{tmp}/missing.safetensors"], "template bank not found"),
    (["train", "--env", "HalfCheetah", "--bank", "{truncated}"], "corrupt or truncated"),
    (["train", "--env", "Hopper", "--bank", "{ppo}"], "built for HalfCheetah-v5, not Hopper-v5"),
    (["train", "--env", "HalfCheetah", "--algo", "sac", "--bank", "{ppo}"], "built for PPO"),
    (["train", "--env", "HalfCheetah", "--algo", "ppo", "--bank", "{sac}"], "built for SAC"),
    (["train", "--env", "HalfCheetah", "--init", "select", "--expert", "{junk}"], "not an SB3 model"),
    (["templates", "--env", "HalfCheetah", "--expert", "{junk}", "--out", "{tmp}/b.safetensors"], "not an SB3 model"),
    (["info", "{truncated}"], "corrupt or truncated"),
    (["train", "--env", "HalfCheetah"], "make templates ENV=HalfCheetah ALGO=ppo"),  # no shipped bank here
]


@pytest.mark.parametrize("args,message", BAD, ids=[m for _, m in BAD])
def test_bad_input_gives_one_clear_error_and_writes_nothing(args, message, tiny_ppo_bank, tiny_sac_bank, tmp_path):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(tiny_ppo_bank.read_bytes()[:500])
    junk = tmp_path / "junk.zip"
    junk.write_text("hello")
    paths = dict(ppo=tiny_ppo_bank, sac=tiny_sac_bank, tmp=tmp_path, truncated=truncated, junk=junk)
    run = tmp_path / "run"
    args = [a.format(**paths) for a in args]
    if args[0] == "train":
        args += ["--run-dir", str(run), "--steps", "64"]
    out = run_cli(*args)
    assert out.returncode == 2
    assert message in out.stderr
    # MuJoCo 4 prints a deprecation warning of its own when it compiles a model: not ours.
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip() and not ln.startswith("WARNING: compiler")]
    assert "Traceback" not in out.stderr and len(lines) == 1, out.stderr
    assert not run.exists() and not (tmp_path / "b.safetensors").exists()


def test_info_prints_manifest(tiny_ppo_bank):
    out = run_cli("info", str(tiny_ppo_bank))
    assert out.returncode == 0 and '"task": "HalfCheetah-v5"' in out.stdout
