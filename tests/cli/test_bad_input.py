"""Bad input to info / export / cmx / picture: one line naming the path, exit 1."""

from pathlib import Path

import pytest
import torch

from torchgeo_decur import DeCURTask

from ..conftest import ROOT
from .conftest import one_line_error, run_cli, run_in_process

#: First characters of text files that torch's unpickler fails on in different
#: ways (IndexError, KeyError, EOFError, UnpicklingError, ...).
FIRST_CHARACTERS = 'abeqrstuMQR.'

COMMANDS = {
    'info': lambda path, out: ['info', path],
    'export': lambda path, out: ['export', path, '--output-dir', out],
    'cmx': lambda path, out: ['cmx', path, '--out-dir', out],
    'picture': lambda path, out: [
        'picture',
        path,
        f'{out}.png',
        '--config',
        f'{ROOT}/conf/quickstart.yaml',
    ],
}


@pytest.mark.parametrize('command', list(COMMANDS))
def test_text_files_and_folders(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / 'out')
    for char in FIRST_CHARACTERS:
        text = tmp_path / f'text_{char}.pth'
        text.write_text(f'{char}some notes, not a checkpoint\n')
        result = run_in_process(capsys, *COMMANDS[command](str(text), out))
        line = one_line_error(result, command)
        assert str(text) in line
        assert 'cannot be read as a PyTorch file' in line
    folder = tmp_path / 'folder'
    folder.mkdir()
    line = one_line_error(
        run_in_process(capsys, *COMMANDS[command](str(folder), out)), command
    )
    assert str(folder) in line
    assert 'is a directory' in line
    assert not (tmp_path / 'out').exists()
    assert not (tmp_path / 'out.png').exists()


def test_text_file_through_the_real_command(tmp_path: Path) -> None:
    text = tmp_path / 'notes.ckpt'
    text.write_text('Remember to export the run\n')
    line = one_line_error(run_cli('export', str(text)), 'export')
    assert str(text) in line


def test_picture_names_the_architecture_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = DeCURTask(
        modalities=['s1', 's2'],
        in_channels={'s1': 2, 's2': 13},
        model='resnet18',
        projector_dims=[64, 64],
        common_dim=56,
    )
    ckpt = tmp_path / 'other.ckpt'
    torch.save(
        {'state_dict': task.state_dict(), 'hyper_parameters': dict(task.hparams)},
        ckpt,
    )
    result = run_in_process(
        capsys,
        'picture',
        str(ckpt),
        str(tmp_path / 'p.png'),
        '--config',
        f'{ROOT}/conf/quickstart.yaml',
    )
    line = one_line_error(result, 'picture')
    assert "model='resnet18' in the checkpoint but 'resnet10t' in the config" in line
    assert str(ckpt) in line
