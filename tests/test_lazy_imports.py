"""The package's deferred imports: every public name resolves, start-up stays light."""

import importlib
import subprocess
import sys

import pytest

from torchgeo_decur._lazy import lazy_exports

from .conftest import ROOT

PACKAGES = [
    'torchgeo_decur',
    'torchgeo_decur.callbacks',
    'torchgeo_decur.datamodules',
    'torchgeo_decur.datasets',
    'torchgeo_decur.models',
    'torchgeo_decur.weights',
]


@pytest.mark.parametrize('name', PACKAGES)
def test_every_public_name_resolves_and_is_listed(name: str) -> None:
    package = importlib.import_module(name)
    for attribute in package.__all__:
        assert getattr(package, attribute) is not None, attribute
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match='has no attribute'):
        package.no_such_name  # noqa: B018


def test_a_name_claimed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'x' is listed under both"):
        lazy_exports('pkg', {'.a': ('x',), '.b': ('x',)})


def test_command_line_and_package_import_leave_the_trainers_alone() -> None:
    # What `torchgeo-decur export/info/cmx/...` imports before it runs; the
    # package import still registers the DeCUR weights with torchgeo and the
    # encoders that timm does not have with timm (a fresh interpreter, so no
    # other test can have imported their modules first).
    code = (
        'import sys\n'
        'import torchgeo_decur\n'
        'import timm\n'
        'from torchgeo_decur_cli import build_parser\n'
        'from torchgeo.models import get_weight\n'
        'build_parser()\n'
        'get_weight("DeCURResNet50_Weights.SENTINEL1_GRD_SSL4EO_DECUR")\n'
        'for name in ("resnet50_rda", "mit_b2", "mit_b5"):\n'
        '    assert timm.is_model(name), name\n'
        'heavy = {"lightning", "torchgeo.trainers", "zarr", "torchgeo_decur.tasks"}\n'
        'print(sorted(heavy & set(sys.modules)))\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]'
