"""Callback classes built on first use, so an integration module imports without its framework."""

from __future__ import annotations

import importlib
from typing import Any


def callback_class(module: str, recording: type, base: str, extra: str) -> type:
    """``NbtrainCallback`` for ``module``: ``recording`` mixed into the framework's ``base`` class.

    ``base`` is ``"package.module:Class"``; a missing framework is an ImportError naming the
    ``nbtrain[extra]`` that installs it.
    """
    path, _, name = base.partition(":")
    try:
        framework_class = getattr(importlib.import_module(path), name)
    except ImportError as exc:
        raise ImportError(f"{module}.NbtrainCallback needs {extra} (pip install 'nbtrain[{extra}]'): {exc}") from exc
    return type("NbtrainCallback", (recording, framework_class), {"__module__": module, "__doc__": recording.__doc__})


def module_getattr(module_globals: dict[str, Any], recording: type, base: str, extra: str):
    """A module ``__getattr__`` that builds ``NbtrainCallback`` once and caches it in the module."""
    module = module_globals["__name__"]

    def __getattr__(name: str) -> Any:
        if name != "NbtrainCallback":
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        cls = module_globals[name] = callback_class(module, recording, base, extra)
        return cls

    return __getattr__
