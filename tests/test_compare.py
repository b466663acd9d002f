"""`weit-rl compare`: validation before any run, a tiny grid end to end, a sweep that
resumes from its study folder on a machine that lost runs/, the Ray backend, and a
synthetic study whose every number a reviewer's own numpy recomputes from runs/ alone."""

import argparse
import csv
import importlib.util
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import yaml

from weit_rl import UserError, cli, compare, plots
from weit_rl.agents import prepare
from weit_rl.compare import study
from weit_rl.compare.runners import worker_env
from weit_rl.numerics import PINNED

from conftest import run_cli

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`

ROOT = Path(__file__).resolve().parents[1]
# A tiny grid: two PPO rollouts of 512 steps, evaluated at 0, 512 and 1024 steps.
TINY = [
    "--env",
    "HalfCheetah",
    "--sizes",
    "tiny",
    "--steps",
    "1024",
    "--eval-freq",
    "512",
    "--eval-episodes",
    "1",
    "--reps",
    "200",
    "--workers",
    "2",
    "--study",
    "tiny",
]
RUNS = [f"ppo-tiny-{i}-s{s}" for i in ("scratch", "weit", "select") for s in (0, 1)]


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    compare.add_arguments(p)
    return p.parse_args(list(argv))


def columns(run: Path, *names: str) -> list[tuple[str, ...]]:
    with (run / "evaluations.csv").open() as f:
        return [tuple(row[n] for n in names) for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory, tiny_ppo_bank, tiny_ppo_expert) -> tuple[Path, list[str]]:
    """scratch, weit and select, two seeds each, trained by the command line."""
    root = tmp_path_factory.mktemp("compare")
    args = [
        *TINY,
        "--arms",
        "scratch,weit,select",
        "--seeds",
        "2",
        "--bank",
        str(tiny_ppo_bank),
        "--expert",
        str(tiny_ppo_expert),
        "--out-dir",
        str(root / "runs"),
        "--report-dir",
        str(root / "reports"),
    ]
    out = run_cli("compare", *args, cwd=root)
    assert out.returncode == 0, out.stderr
    return root, args


def test_tiny_grid_end_to_end(local_sweep):
    root, _ = local_sweep
    folder = root / "reports" / "tiny"
    assert sorted(p.name for p in (folder / "runs" / "HalfCheetah").iterdir()) == sorted([*RUNS, "study-ppo.json"])
    assert sorted(p.name for p in (folder / "runs").iterdir()) == ["HalfCheetah"]
    for run in RUNS:
        recorded = folder / "runs" / "HalfCheetah" / run
        assert sorted(p.name for p in recorded.iterdir()) == ["config.yaml", "diagnostics.csv", "evaluations.csv"]
        assert [int(t) for (t,) in columns(recorded, "timesteps")] == [0, 512, 1024]
        assert (root / "runs" / "tiny" / "HalfCheetah" / run / "model.zip").exists()  # trained in scratch
    for name in (
        "HalfCheetah-ppo.md",
        "HalfCheetah-ppo.json",
        "HalfCheetah-ppo-learning_curves.png",
        "HalfCheetah-ppo-performance_profile.png",
    ):
        assert (folder / name).stat().st_size > 0, name
    # No absolute path in anything that ships: paths are relative to the repository root
    # (here the sweep's folder) or marked as outside it.
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix != ".png":
            assert "/tmp" not in path.read_text() and str(root) not in path.read_text(), path
    config = yaml.safe_load((folder / "runs" / "HalfCheetah" / "ppo-tiny-weit-s0" / "config.yaml").read_text())
    assert config["run_dir"] == "runs/tiny/HalfCheetah/ppo-tiny-weit-s0"
    # the part's kernels, whatever the compare process pinned for itself (a fast part: MKL's AVX2)
    assert "MKL_CBWR=AVX2" in config["kernels"] or not PINNED
    assert config["bank"] == study.OUTSIDE + "bank-ppo.safetensors"
    text = (folder / "HalfCheetah-ppo.md").read_text()
    assert "](HalfCheetah-ppo-learning_curves.png)" in text and "`runs/HalfCheetah/study-ppo.json`" in text
    assert "weit-rl compare --env HalfCheetah" in text and "weit_rl 0.1" in text and "CPUs" in text
    assert "**raw returns**" in text  # the test bank records no expert return
    assert "**not tested**: 2 and 2 runs, fewer than 5" in text  # weit vs select: no verdict with 2 seeds
    assert "evaluating** (evaluations.csv columns wall_s, eval_s)" in text
    data = json.loads((folder / "HalfCheetah-ppo.json").read_text())
    assert {c["baseline"]: c["verdict"] for c in data["results"]["comparisons"]} == {
        "scratch": "not tested (n < 5)",
        "select": "not tested (n < 5)",
    }
    assert data["results"]["sizes"]["tiny"]["weit"]["aggregate"]["auc"]["mean"]["low"] is None
    assert 0 < data["timing"]["eval_share"] < 1


def test_sweep_resumes_from_the_study_folder_alone(local_sweep, tmp_path):
    """On a new machine (the study folder only, no runs/), only the missing run trains;
    a run finished but not recorded is recorded without training; deleting runs/
    retrains nothing."""
    root, args = local_sweep
    shutil.copytree(root / "reports", tmp_path / "reports")
    args = [a.replace(str(root), str(tmp_path)) for a in args]
    env_dir = tmp_path / "reports" / "tiny" / "runs" / "HalfCheetah"
    kept = {p.name: (p / "evaluations.csv").stat().st_mtime_ns for p in env_dir.iterdir() if p.is_dir()}
    shutil.rmtree(env_dir / "ppo-tiny-weit-s1")
    out = run_cli("compare", *args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "1 of 6 runs to train" in out.stderr
    assert {p.name for p in (tmp_path / "runs" / "tiny" / "HalfCheetah").iterdir()} == {"ppo-tiny-weit-s1", "logs"}
    for name, mtime in kept.items():
        if name != "ppo-tiny-weit-s1":
            assert (env_dir / name / "evaluations.csv").stat().st_mtime_ns == mtime, f"{name} was rewritten"
    assert study.is_done(env_dir / "ppo-tiny-weit-s1")
    model = tmp_path / "runs" / "tiny" / "HalfCheetah" / "ppo-tiny-weit-s1" / "model.zip"
    trained_at = model.stat().st_mtime_ns
    shutil.rmtree(env_dir / "ppo-tiny-weit-s1")  # killed after training, before recording
    out = run_cli("compare", *args, cwd=tmp_path)
    assert "recorded 1 runs that had finished" in out.stderr and "all 6 runs are recorded" in out.stderr
    assert model.stat().st_mtime_ns == trained_at and study.is_done(env_dir / "ppo-tiny-weit-s1")
    shutil.rmtree(tmp_path / "runs")
    out = run_cli("compare", *args, cwd=tmp_path)
    assert out.returncode == 0 and "all 6 runs are recorded" in out.stderr, out.stderr
    assert not (tmp_path / "runs" / "tiny" / "HalfCheetah").exists()
    # The report rebuilds from the study folder alone: no --env, no bank, no expert.
    before = json.loads((tmp_path / "reports" / "tiny" / "HalfCheetah-ppo.json").read_text())["results"]
    out = run_cli(
        "compare", "--study", "tiny", "--report-only", "--report-dir", "reports", "--reps", "200", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "reports" / "tiny" / "HalfCheetah-ppo.json").read_text())["results"] == before


def test_stopping_the_sweep_process_checkpoints_its_runs(tiny_ppo_bank, tmp_path):
    """`kill PID` of a background sweep reaches its workers: each running run checkpoints where it
    is, no queued run starts, and the sweep ends at once rather than when its runs would finish."""
    args = [
        sys.executable,
        "-m",
        "weit_rl.cli",
        "compare",
        "--env",
        "HalfCheetah",
        "--sizes",
        "tiny",
        "--steps",
        "200000",
        "--eval-freq",
        "1024",
        "--eval-episodes",
        "1",
        "--arms",
        "scratch",
        "--seeds",
        "3",
        "--workers",
        "2",
        "--study",
        "stop",
        "--bank",
        str(tiny_ppo_bank),
        "--out-dir",
        "runs",
        "--report-dir",
        "reports",
    ]
    scratch = tmp_path / "runs" / "stop" / "HalfCheetah"
    proc = subprocess.Popen(
        args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.time() + 300
        started = [scratch / f"ppo-tiny-scratch-s{seed}" / "evaluations.csv" for seed in (0, 1)]
        while not all(f.exists() and len(f.read_text().splitlines()) >= 3 for f in started):  # header + 2 evaluations
            assert time.time() < deadline and proc.poll() is None, "the runs did not start"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)  # the sweep's own process only, as `kill PID` does
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "resume" in err, err
    for seed in (0, 1):
        saved = int((scratch / f"ppo-tiny-scratch-s{seed}" / "checkpoint" / "timesteps.txt").read_text())
        assert 1024 <= saved < 200_000
    assert not (scratch / "ppo-tiny-scratch-s2").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster(tmp_path, monkeypatch):
    """A local Ray cluster of 2 CPUs, started as a user starts one (`ray start --head`), with its
    own token, ports and temporary folder; yields its address. Stopped after the test, its whole
    process group killed if it does not stop in time."""
    pytest.importorskip("ray", reason="Ray is not installed (optional: pip install '.[ray]')")
    for key, value in {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}.items():
        monkeypatch.setenv(key, value)  # the cluster's token, which the sweep (run_cli) passes on
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    temp = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths under it must fit 107 characters
    port, log = _free_port(), tmp_path / "ray-start.log"
    argv = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--num-cpus=2", f"--port={port}"]
    argv += [f"--ray-client-server-port={_free_port()}", f"--temp-dir={temp}", "--include-dashboard=false"]
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 180
        while "Ray runtime started" not in log.read_text():
            assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()  # `ray start --block` stops the cluster's processes on SIGTERM
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.parametrize("where", ["cluster", "here"])
def test_ray_backend_gives_the_local_results(where, request, local_sweep, tmp_path, tiny_ppo_bank):
    """Two runs as Ray tasks on 2 CPUs, on a cluster reached by --address or on a Ray the sweep
    starts itself, record what the local backend recorded: the same evaluations, diagnostics
    and configuration (kernels included), bit for bit."""
    pytest.importorskip("ray", reason="Ray is not installed (optional: pip install '.[ray]')")
    root, _ = local_sweep
    address = ["--address", request.getfixturevalue("ray_cluster")] if where == "cluster" else []
    out = run_cli(
        "compare",
        *TINY,
        "--arms",
        "scratch,weit",
        "--seeds",
        "1",
        "--bank",
        str(tiny_ppo_bank),
        "--backend",
        "ray",
        *address,
        "--out-dir",
        str(tmp_path / "runs"),
        "--report-dir",
        str(tmp_path / "reports"),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "(ray, 2 workers)" in out.stderr
    for run in ("ppo-tiny-scratch-s0", "ppo-tiny-weit-s0"):
        mine, local = (r / "reports" / "tiny" / "runs" / "HalfCheetah" / run for r in (tmp_path, root))
        scores = ("timesteps", "mean_return", "std_return", "returns")  # all but the timings
        assert columns(mine, *scores) == columns(local, *scores), run
        assert (mine / "diagnostics.csv").read_text() == (local / "diagnostics.csv").read_text(), run
        config, local_config = (yaml.safe_load((r / "config.yaml").read_text()) for r in (mine, local))
        for key in ("run_dir", "code_version"):  # where it trained; the commit, if one came in between
            config.pop(key), local_config.pop(key)
        assert config == local_config, run
    assert (tmp_path / "reports" / "tiny" / "HalfCheetah-ppo.md").exists()


def test_one_study_folder_holds_several_tasks(local_sweep, tmp_path):
    """A second task joins the study beside the first: its part is recorded under
    runs/Hopper/, its report written beside HalfCheetah's; --report-only rebuilds every
    part's report from the folder alone, or only the part of --env."""
    root, _ = local_sweep
    shutil.copytree(root / "reports", tmp_path / "reports")
    folder = tmp_path / "reports" / "tiny"
    cheetah = {p.name: p.read_bytes() for p in folder.glob("HalfCheetah-ppo*")}
    out = run_cli(
        "compare",
        "--env",
        "Hopper",
        "--sizes",
        "tiny",
        "--arms",
        "scratch",
        "--seeds",
        "1",
        "--steps",
        "1024",
        "--eval-freq",
        "512",
        "--eval-episodes",
        "1",
        "--reps",
        "50",
        "--workers",
        "1",
        "--study",
        "tiny",
        "--out-dir",
        "runs",
        "--report-dir",
        "reports",
        "--set",
        "obs_stats=fresh",  # no Hopper bank here: scratch on its own statistics
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (folder / "runs").iterdir()) == ["HalfCheetah", "Hopper"]
    assert sorted(p.name for p in (folder / "runs" / "Hopper").iterdir()) == ["ppo-tiny-scratch-s0", "study-ppo.json"]
    assert study.is_done(folder / "runs" / "HalfCheetah" / "ppo-tiny-weit-s1")  # the first part is untouched
    assert {p.name: p.read_bytes() for p in folder.glob("HalfCheetah-ppo*")} == cheetah
    assert (tmp_path / "runs" / "tiny" / "Hopper" / "ppo-tiny-scratch-s0" / "model.zip").exists()
    reports = sorted(p.name for p in folder.iterdir() if p.is_file())
    assert [n for n in reports if n.startswith("Hopper")] == [
        "Hopper-ppo-learning_curves.png",
        "Hopper-ppo-performance_profile.png",
        "Hopper-ppo.json",
        "Hopper-ppo.md",
    ]
    for part in ("HalfCheetah-ppo", "Hopper-ppo"):  # every image link resolves beside the report
        links = re.findall(r"\]\(([^)]+\.png)\)", (folder / f"{part}.md").read_text())
        assert links and all(link.startswith(part) and (folder / link).exists() for link in links), links
    results = {n: json.loads((folder / f"{n}.json").read_text())["results"] for n in ("HalfCheetah-ppo", "Hopper-ppo")}
    hopper = json.loads((folder / "Hopper-ppo.json").read_text())
    assert hopper["study_file"] == "reports/tiny/runs/Hopper/study-ppo.json"
    shutil.rmtree(tmp_path / "runs")
    for path in folder.iterdir():
        if path.is_file():
            path.unlink()
    out = run_cli(
        "compare", "--study", "tiny", "--report-only", "--report-dir", "reports", "--reps", "200", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == sorted([*reports])
    assert json.loads((folder / "HalfCheetah-ppo.json").read_text())["results"] == results["HalfCheetah-ppo"]
    (folder / "HalfCheetah-ppo.md").unlink()
    assert compare.run_compare(
        parse(
            "--study",
            "tiny",
            "--env",
            "Hopper",
            "--report-only",
            "--report-dir",
            str(tmp_path / "reports"),
            "--reps",
            "50",
        ),
        "t",
    ) == [folder / "Hopper-ppo.md"]
    assert json.loads((folder / "Hopper-ppo.json").read_text())["results"] == results["Hopper-ppo"]
    assert not (folder / "HalfCheetah-ppo.md").exists()
    (folder / "runs" / "Ant").mkdir()  # a part whose sweep started but recorded no run yet
    ant = json.loads((folder / "runs" / "Hopper" / "study-ppo.json").read_text()) | {"env_id": "Ant-v5"}
    (folder / "runs" / "Ant" / "study-ppo.json").write_text(json.dumps(ant))
    every = parse("--study", "tiny", "--report-only", "--report-dir", str(tmp_path / "reports"), "--reps", "50")
    assert compare.run_compare(every, "t") == [folder / "HalfCheetah-ppo.md", folder / "Hopper-ppo.md"]
    shutil.rmtree(folder / "runs" / "Ant")
    only = parse("--study", "tiny", "--report-only", "--report-dir", str(tmp_path / "reports"))
    with pytest.raises(UserError, match="has parts HalfCheetah-ppo, Hopper-ppo: pick one with --env"):
        compare.resolve(only)
    with pytest.raises(UserError, match="has no Ant/ppo part \\(it has HalfCheetah/ppo, Hopper/ppo\\)"):
        compare.resolve_parts(
            parse("--study", "tiny", "--env", "Ant", "--report-only", "--report-dir", str(tmp_path / "reports"))
        )
    with pytest.raises(UserError, match="has no \\*/sac part"):
        compare.resolve_parts(
            parse("--study", "tiny", "--algo", "sac", "--report-only", "--report-dir", str(tmp_path / "reports"))
        )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sizes", "tiny,huge"], "invalid size 'huge'"),
        (["--arms", "scratch,magic"], "unknown arm 'magic'"),
        (["--env", "Pong"], "unknown task 'Pong'"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--arms", "scratch,weit", "--bank", "{missing}"], "template bank not found"),
        (["--arms", "select", "--sizes", "64x2"], r"init select cannot make size small \[64, 64\]"),
        (["--arms", "select", "--sizes", "32x4"], "init select cannot make size 32x4"),
        (["--primary-size", "small"], "--primary-size 'small' is not one of"),
        (["--profile", "full", "--eval-episodes", "5"], "the full profile follows docs/protocol.md"),
        (["--study", "../elsewhere"], "must be a relative folder name"),
        (["--set", "nonsense=1"], "--set: unknown setting 'nonsense'; RunConfig fields that can be set: .*obs_count"),
        (["--set", "steps=5"], "--set: steps cannot be set here"),
        (["--set", "init=weit"], "init cannot be set here: choose it per arm"),
        (["--set", "retention=lots"], "retention='lots' is not a valid float"),
        (["--set", "obs_stats=nope"], "arm scratch .*unknown obs_stats 'nope'"),
        (["--arm", "fast:retention=0.5", "--arms", "fast"], "--arm fast: a named arm needs init=INITIALIZER"),
        (["--arm", "weit:init=scratch", "--arms", "weit"], "registered arm weit uses init=weit, not init=scratch"),
        (["--arm", "Fast:init=weit"], "arm name 'Fast' must be lowercase"),
        (["--arm", "ft:init=weit", "--arms", "scratch"], "--arm ft defined but not listed in --arms"),
        (["--arms", "scratch,fast"], "unknown arm 'fast'.*--arm fast:init="),
        (["--primary", "weit"], "must be METHOD:BASELINE"),
        (["--primary", "weit:distill"], "names weit, distill, not an arm of this study"),
        (
            ["--arm", "sel:init=select", "--arms", "sel", "--sizes", "64x2"],
            r"init select cannot make size small \[64, 64\].*drop sel",
        ),
    ],
)
def test_bad_input_fails_before_any_run(argv, message, tmp_path, tiny_ppo_expert, tiny_ppo_bank):
    argv = [a.replace("{missing}", str(tmp_path / "none.safetensors")) for a in argv]
    base = [
        "--env",
        "HalfCheetah",
        "--bank",
        str(tiny_ppo_bank),
        "--steps",
        "1024",
        "--sizes",
        "tiny",
        "--arms",
        "scratch",
        "--expert",
        str(tiny_ppo_expert),
        "--out-dir",
        str(tmp_path / "runs"),
        "--report-dir",
        str(tmp_path / "reports"),
    ]
    if "--env" in argv:
        base = base[2:]
    with pytest.raises(UserError, match=message) as err:
        compare.run_compare(parse(*base, *argv), "test")
    assert "\n" not in str(err.value)  # one clear line
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()


def test_a_study_or_run_folder_from_another_sweep_is_refused(tmp_path):
    out = ("--out-dir", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "reports"))
    fresh = ("--set", "obs_stats=fresh")  # scratch on its own statistics: no bank here
    args = parse(
        "--env", "HalfCheetah", "--sizes", "tiny", "--arms", "scratch", "--seeds", "1", "--steps", "1024", *fresh, *out
    )
    sweep = compare.resolve(args)
    run = sweep.scratch("tiny", "scratch", 0)
    made = asdict(prepare(sweep.config("tiny", "scratch", 0)))  # what this sweep writes, then edited
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(made | {"steps": 4096}))
    with pytest.raises(UserError, match="different sweep: steps: 4096 -> 1024"):
        compare.resolve(args)
    # a default the sweep does not set, changed since the run was made: two recipes in one cell
    (run / "config.yaml").write_text(yaml.safe_dump(made | {"fit_steps": 1000}))
    with pytest.raises(UserError, match="different sweep: fit_steps: 1000 -> 300"):
        compare.resolve(args)
    (run / "config.yaml").write_text(yaml.safe_dump(made | {"checkpoint_freq": 7, "device": "cuda"}))
    compare.resolve(args)  # settings that do not change what a run learns
    shutil.rmtree(run)
    sweep = compare.resolve(args)
    study.write_study(sweep.study_file, study.definition(sweep))
    with pytest.raises(UserError, match="study-ppo.json was started with other settings: steps 1024"):
        compare.resolve(
            parse("--env", "HalfCheetah", "--sizes", "tiny", "--arms", "scratch", "--steps", "2048", *fresh, *out)
        )


def test_a_later_sweep_may_add_sizes_beside_the_primary_size(tmp_path):
    """The headline adds 256x4 to a part whose primary (small) an earlier sweep declared."""
    common = ("--env", "HalfCheetah", "--arms", "scratch", "--steps", "1024", "--set", "obs_stats=fresh")
    out = ("--out-dir", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "reports"))
    later = parse(*common, *out, "--sizes", "64x3", "--primary-size", "small")
    with pytest.raises(UserError, match="--primary-size 'small' is not one of --sizes 64x3 "):
        compare.resolve(later)  # a new study: the primary size must be one of its sizes
    first = compare.resolve(parse(*common, *out, "--sizes", "tiny,small"))
    assert first.primary_size == "small"
    study.write_study(first.study_file, study.definition(first))
    sweep = compare.resolve(later)
    assert (sweep.sizes, sweep.primary_size) == (["64x3"], "small")


def test_profiles_fill_unset_options_and_write_their_own_study(tmp_path):
    out = ("--out-dir", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "reports"), "--set", "obs_stats=fresh")
    quick = compare.resolve(parse("--env", "HalfCheetah", "--arms", "scratch", *out))
    assert (quick.sizes, quick.seeds, quick.steps, quick.eval_freq) == (["tiny", "small"], list(range(5)), 20_480, 4096)
    assert quick.primary_size == "small"
    assert quick.study_dir == tmp_path / "reports" / "quick"
    assert quick.study_file == tmp_path / "reports" / "quick" / "runs" / "HalfCheetah" / "study-ppo.json"
    assert quick.recorded("tiny", "scratch", 0) == quick.study_file.parent / "ppo-tiny-scratch-s0"
    assert quick.scratch("tiny", "scratch", 0) == tmp_path / "runs" / "quick" / "HalfCheetah" / "ppo-tiny-scratch-s0"
    full = compare.resolve(parse("--env", "HalfCheetah", "--arms", "scratch", "--profile", "full", *out))
    assert full.study_dir == tmp_path / "reports" / "full"
    assert (full.eval_freq, full.eval_episodes, len(full.seeds), full.primary_size) == (10_000, 10, 10, "small")
    sac = compare.resolve(
        parse("--env", "HalfCheetah", "--algo", "sac", "--arms", "scratch", "--profile", "full", *out)
    )
    assert sac.eval_freq == 5_000 and sac.study == "full" and sac.study_file.name == "study-sac.json"


def test_report_only_without_a_study_says_what_to_do(tmp_path):
    args = parse("--env", "HalfCheetah", "--report-only", "--report-dir", str(tmp_path))
    with pytest.raises(UserError, match="no study at .*run the sweep first"):
        compare.run_compare(args, "test")
    with pytest.raises(UserError, match="--env is required"):
        compare.run_compare(parse("--report-only"), "test")


def test_ray_backend_without_ray_is_a_clear_error(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *a, **kw):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(UserError, match=r"pip install '\.\[ray\]'"):
        compare.run_ray([{"run_dir": str(tmp_path)}], "test", 1, {}, None, lambda *a: None)


def test_ray_backend_with_an_unreachable_cluster_is_a_clear_error(monkeypatch, tmp_path, tiny_ppo_bank):
    """An address where no cluster answers fails at once, in one line that names it and says how
    to start or point at one (Ray itself would retry for many minutes); so does a failed ray.init."""
    has_ray, calls = importlib.util.find_spec("ray") is not None, []

    def init(**kw):
        calls.append(kw)
        raise ConnectionError("Failed to connect to Ray cluster at 127.0.0.1:1\nTraceback (most recent call last): ...")

    fake = types.SimpleNamespace(is_initialized=lambda: False, init=init, shutdown=lambda: None)
    monkeypatch.setitem(sys.modules, "ray", fake)  # with or without Ray installed
    nothing = f"127.0.0.1:{_free_port()}"  # a closed port: refused at once
    run = [{"run_dir": str(tmp_path), "engine": "stock"}]
    for address in (nothing, f"ray://{nothing}"):
        start = time.time()
        with pytest.raises(UserError, match=r"no Ray cluster answers at --address " + re.escape(address)) as err:
            compare.run_ray(run, "test", 1, {}, address, lambda *a: None)
        assert time.time() - start < 10 and not calls
        assert "\n" not in str(err.value) and "ray start --head" in str(err.value)
    with pytest.raises(UserError, match=r"not a Ray address"):
        compare.run_ray(run, "test", 1, {}, "127.0.0.1:port", lambda *a: None)
    with socket.socket() as listening:  # something answers, but ray.init fails: still one line
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = f"127.0.0.1:{listening.getsockname()[1]}"
        with pytest.raises(UserError, match="could not reach Ray at --address " + re.escape(address)) as err:
            compare.run_ray(run, "test", 1, {}, address, lambda *a: None)
    assert len(calls) == 1 and "\n" not in str(err.value) and "ray start --head" in str(err.value)
    # The CLI prints it as one line and exits 2 (without Ray: the line that says how to install it).
    where = ["--out-dir", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "reports")]
    argv = [*TINY, "--arms", "scratch", "--bank", str(tiny_ppo_bank), "--backend", "ray", "--address", nothing, *where]
    out = run_cli("compare", *argv, cwd=tmp_path)
    error = [line for line in out.stderr.splitlines() if line.startswith("weit-rl: error:")]
    expected = f"no Ray cluster answers at --address {nothing}" if has_ray else "--backend ray needs Ray"
    assert out.returncode == 2 and len(error) == 1 and expected in error[0], out.stderr
    assert out.stderr.rstrip().endswith("or use --backend local"), out.stderr  # the message is its last line


def test_paths_in_shipped_files_are_portable():
    assert study.portable(ROOT / "banks" / "x.safetensors") == "banks/x.safetensors"
    assert study.portable("banks/x.safetensors") == "banks/x.safetensors"
    assert study.portable("/somewhere/else/bank.safetensors") == study.OUTSIDE + "bank.safetensors"
    assert (
        study.portable_command(f"weit-rl compare --bank {ROOT}/banks/b --expert=/x/e")
        == "weit-rl compare --bank banks/b '--expert=<outside the repository>/e'"
    )


def test_raw_data_of_a_study_is_not_git_ignored():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    shipped = "reports/full/runs/HalfCheetah/ppo-small-weit-s0/evaluations.csv"

    def check(path: str) -> int:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False).returncode

    assert check(shipped) == 1, "git ignores the study's raw data: anchor runs/ in .gitignore as /runs/"
    assert check("reports/full/runs/HalfCheetah/study-ppo.json") == 1
    assert check("runs/full/HalfCheetah/ppo-small-weit-s0/model.zip") == 0  # scratch stays out


def test_compare_files_stay_short():
    for path in (ROOT / "weit_rl" / "compare").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 450, path.name  # lines as ruff format writes them


# --- A synthetic study, recomputed by a reviewer's own numpy --------------------------

EXPERT, RANDOM, STEPS, REPS, SEED = 1000.0, -200.0, 2048, 500, 3
ARMS = {"scratch": 0.0, "weit": 800.0, "distill": 100.0}  # return offsets: weit clearly ahead


def synthetic_study(
    root: Path, seeds: int = 6, references: dict | None = None, env: str = "HalfCheetah", algo: str = "ppo"
) -> Path:
    """A part of study synth, its finished runs written as files only (as shipped):
    runs/<env>/study-<algo>.json and, per run, evaluations.csv (every other run without
    wall_s/eval_s, as older files) and config.yaml. Returns the study's runs/."""
    runs = root / "reports" / "synth" / "runs"
    refs = {"expert_return": EXPERT, "random_return": RANDOM, "expert_source": "test", "random_source": "test"}
    definition = {
        "env_id": f"{env}-v5",
        "algo": algo,
        "steps": STEPS,
        "eval_freq": 512,
        "eval_episodes": 10,
        "primary_size": "tiny",
        "bank_sha256": None,
        "sizes": ["tiny", "small"],
        "inits": list(ARMS),
        "seeds": list(range(seeds)),
        "profile": "full",
        "bank": None,
        "expert": None,
        "references": refs if references is None else references,
    }
    study.write_study(study.part_file(runs, env, algo), definition)
    write_runs(runs, ARMS, seeds, env, algo)
    return runs


def write_runs(runs: Path, arms: dict, seeds: int, env: str = "HalfCheetah", algo: str = "ppo") -> None:
    rng = np.random.default_rng(0)
    for size in ("tiny", "small"):
        for init, offset in arms.items():
            for seed in range(seeds):
                run = runs / env / f"{algo}-{size}-{init}-s{seed}"
                run.mkdir(parents=True)
                t = [0, 512, 1024, 1536, 2050]  # the last PPO rollout overshoots the budget
                r = RANDOM + np.cumsum(rng.uniform(0, 300, size=5)) + offset * np.arange(5) / 4
                lines = ["timesteps,mean_return,std_return,returns" + (",wall_s,eval_s" if seed % 2 else "")]
                lines += [
                    f"{a},{b},0,{b:.2f}" + (f",{10.0 * (i + 1)},{2.0 * (i + 1)}" if seed % 2 else "")
                    for i, (a, b) in enumerate(zip(t, r))
                ]
                (run / "evaluations.csv").write_text("\n".join(lines) + "\n")
                (run / "config.yaml").write_text(yaml.safe_dump({"steps": STEPS, "init": init, "seed": seed}))


def reviewer(runs: Path) -> dict:
    """Recompute the report's numbers from runs/ with numpy only, from its stated rules."""
    d = json.loads((runs / "HalfCheetah" / "study-ppo.json").read_text())
    e, r0 = d["references"]["expert_return"], d["references"]["random_return"]
    out = {}
    for folder in sorted(p for p in (runs / "HalfCheetah").iterdir() if p.is_dir()):
        with (folder / "evaluations.csv").open() as f:
            rows = list(csv.DictReader(f))
        raw_t = np.array([float(x["timesteps"]) for x in rows])
        t = np.minimum(raw_t, d["steps"])
        s = (np.array([float(x["mean_return"]) for x in rows]) - r0) / (e - r0)
        auc = np.sum(s * np.diff(np.append(t, d["steps"]))) / d["steps"]
        steps = {lv: float(t[np.argmax(s >= lv)]) if np.any(s >= lv) else math.inf for lv in (0.25, 0.5, 0.75)}
        final = s[raw_t <= d["steps"]][-3:].mean()  # the last 3 evaluations at or before the budget
        out[folder.name] = {"auc": auc, "final": final, "steps": steps}
    return out


def percentile_ci(samples, stat):
    rng = np.random.default_rng(SEED)
    dist = stat(*[x[rng.integers(0, len(x), size=(REPS, len(x)))] for x in samples])
    return np.quantile(dist, 0.025, method="lower"), np.quantile(dist, 0.975, method="higher")


def test_a_reviewer_recomputes_every_number_from_the_runs_alone(tmp_path):
    runs = synthetic_study(tmp_path)
    compare.run_compare(
        parse(
            "--study",
            "synth",
            "--report-only",
            "--report-dir",
            str(tmp_path / "reports"),
            "--reps",
            str(REPS),
            "--stats-seed",
            str(SEED),
        ),
        "weit-rl compare (synthetic)",
    )
    data = json.loads((runs.parent / "HalfCheetah-ppo.json").read_text())["results"]
    mine = reviewer(runs)
    iqm = lambda x: np.sort(x, axis=-1)[..., x.shape[-1] // 4 : x.shape[-1] - x.shape[-1] // 4].mean(axis=-1)  # noqa
    for size, by_init in data["sizes"].items():
        for init, cell in by_init.items():
            names = [f"ppo-{size}-{init}-s{s}" for s in range(6)]
            assert cell["runs"] == names
            auc, final = np.array([mine[n]["auc"] for n in names]), np.array([mine[n]["final"] for n in names])
            np.testing.assert_allclose(cell["auc"], auc)
            np.testing.assert_allclose(cell["final"], final)
            for metric, x in (("auc", auc), ("final", final)):
                agg = cell["aggregate"][metric]
                assert agg["mean"]["estimate"] == pytest.approx(x.mean())
                assert agg["iqm"]["estimate"] == pytest.approx(np.sort(x)[1:5].mean())  # n = 6: drop one each end
                assert (agg["mean"]["low"], agg["mean"]["high"]) == pytest.approx(
                    percentile_ci([x], lambda a: a.mean(axis=1))
                )
                assert (agg["iqm"]["low"], agg["iqm"]["high"]) == pytest.approx(percentile_ci([x], iqm))
            for lv in ("0.25", "0.5", "0.75"):
                steps = [mine[n]["steps"][float(lv)] for n in names]
                assert [math.inf if v == "inf" else v for v in cell["steps"][lv]] == steps
                assert cell["levels"][lv]["reached"] == sum(math.isfinite(v) for v in steps)
    comps = {(c["size"], c["baseline"]): c for c in data["comparisons"]}
    assert data["comparisons"][0]["role"] == "primary" and data["comparisons"][0]["size"] == "tiny"
    assert [c["role"] for c in data["comparisons"]].count("primary") == 1
    pvalues = {}
    for (size, base), c in comps.items():
        x = np.array(data["sizes"][size]["weit"]["auc"])
        y = np.array(data["sizes"][size][base]["auc"])
        assert c["difference"]["estimate"] == pytest.approx(x.mean() - y.mean())
        assert (c["difference"]["low"], c["difference"]["high"]) == pytest.approx(
            percentile_ci([x, y], lambda a, b: a.mean(axis=1) - b.mean(axis=1))
        )
        # C(12, 6) = 924 splits > 500: Monte Carlo permutations from a fresh generator
        perms = np.random.default_rng(SEED).permuted(np.tile(np.r_[x, y], (REPS, 1)), axis=1)
        diff = perms[:, :6].mean(axis=1) - perms[:, 6:].mean(axis=1)
        pvalues[(size, base)] = (1 + np.sum(np.abs(diff) >= abs(x.mean() - y.mean()) - 1e-9)) / (1 + REPS)
        assert c["p"] == pytest.approx(pvalues[(size, base)])
    secondary = sorted((p, k) for k, p in pvalues.items() if k != ("tiny", "scratch"))
    m = len(secondary)
    holm = np.minimum(1, np.maximum.accumulate([(m - i) * p for i, (p, _) in enumerate(secondary)]))
    for adjusted, (_, key) in zip(holm, secondary):
        assert comps[key]["p_holm"] == pytest.approx(adjusted)
        assert comps[key]["verdict"] == ("better" if adjusted <= 0.05 else "inconclusive")
    assert comps[("tiny", "scratch")]["verdict"] == "better"  # weit's offset is large
    text = (runs.parent / "HalfCheetah-ppo.md").read_text()
    assert "weit vs scratch at size tiny" in text and "**weit better**" in text
    assert "(R - random) / (expert - random)" in text and "integral over [0, budget] of the step-function" in text
    assert "Training time summed over 18 of 36 runs" in text and "20.0% evaluating" in text


def test_compare_prints_the_reports_table_of_arms_and_where_its_files_are(tmp_path, capsys):
    runs = synthetic_study(tmp_path)
    folder = tmp_path / "reports" / "synth"
    args = ["compare", "--study", "synth", "--report-only", "--report-dir", str(tmp_path / "reports"), "--reps", "100"]
    cli.cmd_compare(cli.parser().parse_args(args))
    out = capsys.readouterr().out
    assert "primary comparison: weit vs scratch at size tiny" in out and "weit better" in out
    rows = [line.split() for line in out.splitlines()]
    md = (runs.parent / "HalfCheetah-ppo.md").read_text().split("## Results per size")[1].split("## Figures")[0]
    for size in ("tiny", "small"):
        table = md.split(f"### {size} ")[1].split("\n\n")[1].splitlines()  # the size's table of arms
        for arm in ARMS:
            cells = next(row for row in table if row.startswith(f"| {arm} |")).strip("| ").split(" | ")
            assert " ".join(cells).split() in rows, (size, arm)  # each value of the report's row, as plain text
    assert f"report:  {folder / 'HalfCheetah-ppo.md'}" in out
    figures = [line.split(maxsplit=1)[1] for line in out.splitlines() if line.startswith("figure:")]
    assert figures and all(Path(path).is_file() for path in figures)
    assert str(folder / "HalfCheetah-ppo-learning_curves.png") in figures


def test_learning_curve_panels_share_their_y_range(tmp_path, monkeypatch):
    figures, save = [], plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or save(fig, path))
    grid = np.array([0.0, 512.0, 1024.0])
    sizes = {  # one size learns ten times as much as the other
        size: {"weit": {"curve": {"mean": grid * top / 1024, "runs": [grid * top / 1024]}}}
        for size, top in (("tiny", 1.0), ("small", 10.0))
    }
    assert plots.learning_curves(tmp_path / "curves.png", grid, sizes, "mean return").is_file()
    tiny, small = figures[0].axes
    assert tiny.get_ylim() == small.get_ylim() and tiny.get_ylim()[1] >= 10.0


def test_small_studies_fallback_normalization_and_missing_runs(tmp_path):
    runs = synthetic_study(
        tmp_path,
        seeds=3,
        references={"expert_return": EXPERT, "random_return": None, "expert_source": "test", "random_source": None},
    )
    shutil.rmtree(runs / "HalfCheetah" / "ppo-small-distill-s2")
    compare.run_compare(
        parse("--study", "synth", "--report-only", "--report-dir", str(tmp_path / "reports"), "--reps", "100"), "test"
    )
    text = (runs.parent / "HalfCheetah-ppo.md").read_text()
    assert "**R / expert (fallback)**" in text and "no `random_return`" in text
    assert "**Missing runs**" in text and "ppo-small-distill-s2" in text
    assert "intervals are not meaningful there" in text and "**not tested**: 3 and 3 runs" in text
    comparisons = text.split("## Primary comparison")[1].split("## Results")[0]
    assert not re.search(r"\*\*\w+ better\*\*|\| better", comparisons)  # no verdict of better
    data = json.loads((runs.parent / "HalfCheetah-ppo.json").read_text())["results"]
    assert data["normalization"] == "expert-only"
    assert all(c["verdict"] == "not tested (n < 5)" and c["p"] is None for c in data["comparisons"])
    final = data["sizes"]["tiny"]["weit"]["final"][0]
    budget = json.loads((runs / "HalfCheetah" / "study-ppo.json").read_text())["steps"]
    with (runs / "HalfCheetah" / "ppo-tiny-weit-s0" / "evaluations.csv").open() as f:
        returns = [float(row["mean_return"]) for row in csv.DictReader(f) if int(row["timesteps"]) <= budget]
    assert final == pytest.approx(np.mean(returns[-3:]) / EXPERT)  # R / expert


def test_a_later_sweep_of_the_study_widens_its_grid(tmp_path):
    runs = synthetic_study(tmp_path, seeds=2)
    old = study.read_study(runs / "HalfCheetah" / "study-ppo.json")
    new = dict(old, seeds=[0, 1, 2, 3], inits=["scratch", "select"])
    merged = study.merge_study(old, new, runs.parent)
    assert merged["seeds"] == [0, 1, 2, 3] and merged["inits"] == ["scratch", "weit", "distill", "select"]
    with pytest.raises(UserError, match="primary_size 'tiny' \\(now 'small'\\)"):
        study.merge_study(old, dict(new, primary_size="small"), runs.parent)


def test_cells_may_plan_more_seeds_than_others(tmp_path):
    """A 10-seed call for some arms joins a 5-seed part: each cell expects its own seeds, so
    the report misses nothing, and the grid is the union of every call's cells."""
    runs = synthetic_study(tmp_path, seeds=2)
    part = runs / "HalfCheetah" / "study-ppo.json"
    old = study.read_study(part)
    more = dict(old, sizes=["tiny"], inits=["weit"], seeds=[0, 1, 2, 3], grid=None)
    merged = study.merge_study(old, more, runs.parent)
    assert merged["grid"]["tiny/weit"] == [0, 1, 2, 3] and merged["grid"]["small/weit"] == [0, 1]
    assert merged["grid"]["tiny/scratch"] == [0, 1] and merged["seeds"] == [0, 1, 2, 3]
    study.write_study(part, merged)
    for seed in (2, 3):
        shutil.copytree(runs / "HalfCheetah" / "ppo-tiny-weit-s0", runs / "HalfCheetah" / f"ppo-tiny-weit-s{seed}")
    compare.run_compare(
        parse("--study", "synth", "--report-only", "--report-dir", str(tmp_path / "reports"), "--reps", "100"), "test"
    )
    text = (runs.parent / "HalfCheetah-ppo.md").read_text()
    assert "**Missing runs**" not in text
    data = json.loads((runs.parent / "HalfCheetah-ppo.json").read_text())["results"]["sizes"]
    assert len(data["tiny"]["weit"]["auc"]) == 4 and len(data["tiny"]["scratch"]["auc"]) == 2


# --- Controlled arms and ablations: --set, --arm, --primary, --candidates -------------


def test_named_arms_and_shared_settings_from_definition_to_report(tmp_path, tiny_ppo_bank):
    """--set reaches every arm, a named arm adds its overrides, the bank goes to scratch
    too; runs/<Env>/study-<algo>.json records them; the report lists them and pairs every
    candidate with every other arm, Holm-corrected over that family."""
    args = parse(
        "--env",
        "HalfCheetah",
        "--sizes",
        "tiny,small",
        "--seeds",
        "6",
        "--steps",
        str(STEPS),
        "--eval-freq",
        "512",
        "--eval-episodes",
        "10",
        "--study",
        "arms",
        "--bank",
        str(tiny_ppo_bank),
        "--set",
        "obs_count=1e4",
        "log_std=config",
        "retention=0.5",
        "--arm",
        "weit_ft:init=weit,finetune_steps=300",
        "--arm",
        "fresh:init=scratch,obs_stats=fresh",
        "--arms",
        "scratch,weit,weit_ft,fresh",
        "--candidates",
        "weit,weit_ft",
        "--out-dir",
        str(tmp_path / "runs"),
        "--report-dir",
        str(tmp_path / "reports"),
    )
    sweep = compare.resolve(args)
    ft, scratch, fresh = (prepare(sweep.config("tiny", arm, 3)) for arm in ("weit_ft", "scratch", "fresh"))
    assert (ft.init, ft.finetune_steps, ft.obs_count, ft.log_std, ft.retention) == ("weit", 300, 1e4, "config", 0.5)
    assert (scratch.init, scratch.finetune_steps, scratch.obs_count, scratch.retention) == ("scratch", 0, 1e4, 0.5)
    assert (fresh.init, fresh.obs_stats, fresh.log_std) == ("scratch", "fresh", "config")
    assert ft.bank == scratch.bank == fresh.bank == str(tiny_ppo_bank.resolve()) and scratch.expert is None
    assert Path(ft.run_dir) == tmp_path / "runs" / "arms" / "HalfCheetah" / "ppo-tiny-weit_ft-s3"
    assert sweep.recorded("small", "fresh", 0).name == "ppo-small-fresh-s0"
    study.write_study(sweep.study_file, study.definition(sweep))  # as run_sweep does first
    d = study.read_study(sweep.study_file)
    assert d["settings"] == {"obs_count": 10000.0, "log_std": "config", "retention": 0.5}
    assert d["arms"] == {
        "scratch": {"init": "scratch"},
        "weit": {"init": "weit"},
        "weit_ft": {"init": "weit", "finetune_steps": 300},
        "fresh": {"init": "scratch", "obs_stats": "fresh"},
    }
    assert (d["inits"], d["primary"], d["candidates"]) == (
        ["scratch", "weit", "weit_ft", "fresh"],
        ["weit", "scratch"],
        ["weit", "weit_ft"],
    )
    d["references"] = {"expert_return": EXPERT, "random_return": RANDOM, "expert_source": "t", "random_source": "t"}
    study.write_study(sweep.study_file, d)
    write_runs(sweep.runs_root, {"scratch": 0.0, "weit": 800.0, "weit_ft": 900.0, "fresh": 0.0}, 6)
    compare.run_compare(
        parse("--study", "arms", "--report-only", "--report-dir", str(tmp_path / "reports"), "--reps", str(REPS)),
        "test",
    )
    data = json.loads((sweep.study_dir / "HalfCheetah-ppo.json").read_text())["results"]
    got = [(c["method"], c["baseline"], c["size"], c["role"]) for c in data["comparisons"]]
    assert got[0] == ("weit", "scratch", "small", "primary")  # the quick profile's primary size
    assert sorted(got[1:]) == sorted(
        [("weit", b, "tiny", "secondary") for b in ("scratch", "weit_ft", "fresh")]
        + [("weit", b, "small", "secondary") for b in ("weit_ft", "fresh")]
        + [("weit_ft", b, size, "secondary") for b in ("scratch", "fresh") for size in ("tiny", "small")]
    )
    secondary = [c for c in data["comparisons"] if c["role"] == "secondary"]
    p = np.array([c["p"] for c in secondary])
    order = np.argsort(p, kind="stable")
    holm = np.minimum(1, np.maximum.accumulate((9 - np.arange(9)) * p[order]))
    np.testing.assert_allclose([secondary[i]["p_holm"] for i in order], holm)
    for c in data["comparisons"]:
        x, y = (np.array(data["sizes"][c["size"]][a]["final"]) for a in (c["method"], c["baseline"]))
        assert c["final_difference"]["estimate"] == pytest.approx(x.mean() - y.mean())
    cell = data["sizes"]["tiny"]["weit_ft"]
    with (sweep.runs_root / "HalfCheetah" / "ppo-tiny-weit_ft-s0" / "evaluations.csv").open() as f:
        assert cell["step0"][0] == pytest.approx(float(next(csv.DictReader(f))["mean_return"]))
    assert cell["step0_mean"]["estimate"] == pytest.approx(np.mean(cell["step0"]))
    text = (sweep.study_dir / "HalfCheetah-ppo.md").read_text()
    assert "Settings shared by every arm: obs_count=10000.0, log_std=config, retention=0.5" in text
    assert "`weit_ft`: init=weit, finetune_steps=300; `fresh`: init=scratch, obs_stats=fresh" in text
    assert "Holm-corrected over 9 tests" in text and "| weit_ft | fresh | tiny | 6, 6 |" in text
    assert "each candidate, weit, weit_ft, vs every other arm" in text and "| weit_ft | 6 | " in text
    with pytest.raises(UserError, match="declared its primary comparison weit:scratch"):
        compare.resolve(
            parse(
                "--study",
                "arms",
                "--report-only",
                "--report-dir",
                str(tmp_path / "reports"),
                "--primary",
                "weit_ft:scratch",
            )
        )


def test_defaults_are_named_in_the_report(tmp_path):
    runs = synthetic_study(tmp_path, seeds=2)
    compare.run_compare(
        parse("--study", "synth", "--report-only", "--report-dir", str(tmp_path / "reports"), "--reps", "50"), "test"
    )
    text = (runs.parent / "HalfCheetah-ppo.md").read_text()
    assert (
        "Settings shared by every arm: RunConfig defaults (obs_stats=bank, obs_count=10000.0, "
        "obs_update=preserve, log_std=config, reward_stats=fresh)" in text
    )
    assert "`scratch`: init=scratch; `weit`: init=weit" in text


def test_a_sac_report_says_the_observation_controls_act_on_nothing(tmp_path):
    runs = synthetic_study(tmp_path, seeds=2, algo="sac")
    compare.run_compare(
        parse("--study", "synth", "--report-only", "--report-dir", str(tmp_path / "reports"), "--reps", "50"), "test"
    )
    text = (runs.parent / "HalfCheetah-sac.md").read_text()
    assert (
        "Settings shared by every arm: none that act here (obs_stats, obs_count, obs_update, log_std, "
        "reward_stats act on nothing here: the SAC config has normalize: false, so every arm sees raw "
        "observations and rewards; SAC's actor outputs its own log_std)" in text
    )
    assert "for its observation statistics" not in text


@pytest.mark.parametrize("reps, undecidable", [(50, True), (500, False)])
def test_tests_too_few_runs_could_never_reject_are_marked(tmp_path, reps, undecidable):
    """5 and 5 runs, 3 secondary tests: with 50 permutations no p falls below 1/51, and Holm
    then leaves every test at 3/51 > 0.05 at best; exactly (500 > 252 splits) the floor is
    2/252 and Holm's best is 3 * 2/252 < 0.05."""
    runs = synthetic_study(tmp_path, seeds=5)
    compare.run_compare(
        parse("--study", "synth", "--report-only", "--report-dir", str(tmp_path / "reports"), "--reps", str(reps)),
        "test",
    )
    comps = json.loads((runs.parent / "HalfCheetah-ppo.json").read_text())["results"]["comparisons"]
    secondary = [c for c in comps if c["role"] == "secondary"]
    floor = 1 / 51 if undecidable else 2 / 252
    assert len(secondary) == 3 and all(c["p_floor"] == pytest.approx(floor) for c in secondary)
    assert all(c["p_holm_best"] == pytest.approx(3 * floor) for c in secondary)
    text = (runs.parent / "HalfCheetah-ppo.md").read_text()
    assert any(f"{v} ‡" in text for v in ("inconclusive", "suggestive", "better")) == undecidable
    assert ("‡ Undecidable at these run counts" in text) == undecidable
    if undecidable:
        assert "with 5 and 5 runs the smallest p is 0.0196, adjusted at best 0.0588" in text
        # Holm cannot reject; where the uncorrected test does, the verdict says so (stats.verdict)
        assert all(c["verdict"] == ("suggestive" if c["p"] <= 0.05 else "inconclusive") for c in secondary)


def test_a_rebuild_keeps_the_command_that_trained_the_runs(tmp_path):
    runs = synthetic_study(tmp_path, seeds=2)
    rebuild = parse("--study", "synth", "--report-only", "--report-dir", str(tmp_path / "reports"), "--reps", "50")
    compare.run_compare(rebuild, "weit-rl compare --report-only")
    report = runs.parent / "HalfCheetah-ppo.json"
    assert "Runs last trained by" not in report.with_suffix(".md").read_text()  # none on record
    document = json.loads(report.read_text())
    document["meta"].update(command="weit-rl compare --env HalfCheetah --seeds 2", trained_now=24, wall_s=600.0)
    report.write_text(json.dumps(document))  # as a training call leaves it
    for _ in range(2):  # and a rebuild of a rebuild still says it
        compare.run_compare(rebuild, "weit-rl compare --report-only")
        text = report.with_suffix(".md").read_text()
        assert "- Command: `weit-rl compare --report-only`" in text
        assert "- Runs last trained by: `weit-rl compare --env HalfCheetah --seeds 2` (" in text
        assert "24 runs in 10.0 min" in text


def test_a_study_keeps_its_settings_and_arm_definitions(tmp_path):
    runs = synthetic_study(tmp_path, seeds=2)
    old = dict(
        study.read_study(runs / "HalfCheetah" / "study-ppo.json"),
        arms={"weit_ft": {"init": "weit", "finetune_steps": 300}},
        inits=["scratch", "weit", "weit_ft"],
    )
    added = dict(old, arms={"weit_lr": {"init": "weit", "lr_scale": 0.5}}, inits=["weit_lr"])
    merged = study.merge_study(old, added, runs.parent)  # a new arm joins the study
    assert merged["arms"]["weit_lr"] == {"init": "weit", "lr_scale": 0.5} and merged["inits"][-1] == "weit_lr"
    assert merged["arms"]["weit_ft"]["finetune_steps"] == 300 and merged["arms"]["scratch"] == {"init": "scratch"}
    with pytest.raises(UserError, match="defines its arms otherwise: weit_ft .*'finetune_steps': 300.*give the new"):
        study.merge_study(old, dict(old, arms={"weit_ft": {"init": "weit", "finetune_steps": 100}}), runs.parent)
    with pytest.raises(UserError, match="started with other settings: settings {} \\(now {'retention': 0.5}\\)"):
        study.merge_study(old, dict(old, settings={"retention": 0.5}), runs.parent)


def test_arm_syntax():
    from weit_rl.compare import arms

    assert arms.parse_arm("weit") == ("weit", {"init": "weit"})
    assert arms.parse_arm("lr:init=weit,hyperparam_overrides={learning_rate: 1.0e-4, n_epochs: 5},calib=null") == (
        "lr",
        {"init": "weit", "hyperparam_overrides": {"learning_rate": 1e-4, "n_epochs": 5}, "calib": None},
    )
    assert arms.parse_pairs(["warmup_steps=4096", "rebalance=true", "stop_return=1e3"], "--set") == {
        "warmup_steps": 4096,
        "rebalance": True,
        "stop_return": 1000.0,
    }
    assert arms.select_arms(["scratch"], {"ft": {"init": "weit"}}, explicit=False) == {
        "scratch": {"init": "scratch"},
        "ft": {"init": "weit"},
    }  # profile inits, then the defined arms
    assert arms.parse_primary("weit_ft:scratch") == ["weit_ft", "scratch"]
    with pytest.raises(UserError, match="not a valid int"):
        arms.parse_pairs(["warmup_steps=1.5"], "--set")


def test_an_arm_may_bring_its_own_bank(tmp_path):
    """Templates from another expert or scheme in one study: the arm's bank reaches its runs, the
    other arms keep the sweep's; a missing arm bank is refused before anything is written."""
    from weit_rl.compare import arms

    shipped = Path(__file__).resolve().parents[1] / "banks"
    other = str(shipped / "Hopper-ppo.safetensors")  # any path: parsing reads no file
    assert arms.parse_arm(f"weit_other:init=weit,bank={other}") == ("weit_other", {"init": "weit", "bank": other})
    with pytest.raises(UserError, match="bank cannot be set here"):
        arms.parse_pairs([f"bank={other}"], "--set")  # the shared bank is --bank
    argv = ["--env", "HalfCheetah", "--study", "own", "--out-dir", str(tmp_path / "o"), "--report-dir", str(tmp_path)]
    argv += ["--sizes", "tiny", "--seeds", "1", "--steps", "1024", "--arms", "scratch,weit,weit_b"]
    argv += ["--bank", str(shipped / "HalfCheetah-ppo.safetensors")]
    b = shipped / "variants" / "HalfCheetah-ppo-b8.safetensors"  # another bank of the task
    sweep = compare.resolve(parse(*argv, "--arm", f"weit_b:init=weit,bank={b}"))
    assert sweep.config("tiny", "weit_b", 0).bank == str(b)
    assert sweep.config("tiny", "weit", 0).bank == sweep.bank
    with pytest.raises(UserError, match="bank nope.safetensors does not exist"):
        compare.resolve(parse(*argv, "--study", "own2", "--arm", "weit_b:init=weit,bank=nope.safetensors"))
    assert not (tmp_path / "own2").exists()


def test_a_part_keeps_its_engine_and_a_part_from_before_engines_is_stock(tmp_path):
    """New parts train on the fast engine; a part recorded before engines existed keeps the stock
    engine; asking a part for the other engine is refused (a part never mixes engines)."""
    out = ("--out-dir", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "reports"))
    common = ("--env", "HalfCheetah", "--sizes", "tiny", "--arms", "scratch", "--steps", "1024")
    args = parse(*common, "--set", "obs_stats=fresh", *out)
    sweep = compare.resolve(args)
    assert sweep.engine == "fast" and sweep.config("tiny", "scratch", 0).engine == "fast"
    assert sweep.kernels == "AVX2" and worker_env(sweep.kernels).get("MKL_CBWR", "AVX2") == "AVX2"
    old = study.definition(sweep)
    del old["engine"], old["kernels"]  # as every part recorded before engines
    study.write_study(sweep.study_file, old)
    sweep = compare.resolve(args)
    assert sweep.engine == "stock" and sweep.config("tiny", "scratch", 0).engine == "stock"
    assert sweep.kernels == "COMPATIBLE"  # what every part recorded before "kernels" computed with
    with pytest.raises(UserError, match="engine 'stock' \\(now 'fast'\\)"):
        compare.resolve(parse(*common, "--set", "obs_stats=fresh", "--engine", "fast", *out))
    with pytest.raises(UserError, match="the engine is the part's"):
        compare.resolve(parse(*common, "--set", "obs_stats=fresh", "engine=stock", *out))
    later = compare.resolve(parse(*common, "--set", "obs_stats=fresh", "--seeds", "3", "--first-seed", "200", *out))
    assert later.seeds == [200, 201, 202]


def test_a_rebuild_of_unchanged_runs_leaves_every_file_as_it_was(tmp_path):
    """Rebuilding a shipped study must not dirty the repository: only new data rewrites a report."""
    runs = synthetic_study(tmp_path, seeds=2)
    rebuild = parse("--study", "synth", "--report-only", "--report-dir", str(tmp_path / "reports"), "--reps", "50")
    compare.run_compare(rebuild, "weit-rl compare --report-only")
    folder = runs.parent
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert {"HalfCheetah-ppo.md", "HalfCheetah-ppo.json", "HalfCheetah-ppo-learning_curves.png"} <= set(before)
    compare.run_compare(rebuild, "weit-rl compare --report-only --study synth")  # another command, same data
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    (folder / "HalfCheetah-ppo-learning_curves.png").unlink()  # a deleted figure is drawn again
    compare.run_compare(rebuild, "weit-rl compare --report-only")
    assert (folder / "HalfCheetah-ppo-learning_curves.png").exists()
    csv_file = runs / "HalfCheetah" / "ppo-tiny-weit-s0" / "evaluations.csv"
    rows = csv_file.read_text().splitlines()
    rows[2] = "512,5000.0,0,5000.0"  # new data: the report follows it
    csv_file.write_text("\n".join(rows) + "\n")
    compare.run_compare(rebuild, "weit-rl compare --report-only")
    assert (folder / "HalfCheetah-ppo.md").read_bytes() != before["HalfCheetah-ppo.md"]
    # a resumed sweep writes the part's definition again: the same content in another key order keeps the file
    part = study.part_file(runs, "HalfCheetah", "ppo")
    written = part.read_bytes()
    study.write_study(part, dict(reversed(json.loads(written).items())))
    assert part.read_bytes() == written
