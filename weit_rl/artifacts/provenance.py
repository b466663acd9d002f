"""Where a shipped file came from: the code that made it and the machine it ran on.
Reports, bank manifests and expert manifests record both."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from weit_rl import __version__

PACKAGE = Path(__file__).resolve().parents[1]  # weit_rl/


def code_version(here: Path = PACKAGE) -> str:
    """weit_rl's version plus the git commit of its checkout, when there is one (a bank
    rebuilt by a later commit may differ: the commit says which code to check out). Edits
    under reports/ do not count as uncommitted changes: a running study writes there."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")  # read-only: never refresh the index
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=here,
            env=env,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if head.returncode != 0:
            return __version__
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)reports"],
            cwd=here,
            env=env,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__} (git {head.stdout.strip()}{', with uncommitted changes' if dirty else ''})"


def hardware(device: str) -> str:
    return f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, device {device}"
