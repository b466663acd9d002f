"""Defining a sweep: `resolve` (the profiles and the command line are in options.py) validates every
option (the arms, and the bank and expert they need) before anything is written."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from weit_rl import UserError
from weit_rl.agents import RunConfig, prepare, resolve_device
from weit_rl.agents.config import run_name, run_needs
from weit_rl.arms import DEFAULT_PRIMARY
from weit_rl.compare.arms import (
    arm_definition,
    check_known,
    describe,
    parse_arms,
    parse_candidates,
    parse_pairs,
    parse_primary,
    select_arms,
)
from weit_rl.compare.options import PROFILES, PROTOCOL_EPISODES, PROTOCOL_EVAL_FREQ
from weit_rl.compare.options import add_arguments as add_arguments  # re-exported: the options live there
from weit_rl.compare.results import reference_returns
from weit_rl.compare.sources import resolve_sources
from weit_rl.compare.study import (
    BEFORE,
    arms_of,
    check_existing_runs,
    definition,
    grid_of,
    merge_study,
    part_file,
    read_study,
    select_parts,
)
from weit_rl.config import canonical_size, check_algo, check_seed, hyperparams, parse_size
from weit_rl.envs import resolve_task, short_name
from weit_rl.numerics import MKL_BRANCH


@dataclass(frozen=True)
class Sweep:
    """One sweep of a study's <Env>/<algo> part, complete: built by `resolve` (or, for a
    report, from the part's recorded definition by `from_study`) and never changed after."""

    env_id: str
    algo: str
    sizes: list[str]
    inits: list[str]
    seeds: list[int]
    steps: int
    eval_freq: int
    eval_episodes: int
    study: str
    report_dir: Path
    out_dir: Path  # absolute: worker processes and Ray tasks may start in another folder
    profile: str
    primary_size: str
    checkpoint_freq: int = 50_000
    device: str = "cpu"
    bank: str | None = None  # absolute paths, for the workers; the study records portable ones
    expert: str | None = None
    bank_sha256: str | None = None
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)  # name: RunConfig overrides, "init" included
    settings: dict[str, Any] = field(default_factory=dict)  # RunConfig overrides shared by every arm
    primary: list[str] = field(default_factory=lambda: list(DEFAULT_PRIMARY))  # [method, baseline]
    candidates: list[str] = field(default_factory=list)
    references: dict[str, Any] = field(default_factory=dict)  # expert and random returns, with sources
    notes: list[str] = field(default_factory=list)
    grid: dict[str, list[int]] = field(default_factory=dict)  # "size/arm": its seeds, where cells plan fewer
    engine: str = "fast"  # one per part (weit_rl/policies/fast.py): a part recorded before engines existed is stock
    kernels: str = MKL_BRANCH["fast"]  # the part's MKL branch (weit_rl/numerics.py), every run computes with it

    @property
    def study_dir(self) -> Path:
        return self.report_dir / self.study

    @property
    def runs_root(self) -> Path:
        return self.study_dir / "runs"

    @property
    def part(self) -> str:  # the study's <Env>-<algo> part this sweep adds to: it names the report's files
        return f"{short_name(self.env_id)}-{self.algo}"

    @property
    def study_file(self) -> Path:  # the part's definition, runs/<Env>/study-<algo>.json
        return part_file(self.runs_root, self.env_id, self.algo)

    def arm(self, name: str) -> dict[str, Any]:
        """The arm's RunConfig overrides, the shared settings included ("init" always there)."""
        return {**self.settings, **self.arms.get(name, arm_definition(name))}

    def run_name(self, size: str, arm: str, seed: int) -> str:
        return run_name(self.algo, size, arm, seed)

    def recorded(self, size: str, init: str, seed: int) -> Path:
        """The run's folder in the study (what ships and what decides "done")."""
        return self.runs_root / short_name(self.env_id) / self.run_name(size, init, seed)

    def scratch(self, size: str, init: str, seed: int) -> Path:
        """The run's training folder (checkpoints, model, TensorBoard): disposable."""
        return self.out_dir / self.study / short_name(self.env_id) / self.run_name(size, init, seed)

    def cells(self) -> list[tuple[str, str, int]]:
        """Seed by seed, so that a sweep stopped part-way has every arm at its first seeds."""
        return [
            (size, init, seed)
            for seed in self.seeds
            for size in self.sizes
            for init in self.inits
            if seed in self.grid.get(f"{size}/{init}", self.seeds)
        ]

    def config(self, size: str, arm: str, seed: int) -> Any:
        """The RunConfig of one cell, training in its scratch folder: the arm's overrides on
        top of the shared settings; the sweep's bank goes to every arm without one of its own
        (its observation statistics are those arms'), the expert to arms whose initializer
        needs it."""
        over = self.arm(arm)
        init, bank = over.pop("init"), over.pop("bank", None)
        cfg = RunConfig(
            env=self.env_id,
            algo=self.algo,
            size=size,
            init=init,
            steps=self.steps,
            seed=seed,
            device=self.device,
            bank=str(Path(bank).resolve()) if bank else self.bank,
            expert=self.expert,
            run_dir=str(self.scratch(size, arm, seed)),
            eval_freq=self.eval_freq,
            eval_episodes=self.eval_episodes,
            checkpoint_freq=self.checkpoint_freq,
            progress_bar=False,
            keep_best=False,
            engine=self.engine,
            **over,
        )  # a study records evaluations.csv and config.yaml only
        if not run_needs(cfg).expert:
            cfg.expert = None
        return cfg


def _split(text: str) -> list[str]:
    return list(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))  # drop repeats, keep order


def _rollout(algo: str, env_id: str) -> int:
    """Steps per PPO rollout (evaluations land on whole rollouts); 1 for SAC."""
    params = hyperparams(algo, env_id)
    return int(params.get("n_steps", 1)) * int(params.get("n_envs", 1)) if algo == "ppo" else 1


def _study_name(name: str) -> str:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise UserError(f"--study {name!r} must be a relative folder name such as headline or ablation/obs")
    return path.as_posix()


def resolve(args: argparse.Namespace) -> Sweep:
    """The sweep the options define, complete, after every check and before any run starts:
    unset options from the profile, the bank and expert the arms need, the references, and
    what the part's recorded definition fixes (primary comparison, its size). With
    --report-only, the part's definition in the study folder defines the sweep (the study's
    only part when --env is not given; resolve_parts gives them all)."""
    if args.report_only:
        parts = resolve_parts(args)
        if len(parts) > 1:
            raise UserError(
                f"study {parts[0].study} has parts {', '.join(p.part for p in parts)}: pick one with --env (and --algo)"
            )
        return parts[0]
    algo, env_id, name = _common(args)
    assert env_id is not None  # _common requires --env without --report-only
    primary, candidates = parse_primary(args.primary), parse_candidates(args.candidates)
    sweep = _from_options(args, name, env_id, algo)
    sources = resolve_sources(sweep, args.bank, args.expert)
    old = read_study(part_file(sweep.runs_root, env_id, algo)) or {}
    # the engine asked for, else the part's own (stock if recorded before engines), else the default
    engine = args.engine or (old.get("engine", "stock") if old else sweep.engine)
    sweep = replace(
        sweep,
        **sources,
        engine=engine,
        kernels={**BEFORE, **old}["kernels"] if old else MKL_BRANCH[engine],  # a part's kernels never change
        references=reference_returns(sources.get("bank"), sources.get("expert")),
        primary_size=old["primary_size"] if old and args.primary_size is None else sweep.primary_size,
        primary=primary or old.get("primary") or sweep.primary,
    )
    sweep = replace(sweep, candidates=candidates or old.get("candidates") or [sweep.primary[0]])
    merged = merge_study(old or None, definition(sweep), sweep.study_file)
    if merged["primary_size"] not in merged["sizes"]:  # a later sweep may add other sizes only
        raise UserError(
            f"--primary-size {merged['primary_size']!r} is not one of --sizes {','.join(merged['sizes'])} "
            "(this sweep's and the study's)"
        )
    check_known([*(primary or []), *(candidates or [])], merged["inits"], "--primary/--candidates")
    sweep = replace(sweep, primary_size=merged["primary_size"], references=merged["references"] or {})
    check_existing_runs(sweep)
    return sweep


def _common(args: argparse.Namespace) -> tuple[str, str | None, str]:
    """(algo, env_id or None, study name), checked."""
    algo = check_algo(args.algo or "ppo")
    env_id = resolve_task(args.env) if args.env else None
    if args.reps is not None and args.reps < 1:
        raise UserError(f"--reps must be >= 1, got {args.reps}")
    if env_id is None and not (args.report_only and args.study):
        raise UserError("--env is required (e.g. --env HalfCheetah), unless --report-only names a --study")
    return algo, env_id, _study_name(args.study or args.profile)


def _from_options(args: argparse.Namespace, name: str, env_id: str, algo: str) -> Sweep:
    prof = PROFILES[args.profile]
    pick = lambda key: prof[key] if getattr(args, key) is None else getattr(args, key)  # noqa: E731
    # one name per network, as `weit-rl train` names it (64x2 is small): the run folders agree
    sizes, settings = [canonical_size(s) for s in _split(pick("sizes"))], parse_pairs(args.settings or [], "--set")
    arms = select_arms(_split(pick("inits")), parse_arms(args.arm), args.inits is not None)
    if "engine" in settings or any("engine" in over for over in arms.values()):
        raise UserError("the engine is the part's, not an arm's: pass --engine fast|stock, not engine= in --set/--arm")
    if not sizes or not arms:
        raise UserError("--sizes and --arms need at least one entry each, e.g. --sizes tiny,small --arms scratch,weit")
    for size in sizes:
        parse_size(size)
    seeds, steps, episodes = pick("seeds"), pick("steps"), pick("eval_episodes")
    for flag, value in (("--seeds", seeds), ("--steps", steps), ("--eval-episodes", episodes)):
        if value < 1:
            raise UserError(f"{flag} must be >= 1, got {value}")
    check_seed(args.first_seed + seeds - 1)
    check_seed(args.first_seed)
    rollout = _rollout(algo, env_id)
    eval_freq = (
        args.eval_freq or prof.get("eval_freq", {}).get(algo) or math.ceil(steps / prof["evals"] / rollout) * rollout
    )
    if eval_freq < 1:
        raise UserError(f"--eval-freq must be >= 1, got {eval_freq}")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    primary = canonical_size(args.primary_size) if args.primary_size else None
    primary = primary or (prof["primary_size"] if prof["primary_size"] in sizes else sizes[0])
    if args.profile == "full" and (episodes < PROTOCOL_EPISODES or eval_freq > PROTOCOL_EVAL_FREQ[algo]):
        raise UserError(
            f"the full profile follows docs/protocol.md: at least {PROTOCOL_EPISODES} episodes every "
            f"{PROTOCOL_EVAL_FREQ[algo]:,} steps or more often for {algo.upper()}, got {episodes} every "
            f"{eval_freq:,}; use --profile quick for a smaller study"
        )
    notes = []
    if eval_freq % rollout:
        notes.append(
            f"--eval-freq {eval_freq:,} is not a multiple of the PPO rollout ({rollout} steps): each "
            "evaluation happens at the end of the rollout that crosses its step, at the step recorded"
        )
    resolve_device(args.device)
    sweep = Sweep(
        env_id=env_id,
        algo=algo,
        sizes=sizes,
        inits=list(arms),
        seeds=list(range(args.first_seed, args.first_seed + seeds)),
        steps=steps,
        eval_freq=eval_freq,
        eval_episodes=episodes,
        study=name,
        report_dir=Path(args.report_dir),
        out_dir=Path(args.out_dir).resolve(),
        profile=args.profile,
        primary_size=primary,
        checkpoint_freq=args.checkpoint_freq or prof["checkpoint_freq"],
        device=args.device,
        notes=notes,
        arms=arms,
        settings=settings,
    )
    for arm in arms:  # RunConfig's own checks (choices, counts, hyperparameters), before anything is written
        try:
            prepare(sweep.config(sizes[0], arm, sweep.seeds[0]), quiet=True)
        except UserError as err:
            raise UserError(f"arm {arm} ({describe(sweep.arm(arm))}): {err}") from None
    return sweep


def resolve_parts(args: argparse.Namespace) -> list[Sweep]:
    """--report-only: a sweep per part of the study folder (runs/<Env>/study-<algo>.json),
    every part, or those of --env and/or --algo."""
    algo, env_id, name = _common(args)
    primary, candidates = parse_primary(args.primary), parse_candidates(args.candidates)
    parts = select_parts(Path(args.report_dir), name, env_id, algo if env_id or args.algo else None)
    return [from_study(args, name, d, primary, candidates) for d in parts]


def from_study(
    args: argparse.Namespace,
    name: str,
    d: dict[str, Any],
    primary: list[str] | None = None,
    candidates: list[str] | None = None,
) -> Sweep:
    """The sweep a part's recorded definition `d` holds: every sweep of the part together,
    what its report covers. A report may change the candidates, never the primary comparison."""
    declared = d.get("primary") or list(DEFAULT_PRIMARY)
    if primary and primary != declared:
        raise UserError(
            f"study {name} declared its primary comparison {':'.join(declared)} when it started; "
            "drop --primary (a report may change --candidates only)"
        )
    check_known(candidates or [], d["inits"], "--candidates")
    return Sweep(
        env_id=d["env_id"],
        algo=d["algo"],
        sizes=d["sizes"],
        inits=d["inits"],
        seeds=d["seeds"],
        steps=d["steps"],
        eval_freq=d["eval_freq"],
        eval_episodes=d["eval_episodes"],
        study=name,
        report_dir=Path(args.report_dir),
        out_dir=Path(args.out_dir).resolve(),
        profile=d["profile"],
        primary_size=d["primary_size"],
        bank=d.get("bank"),
        expert=d.get("expert"),
        bank_sha256=d.get("bank_sha256"),
        references=d.get("references") or {},
        settings=d.get("settings") or {},
        engine=d.get("engine", "stock"),
        kernels=d.get("kernels", BEFORE["kernels"]),
        primary=declared,
        arms=arms_of(d),
        grid=grid_of(d),
        candidates=candidates or d.get("candidates") or [declared[0]],
    )
