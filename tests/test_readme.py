"""The README as a new user meets it: every command of its Use section runs in a fresh clone
of the repository, scaled down by the make variables the README names, and leaves `git status`
clean; its Python example, saved as a file in another folder, talks and trains."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains, builds a bank, renders a video

ROOT = Path(__file__).resolve().parents[1]
# The documented variables that scale a command down (README, "Use"): the last assignment wins.
SCALE = {
    "make train": "STEPS=1024 EVAL_EPISODES=1",
    "make compare": "SEEDS=1 SIZES=tiny ARMS=scratch,weit STEPS=1024 EVAL_EPISODES=1",
    "make templates": "STEPS=20 SAMPLES=5000",
}


def readme_block(section: str, language: str) -> str:
    """The first ```language block of the README's `section`."""
    text = (ROOT / "README.md").read_text()
    body = text.split(f"\n{section}\n", 1)[1].split("\n## ", 1)[0]
    return body.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def use_commands() -> list[str]:
    """The Use section's commands, each without its trailing comment."""
    lines = (re.split(r"\s{2,}# ", line, maxsplit=1)[0].strip() for line in readme_block("## Use", "bash").splitlines())
    return [line for line in lines if line]


def scaled(command: str) -> str:
    return next((f"{command} {extra}" for prefix, extra in SCALE.items() if command.startswith(prefix)), command)


def user_env() -> dict[str, str]:
    """A user's environment: banks and experts are looked up in the folder they work in."""
    return {k: v for k, v in os.environ.items() if k != "WEIT_RL_HOME"}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A clone of the repository with the working tree's uncommitted changes committed in it, and
    this environment's .venv (make's install step is up to date there, as after `make install`)."""
    dest = tmp_path_factory.mktemp("readme") / "weit_rl"
    subprocess.run(["git", "clone", "-q", "--local", str(ROOT), str(dest)], check=True)
    for name in git("ls-files", "--modified", "--others", "--exclude-standard", cwd=ROOT).splitlines():
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    for name in git("ls-files", "--deleted", cwd=ROOT).splitlines():
        (dest / name).unlink(missing_ok=True)
    git("add", "-A", cwd=dest)
    who = ("-c", "user.name=test", "-c", "user.email=test@example.com")
    git(*who, "commit", "-q", "--allow-empty", "-m", "the working tree", cwd=dest)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    with (dest / ".git" / "info" / "exclude").open("a") as f:
        f.write(".venv\n")  # .gitignore's `.venv/` names a folder; here it is a link
    stamp = (ROOT / ".venv" / "bin" / "weit-rl").stat().st_mtime
    os.utime(dest / "pyproject.toml", (stamp - 1, stamp - 1))  # the clone's files are newer than the install
    return dest


def test_the_use_section_lists_the_commands_a_user_starts_with():
    commands = use_commands()
    assert commands[0] == "make train ENV=HalfCheetah SIZE=small"
    assert "make compare ENV=HalfCheetah" in commands
    assert scaled("make train ENV=Hopper STEPS=300000") == "make train ENV=Hopper STEPS=300000 " + SCALE["make train"]


def test_every_readme_command_runs_in_a_fresh_clone_and_leaves_it_clean(clone):
    for command in use_commands():
        out = subprocess.run(
            ["bash", "-c", scaled(command)], cwd=clone, env=user_env(), capture_output=True, text=True, timeout=1200
        )
        assert out.returncode == 0, f"{scaled(command)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        assert git("status", "--porcelain", cwd=clone) == "", f"{command} changed the clone"
    assert (clone / "runs" / "hopper.mp4").stat().st_size > 0
    assert (clone / "runs" / "quick" / "HalfCheetah-ppo.md").exists()  # compare's study folder: runs/, not reports/


def test_the_python_example_talks_and_trains_from_another_folder(tmp_path):
    code = readme_block("## Python API", "python")
    assert "model.learn(100_000" in code
    script = tmp_path / "readme_example.py"
    script.write_text(code.replace("model.learn(100_000", "model.learn(2_048"))  # scaled down: two rollouts
    out = subprocess.run(
        [sys.executable, "-u", str(script)], cwd=tmp_path, env=user_env(), capture_output=True, text=True, timeout=1200
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("weit_rl: initializing the 96x96x96 PPO policy"))
    assert lines[start].endswith("banks/HalfCheetah-ppo.safetensors")  # found by name, from another folder
    ready = next(i for i, line in enumerate(lines) if re.fullmatch(r"weit_rl: policy initialized in \d+\.\d s", line))
    assert start < ready < next(i for i, line in enumerate(lines) if "total_timesteps" in line)  # SB3's progress
    assert (tmp_path / "model.zip").exists()
