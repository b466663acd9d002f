"""The training runner, one file per job: `config` (RunConfig, prepare), `model` (PPO/SAC
construction and initialization), `evaluation`, `enjoy` (play a saved run, record a
video), `checkpoint` (save, load, best model), `callbacks` (evaluation CSV, checkpoints)
and `train` (the train/resume loop). This module only re-exports their public names."""

from weit_rl.agents.aids import CriticWarmup, Retention
from weit_rl.agents.callbacks import EVAL_COLUMNS, CheckpointCallback, EvalCSVCallback, read_evals
from weit_rl.agents.checkpoint import best_score, load_checkpoint, save_best, save_checkpoint
from weit_rl.agents.config import RunConfig, needs, prepare, resolve_device
from weit_rl.agents.enjoy import Episode, play
from weit_rl.agents.evaluation import evaluate, evaluate_saved, make_eval_env, saved_task
from weit_rl.agents.model import ALGO_CLASSES, algo_kwargs, build_model, init_sources, new_model
from weit_rl.agents.train import train

__all__ = [
    "ALGO_CLASSES",
    "CriticWarmup",
    "Retention",
    "EVAL_COLUMNS",
    "CheckpointCallback",
    "Episode",
    "EvalCSVCallback",
    "RunConfig",
    "algo_kwargs",
    "best_score",
    "build_model",
    "evaluate",
    "evaluate_saved",
    "init_sources",
    "load_checkpoint",
    "make_eval_env",
    "needs",
    "new_model",
    "play",
    "prepare",
    "read_evals",
    "resolve_device",
    "save_best",
    "save_checkpoint",
    "saved_task",
    "train",
]
