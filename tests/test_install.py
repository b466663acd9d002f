"""A non-editable install exposes envs/ and agents/ as weit_rl.envs / weit_rl.agents,
with the YAML configs (the studies' too) inside the package, builds without setuptools
warnings, and holds every module the command line imports."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`

ROOT = Path(__file__).resolve().parents[1]


def test_non_editable_install_imports_namespaced_packages(tmp_path):
    target = tmp_path / "site"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    assert "Warning" not in build.stderr, build.stderr  # setuptools' "absent from the packages configuration"
    studies = sorted(p.name for p in (ROOT / "configs" / "studies").glob("*.yaml"))
    assert studies and sorted(p.name for p in (target / "weit_rl" / "configs" / "studies").glob("*.yaml")) == studies
    assert not (target / "envs").exists() and not (target / "agents").exists()  # no generic top-level names
    code = (
        "import weit_rl, weit_rl.envs, weit_rl.agents, weit_rl.cli, weit_rl.config as c;"
        "mods = [m for n, m in sys.modules.items() if n.startswith('weit_rl')];"
        "assert all(m.__file__.startswith(sys.argv[1]) for m in mods), [m.__file__ for m in mods];"
        "print(weit_rl.envs.resolve_task('Ant'), c.parse_size('small'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import sys;" + code, str(target)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "Ant-v5"
