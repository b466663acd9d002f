"""Start-up cost: `weit-rl --help`, every command's --help, `list` and
`info` import only what they need. torch, SB3 and matplotlib take seconds to import, so
these commands must not load them at all; checked here by what a fresh interpreter has in
sys.modules, not by timing (bench/bench_init.py measures the times)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from weit_rl.artifacts.bank import _digest, _open
from weit_rl.artifacts.bank_file import digest, open_bank, verify_bank

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "stable_baselines3", "matplotlib", "gymnasium", "mujoco")


def _fresh(code: str, home: Path, *args: str) -> subprocess.CompletedProcess:
    """`code` run by a fresh interpreter (nothing imported yet, HEAVY defined), with WEIT_RL_HOME=home."""
    env = dict(os.environ, WEIT_RL_HOME=str(home), PYTHONWARNINGS="ignore")
    code = f"HEAVY = {HEAVY!r}\n{code}"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)


STARTUP = """
import contextlib, io, json, sys
from weit_rl import cli

p = cli.parser()
commands = sorted(next(a for a in p._actions if a.dest == "cmd").choices)
out = io.StringIO()
with contextlib.redirect_stdout(out):
    for argv in [["--help"], *[[c, "--help"] for c in commands]]:
        try:
            cli.parser().parse_args(argv)
        except SystemExit:
            pass
    codes = [cli.main(["list"]), cli.main(["info", sys.argv[1]]), cli.main(["info", "--json", sys.argv[1]])]
print(json.dumps({"codes": codes, "commands": commands, "printed": out.getvalue(),
                  "loaded": [m for m in HEAVY if m in sys.modules]}))
"""


def test_help_list_and_info_load_no_torch_sb3_or_matplotlib(tiny_ppo_bank, tmp_path):
    (tmp_path / "banks").mkdir()
    bank = tmp_path / "banks" / "HalfCheetah-ppo.safetensors"
    shutil.copy(tiny_ppo_bank, bank)
    done = _fresh(STARTUP, tmp_path, str(bank))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["codes"] == [0, 0, 0]
    assert {"train", "compare", "list", "info"} <= set(result["commands"])
    assert "banks/HalfCheetah-ppo.safetensors" in result["printed"]  # list found the bank, info read it
    assert '"tensor_sha256"' in result["printed"]
    assert result["loaded"] == [], f"imported at start-up: {result['loaded']}"


def test_configs_and_the_runs_rules_load_no_torch(tmp_path):
    code = (
        "import json, sys\n"
        "from weit_rl.agents import RunConfig\n"
        "from weit_rl.agents.config import GROUPS, changed_fields, run_needs\n"
        "from weit_rl.compare import PROFILES, add_arguments\n"
        "from weit_rl.compare.arms import describe\n"
        "from weit_rl.envs import TASKS, resolve_task, short_name\n"
        "from weit_rl.recipe import RECIPES, needs\n"
        "print(json.dumps([m for m in HEAVY if m in sys.modules]))\n"
    )
    done = _fresh(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_lazy_packages_export_every_name_as_before(tmp_path):
    """Every name of weit_rl.agents and weit_rl.compare is importable from the package, and
    `train` is the function even when its submodule was imported first."""
    code = (
        "import types\n"
        "import weit_rl.agents.train\n"
        "import weit_rl.agents as agents, weit_rl.compare as compare\n"
        "from weit_rl.agents import RunConfig, train\n"
        "assert isinstance(train, types.FunctionType) and train.__module__ == 'weit_rl.agents.train', train\n"
        "assert agents.train is train and RunConfig.__name__ == 'RunConfig'\n"
        "for pkg in (agents, compare):\n"
        "    for name in pkg.__all__:\n"
        "        assert not isinstance(getattr(pkg, name), types.ModuleType), name\n"
        "        assert name in dir(pkg), name\n"
        "from weit_rl.agents import enjoy, config\n"
        "assert isinstance(enjoy, types.ModuleType) and isinstance(config, types.ModuleType)\n"
        "try:\n"
        "    agents.no_such_name\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
        "print('ok')\n"
    )
    done = _fresh(code, tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_checksums_read_without_torch_equal_those_with_torch(tiny_ppo_bank):
    manifest, arrays = open_bank(tiny_ppo_bank)
    _, tensors = _open(tiny_ppo_bank)
    assert digest(arrays) == _digest(tensors) == manifest["tensor_sha256"]
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    assert verify_bank(tiny_ppo_bank) == manifest


@pytest.mark.parametrize("bank", sorted((ROOT / "banks").glob("*.safetensors")), ids=lambda p: p.name)
def test_shipped_banks_still_verify(bank):
    assert verify_bank(bank)["format"] == "weit_rl.bank/1"
