"""`weit-rl compare`: validation before any run, a tiny grid end to end, resume without
repeating finished runs, the Ray backend, and the report from synthetic run folders."""

import argparse
import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from weit_rl import UserError, compare

# A tiny grid: two PPO rollouts of 512 steps, evaluated at 0, 512 and 1024 steps.
TINY = ["--env", "HalfCheetah", "--sizes", "tiny", "--steps", "1024", "--eval-freq", "512", "--eval-episodes", "1",
        "--reps", "200", "--workers", "2"]


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    compare.add_arguments(p)
    return p.parse_args(list(argv))


def evaluations(run: Path) -> str:
    return (run / "evaluations.csv").read_text()


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory, tiny_ppo_bank, tiny_ppo_expert) -> tuple[Path, list[str]]:
    """scratch, weit and select, two seeds each, trained by the command line."""
    root = tmp_path_factory.mktemp("compare")
    args = [*TINY, "--inits", "scratch,weit,select", "--seeds", "2", "--bank", str(tiny_ppo_bank),
            "--expert", str(tiny_ppo_expert), "--out-dir", str(root / "runs"), "--report-dir", str(root / "reports")]
    out = run_cli("compare", *args, cwd=root)
    assert out.returncode == 0, out.stderr
    return root, args


def test_tiny_grid_end_to_end(local_sweep):
    root, _ = local_sweep
    runs = sorted(p.name for p in (root / "runs" / "HalfCheetah").iterdir() if p.name != "logs")
    assert runs == [f"ppo-tiny-{i}-s{s}" for i in ("scratch", "select", "weit") for s in (0, 1)]
    for run in runs:
        steps = [int(line.split(",")[0]) for line in evaluations(root / "runs" / "HalfCheetah" / run).splitlines()[1:]]
        assert steps == [0, 512, 1024]
    report = root / "reports" / "HalfCheetah-ppo"
    for name in ("compare.md", "compare.json", "learning_curves.png", "steps_to_threshold.png",
                 "performance_profile.png"):
        assert (report / name).stat().st_size > 0, name
    text = (report / "compare.md").read_text()
    assert "weit-rl compare --env HalfCheetah" in text and "weit_rl 0.1" in text and "CPUs" in text
    assert "**unnormalized** returns" in text  # the test bank records no expert return
    assert "- **tiny**: weit" in text and "scratch" in text and "select" in text
    data = json.loads((report / "compare.json").read_text())
    tiny = data["results"]["tiny"]
    assert tiny["runs"] == {"scratch": 2, "weit": 2, "select": 2}
    assert set(tiny["versus"]) == {"scratch", "select"}
    assert tiny["versus"]["scratch"]["auc"]["verdict"] in ("wins", "ties", "loses")
    assert data["grid"] == [0, 512, 1024] and data["meta"]["trained_now"] == 6


def test_resume_trains_only_what_is_missing(local_sweep):
    root, args = local_sweep
    env_dir = root / "runs" / "HalfCheetah"
    finished = {p.name: (p / "model.zip").stat().st_mtime_ns for p in env_dir.iterdir() if p.name != "logs"}
    shutil.rmtree(env_dir / "ppo-tiny-weit-s1")  # as if the sweep had been killed before this run ended
    out = run_cli("compare", *args, cwd=root)
    assert out.returncode == 0, out.stderr
    assert "1 of 6 runs to train" in out.stderr
    for name, mtime in finished.items():
        if name != "ppo-tiny-weit-s1":
            assert (env_dir / name / "model.zip").stat().st_mtime_ns == mtime, f"{name} was retrained"
    assert (env_dir / "ppo-tiny-weit-s1" / "model.zip").exists()
    # Nothing left to train: the report is rewritten from the run folders alone.
    again = run_cli("compare", *args, "--report-only", cwd=root)
    assert again.returncode == 0, again.stderr
    assert all((env_dir / n / "model.zip").stat().st_mtime_ns == m for n, m in finished.items() if "weit-s1" not in n)


def test_ray_backend_gives_the_local_results(local_sweep, tmp_path, tiny_ppo_bank):
    pytest.importorskip("ray", reason="Ray is not installed (optional: pip install '.[ray]')")
    root, _ = local_sweep
    args = parse(*TINY, "--inits", "scratch,weit", "--seeds", "1", "--bank", str(tiny_ppo_bank), "--backend", "ray",
                 "--out-dir", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "reports"))
    compare.run_compare(args, "weit-rl compare (ray test)")
    for run in ("ppo-tiny-scratch-s0", "ppo-tiny-weit-s0"):
        assert evaluations(tmp_path / "runs" / "HalfCheetah" / run) == evaluations(root / "runs" / "HalfCheetah" / run)
    assert (tmp_path / "reports" / "HalfCheetah-ppo" / "compare.md").exists()


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "tiny,huge"], "invalid size 'huge'"),
    (["--inits", "scratch,magic"], "unknown initializer 'magic'"),
    (["--env", "Pong"], "unknown task 'Pong'"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--inits", "scratch,weit", "--bank", "{missing}"], "template bank not found"),
    (["--inits", "select", "--sizes", "64x2"], "init select cannot make size 64x2"),
    (["--inits", "select", "--sizes", "32x4"], "init select cannot make size 32x4"),
])
def test_bad_input_fails_before_any_run(argv, message, tmp_path, tiny_ppo_expert):
    argv = [a.replace("{missing}", str(tmp_path / "none.safetensors")) for a in argv]
    base = ["--env", "HalfCheetah", "--steps", "1024", "--expert", str(tiny_ppo_expert),
            "--out-dir", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "reports")]
    if "--env" in argv:
        base = base[2:]
    with pytest.raises(UserError, match=message):
        compare.run_compare(parse(*base, *argv), "test")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()


def test_a_run_folder_from_another_sweep_is_refused(tmp_path):
    args = parse("--env", "HalfCheetah", "--sizes", "tiny", "--inits", "scratch", "--seeds", "1", "--steps", "1024",
                 "--out-dir", str(tmp_path))
    run = compare.resolve(args).run_dir("tiny", "scratch", 0)
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("steps: 4096\neval_freq: 512\neval_episodes: 5\nnet_arch: [32, 32]\n"
                                     "init: scratch\nseed: 0\n")
    with pytest.raises(UserError, match="different sweep: steps 4096"):
        compare.resolve(args)


def test_profiles_fill_unset_options_and_flags_override(tmp_path):
    out = ("--out-dir", str(tmp_path / "runs"))  # not the checkout's runs/, which may hold real sweeps
    quick = compare.resolve(parse("--env", "HalfCheetah", "--inits", "scratch", *out))
    assert (quick.sizes, quick.seeds, quick.steps, quick.eval_freq) == (["tiny", "small"], [0, 1, 2], 32_768, 4096)
    full = compare.resolve(parse("--env", "HalfCheetah", "--inits", "scratch", "--profile", "full", "--seeds", "2",
                                 *out))
    assert full.sizes == ["tiny", "small", "medium", "128x3"] and full.seeds == [0, 1]
    assert full.eval_freq % 512 == 0 and full.eval_freq * 30 >= 300_000  # whole rollouts, about 30 evaluations


def _fake_sweep(tmp_path: Path, finals: dict[str, float]) -> argparse.Namespace:
    """Finished run folders with straight-line curves (no training): scratch climbs
    from 0 to its final return, the others from 3/8 of theirs; seed s adds s."""
    args = parse("--env", "HalfCheetah", "--sizes", "tiny", "--inits", ",".join(finals), "--seeds", "4",
                 "--steps", "2048", "--eval-freq", "512", "--reps", "300", "--report-only",
                 "--out-dir", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "reports"))
    for cfg in compare.resolve(args).configs():
        run = Path(cfg.run_dir)
        run.mkdir(parents=True)
        (run / "model.zip").write_bytes(b"")
        start, end = (0.0 if cfg.init == "scratch" else 0.375 * finals[cfg.init]), finals[cfg.init]
        rows = [f"{t},{start + (end - start) * t / 2048 + cfg.seed},0,0" for t in (0, 512, 1024, 1536, 2048)]
        # The last PPO rollout may overshoot the budget: 2048 is logged as 2050 here.
        rows[-1] = rows[-1].replace("2048,", "2050,", 1)
        (run / "evaluations.csv").write_text("timesteps,mean_return,std_return,returns\n" + "\n".join(rows) + "\n")
    return args


def test_report_from_run_folders_by_hand(tmp_path):
    args = _fake_sweep(tmp_path, {"scratch": 400.0, "weit": 800.0, "distill": 400.0})
    compare.run_compare(args, "weit-rl compare (synthetic)")
    report = tmp_path / "reports" / "HalfCheetah-ppo"
    data = json.loads((report / "compare.json").read_text())
    tiny = data["results"]["tiny"]
    # Final returns are 400..403 for scratch: IQM of 4 runs = mean of the middle two = 401.5
    assert tiny["budgets"]["1.0"]["iqm"]["scratch"]["estimate"] == pytest.approx(401.5)
    assert tiny["budgets"]["0.25"]["step"] == 512
    # AUC of scratch seed s: mean of a line from s to 400 + s = 200 + s -> IQM 201.5
    assert tiny["auc"]["scratch"]["estimate"] == pytest.approx(201.5)
    th = tiny["thresholds"]
    assert th["scratch_start"] == pytest.approx(1.5) and th["scratch_final"] == pytest.approx(401.5)
    assert th["steps"]["scratch"] == {"0.5": 1024, "0.8": 2048, "1.0": 2048}
    assert th["steps"]["weit"]["0.5"] == 0 and th["ratio"]["weit"]["1.0"] == pytest.approx(512 / 2048)
    assert th["steps"]["distill"]["1.0"] == 2048
    assert tiny["versus"]["scratch"]["auc"]["verdict"] == "wins"
    assert tiny["versus"]["distill"]["final"]["verdict"] == "wins"
    text = (report / "compare.md").read_text()
    assert "- **tiny**: weit **wins against** scratch, **wins against** distill." in text
    # The same run folders and stats seed give the same numbers.
    compare.run_compare(args, "weit-rl compare (synthetic)")
    assert json.loads((report / "compare.json").read_text())["results"] == data["results"]


def test_report_normalizes_by_the_expert_return_and_lists_missing_runs(tmp_path):
    args = _fake_sweep(tmp_path, {"scratch": 400.0, "weit": 300.0})
    expert = tmp_path / "expert"
    expert.mkdir()
    (expert / "manifest.json").write_text(json.dumps({"eval_return_mean": 1000.0}))
    args.expert = str(expert)
    shutil.rmtree(compare.resolve(args).run_dir("tiny", "weit", 3))
    compare.run_compare(args, "test")
    report = tmp_path / "reports" / "HalfCheetah-ppo"
    data = json.loads((report / "compare.json").read_text())
    assert data["meta"]["expert_return"] == 1000.0 and data["unit"] == "expert-normalized return"
    assert data["results"]["tiny"]["runs"] == {"scratch": 4, "weit": 3}
    assert data["results"]["tiny"]["budgets"]["1.0"]["iqm"]["scratch"]["estimate"] == pytest.approx(0.4015)
    assert data["results"]["tiny"]["versus"]["scratch"]["final"]["verdict"] == "loses"
    text = (report / "compare.md").read_text()
    assert "**Missing runs**" in text and "ppo-tiny-weit-s3" in text and "1000.0" in text


def test_report_only_without_runs_says_what_to_do(tmp_path):
    args = parse("--env", "HalfCheetah", "--inits", "scratch", "--report-only", "--out-dir", str(tmp_path))
    with pytest.raises(UserError, match="no finished runs"):
        compare.run_compare(args, "test")


def test_ray_backend_without_ray_is_a_clear_error(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *a, **kw):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(UserError, match=r"pip install '\.\[ray\]'"):
        compare.run_ray([{"run_dir": str(tmp_path)}], "test", 1, None, lambda *a: None)


def test_thresholds_are_undefined_when_scratch_does_not_improve(tmp_path):
    args = _fake_sweep(tmp_path, {"scratch": -100.0, "weit": 50.0})
    compare.run_compare(args, "test")
    report = tmp_path / "reports" / "HalfCheetah-ppo"
    note = json.loads((report / "compare.json").read_text())["results"]["tiny"]["thresholds"]["note"]
    assert "scratch did not improve" in note
    assert "Steps to threshold: scratch did not improve" in (report / "compare.md").read_text()
    assert (report / "steps_to_threshold.png").exists()
