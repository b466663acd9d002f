"""The arms known by name: each an initializer with the settings that make it, its role in a
comparison and its colour. A new arm is one entry in ARMS: `weit-rl compare --arms NAME` runs
it, and the reports, figures and the summary page show it (a study's own arms, defined with
`--arm NAME:...`, live in its study file instead). Plain Python, no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from weit_rl.recipe import INIT_NEEDS, check_init


@dataclass(frozen=True)
class Arm:
    init: str  # the initializer (weit_rl.recipe.INIT_NEEDS)
    role: str  # "method": what the toolkit offers; "baseline": what it is compared with
    color: str  # the same in every figure
    about: str  # one line for help texts
    settings: dict[str, Any] = field(default_factory=dict)  # RunConfig overrides that define the arm
    in_default_sweep: bool = False  # run by `weit-rl compare` when --arms is not given

    def definition(self) -> dict[str, Any]:
        """The arm as a sweep records it: its initializer, then its settings."""
        return {"init": check_init(self.init), **self.settings}


ROLES = ("method", "baseline")
ARMS: dict[str, Arm] = {
    "scratch": Arm("scratch", "baseline", "#7f7f7f", "SB3's default initialization", in_default_sweep=True),
    "weit": Arm("weit", "method", "#d62728", "the templates with scalers fitted for the size", in_default_sweep=True),
    "distill": Arm("distill", "baseline", "#1f77b4", "the expert distilled into the policy", in_default_sweep=True),
    "select": Arm("select", "baseline", "#2ca02c", "a subset of the expert's weights", in_default_sweep=True),
}
# The comparison a sweep is built around unless it names its own (--primary METHOD:BASELINE).
DEFAULT_PRIMARY = ["weit", "scratch"]


def check_registry() -> None:
    """Every entry names a known initializer and role (called by the tests, and by the sweep
    before it reads an entry someone added)."""
    for name, arm in ARMS.items():
        if arm.init not in INIT_NEEDS or arm.role not in ROLES:
            raise ValueError(f"arm {name!r}: init {arm.init!r} or role {arm.role!r} unknown")
    if any(name not in ARMS for name in DEFAULT_PRIMARY):
        raise ValueError(f"DEFAULT_PRIMARY {DEFAULT_PRIMARY} names an arm not in ARMS")


def default_sweep() -> list[str]:
    return [name for name, arm in ARMS.items() if arm.in_default_sweep]


def baselines() -> list[str]:
    return [name for name, arm in ARMS.items() if arm.role == "baseline"]


def reads_bank(name: str) -> bool:
    """Whether a registered arm's initializer takes its weights from the bank (its
    initialization recipe is worth listing)."""
    return name in ARMS and INIT_NEEDS[ARMS[name].init].bank


def in_order(names: list[str] | tuple[str, ...]) -> list[str]:
    """`names` once each, the registered arms first in the registry's order, the others
    (a study's own arms) after them in their given order."""
    given = list(dict.fromkeys(names))
    return [n for n in ARMS if n in given] + [n for n in given if n not in ARMS]
