"""The torchgeo command's one-line errors: only this package's bad input."""

import sys
from types import TracebackType

import pytest
import torch

from torchgeo_decur._torchgeo_cli import bad_input, is_torchgeo_command, one_line_hook
from torchgeo_decur.weights.loading import resolve_encoder


def raised(make: type[BaseException], message: str) -> BaseException:
    try:
        raise make(message)
    except BaseException as error:
        return error


def test_only_errors_this_package_raises_are_shortened(
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:  # an error of this package, wrapped like jsonargparse wraps it
        try:
            resolve_encoder('no such weights', model='resnet18')
        except ValueError as inner:
            raise ValueError('Does not validate against any of the Union') from inner
    except ValueError as error:
        ours = error
    found = bad_input(ours)
    assert found is ours.__cause__
    # Not this package's: raised here, raised by torch, or not bad input.
    assert bad_input(raised(ValueError, 'test')) is None
    with pytest.raises(RuntimeError) as caught:
        torch.zeros(2) @ torch.zeros(3)
    assert bad_input(caught.value) is None

    seen: list[BaseException] = []

    def previous(
        kind: type[BaseException], error: BaseException, tb: TracebackType | None
    ) -> None:
        seen.append(error)

    hook = one_line_hook(previous, ['torchgeo', 'fit', '--config', 'x.yaml'])
    hook(ValueError, ours, ours.__traceback__)
    assert capsys.readouterr().err == f'torchgeo fit: error: {found}\n'
    other = raised(KeyError, 'x')
    hook(KeyError, other, other.__traceback__)
    assert seen == [other]


def test_only_the_torchgeo_command_gets_the_hook() -> None:
    assert is_torchgeo_command(['/venv/bin/torchgeo', 'fit'])
    assert is_torchgeo_command(['/venv/lib/site-packages/torchgeo/__main__.py'])
    assert not is_torchgeo_command([sys.argv[0]])
    assert not is_torchgeo_command([])
    assert not getattr(sys.excepthook, 'torchgeo_decur', False)
