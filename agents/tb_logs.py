"""A finished run's TensorBoard scalars, for diagnostics that read what SB3 logged (the
entropy coefficient, losses, approx-KL) beside what the run earned: the scalars themselves,
their averages over windows of env steps, SAC's policy entropy recovered from them, and
`log_table`, which `weit-rl diagnose` prints for a run that kept its `tb/` folder."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import yaml

Window = tuple[int, int]  # (after, up to] in env steps

KL_TO_TEACHER = "retention/kl_to_teacher"  # logged by agents/aids.py only while retention is on
# What `log_table` shows, where the run logged it: (column, tag, sign). -actor_loss is the critics'
# value of the actor's own actions less the entropy term (SB3's actor loss is ent_coef * log_prob - Q):
# the Q drift that a falling SAC run shows before its returns fall.
LOGGED_COLUMNS = (
    ("ent_coef", "train/ent_coef", 1.0),
    ("-actor_loss", "train/actor_loss", -1.0),
    ("critic_loss", "train/critic_loss", 1.0),
    ("approx_kl", "train/approx_kl", 1.0),
    ("clip_fraction", "train/clip_fraction", 1.0),
    ("explained_variance", "train/explained_variance", 1.0),
    ("value_loss", "train/value_loss", 1.0),
    ("kl_to_teacher", KL_TO_TEACHER, 1.0),
)


def has_logs(run: Path) -> bool:
    return any(run.glob("tb/*/events*"))


def run_scalars(run: Path, tags: Iterable[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each tag over the whole run, (steps, values), reading every event file once; a resumed run
    has several event files, the later one wins."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # seconds to import

    by_step: dict[str, dict[int, float]] = {tag: {} for tag in tags}
    for events in sorted(run.glob("tb/*/events*"), key=lambda f: f.stat().st_mtime):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in set(by_step) & set(acc.Tags()["scalars"]):
            by_step[tag].update({p.step: p.value for p in acc.Scalars(tag)})
    out = {}
    for tag, values in by_step.items():
        steps = sorted(values)
        out[tag] = (np.array(steps, dtype=np.int64), np.array([values[s] for s in steps], dtype=float))
    return out


def scalars(run: Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """One tag over the whole run (see `run_scalars`)."""
    return run_scalars(run, [tag])[tag]


def finished_runs(root: Path, algo: str) -> Iterator[tuple[Path, str, str]]:
    """(run folder, size, arm) of every run under root that finished with TensorBoard logs."""
    name = re.compile(rf"{algo}-(?P<size>[^-]+)-(?P<arm>.+)-s(?P<seed>\d+)$")
    for run in sorted(root.iterdir()):
        m = name.match(run.name)
        if m and has_logs(run) and (run / "model.zip").exists():
            yield run, m["size"], m["arm"]


def in_windows(steps: np.ndarray, values: np.ndarray, windows: Sequence[Window]) -> list[float]:
    """The values averaged over each window (after, up to]; nan where nothing was logged."""
    return [float(values[m].mean()) if (m := (steps > lo) & (steps <= hi)).any() else math.nan for lo, hi in windows]


def window_means(run: Path, tag: str, windows: Sequence[Window], sign: float = 1.0) -> list[float]:
    """One tag of the run averaged over each window, times `sign`; nan where nothing was logged."""
    steps, values = scalars(run, tag)
    return in_windows(steps, sign * values, windows)


def target_entropy(run: Path) -> float:
    """The entropy SAC's coefficient aims the policy at: the run's target_entropy where it set a
    number, else SB3's default, minus the task's action dimension."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    target = (config.get("hyperparams") or {}).get("target_entropy", "auto")
    if target != "auto":
        return float(target)
    import gymnasium as gym  # the action space, from the task itself

    env = gym.make(config["env"])
    env.close()
    assert env.action_space.shape is not None  # a Box
    return -float(np.prod(env.action_space.shape))


def entropy_from_coef_loss(coef: np.ndarray, coef_loss: np.ndarray, target: float) -> np.ndarray:
    """SAC's policy entropy (after squashing) from what SB3 logs. Why it can be recovered: SB3 logs
    ent_coef_loss = -log(ent_coef) * mean(log_prob + target) over the batch, so the entropy
    -mean(log_prob) is target + ent_coef_loss / log(ent_coef). Nan where ent_coef is exactly 1 (the
    first update of a coefficient tuned from 1), where the loss says nothing of the entropy."""
    log_coef = np.log(coef)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(log_coef == 0, math.nan, target + coef_loss / log_coef)


def sac_entropy(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, ent_coef, the policy's entropy) of a SAC run. The entropy is nan throughout where the
    coefficient is fixed: SB3 then logs no loss, and the entropy is not recoverable."""
    logged = run_scalars(run, ["train/ent_coef", "train/ent_coef_loss"])
    steps, coef = logged["train/ent_coef"]
    loss_steps, coef_loss = logged["train/ent_coef_loss"]
    if loss_steps.size == 0:
        return steps, coef, np.full_like(coef, math.nan)
    if not np.array_equal(steps, loss_steps):
        raise ValueError(f"{run}: ent_coef and ent_coef_loss logged at different steps")
    return steps, coef, entropy_from_coef_loss(coef, coef_loss, target_entropy(run))


def returns_at(run: Path, steps: Iterable[int]) -> list[float]:
    """The deterministic evaluation's mean return at each step (evaluations.csv); nan where none."""
    path = run / "evaluations.csv"
    by_step: dict[int, float] = {}
    if path.exists():
        with path.open(newline="") as f:
            by_step = {int(r["timesteps"]): float(r["mean_return"]) for r in csv.DictReader(f)}
    return [by_step.get(s, math.nan) for s in steps]


def q_drift(run: Path, windows: Sequence[Window]) -> dict[str, list[float]]:
    """How far a SAC actor moved from its initial policy and what its critic thinks of it, per
    window: retention's KL to the initial policy (nan once retention is off), minus the actor loss,
    and the evaluation return at the window's end. Why: initialized SAC runs fall as retention's
    weight runs out, and these show whether the actor drifts toward actions the critic overrates."""
    logged = run_scalars(run, [KL_TO_TEACHER, "train/actor_loss"])
    steps, actor_loss = logged["train/actor_loss"]
    return {
        "kl_to_teacher": in_windows(*logged[KL_TO_TEACHER], windows),
        "-actor_loss": in_windows(steps, -actor_loss, windows),
        "return": returns_at(run, [hi for _, hi in windows]),
    }


def log_table(run: Path, every: int = 10_000) -> str:
    """What SB3 logged to the run's TensorBoard files, averaged over each `every` env steps, beside
    the evaluated return at each window's end (markdown); columns the run never logged are left out."""
    tags = [tag for _, tag, _ in LOGGED_COLUMNS] + ["train/ent_coef_loss"]
    logged = run_scalars(run, tags)
    last = max((int(steps[-1]) for steps, _ in logged.values() if steps.size), default=0)
    windows = [(end - every, end) for end in range(every, last + every, every)]
    columns: dict[str, list[float]] = {}
    for column, tag, sign in LOGGED_COLUMNS:
        steps, values = logged[tag]
        columns[column] = in_windows(steps, sign * values, windows)
        loss_steps, coef_loss = logged["train/ent_coef_loss"]
        if column == "ent_coef" and loss_steps.size and np.array_equal(steps, loss_steps):  # SAC tuning its coefficient
            entropy = entropy_from_coef_loss(values, coef_loss, target_entropy(run))
            columns["entropy"] = in_windows(steps, entropy, windows)
    shown = [c for c, v in columns.items() if not all(math.isnan(x) for x in v)]
    returns = returns_at(run, [end for _, end in windows])
    lines = [
        f"## {run}: TensorBoard logs",
        "",
        f"Means over each {every:,} env steps up to the row's step. entropy: SAC's policy entropy after "
        "squashing, recovered from train/ent_coef_loss; -actor_loss: the critics' value of the actor's "
        "actions less the entropy term; kl_to_teacher: retention's KL, logged while retention is on.",
        "",
        "| step | return | " + " | ".join(shown) + " |",
        "|---" * (len(shown) + 2) + "|",
    ]
    for i, (_, end) in enumerate(windows):
        ret = "" if math.isnan(returns[i]) else f"{returns[i]:,.1f}"
        cells = ["" if math.isnan(columns[c][i]) else f"{columns[c][i]:.4g}" for c in shown]
        lines.append(f"| {end:,} | {ret} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
