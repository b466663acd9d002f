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
import socket
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import torch
from tqdm import tqdm

from weit_rl import UserError
from weit_rl.agents import RunConfig, train
from weit_rl.compare.study import definition, is_done, merge_study, read_scratch, read_study, record_run, write_study
from weit_rl.compare.sweep import Sweep
from weit_rl.numerics import MKL_BRANCH, pinned

# One thread per run for every library that might start a pool: runs are the parallelism.
# Set before a worker starts, since numpy's BLAS reads them when it is first imported.
ONE_THREAD = {"WEIT_RL_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def worker_env(kernels: str) -> dict[str, str]:
    """A worker's environment: one thread, and the part's MKL branch (weit_rl/numerics.py), so
    that a run trains the same on any worker and every run of a part computes alike."""
    return ONE_THREAD | pinned(kernels)


WORKER_ENV = worker_env(MKL_BRANCH["stock"])  # the benchmarks' workers

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
            os.close(saved[0])
            os.close(saved[1])
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


def run_local(cfgs: list[dict[str, Any]], command: str, workers: int, env: dict[str, str], done: Done) -> None:
    """Runs in `workers` spawned processes with `env` (worker_env: one torch thread, the part's
    kernels; this process's own pin would not do, it follows the command, not the part)."""
    pool = spawn_pool(min(workers, len(cfgs)), _local_worker)
    try:
        saved = dict(os.environ)
        os.environ.update(env)
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


RAY_CLUSTER_HELP = (
    "start one with `ray start --head --num-cpus N` and pass the address it prints (HOST:PORT, or "
    "ray://HOST:10001 from another machine), leave --address out to start Ray here, or use --backend local"
)


def _ray_endpoint(address: str) -> tuple[str, int] | None:
    """Where a Ray address points: HOST:PORT (the head's GCS, port 6379 by default) or
    ray://HOST:PORT (Ray Client, 10001); None for what Ray resolves itself (auto, local)."""
    client = address.startswith("ray://")
    if address in ("auto", "local") or ("://" in address and not client):
        return None
    parts = urlsplit("//" + address.removeprefix("ray://"))
    try:
        port = parts.port or (10001 if client else 6379)
    except ValueError:
        raise UserError(f"--address {address}: not a Ray address; {RAY_CLUSTER_HELP}") from None
    return (parts.hostname, port) if parts.hostname else None


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Ray retries an address that does not answer for many minutes: knock on its port first."""
    endpoint = _ray_endpoint(address)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=timeout).close()
    except OSError as err:
        raise UserError(
            f"no Ray cluster answers at --address {address} ({err.strerror or err}); {RAY_CLUSTER_HELP}"
        ) from None


def _ray_init_error(err: BaseException, address: str | None) -> UserError:
    """ray.init's failure as one line: Ray's messages run over many lines (tracebacks of its GCS client)."""
    chain = [err]
    while chain[-1].__cause__ is not None and len(chain) < 5:
        chain.append(chain[-1].__cause__)
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if not address:
        return UserError(f"could not start Ray on this machine: {first}; use --backend local")
    hint = RAY_CLUSTER_HELP
    if any("authentication" in str(e).lower() for e in chain):  # a cluster with token authentication
        hint = "the cluster wants its token: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or ~/.ray/auth_token)"
    return UserError(f"could not reach Ray at --address {address}: {first}; {hint}")


def run_ray(
    cfgs: list[dict[str, Any]], command: str, workers: int, env: dict[str, str], address: str | None, done: Done
) -> None:
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
            if address:
                _check_reachable(address)
                ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": env})
            else:
                # the job's environment: workers Ray starts have it, none is set up per task
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise _ray_init_error(err, address) from None
    pending: dict[Any, str] = {}
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(train_one)
        # each task gets run_local's worker environment, also on a Ray someone else started
        pending = {task.options(runtime_env={"env_vars": env}).remote(cfg, command): cfg["run_dir"] for cfg in cfgs}
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
            run_ray(todo, command, workers, worker_env(sweep.kernels), address, done)
        else:
            run_local(todo, command, workers, worker_env(sweep.kernels), done)
    finally:
        bar.close()
    if failed:
        raise UserError(
            f"{len(failed)} of {len(todo)} runs failed:\n  "
            + "\n  ".join(failed)
            + "\nfix the cause and run the same command again: recorded runs are kept"
        )
    return [Path(c["run_dir"]).name for c in todo]
