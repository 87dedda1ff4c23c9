"""Deferred imports for the package's ``__init__`` modules (PEP 562).

A subpackage that re-exports names from heavy submodules (timm, segmentation
models, Lightning, torchgeo's trainers) lists them in a table; a name's submodule
is imported on first access, so ``import torchgeo_decur.cli`` or
``import torchgeo_decur.checkpoints.layouts`` does not pay for the rest. Static
type checkers see the same names through ``if TYPE_CHECKING:`` imports.
"""

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` that import re-exported names on use.

    Args:
        package: ``__name__`` of the package whose attributes these are.
        exports: Relative submodule name (``'.tasks'``) → the names it provides.

    Returns:
        The ``__getattr__`` and ``__dir__`` functions to assign in the package.

    Raises:
        ValueError: If two submodules claim the same name.
    """
    source: dict[str, str] = {}
    for module, names in exports.items():
        for name in names:
            if name in source:
                raise ValueError(
                    f'{package}: {name!r} is listed under both {source[name]!r} '
                    f'and {module!r}'
                )
            source[name] = module

    def module_getattr(name: str) -> Any:
        module = source.get(name)
        if module is None:
            raise AttributeError(f'module {package!r} has no attribute {name!r}')
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this
        return value

    def module_dir() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(source))

    return module_getattr, module_dir
