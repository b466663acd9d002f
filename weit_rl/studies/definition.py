"""A study as data: configs/studies/<name>.yaml, read and checked, and each of its calls
turned into the `weit-rl compare` options it stands for.

A study file holds:
- description: what the study asks (its report's README says what it found);
- compare: compare options every call shares (compare's own names, `_` for `-`; lists are
  joined by commas; `set` is a mapping of RunConfig overrides);
- arms: name -> RunConfig overrides ({} for an arm named after its initializer);
- calls: the compare calls in the order they run, each with a unique `name`, an `env` (one
  task or a list), its `arms` and any compare option that differs from the shared ones;
  `build_bank` (`weit-rl templates` options) builds the call's `bank` first when it is absent;
- summary (optional): the page written across the study's parts (weit_rl/studies/summaries.py);
- notes (optional): what the summary must say that the runs cannot (later findings);
- baselines (optional): "<Env>-<algo>" -> {baseline: arm}: the arm that stands for a baseline
  (scratch or select) in that part's summary, where a pilot or a check found a stronger variant
  than the arm of that name;
- references (optional): published numbers the summary sets beside the study's, with their source."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from weit_rl import UserError

KEYS = {"description", "compare", "arms", "calls", "summary", "notes", "references", "baselines"}
STAND_INS = ("scratch", "select")  # the baselines a part may replace by a stronger variant
CALL_KEYS = {"name", "env", "arms", "build_bank"}
# compare options a study file may give (the rest, --workers and the backend, belong to the machine).
OPTIONS = {
    "algo",
    "profile",
    "study",
    "sizes",
    "set",
    "primary",
    "primary_size",
    "candidates",
    "seeds",
    "first_seed",
    "steps",
    "eval_freq",
    "eval_episodes",
    "checkpoint_freq",
    "bank",
    "expert",
    "report_dir",
    "engine",
}


@dataclass(frozen=True)
class Call:
    """One `weit-rl compare` call of a study, for one task."""

    name: str
    env: str
    options: dict[str, Any]  # compare options, the shared ones merged in
    arms: dict[str, dict[str, Any]]  # name -> RunConfig overrides
    build_bank: tuple[str, ...] | None = None  # `weit-rl templates` options, when the bank is to be built

    @property
    def bank(self) -> str | None:
        return self.options.get("bank")

    def argv(self, workers: int | None = None) -> list[str]:
        """The call as `weit-rl compare` arguments."""
        out = ["--env", self.env]
        for key, value in self.options.items():
            flag = "--" + key.replace("_", "-")
            if key == "set":
                out += ["--set", *(f"{k}={_flow(v)}" for k, v in value.items())] if value else []
            elif isinstance(value, list):
                out += [flag, ",".join(map(str, value))]
            else:
                out += [flag, str(value)]
        for name, over in self.arms.items():
            if over:
                out += ["--arm", f"{name}:" + ",".join(f"{k}={_flow(v)}" for k, v in over.items())]
        out += ["--arms", ",".join(self.arms)]
        return out + (["--workers", str(workers)] if workers else [])


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    calls: tuple[Call, ...]
    summary: str | None = None
    notes: tuple[str, ...] = ()
    references: dict[str, Any] | None = None
    baselines: tuple[tuple[str, str, str], ...] = ()  # ("<Env>-<algo>", baseline, arm): a stand-in

    @property
    def folder(self) -> Path:
        """The study folder every call without its own report_dir/study writes to."""
        return Path("reports") / self.name

    def parts(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(task, algorithm) -> the sizes, arms, seeds per size and arms per size ("planned")
        the study holds when every call of its main folder has run."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for call in self.calls:
            if "report_dir" in call.options or call.options["study"] != self.name:
                continue
            env, algo = call.env, call.options["algo"]
            stand_ins = {base: arm for name, base, arm in self.baselines if name == f"{env}-{algo}"}
            part = out.setdefault(
                (env, algo), {"sizes": [], "arms": [], "seeds": {}, "planned": {}, "baselines": stand_ins}
            )
            part["arms"] += [a for a in call.arms if a not in part["arms"]]
            for size in call.options["sizes"]:
                part["sizes"] += [] if size in part["sizes"] else [size]
                part["seeds"][size] = max(call.options["seeds"], part["seeds"].get(size, 0))
                planned = part["planned"].setdefault(size, [])  # the arms some call runs at this size
                planned += [a for a in call.arms if a not in planned]
        return out

    def select(self, call: str | None = None, env: str | None = None) -> list[Call]:
        chosen = [c for c in self.calls if call in (None, c.name) and env in (None, c.env)]
        if not chosen:
            names = ", ".join(dict.fromkeys(c.name for c in self.calls))
            tasks = ", ".join(dict.fromkeys(c.env for c in self.calls))
            raise UserError(f"study {self.name}: no call matches (calls: {names}; tasks: {tasks})")
        return chosen


def _flow(value: Any) -> str:
    """A value as compare reads it: YAML's flow style, keys in the file's order."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1_000_000)
    return text.strip().removesuffix("...").strip()


def studies_dir() -> Path:
    return Path(str(resources.files("weit_rl") / "configs" / "studies"))


def names() -> list[str]:
    return sorted(p.stem for p in studies_dir().glob("*.yaml"))


def load(name: str) -> Study:
    path = studies_dir() / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"no study {name!r}; studies: {', '.join(names())} (configs/studies/)")
    return parse(name, yaml.safe_load(path.read_text()) or {})


def _check_keys(where: str, got: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(got) - allowed
    if unknown:
        raise UserError(f"{where}: unknown keys {', '.join(sorted(unknown))}; known: {', '.join(sorted(allowed))}")


def parse(name: str, d: dict[str, Any]) -> Study:
    """The study file's contents, checked: every call names known arms and options."""
    where = f"configs/studies/{name}.yaml"
    _check_keys(where, d, KEYS)
    for key in ("description", "arms", "calls"):
        if key not in d:
            raise UserError(f"{where}: {key} is required")
    shared = d.get("compare") or {}
    _check_keys(f"{where} compare", shared, OPTIONS)
    arms = {arm: dict(over or {}) for arm, over in d["arms"].items()}
    calls, seen = [], set()
    for i, c in enumerate(d["calls"]):
        at = f"{where} calls[{i}]"
        _check_keys(at, c, CALL_KEYS | OPTIONS)
        for key in ("name", "env", "arms"):
            if key not in c:
                raise UserError(f"{at}: {key} is required")
        unknown = [a for a in c["arms"] if a not in arms]
        if unknown:
            raise UserError(f"{at}: arms {', '.join(unknown)} are not defined under arms")
        options = {**shared, **{k: v for k, v in c.items() if k in OPTIONS}}
        options.setdefault("algo", "ppo")
        options.setdefault("profile", "full")
        options.setdefault("study", name)
        for env in [c["env"]] if isinstance(c["env"], str) else c["env"]:
            if (c["name"], env) in seen:
                raise UserError(f"{at}: call {c['name']!r} for {env} is given twice")
            seen.add((c["name"], env))
            build = c.get("build_bank")
            calls.append(
                Call(
                    name=c["name"],
                    env=env,
                    options={k: v.format(env=env) if k == "bank" else v for k, v in options.items()},
                    arms={a: arms[a] for a in c["arms"]},
                    build_bank=None if build is None else tuple(map(str, build)),
                )
            )
    baselines = [
        (part, base, arm) for part, chosen in (d.get("baselines") or {}).items() for base, arm in chosen.items()
    ]
    for part, base, arm in baselines:
        if base not in STAND_INS:
            raise UserError(
                f"{where} baselines: {part}: {base} is not a baseline a part may replace ({', '.join(STAND_INS)})"
            )
        if not any(f"{c.env}-{c.options['algo']}" == part and arm in c.arms for c in calls):
            raise UserError(f"{where} baselines: {part}: {arm} is not an arm of a call of that part")
    return Study(
        name,
        d["description"],
        tuple(calls),
        d.get("summary"),
        tuple(d.get("notes") or ()),
        d.get("references"),
        tuple(baselines),
    )


def add_study_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `weit-rl study` (here, not beside the runner: the parser must not import torch)."""
    p.add_argument("name", help="the study: a file configs/studies/NAME.yaml (" + ", ".join(names()) + ")")
    p.add_argument("--call", default=None, help="run only this call of the study (its `name`)")
    p.add_argument("--env", default=None, help="run only the calls of this task")
    p.add_argument("--workers", type=int, default=None, help="parallel runs (default: the available CPU cores)")
    p.add_argument("--summary-only", action="store_true", help="train nothing: rebuild the reports and summary")
