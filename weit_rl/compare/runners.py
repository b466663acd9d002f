"""Running a sweep: each missing run trains in its scratch folder (in a spawned process
with one torch thread, or as a Ray task) and, once finished, its evaluations.csv and
config.yaml are recorded in the study folder. The study folder decides what is done:
a recorded run is never retrained; an unrecorded run whose scratch folder survives
resumes from its last checkpoint (or is only recorded, if it had finished); one whose
scratch folder is gone trains again from step 0."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from weit_rl import UserError
from weit_rl.agents import RunConfig, train
from weit_rl.compare.study import definition, is_done, merge_study, read_scratch, read_study, record_run, write_study
from weit_rl.compare.sweep import Sweep
from weit_rl.numerics import PINNED_BY_ENGINE

# One thread per run for every library that might start a pool: runs are the parallelism.
# Set before a worker starts, since numpy's BLAS reads them when it is first imported.
ONE_THREAD = {"WEIT_RL_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def worker_env(engine: str) -> dict[str, str]:
    """A worker's environment: one thread, and the kernels its engine pins, so that a run
    trains the same on any worker (weit_rl/numerics.py)."""
    return ONE_THREAD | PINNED_BY_ENGINE[engine]


WORKER_ENV = worker_env("stock")  # the benchmarks' workers

Result = tuple[str, dict[str, str]]  # (scratch run folder, the files to record)
Done = Callable[[str, Result | None, BaseException | None], None]


def _log_dir(run_dir: Path) -> Path:
    return run_dir.parent / "logs"


_stopped = False  # set in a local worker by a stop: it starts no queued run after it


def _stop(signum: int, frame: object) -> None:
    global _stopped
    _stopped = True
    for sig in (signal.SIGTERM, signal.SIGINT):  # one stop: a second signal must not cut the checkpoint short
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def _local_worker() -> None:
    """Initializer of run_local's workers: a stop (SIGTERM from run_local, or Ctrl-C reaching the
    process group) ends the run as Ctrl-C ends `weit-rl train`: its training loop writes a checkpoint."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)


def train_one(cfg: dict[str, Any], command: str) -> Result:
    """Train (or resume) one run in this worker, one torch thread, its output going to
    <scratch>/<Env>/logs/<run>.log; returns the files to record. Top-level so spawned
    processes and Ray can import it; the files travel back, so Ray workers need not share
    the study folder."""
    if _stopped:
        raise KeyboardInterrupt
    os.environ["WEIT_RL_THREADS"] = "1"  # one run per core: threads would only fight
    torch.set_num_threads(1)
    run_dir = Path(cfg["run_dir"])
    logs = _log_dir(run_dir)
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{run_dir.name}.log").open("a") as log:
        saved = os.dup(1), os.dup(2)
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(log.fileno(), 1), os.dup2(log.fileno(), 2)  # MuJoCo's C warnings too
        try:
            train(RunConfig(**cfg), command)
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])
    files = read_scratch(run_dir)
    if files is None:
        raise RuntimeError(f"training ended without model.zip and evaluations.csv in {run_dir}")
    return str(run_dir), files


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _one_thread() -> None:
    os.environ.update({k: os.environ.get(k, v) for k, v in WORKER_ENV.items()})  # before torch's first op
    import torch

    torch.set_num_threads(1)


def spawn_pool(workers: int, initializer: Callable[[], None] = _one_thread) -> ProcessPoolExecutor:
    """Worker processes as the runner starts them: spawned (no forked torch or MuJoCo state);
    by default one torch thread each, for the benchmarks that fan out over processes."""
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=initializer
    )


def run_local(cfgs: list[dict[str, Any]], command: str, workers: int, done: Done) -> None:
    """Runs in `workers` spawned processes, one torch thread each, kernels pinned by engine
    (worker_env): one pool per engine, since a process reads its kernel setting once."""
    for engine in sorted({cfg["engine"] for cfg in cfgs}):
        _run_pool([cfg for cfg in cfgs if cfg["engine"] == engine], command, workers, worker_env(engine), done)


def _run_pool(cfgs: list[dict[str, Any]], command: str, workers: int, env: dict[str, str], done: Done) -> None:
    pool = spawn_pool(min(workers, len(cfgs)), _local_worker)
    try:
        saved = dict(os.environ)
        os.environ.update({k: os.environ.get(k, v) for k, v in env.items()})
        try:  # workers are spawned by the submits and inherit this environment; ours is put back
            futures = {pool.submit(train_one, cfg, command): cfg["run_dir"] for cfg in cfgs}
        finally:
            os.environ.clear()
            os.environ.update(saved)
        for fut in as_completed(futures):
            err = fut.exception()
            done(futures[fut], None if err else fut.result(), err)
    except KeyboardInterrupt:
        # A stop of this process alone (kill PID; Ctrl-C reaches the whole group) is passed on:
        # each worker checkpoints its run and starts no other; wait for that.
        for worker in multiprocessing.active_children():
            worker.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def run_ray(cfgs: list[dict[str, Any]], command: str, workers: int, address: str | None, done: Done) -> None:
    """The same runs as Ray tasks of one CPU each, on the cluster at `address` (or a
    local Ray started with `workers` CPUs)."""
    try:
        import ray
    except ImportError:
        raise UserError(
            "--backend ray needs Ray: pip install '.[ray]' (or pip install 'ray[default]==2.60.0'), "
            "or use --backend local"
        ) from None
    started = not ray.is_initialized()
    if started:
        try:
            runtime_env = {"env_vars": ONE_THREAD}  # each task adds its engine's kernels
            if address:
                ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise UserError(
                f"could not start or reach Ray{f' at {address}' if address else ''}: {err}; "
                "check --address, or use --backend local"
            ) from None
    pending: dict[Any, str] = {}
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(train_one)
        pending = {
            task.options(runtime_env={"env_vars": worker_env(cfg["engine"])}).remote(cfg, command): cfg["run_dir"]
            for cfg in cfgs
        }
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            run_dir = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except Exception as err:  # noqa: BLE001 - RayTaskError wraps whatever the run raised
                done(run_dir, None, getattr(err, "cause", None) or err)
            else:
                done(run_dir, result, None)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)
        raise
    finally:
        if started:
            ray.shutdown()


def run_sweep(
    sweep: Sweep, command: str, backend: str = "local", workers: int | None = None, address: str | None = None
) -> list[str]:
    """Train every run of the grid not yet recorded in the study; returns the names of
    the runs trained now. Failed runs do not stop the others: one error lists them."""
    write_study(sweep.study_file, merge_study(read_study(sweep.study_file), definition(sweep), sweep.study_file))
    target: dict[str, Path] = {}
    todo, recorded_now = [], 0
    for cell in sweep.cells():
        rec = sweep.recorded(*cell)
        if is_done(rec):
            continue
        files = read_scratch(sweep.scratch(*cell))
        if files is not None:  # finished before an interruption, never recorded: record it now
            record_run(rec, files)
            recorded_now += 1
            continue
        cfg = asdict(sweep.config(*cell))
        target[cfg["run_dir"]] = rec
        todo.append(cfg)
    total = len(sweep.cells())
    if recorded_now:
        print(f"recorded {recorded_now} runs that had finished in {sweep.out_dir} before", file=sys.stderr)
    if not todo:
        print(f"all {total} runs are recorded in {sweep.study_file.parent}; writing the report", file=sys.stderr)
        return []
    workers = min(workers or available_cores(), len(todo))
    print(
        f"{len(todo)} of {total} runs to train in {sweep.scratch(*sweep.cells()[0]).parent} ({backend}, "
        f"{workers} workers)",
        file=sys.stderr,
    )
    failed: list[str] = []
    bar = tqdm(total=len(todo), desc="runs", unit="run", file=sys.stderr)

    def done(run_dir: str, result: Result | None, err: BaseException | None) -> None:
        name = Path(run_dir).name
        if err is None and result is not None:
            record_run(target[run_dir], result[1])
        else:
            failed.append(f"{name}: {type(err).__name__}: {err} (log: {_log_dir(Path(run_dir)) / name}.log)")
        bar.set_postfix_str(f"{name} {'failed' if err else 'done'}")
        bar.update()

    try:
        if backend == "ray":
            run_ray(todo, command, workers, address, done)
        else:
            run_local(todo, command, workers, done)
    finally:
        bar.close()
    if failed:
        raise UserError(
            f"{len(failed)} of {len(todo)} runs failed:\n  "
            + "\n  ".join(failed)
            + "\nfix the cause and run the same command again: recorded runs are kept"
        )
    return [Path(c["run_dir"]).name for c in todo]
