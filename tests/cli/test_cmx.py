"""``torchgeo-decur cmx`` under faults, driven through the real command.

The input is a DeCURTask-layout checkpoint of two MiT encoders holding just the
keys that identify the variant (stem, per-stage blocks and norms) at MiT-B0
sizes, so every run stays small; ``tests/test_export_cmx.py`` covers real files.
The first refusal and the kill run the command in a subprocess; set-up exports
and the other refusals call the same entry point in this process.
"""

from pathlib import Path

import pytest
import torch

from .conftest import one_line_error, run_cli, run_in_process, snapshot
from .test_export import kill_mid_write, temporaries

#: smp's MiT-B0: blocks per stage and stage widths.
DEPTHS = (2, 2, 2, 2)
WIDTHS = (32, 64, 160, 256)


def mit_checkpoint(path: Path, seed: int = 0) -> Path:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for modality in ('rgb', 'hha'):
        prefix = f'backbones.{modality}.'
        state[prefix + 'patch_embed1.proj.weight'] = torch.randn(
            WIDTHS[0], 3, 7, 7, generator=generator
        )
        for stage, (depth, width) in enumerate(zip(DEPTHS, WIDTHS, strict=True), 1):
            for block in range(depth):
                state[prefix + f'block{stage}.{block}.norm1.weight'] = torch.randn(
                    width, generator=generator
                )
            state[prefix + f'norm{stage}.weight'] = torch.ones(width)
        state[prefix + 'head.weight'] = torch.randn(2048, 256, generator=generator)
    torch.save({'state_dict': state, 'hyper_parameters': {}}, path)
    return path


EXPECTED = ('b0_hha.pth', 'b0_rgb.pth', 'b0_rgb_hha_cmx.pth')


def test_second_export_refused_then_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'out'
    ckpt = mit_checkpoint(tmp_path / 'mit.ckpt')
    args = ['cmx', str(ckpt), '--out-dir', str(out), '--stem', 'b0']
    assert run_in_process(capsys, *args).returncode == 0
    before = snapshot(str(out))
    assert sorted(before) == list(EXPECTED)
    mit_checkpoint(ckpt, seed=1)
    line = one_line_error(run_cli(*args), 'cmx')
    assert 'already exist' in line
    assert snapshot(str(out)) == before
    assert run_in_process(capsys, *args, '--overwrite').returncode == 0
    after = snapshot(str(out))
    assert all(after[name] != before[name] for name in EXPECTED)
    dual = torch.load(out / 'b0_rgb_hha_cmx.pth', weights_only=True)
    assert 'extra_norm4.weight' in dual
    assert 'head.weight' not in dual


@pytest.mark.parametrize('case', ['directory', 'truncated', 'text'])
def test_unreadable_weights_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    path = tmp_path / 'weights.pth'
    if case == 'directory':
        path.mkdir()
    elif case == 'truncated':
        mit_checkpoint(path)
        path.write_bytes(path.read_bytes()[:1000])
    else:
        path.write_text('<html>404</html>\n')
    line = one_line_error(
        run_in_process(capsys, 'cmx', str(path), '--out-dir', str(tmp_path / 'out')),
        'cmx',
    )
    assert repr(str(path)) in line


def test_out_dir_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / 'taken'
    target.write_text('keep me')
    ckpt = mit_checkpoint(tmp_path / 'mit.ckpt')
    line = one_line_error(
        run_in_process(capsys, 'cmx', str(ckpt), '--out-dir', str(target)), 'cmx'
    )
    assert str(target) in line
    assert target.read_text() == 'keep me'


def test_kill_during_cmx_keeps_previous_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'out'
    ckpt = mit_checkpoint(tmp_path / 'mit.ckpt')
    args = ['cmx', str(ckpt), '--out-dir', str(out), '--stem', 'b0']
    assert run_in_process(capsys, *args).returncode == 0
    before = snapshot(str(out))
    mit_checkpoint(ckpt, seed=1)
    kill_mid_write([*args, '--overwrite'], out)
    visible = {k: v for k, v in snapshot(str(out)).items() if not k.startswith('.')}
    assert visible == before
    assert run_in_process(capsys, *args, '--overwrite').returncode == 0
    assert not temporaries(out)
    assert sorted(snapshot(str(out))) == list(EXPECTED)
