"""The command line: smoke runs of PPO and SAC, resume after a kill, and bad input."""

import argparse
import csv
import json
import signal
import subprocess
import sys
import time
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from weit_rl.agents import RunConfig
from weit_rl.agents.config import GROUPS, LOST
from weit_rl.cli import parser

from conftest import run_cli

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`


def evals(run: Path) -> list[int]:
    with (run / "evaluations.csv").open() as f:
        return [int(r["timesteps"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_train_smoke_from_tiny_bank(algo, tiny_ppo_bank, tiny_sac_bank, tmp_path):
    bank = tiny_ppo_bank if algo == "ppo" else tiny_sac_bank
    run = tmp_path / "run"
    out = run_cli(
        "train",
        "--env",
        "HalfCheetah",
        "--algo",
        algo,
        "--size",
        "24x2",
        "--bank",
        str(bank),
        "--steps",
        "300",
        "--eval-freq",
        "150",
        "--eval-episodes",
        "1",
        "--run-dir",
        str(run),
        "--no-progress",
        *(["--hyperparams", "learning_starts=100"] if algo == "sac" else []),
    )
    assert out.returncode == 0, out.stderr
    for name in ("model.zip", "config.yaml", "command.txt", "evaluations.csv"):
        assert (run / name).exists(), name
    assert (run / "vecnormalize.pkl").exists() == (algo == "ppo")
    assert any((run / "tb").rglob("events.out.tfevents*"))
    assert evals(run)[0] == 0 and evals(run)[-1] >= 300
    assert not (run / "checkpoint").exists()
    # `weit-rl eval` reads the task and algorithm from config.yaml and reloads the normalization statistics
    out = run_cli("eval", str(run), "--episodes", "1")
    assert out.returncode == 0, out.stderr
    assert f"HalfCheetah {algo.upper()}, mean return" in out.stdout and "over 1 deterministic episodes" in out.stdout
    out = run_cli("eval", str(run), "--episodes", "1", "--json")
    result = json.loads(out.stdout)
    assert (result["env"], result["algo"], len(result["returns"])) == ("HalfCheetah-v5", algo, 1)


def test_finished_run_refuses_changed_arguments(tiny_ppo_bank, tmp_path):
    run = tmp_path / "run"
    args = [
        "train",
        "--env",
        "HalfCheetah",
        "--size",
        "8",
        "--bank",
        str(tiny_ppo_bank),
        "--steps",
        "256",
        "--eval-freq",
        "256",
        "--eval-episodes",
        "1",
        "--run-dir",
        str(run),
        "--no-progress",
        "--fit-steps",
        "5",
        "--hyperparams",
        "n_steps=256",
        "n_epochs=1",
    ]
    assert run_cli(*args).returncode == 0
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_text("junk")
    for extra, change in [
        (["--steps", "512"], "steps: 256 -> 512"),
        (["--bank", str(corrupt)], "bank: "),
        (["--fit-steps", "6"], "fit_steps: 5 -> 6"),
        (["--hyperparams", "n_steps=128"], "n_steps"),
    ]:
        out = run_cli(*args, *extra)
        assert out.returncode == 2 and change in out.stderr and "new --run-dir" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
    same = run_cli(*args, "--device", "cpu")  # device and progress bar do not change what a run computes
    assert same.returncode == 0 and "nothing to do" in same.stderr
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


def test_train_options_are_the_run_config_fields(capsys):
    ns = parser().parse_args(["train", "--env", "Hopper"])
    cfg = RunConfig(env="Hopper")
    for f in fields(RunConfig):
        if f.name in vars(ns):
            assert getattr(ns, f.name) == getattr(cfg, f.name), f.name
    assert {"fit_steps", "calib", "checkpoint_freq", "progress_bar"} <= set(vars(ns))
    assert ns.checkpoint_freq == RunConfig.__dataclass_fields__["checkpoint_freq"].default
    with pytest.raises(SystemExit):
        parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    for f in fields(RunConfig):
        listed = f.name not in GROUPS[LOST]  # the losing ablation candidates are accepted, not listed
        if listed and "help" in f.metadata and f.default is not MISSING and f.default is not None and f.type != "bool":
            assert f"(default: {f.default})" in " ".join(text.split()), f.name


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_option_of_every_command_has_help(command):
    sub = _subcommands()[command]
    options = [a for a in sub._actions if not isinstance(a, argparse._HelpAction)]
    bare = [a.option_strings or [a.dest] for a in options if not a.help]
    assert not bare, f"weit-rl {command}: no help for {bare}"


def test_killed_run_resumes_from_checkpoint(tiny_ppo_bank, tmp_path):
    run = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "weit_rl.cli",
        "train",
        "--env",
        "HalfCheetah",
        "--size",
        "16",
        "--bank",
        str(tiny_ppo_bank),
        "--steps",
        "8192",
        "--eval-freq",
        "2048",
        "--eval-episodes",
        "1",
        "--checkpoint-freq",
        "2048",
        "--run-dir",
        str(run),
        "--no-progress",
        "--hyperparams",
        "n_epochs=1",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (run / "checkpoint" / "timesteps.txt").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = int((run / "checkpoint" / "timesteps.txt").read_text())
    assert 2048 <= saved < 8192 and not (run / "model.zip").exists()
    changed = run_cli("train", *args[4:], "--steps", "30000")
    assert changed.returncode == 2 and "steps: 8192 -> 30000" in changed.stderr and "--run-dir" in changed.stderr
    out = run_cli("train", *args[4:])  # the same command resumes
    assert out.returncode == 0, out.stderr
    assert f"resuming {run} from step {saved}" in out.stderr
    steps = evals(run)
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 8192
    assert (run / "model.zip").exists() and not (run / "checkpoint").exists()


def test_sigterm_checkpoints_like_ctrl_c(tiny_ppo_bank, tmp_path):
    """A stopped job (SIGTERM) writes a checkpoint at the step it reached, not only at the
    last periodic one."""
    run = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "weit_rl.cli",
        "train",
        "--env",
        "HalfCheetah",
        "--size",
        "16",
        "--bank",
        str(tiny_ppo_bank),
        "--steps",
        "100000",
        "--eval-freq",
        "1024",
        "--eval-episodes",
        "1",
        "--checkpoint-freq",
        "1000000",
        "--run-dir",
        str(run),
        "--no-progress",
        "--hyperparams",
        "n_epochs=1",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while len(evals(run) if (run / "evaluations.csv").exists() else []) < 2 and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "resume" in err
    saved = int((run / "checkpoint" / "timesteps.txt").read_text())
    assert 1024 <= saved < 100_000


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
    (
        ["train", "--env", "HalfCheetah", "--algo", "sac", "--bank", "{ppo}", "--hyperparams", "learning_starts=10"],
        "built for PPO",
    ),
    (["train", "--env", "HalfCheetah", "--algo", "ppo", "--bank", "{sac}"], "built for SAC"),
    (
        ["train", "--env", "HalfCheetah", "--init", "select", "--obs-stats", "init", "--expert", "{junk}"],
        "not an SB3 model",
    ),
    (["templates", "--env", "HalfCheetah", "--expert", "{junk}", "--out", "{tmp}/b.safetensors"], "not an SB3 model"),
    (["info", "{truncated}"], "corrupt or truncated"),
    (["train", "--env", "HalfCheetah"], "make templates ENV=HalfCheetah ALGO=ppo"),  # no shipped bank here
    (["train", "--env", "Humanoid"], "configs/experts.yaml has a ppo recipe for Humanoid-v5"),  # make expert can't
    (["train", "--env", "HalfCheetah", "--init", "select", "--obs-stats", "init"], "EXPERT=PATH with make"),
    (["train", "--env", "HalfCheetah", "--seed=-1", "--bank", "{ppo}"], "seed must be between 0"),
    (["train", "--env", "HalfCheetah", "--size", "1000000000", "--bank", "{ppo}"], "above the limit of 50M"),
    (["train", "--env", "HalfCheetah", "--size", "8192x3", "--bank", "{ppo}"], "above the limit of 50M"),
    (["train", "--env", "HalfCheetah", "--eval-freq", "0", "--bank", "{ppo}"], "eval_freq must be >= 1"),
    (["train", "--env", "HalfCheetah", "--eval-episodes", "0", "--bank", "{ppo}"], "eval_episodes must be >= 1"),
    (["train", "--env", "HalfCheetah", "--lr-scale", "0", "--bank", "{ppo}"], "lr_scale must be > 0"),
    (
        ["train", "--env", "HalfCheetah", "--algo", "sac", "--bank", "{sac}", "--hyperparams", "learning_starts=10000"],
        "learning_starts=10000",
    ),
    (["train", "--env", "HalfCheetah", "--bank", "{ppo}", "--hyperparams", "n_stepz=8"], "n_stepz is not a known key"),
    (["train", "--env", "HalfCheetah", "--bank", "{ppo}", "--hyperparams", "use_sde=true"], "use_sde"),
    (
        ["train", "--env", "HalfCheetah", "--init", "select", "--obs-stats", "init", "--expert", "{hopper}"],
        "observation/action sizes 11/3",
    ),
    (
        [
            "train",
            "--env",
            "HalfCheetah",
            "--init",
            "select",
            "--obs-stats",
            "init",
            "--expert",
            "{expert}",
            "--hyperparams",
            "policy_kwargs.activation_fn=tanh",
        ],
        "uses relu activations but the policy uses tanh",
    ),
    (["train", "--env", "HalfCheetah", "--bank", "{edited}"], "corrupt or edited"),
    (["eval", "{expert}", "--env", "Hopper"], "observation/action sizes 17/6 but Hopper-v5 has 11/3"),
    (["eval", "{expert}", "--env", "HalfCheetah", "--episodes", "0"], "episodes must be >= 1"),
    (["enjoy", "{expert}", "--env", "HalfCheetah"], "no display"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[m for _, m in BAD])
def test_bad_input_gives_one_clear_error_and_writes_nothing(
    args, message, tiny_ppo_bank, tiny_sac_bank, tiny_ppo_expert, tiny_hopper_expert, tmp_path, monkeypatch
):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(tiny_ppo_bank.read_bytes()[:500])
    junk = tmp_path / "junk.zip"
    junk.write_text("hello")
    edited = tmp_path / "edited.safetensors"  # the same length, only the manifest's activation changed
    edited.write_bytes(tiny_ppo_bank.read_bytes().replace(rb"\"activation\": \"relu\"", rb"\"activation\": \"tanh\""))
    paths = dict(
        ppo=tiny_ppo_bank,
        sac=tiny_sac_bank,
        tmp=tmp_path,
        truncated=truncated,
        junk=junk,
        edited=edited,
        expert=tiny_ppo_expert,
        hopper=tiny_hopper_expert,
    )
    run = tmp_path / "run"
    args = [a.format(**paths) for a in args]
    if args[0] == "train":
        args += ["--run-dir", str(run), "--steps", "64"]
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = run_cli(*args)
    assert out.returncode == 2
    assert message in out.stderr
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]  # MuJoCo's notices included (envs/)
    assert "Traceback" not in out.stderr and len(lines) == 1, out.stderr
    assert not run.exists() and not (tmp_path / "b.safetensors").exists()


def test_info_reads_an_expert_folder_or_its_manifest(tmp_path):
    expert = tmp_path / "Ant-sac"
    expert.mkdir()
    ev = {"episodes": 20, "mean": 3263.2, "median": 3549.7, "min": 740.6, "returns": [3263.2] * 20}
    (expert / "manifest.json").write_text(
        json.dumps(
            {"task": "Ant-v5", "algo": "sac", "net_arch": [256, 256], "seed": 0, "steps": 710000, "evaluation": ev}
        )
    )
    for path in (expert, expert / "manifest.json"):
        out = run_cli("info", str(path))
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(f"expert {expert}: Ant-v5 sac, 256x256, seed 0, 710000 steps")
        assert "return 3263 (median 3550, min 741, 20 episodes)" in out.stdout


def test_info_prints_a_summary_then_the_manifest(tiny_ppo_bank):
    out = run_cli("info", str(tiny_ppo_bank))
    assert out.returncode == 0, out.stderr
    summary, _, manifest = out.stdout.partition("\n\n")
    assert summary.startswith(f"bank {tiny_ppo_bank}") and "HalfCheetah-v5 ppo" in summary and "4 templates" in summary
    assert json.loads(manifest)["task"] == "HalfCheetah-v5"
    sha = json.loads(manifest)["tensor_sha256"]
    assert f"  checksum verified (sha256 {sha[:16]}...): complete and unedited" in summary.splitlines()
    only = run_cli("info", str(tiny_ppo_bank), "--json")
    assert json.loads(only.stdout)["n_templates"] == 4
    beside = run_cli("info", str(tiny_ppo_bank.with_suffix(".json")), "--json")  # the manifest's JSON copy
    assert beside.returncode == 0 and json.loads(beside.stdout) == json.loads(only.stdout)
