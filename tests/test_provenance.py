"""Provenance: which commit made a file, and whether the code had uncommitted edits."""

import subprocess
from pathlib import Path

import pytest

import weit_rl
from weit_rl.artifacts.provenance import code_version

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`


def git(repo: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_edits_under_reports_are_not_uncommitted_code(tmp_path):
    """A study writing its reports while it runs must not mark the code that trained it as edited."""
    package, report = tmp_path / "weit_rl" / "x.py", tmp_path / "reports" / "r.md"
    for path in (package, report):
        path.parent.mkdir(parents=True)
        path.write_text("0\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "start")
    clean = f"{weit_rl.__version__} (git {git(tmp_path, 'rev-parse', '--short', 'HEAD')})"
    assert code_version(package.parent) == clean
    report.write_text("1\n")
    assert code_version(package.parent) == clean
    package.write_text("1\n")
    assert code_version(package.parent) == clean[:-1] + ", with uncommitted changes)"
