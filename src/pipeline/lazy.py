"""Lazy re-exports for package ``__init__`` modules (PEP 562).

A package that re-exports its public API from heavy submodules (torch, scipy.signal)
would make every ``pipeline <command>`` pay for them, since the command line registers
every stage's parser by importing its package: ``pipeline design`` took 6 s, mostly
importing torch for the circulation model. With :func:`lazy_exports` a name is imported
from its submodule on first access, so ``from pipeline.hemo import simulate`` works as
before and ``import pipeline.hemo.cli`` costs nothing.

A name that is also a submodule's name (``pipeline.clinical.preprocess``, the function
and its module) cannot be exported lazily: importing the submodule binds the module to
that name on the package. Such names are left out of a lazy package's exports (or the
package keeps its eager imports).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: name -> the submodule that defines it.

    Parameters
    ----------
    package
        The package's ``__name__``.
    exports
        Public name -> full name of the module it is imported from.
    """
    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted({*importlib.import_module(package).__dict__, *exports})

    return __getattr__, __dir__
