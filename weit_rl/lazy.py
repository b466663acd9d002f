"""A package's public names, each imported from its submodule on first use (PEP 562), so that
importing the package loads no torch, SB3 or matplotlib until a name that needs them is used."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, sources: dict[str, str], public: list[str]) -> tuple[Callable, Callable]:
    """The package's `__getattr__` and `__dir__`; sources: name -> the submodule defining it."""

    def __getattr__(name: str) -> Any:
        if name not in sources:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{sources[name]}"), name)
        vars(sys.modules[package])[name] = value  # once: later lookups find it as a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__
