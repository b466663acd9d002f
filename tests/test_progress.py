"""What a person watching `weit-rl train` reads: a line per evaluation (the step-0 one too),
PPO's rounding to whole rollouts, and a closing summary; the best model is kept by default
and evaluations.csv has '\n' line endings (older '\r\n' files still read)."""

import importlib
import io
import re
import shutil

import numpy as np
import pytest
import yaml
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from weit_rl.agents import EVAL_COLUMNS, RunConfig, read_evals, train
from weit_rl.agents.callbacks import Progress, duration, truncate_evals

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`

train_module = importlib.import_module("weit_rl.agents.train")  # the module: the package exports its function
callbacks_module = importlib.import_module("weit_rl.agents.callbacks")


def test_a_run_prints_each_evaluation_and_a_summary(tiny_ppo_bank, tmp_path, monkeypatch, capsys):
    # The tiny expert has no manifest, so its bank records no expert return: give the references here.
    monkeypatch.setattr(
        train_module, "read_manifest", lambda path: {"random_return": -300.0, "expert": {"eval_return_mean": 1700.0}}
    )
    run = tmp_path / "run"
    train(
        RunConfig(
            env="HalfCheetah",
            init="scratch",
            size="8",
            bank=str(tiny_ppo_bank),
            steps=1000,
            eval_freq=512,
            eval_episodes=2,
            device="cpu",
            run_dir=str(run),
            progress_bar=False,
            hyperparam_overrides={"n_steps": 256, "n_epochs": 1},
        )
    )
    out = capsys.readouterr().out.splitlines()
    rows = read_evals(run / "evaluations.csv")
    assert [r["timesteps"] for r in rows] == ["0", "512", "1024"]

    assert out[0] == "PPO trains whole rollouts of 256 steps: 1,024 steps (asked for 1,000)"
    evals = [line for line in out if line.startswith("eval  ")]
    assert len(evals) == len(rows)
    for line, row in zip(evals, rows):
        mean = float(row["mean_return"])
        step = int(row["timesteps"])
        assert line.startswith(f"eval  step {step:,}/1,024  return {mean:,.1f} ± {float(row['std_return']):,.1f}")
        assert f"normalized {(mean + 300) / 2000:.2f}" in line
    assert "steps/s" not in evals[0]  # step 0: nothing trained yet to measure
    assert "steps/s" in evals[1] and " left" in evals[1]
    assert "steps/s" in evals[2] and " left" not in evals[2]

    means = [float(r["mean_return"]) for r in rows]
    best = int(np.argmax(means))
    summary = "\n".join(out[out.index(next(line for line in out if line.startswith("done"))) :])
    assert summary.startswith(f"done  1,024 steps in {duration(float(rows[-1]['wall_s']))}: {run}")
    assert f"start  step           0  return {means[0]:>10,.1f}" in summary
    assert f"best   step {int(rows[best]['timesteps']):>11,}  return {means[best]:>10,.1f}" in summary
    assert f"final  step       1,024  return {means[-1]:>10,.1f}" in summary
    assert f"tensorboard --logdir {run / 'tb'}" in summary and f"weit-rl enjoy {run} --video out.mp4" in summary
    hints = re.findall(r"(\S*(?:tensorboard|weit-rl)) (?:--logdir|enjoy)", summary)
    assert hints and all(shutil.which(hint) for hint in hints), hints  # each runs as printed (no PATH needed)

    # best/ by default, holding the best evaluation's model
    assert {p.name for p in (run / "best").iterdir()} == {"model.zip", "vecnormalize.pkl", "score.yaml"}
    score = yaml.safe_load((run / "best" / "score.yaml").read_text())
    assert score["mean_return"] == max(means) and score["timesteps"] == int(rows[best]["timesteps"])
    assert b"\r" not in (run / "evaluations.csv").read_bytes()


def test_durations_read_at_a_glance():
    assert duration(45.4) == "45s" and duration(260) == "4m20s" and duration(7500) == "2h05m"


def test_progress_line_speed_and_time_left(capsys):
    progress = Progress(10_000, refs=(0.0, 1000.0))
    progress.start(0)
    progress.evaluated(0, np.array([10.0, 30.0]))
    progress.since = (0, progress.since[1] - 4.0)  # as if 4 s had passed since training started
    progress.evaluated(2000, np.array([500.0, 700.0]))
    first, second = capsys.readouterr().out.splitlines()
    assert first == "eval  step 0/10,000  return 20.0 ± 10.0  normalized 0.02"
    speed = second.split("normalized 0.60  ")[1]
    rate = int(speed.split(" steps/s")[0].replace(",", ""))
    assert 450 <= rate <= 500 and speed.endswith(f"~{duration(8000 / rate)} left")
    Progress(10_000).evaluated(0, np.array([1.0]))
    assert "normalized" not in capsys.readouterr().out  # no bank, no references


def test_evaluations_csv_is_written_with_lf_and_old_crlf_files_still_read(tmp_path):
    path = tmp_path / "evaluations.csv"
    old = [",".join(EVAL_COLUMNS), "0,-1.0,0.0,-1.00,1.00,0.50", "256,-2.0,0.0,-2.00,2.00,1.00"]
    path.write_bytes(("\r\n".join(old) + "\r\n").encode())  # as the csv module wrote them before
    assert [r["timesteps"] for r in read_evals(path)] == ["0", "256"]
    assert read_evals(path)[1]["eval_s"] == "1.00"  # no stray '\r' in the last column
    truncate_evals(path, 0)
    assert path.read_bytes() == ("\n".join(old[:2]) + "\n").encode()


class _CtrlC(BaseCallback):
    """Ctrl-C at `step`, in the middle of a rollout."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def _on_step(self) -> bool:
        if self.num_timesteps == self.step:
            raise KeyboardInterrupt
        return True


def test_the_bar_ends_at_the_steps_the_run_takes_and_a_resumed_run_says_why_they_changed(tmp_path, monkeypatch, capsys):
    bars = []

    def bar(**kw):  # a plain tqdm into a buffer, kept to read its counts
        bars.append(tqdm(file=io.StringIO(), **kw))
        return bars[-1]

    monkeypatch.setattr(callbacks_module, "tqdm", bar)
    cfg = dict(env="HalfCheetah", init="scratch", size="8", steps=1000, eval_freq=512, eval_episodes=1, device="cpu")
    cfg |= dict(run_dir=str(tmp_path / "run"), hyperparam_overrides={"n_steps": 256, "n_epochs": 1})
    with pytest.raises(KeyboardInterrupt):
        train(RunConfig(**cfg), callbacks=[_CtrlC(300)])
    assert (bars[0].initial, bars[0].total) == (0, 1024)  # the whole rollouts PPO takes, not the 1,000 asked for
    assert "PPO trains whole rollouts of 256 steps: 1,024 steps (asked for 1,000)" in capsys.readouterr().out

    train(RunConfig(**cfg))  # resumed from step 300: 3 rollouts more
    assert (bars[1].initial, bars[1].total, bars[1].n) == (300, 1068, 1068)
    out = capsys.readouterr().out
    assert (
        "PPO trains whole rollouts of 256 steps: 1,068 steps (asked for 1,000); "
        "1,024 before Ctrl-C stopped it within a rollout, at step 300"
    ) in out
    assert "eval  step 1,068/1,068" in out
