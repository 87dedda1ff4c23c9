"""The layering of docs/developer/architecture.md: packages import downwards only."""

import ast
from pathlib import Path

import torchgeo_decur

PACKAGE = Path(torchgeo_decur.__file__).parent

#: Subpackage (or top-level module) → layer; a module may import its own layer
#: and those below it. ``None``: the package root and helpers every layer uses.
LAYERS: dict[str, int | None] = {
    '__init__': None,
    '_lazy': None,
    '_torchgeo_cli': None,
    'options': 0,
    'transforms': 0,
    'losses': 0,
    'checkpoints': 0,
    'models': 1,
    'weights': 2,
    'datasets': 3,
    'datamodules': 4,
    'tasks': 5,
    'embeddings': 5,
    'export': 5,
    'export_cmx': 5,
    'callbacks': 6,
    'cli': 7,
}


def part(module: Path) -> str:
    """The subpackage or top-level module a file belongs to."""
    first = module.relative_to(PACKAGE).parts[0]
    return first.removesuffix('.py')


def imported_parts(path: Path) -> set[str]:
    """Parts of this package that a module imports, at any level of its code."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = path.relative_to(PACKAGE).parent.parts
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[: len(here) - node.level + 1])
                target = base + (node.module.split('.') if node.module else [])
            elif node.module and node.module.startswith('torchgeo_decur.'):
                target = node.module.split('.')[1:]
            else:
                continue
            if not target:  # ``from . import x`` at the package root
                target = [alias.name for alias in node.names][:1]
            found.add(target[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith('torchgeo_decur.'):
                    found.add(alias.name.split('.')[1])
    return found


def test_every_module_imports_downwards() -> None:
    violations = []
    modules = sorted(PACKAGE.rglob('*.py'))
    assert len(modules) > 50
    for path in modules:
        layer = LAYERS[part(path)]  # a new subpackage must be given a layer
        if layer is None:
            continue
        for other in imported_parts(path):
            other_layer = LAYERS[other]
            if other_layer is not None and other_layer > layer:
                violations.append(
                    f'{path.relative_to(PACKAGE)} ({part(path)}, layer {layer}) '
                    f'imports {other} (layer {other_layer})'
                )
    assert not violations, '\n'.join(violations)
