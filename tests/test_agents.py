"""The training runner: a run loads its bank once; evaluations.csv holds returns with the
run's wall and evaluation seconds, a clock that survives resume, and older files still work;
weit's recipe fills the fields a user left unset."""

from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from stable_baselines3 import PPO

from weit_rl import UserError
from weit_rl.agents import EVAL_COLUMNS, EvalCSVCallback, RunConfig, new_model, prepare, read_evals, train
from weit_rl.agents.callbacks import truncate_evals
from weit_rl.agents.config import changed_fields
from weit_rl.artifacts import bank as bank_module
from weit_rl.envs import make_env

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`

OLD_HEADER = "timesteps,mean_return,std_return,returns\n"


def learn(path: Path, steps: int = 256) -> None:
    env = make_env("HalfCheetah-v5", normalize=False)
    model = PPO("MlpPolicy", env, n_steps=256, batch_size=64, n_epochs=1, policy_kwargs={"net_arch": [8]}, seed=0)
    model.learn(steps, callback=EvalCSVCallback(make_env("HalfCheetah-v5", seed=1, normalize=False), path, 256, 1))


def test_a_run_loads_its_bank_once(tiny_ppo_bank, monkeypatch):
    opened = []
    real_open = bank_module._open
    monkeypatch.setattr(bank_module, "_open", lambda path: opened.append(path) or real_open(path))
    model = new_model(
        prepare(RunConfig(env="HalfCheetah", size="8", bank=str(tiny_ppo_bank), fit_steps=5, device="cpu"))
    )
    assert opened == [str(tiny_ppo_bank)]  # for the env's observation statistics and the initializer alike
    assert "bank" not in model.policy_kwargs  # as_stock dropped the loaded bank with the other init kwargs


def test_evaluations_csv_times_the_run(tmp_path):
    run = train(
        RunConfig(
            env="HalfCheetah",
            init="scratch",
            size="8",
            steps=1024,
            eval_freq=512,
            eval_episodes=1,
            device="cpu",
            run_dir=str(tmp_path / "run"),
            progress_bar=False,
        )
    )
    rows = read_evals(run / "evaluations.csv")
    assert list(rows[0]) == EVAL_COLUMNS
    assert [int(r["timesteps"]) for r in rows] == [0, 512, 1024]
    wall, spent = [float(r["wall_s"]) for r in rows], [float(r["eval_s"]) for r in rows]
    assert wall == sorted(wall) and spent == sorted(spent)
    assert 0 < spent[0] <= wall[0] and all(e < w for e, w in zip(spent, wall))
    assert wall[-1] - spent[-1] > wall[0] - spent[0]  # training time went in between


def test_resumed_run_continues_the_clock(tmp_path):
    path = tmp_path / "evaluations.csv"
    path.write_text(",".join(EVAL_COLUMNS) + "\n0,-1.0,0.0,-1.00,100.00,10.00\n")
    learn(path)
    last = read_evals(path)[-1]
    assert int(last["timesteps"]) == 256 and float(last["wall_s"]) > 100 and float(last["eval_s"]) > 10


def test_older_evaluations_csv_is_still_read_and_resumed(tmp_path):
    path = tmp_path / "evaluations.csv"
    path.write_text(OLD_HEADER + "0,-1.0,0.0,-1.00\n256,-2.0,0.0,-2.00\n512,-3.0,0.0,-3.00\n")
    assert [r["timesteps"] for r in read_evals(path)] == ["0", "256", "512"]
    truncate_evals(path, 0)  # resume from a step-0 checkpoint: the header gains the new columns
    assert path.read_text() == ",".join(EVAL_COLUMNS) + "\n0,-1.0,0.0,-1.00,,\n"
    learn(path)
    rows = read_evals(path)
    assert [int(r["timesteps"]) for r in rows] == [0, 256]
    assert rows[0]["wall_s"] == "" and 0 < float(rows[1]["eval_s"]) < float(rows[1]["wall_s"])


def test_a_short_sac_run_still_learns(capsys):
    short = prepare(RunConfig(env="HalfCheetah", algo="sac", init="scratch", steps=2000))
    assert short.hyperparams["learning_starts"] == 1000  # the config's 10000 would leave it untrained
    assert "learning_starts lowered from 10000 to 1000" in capsys.readouterr().err
    assert prepare(RunConfig(env="HalfCheetah", algo="sac", init="scratch")).hyperparams["learning_starts"] == 10000


@pytest.mark.parametrize(
    "init, recipe, expected",
    [
        ("weit", "default", (2300, 1.0)),
        ("distill", "default", (2300, 1.0)),
        ("select", "default", (0, 0.0)),  # plain training, as in its paper
        ("scratch", "default", (0, 0.0)),
        ("weit", "ft300", (300, 1.0)),
        ("distill", "ft300", (300, 1.0)),
        ("weit", "plain", (0, 0.0)),
        ("distill", "plain", (0, 0.0)),
    ],
)
def test_the_recipe_fills_what_the_user_left_unset(init, recipe, expected):
    cfg = prepare(RunConfig(env="HalfCheetah", init=init, recipe=recipe))
    assert (cfg.finetune_steps, cfg.retention) == expected


def test_a_run_must_train_at_least_one_step(tmp_path):
    with pytest.raises(UserError, match="^steps must be >= 1, got 0: pass --steps 1 or more$"):
        train(RunConfig(env="HalfCheetah", init="scratch", steps=0, run_dir=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()


def test_explicit_recipe_fields_win_and_a_recipe_is_only_its_fields():
    mine = prepare(RunConfig(env="HalfCheetah", init="weit", finetune_steps=50, retention=0.0))
    assert (mine.finetune_steps, mine.retention) == (50, 0.0)
    # plain spelled out is the same run as recipe=plain: resuming one with the other is allowed
    plain = prepare(RunConfig(env="HalfCheetah", init="weit", recipe="plain"))
    spelled = prepare(RunConfig(env="HalfCheetah", init="weit", finetune_steps=0, retention=0.0))
    assert changed_fields(spelled, yaml.safe_load(yaml.safe_dump(asdict(plain)))) == []
    assert changed_fields(prepare(RunConfig(env="HalfCheetah")), asdict(plain)) == [
        "finetune_steps: 0 -> 2300",
        "retention: 0.0 -> 1.0",
    ]
    with pytest.raises(UserError, match="unknown recipe 'best'"):
        prepare(RunConfig(env="HalfCheetah", recipe="best"))
