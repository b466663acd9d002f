"""Resume: a checkpoint restores the same weights, normalization statistics and (SAC) replay
buffer without initializing again; a run killed between a checkpoint's two renames, or
before its first checkpoint, says what it does; one process at a time trains in a run folder."""

import importlib
import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict

import numpy as np
import pytest
import torch

from weit_rl import UserError
from weit_rl.agents import RunConfig, load_checkpoint, new_model, prepare, read_evals, save_checkpoint, train
from weit_rl.artifacts import bank as bank_module
from weit_rl.artifacts.bank import load_bank

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`

train_module = importlib.import_module("weit_rl.agents.train")  # the module: the package exports its function


def _cfg(run, **kw) -> RunConfig:
    kw = (
        dict(
            env="HalfCheetah",
            init="scratch",
            size="8",
            steps=1024,
            eval_freq=512,
            eval_episodes=1,
            checkpoint_freq=512,
            device="cpu",
            run_dir=str(run),
            progress_bar=False,
            hyperparam_overrides={"n_steps": 256, "n_epochs": 1},
        )
        | kw
    )
    return RunConfig(**kw)


def _stopped_before_final_save(run, monkeypatch) -> None:
    """Train to the end but die before model.zip is written: checkpoints at 512 and 1024."""

    def die(*_):
        raise SystemExit("killed")

    with monkeypatch.context() as m, pytest.raises(SystemExit):
        m.setattr(train_module, "_save_final", die)
        train(_cfg(run))


@pytest.mark.parametrize("tmp_complete", [True, False])
def test_killed_between_checkpoint_renames(tmp_path, monkeypatch, capsys, tmp_complete):
    run = tmp_path / "run"
    _stopped_before_final_save(run, monkeypatch)
    ckpt = run / "checkpoint"
    # save_checkpoint's window between its two renames: checkpoint/ moved to .old, .tmp not yet moved
    shutil.copytree(ckpt, run / "checkpoint.tmp")
    ckpt.rename(run / "checkpoint.old")
    if not tmp_complete:  # killed while the new one was being written: the old one still counts
        (run / "checkpoint.tmp" / "timesteps.txt").unlink()
    train(_cfg(run))
    assert "resuming" in capsys.readouterr().err
    assert [int(r["timesteps"]) for r in read_evals(run / "evaluations.csv")] == [0, 512, 1024]  # logs kept
    assert (run / "model.zip").exists() and any((run / "tb").rglob("events.out.tfevents*"))
    assert not (run / "checkpoint").exists()


def test_run_killed_before_its_first_checkpoint_says_it_restarts(tmp_path, capsys):
    run = tmp_path / "run"
    train(_cfg(run, steps=256, eval_freq=256))
    (run / "model.zip").unlink()  # as if killed before any checkpoint was written
    train(_cfg(run, steps=256, eval_freq=256))
    assert f"restarting {run} from step 0: it was stopped before its first checkpoint" in capsys.readouterr().err
    assert [int(r["timesteps"]) for r in read_evals(run / "evaluations.csv")] == [0, 256]


def test_a_second_process_is_refused_and_a_killed_run_resumes(tmp_path, capsys):
    """A run trains in a child process; while it holds the folder (stopped right after its
    first checkpoint) a second run there is refused; once it is killed, the same run resumes."""
    run = tmp_path / "run"
    cfg = _cfg(run, steps=4096, checkpoint_freq=512)
    code = "import json, sys; from weit_rl.agents import RunConfig, train; train(RunConfig(**json.loads(sys.argv[1])))"
    log = tmp_path / "child.log"
    with log.open("w") as out:
        child = subprocess.Popen([sys.executable, "-c", code, json.dumps(asdict(cfg))], stdout=out, stderr=out)
    try:
        deadline = time.time() + 300
        while not (run / "checkpoint" / "timesteps.txt").exists():
            assert child.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.1)
        child.send_signal(signal.SIGSTOP)  # alive and holding the folder, but writing nothing more
        with pytest.raises(UserError, match=f"^{run} is in use: another process is training in it"):
            train(_cfg(run, steps=4096, checkpoint_freq=512))
    finally:
        child.kill()
        child.wait()
    train(_cfg(run, steps=4096, checkpoint_freq=512))  # the kernel released the dead process's lock
    assert "resuming" in capsys.readouterr().err
    steps = [int(r["timesteps"]) for r in read_evals(run / "evaluations.csv")]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 4096  # no row twice
    # nothing besides the run's own files (no lock file for layout readers to trip on)
    assert sorted(p.name for p in run.iterdir()) == [
        "best",
        "command.txt",
        "config.yaml",
        "diagnostics.csv",
        "evaluations.csv",
        "initial_policy.pt",
        "model.zip",
        "tb",
        "vecnormalize.pkl",
    ]


def test_a_run_that_fails_before_writing_leaves_no_folder(tmp_path):
    run = tmp_path / "a" / "b" / "run"
    missing = str(tmp_path / "nowhere.safetensors")
    with pytest.raises(UserError, match="not found"):  # raised after the folder is locked
        train(_cfg(run, retention=1.0, retention_teacher="bank", bank=missing))
    assert not (tmp_path / "a").exists()


def test_a_run_started_before_keep_best_defaulted_to_true_goes_on_without_it(tmp_path):
    run = tmp_path / "run"
    train(_cfg(run, steps=256, eval_freq=256, keep_best=False))
    (run / "model.zip").unlink()  # killed before its first checkpoint: it restarts, under its own keep_best
    train(_cfg(run, steps=256, eval_freq=256))
    assert (run / "model.zip").exists() and not (run / "best").exists()
    assert "keep_best: false" in (run / "config.yaml").read_text()


def test_resume_restores_weights_and_statistics_without_initializing(tiny_ppo_bank, tmp_path, monkeypatch):
    cfg = prepare(_cfg(tmp_path / "run", init="weit", bank=str(tiny_ppo_bank), fit_steps=5))
    model = new_model(cfg)
    model.learn(256)
    save_checkpoint(model, tmp_path / "ckpt")

    def no_bank(path):
        raise AssertionError("resume opened the bank: it initialized again")

    monkeypatch.setattr(bank_module, "_open", no_bank)
    again = load_checkpoint(cfg, tmp_path / "ckpt")
    assert again.num_timesteps == model.num_timesteps
    for k, v in model.policy.state_dict().items():
        assert torch.equal(v, again.policy.state_dict()[k]), k
    env, env2 = model.get_env(), again.get_env()
    np.testing.assert_array_equal(env.obs_rms.mean, env2.obs_rms.mean)
    np.testing.assert_array_equal(env.obs_rms.var, env2.obs_rms.var)
    assert env.obs_rms.count == env2.obs_rms.count and env.ret_rms.var == env2.ret_rms.var


def _sac_checkpoint_at_120(bank, tmp_path):
    """A SAC run (learning_starts 50) trained 120 steps and checkpointed in tmp_path/ckpt."""
    cfg = prepare(
        _cfg(
            tmp_path / "run",
            algo="sac",
            init="weit",
            bank=str(bank),
            fit_steps=5,
            steps=200,
            hyperparam_overrides={"learning_starts": 50, "batch_size": 16, "buffer_size": 1000},
        )
    )
    model = new_model(cfg)
    model.learn(120)
    save_checkpoint(model, tmp_path / "ckpt")
    return cfg, model


def test_sac_resume_keeps_its_replay_buffer(tiny_sac_bank, tmp_path):
    cfg, model = _sac_checkpoint_at_120(tiny_sac_bank, tmp_path)
    assert (tmp_path / "ckpt" / "replay_buffer.pkl").exists()
    again = load_checkpoint(cfg, tmp_path / "ckpt")
    old, new = model.replay_buffer, again.replay_buffer
    assert new.pos == old.pos == 120 and not new.full
    for name in ("observations", "actions", "rewards", "next_observations", "dones"):
        np.testing.assert_array_equal(getattr(old, name)[:120], getattr(new, name)[:120], err_msg=name)
    for k, v in model.policy.state_dict().items():
        assert torch.equal(v, again.policy.state_dict()[k]), k
    again.learn(40, reset_num_timesteps=False)  # and training goes on from there
    assert again.num_timesteps == 160 and again.replay_buffer.pos == 160


def test_sac_checkpoint_without_its_buffer_refills_before_updating(tiny_sac_bank, tmp_path):
    cfg, _ = _sac_checkpoint_at_120(tiny_sac_bank, tmp_path)
    (tmp_path / "ckpt" / "replay_buffer.pkl").unlink()  # as on a new machine
    again = load_checkpoint(cfg, tmp_path / "ckpt")
    assert again.replay_buffer.pos == 0 and again.learning_starts == 120 + 50
    before = {k: v.clone() for k, v in again.policy.state_dict().items()}
    again.learn(40, reset_num_timesteps=False)  # still refilling: no update yet
    assert again.replay_buffer.pos == 40
    assert all(torch.equal(v, again.policy.state_dict()[k]) for k, v in before.items())
    again.learn(20, reset_num_timesteps=False)  # past the refill: updates resume
    assert any(not torch.equal(v, again.policy.state_dict()[k]) for k, v in before.items())


def test_bank_statistics_reach_the_runs_vecnormalize(tiny_ppo_bank):
    bank = load_bank(tiny_ppo_bank)
    model = new_model(
        prepare(RunConfig(env="HalfCheetah", size="8", bank=str(tiny_ppo_bank), fit_steps=5, device="cpu"))
    )
    rms = model.get_env().obs_rms
    np.testing.assert_allclose(rms.mean, bank.obs_mean.double().numpy())
    np.testing.assert_allclose(rms.var, bank.obs_var.double().numpy())
    assert not np.allclose(rms.var, 1.0)  # not a fresh VecNormalize
