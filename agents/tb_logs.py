"""A finished run's TensorBoard scalars, for diagnostics that read what SB3 logged (the
entropy coefficient, losses, approx-KL) beside what the run earned."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def scalars(run: Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """One tag over the whole run; a resumed run has several event files, the later one wins."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # seconds to import

    by_step: dict[int, float] = {}
    for events in sorted(run.glob("tb/*/events*"), key=lambda f: f.stat().st_mtime):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            by_step.update({p.step: p.value for p in acc.Scalars(tag)})
    steps = sorted(by_step)
    return np.array(steps), np.array([by_step[s] for s in steps])


def finished_runs(root: Path, algo: str) -> Iterator[tuple[Path, str, str]]:
    """(run folder, size, arm) of every run under root that finished with TensorBoard logs."""
    name = re.compile(rf"{algo}-(?P<size>[^-]+)-(?P<arm>.+)-s(?P<seed>\d+)$")
    for run in sorted(root.iterdir()):
        m = name.match(run.name)
        if m and any(run.glob("tb/*/events*")) and (run / "model.zip").exists():
            yield run, m["size"], m["arm"]
