"""What users tried on a fresh clone: each ends in one clear line with exit status 2 and
leaves nothing behind, or works as the user meant."""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import yaml

from weit_rl import UserError
from weit_rl.agents import RunConfig
from weit_rl.artifacts.bank import load_bank, read_manifest, save_bank, verify_bank
from weit_rl.cli import _task_help, cmd_train, parser
from weit_rl.config import canonical_size

from conftest import run_cli

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`


def one_error(out, message: str) -> None:
    """Exit status 2 and a single `weit-rl: error:` line naming the problem, no traceback."""
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert lines[0].startswith("weit-rl: error: ") and message in lines[0], out.stderr


@pytest.fixture
def cwd(tmp_path) -> Path:
    """An empty working folder: whatever a command leaves behind shows up in it."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


# 1. Hyperparameters SB3 would choke on deep inside (ValueError, IndexError, TypeError)
@pytest.mark.parametrize(
    "item,message",
    [
        ("learning_rate=-1", "learning_rate is -1: use a number > 0"),
        ("n_envs=0", "n_envs is 0: use an integer >= 1"),
        ("policy_kwargs.n_critics=2", "policy_kwargs.n_critics is not a known key"),  # SAC's, given to PPO
        ("policy_kwargs.clip_mean=2", "did you mean --algo sac?"),
    ],
)
def test_bad_hyperparameters(item, message, tiny_ppo_bank, cwd):
    out = run_cli(
        "train",
        "--env",
        "HalfCheetah",
        "--bank",
        str(tiny_ppo_bank),
        "--steps",
        "64",
        "--no-progress",
        "--hyperparams",
        item,
        cwd=cwd,
    )
    one_error(out, message)
    assert not any(cwd.iterdir())


# 2. --retention-teacher bank with a bank built before banks stored a teacher (every shipped one)
def test_a_bank_without_a_teacher(tiny_ppo_bank, cwd, tmp_path):
    bank = load_bank(tiny_ppo_bank)
    del bank.manifest["teacher_widths"]
    old = save_bank(tmp_path / "old.safetensors", dataclasses.replace(bank, teacher=None))
    out = run_cli(
        "train",
        "--env",
        "HalfCheetah",
        "--bank",
        str(old),
        "--steps",
        "64",
        "--no-progress",
        "--fit-steps",
        "2",
        "--finetune-steps",
        "0",
        "--retention",
        "1",
        "--retention-teacher",
        "bank",
        "--hyperparams",
        "n_steps=64",
        cwd=cwd,
    )
    one_error(out, "stores no teacher network")
    assert "`weit-rl templates --env HalfCheetah --algo ppo --out banks/HalfCheetah-ppo-teacher" in out.stderr
    assert not any(cwd.iterdir())


# 3. --run-dir naming a file
@pytest.mark.parametrize("under", ["", "/run"])
def test_run_dir_that_is_a_file(under, tiny_ppo_bank, cwd):
    (cwd / "README.md").write_text("# readme\n")
    out = run_cli(
        "train",
        "--env",
        "HalfCheetah",
        "--bank",
        str(tiny_ppo_bank),
        "--steps",
        "64",
        "--run-dir",
        "README.md" + under,
        cwd=cwd,
    )
    one_error(out, "README.md is a file, not a folder")
    assert [p.name for p in cwd.iterdir()] == ["README.md"] and (cwd / "README.md").read_text() == "# readme\n"


# 4. `info` verifies what `train` verifies, and knows a README from a bank
def test_info_rejects_a_flipped_byte_and_a_readme(tiny_ppo_bank, tmp_path):
    data = bytearray(tiny_ppo_bank.read_bytes())
    data[-10] ^= 0xFF
    flipped = tmp_path / "flipped.safetensors"
    flipped.write_bytes(bytes(data))
    assert read_manifest(flipped)["task"] == "HalfCheetah-v5"  # the header alone: cheap, unverified
    with pytest.raises(UserError, match="corrupt or edited"):
        verify_bank(flipped)
    one_error(run_cli("info", str(flipped)), "corrupt or edited")
    readme = tmp_path / "README.md"
    readme.write_text("# weit_rl\n")
    one_error(run_cli("info", str(readme)), "is neither a template bank (.safetensors) nor an expert folder")


# 5. `eval` of an interrupted run, and (7) of its checkpoint: no MuJoCo notices, no MUJOCO_LOG.TXT
def test_eval_of_an_unfinished_run(tiny_ppo_expert, tmp_path, cwd):
    run = tmp_path / "run"
    shutil.copytree(tiny_ppo_expert, run / "checkpoint")
    (run / "config.yaml").write_text(yaml.safe_dump({"env": "HalfCheetah-v5", "algo": "ppo"}))
    (run / "command.txt").write_text("weit-rl train --env HalfCheetah --steps 100000\n")
    before = sorted(run.rglob("*"))
    out = run_cli("eval", str(run), "--episodes", "1", cwd=cwd)
    one_error(out, "is an unfinished run")
    assert "(weit-rl train --env HalfCheetah --steps 100000)" in out.stderr and str(run / "checkpoint") in out.stderr
    assert sorted(run.rglob("*")) == before
    out = run_cli("eval", str(run / "checkpoint"), "--episodes", "1", "--json", cwd=cwd)
    assert out.returncode == 0 and json.loads(out.stdout)["env"] == "HalfCheetah-v5", out.stderr
    assert "deprecated" not in out.stdout + out.stderr and not any(cwd.iterdir())


# 6. One run folder per network, however its size is spelt
def test_one_default_run_folder_per_network(tiny_ppo_bank, tmp_path, monkeypatch):
    assert {canonical_size(s) for s in ("small", "64x2", "64,64", " SMALL")} == {"small"}
    assert (canonical_size("64x3"), canonical_size("400,300"), canonical_size("64x1")) == ("64x3", "400,300", "64")
    monkeypatch.chdir(tmp_path)
    seen = []
    # cmd_train imports train when it runs: replace it where it is imported from
    monkeypatch.setattr("weit_rl.agents.train", lambda cfg, command: seen.append((cfg.run_dir, cfg.size)))
    for size in ("small", "64x2", "64,64"):
        cmd_train(parser().parse_args(["train", "--env", "HalfCheetah", "--size", size, "--bank", str(tiny_ppo_bank)]))
    assert seen == [("runs/HalfCheetah/ppo-small-weit-s0", "small")] * 3
    # a run started under another spelling of the same network keeps its own, so it resumes
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"size": "64x2"}))
    cmd_train(parser().parse_args(["train", "--env", "HalfCheetah", "--bank", str(tiny_ppo_bank), "--run-dir", "old"]))
    assert seen[-1] == ("old", "64x2")
    assert not (tmp_path / "runs").exists()


# 8. --env's help says which tasks have banks
def test_env_help_says_which_tasks_have_banks(tmp_path, monkeypatch):
    assert "no banks here yet" in _task_help()  # the tests' WEIT_RL_HOME is empty
    monkeypatch.setenv("WEIT_RL_HOME", str(tmp_path))
    (tmp_path / "banks").mkdir()
    (tmp_path / "banks" / "Hopper-sac.safetensors").write_bytes(b"")
    text = _task_help()
    assert "banks here (`weit-rl list`) for Hopper;" in text and "for HalfCheetah, Walker2d, Ant, Humanoid, run" in text


def test_an_uncreatable_run_folder(tiny_ppo_bank, cwd):
    out = run_cli("train", "--env", "HalfCheetah", "--bank", str(tiny_ppo_bank), "--run-dir", "/proc/nope", cwd=cwd)
    one_error(out, "cannot create the run folder /proc/nope")


def test_list_into_a_reader_that_leaves(tmp_path):
    """`weit-rl list | head -1`: the reader closes the pipe; no BrokenPipeError traceback."""
    import subprocess
    import sys

    for _ in range(3):  # `true` leaves before Python has started: the write meets a closed pipe
        proc = subprocess.Popen(
            f"{sys.executable} -m weit_rl.cli list | true", shell=True, stderr=subprocess.PIPE, text=True
        )
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize("env", ["Hopper", "Humanoid"])
def test_scratch_trains_without_a_bank(env, cwd):
    """scratch reads nothing from a bank but its statistics: without one it starts fresh, in one line."""
    out = run_cli(
        "train", "--env", env, "--init", "scratch", "--size", "tiny", "--steps", "64", "--eval-freq", "64",
        "--eval-episodes", "1", "--no-progress", "--hyperparams", "n_steps=64", "batch_size=32", cwd=cwd,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    notes = [line for line in out.stderr.splitlines() if "no bank at" in line]
    assert len(notes) == 1 and "fresh observation statistics" in notes[0]
    saved = yaml.safe_load(next(cwd.glob("runs/*/*/config.yaml")).read_text())
    assert saved["obs_stats"] == "fresh" and saved["bank"] is None


def test_the_python_api_resolves_a_run_as_the_command_line_does(cwd, monkeypatch, capfd):
    """agents.train(RunConfig(...)) from any folder fills what `weit-rl train` fills, in the one
    place both reach (agents/config.py resolve): the run folder, and without a bank, scratch from
    fresh statistics said in one line."""
    from weit_rl.agents import train

    monkeypatch.chdir(cwd)
    hp = {"n_steps": 64, "batch_size": 32}
    cfg = RunConfig(env="Hopper", init="scratch", size="tiny", steps=64, eval_freq=64, eval_episodes=1)
    out = train(dataclasses.replace(cfg, progress_bar=False, hyperparam_overrides=hp))
    assert out == Path("runs/Hopper/ppo-tiny-scratch-s0")
    saved = yaml.safe_load((cwd / out / "config.yaml").read_text())
    assert saved["obs_stats"] == "fresh" and saved["bank"] is None
    assert capfd.readouterr().err.count("no bank at") == 1
