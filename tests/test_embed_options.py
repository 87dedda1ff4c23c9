"""``torchgeo-decur embed --on-invalid / --s2-harmonize`` and how messages name them.

The readers (chips, rasters, shards, Sentinel-2 harmonization) name the option
that changes what they do; under ``embed`` they name its arguments
(``--on-invalid skip``), elsewhere the keyword argument / YAML key.
"""

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from torchgeo_decur.callbacks import EmbeddingWriter
from torchgeo_decur.cli import main
from torchgeo_decur.datasets import PairedChips
from torchgeo_decur.embeddings import read_embeddings
from torchgeo_decur.options import command_line_options, option
from torchgeo_decur.transforms.harmonize import remove_offset

from .conftest import DATA
from .test_embed import STATS, tiny_encoder

CHIPS = os.path.join(DATA, 'chips', 's2')
RASTER = os.path.join(DATA, 'own_rasters', 's2', 's2_l1c.tif')


@pytest.fixture(scope='module')
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ResNet-18 export of 13 Sentinel-2 bands, with its input scaling."""
    folder = tmp_path_factory.mktemp('export')
    torch.save(tiny_encoder(13, 2).state_dict(), folder / 'tiny_s2_decur.pth')
    text = json.dumps({'statistics': {'s2': STATS['s2']}})
    (folder / 'tiny_input_scaling.json').write_text(text)
    return folder / 'tiny_s2_decur.pth'


@pytest.fixture
def corrupt_chips(tmp_path: Path) -> Path:
    """The S2 chip folder plus ``tile_50_S2.tif``, which is not a raster."""
    folder = tmp_path / 's2'
    shutil.copytree(CHIPS, folder)
    (folder / 'tile_50_S2.tif').write_bytes(b'<html>not found</html>')
    return folder


def embed(export: Path, out: Path, *args: str) -> int:
    """Run ``torchgeo-decur embed`` in process (no progress bar)."""
    return main(['embed', str(export), str(out), *args, '--no-progress'])


def test_options_are_named_as_arguments_only_inside_a_command() -> None:
    assert option('on_invalid', 'skip') == "on_invalid='skip'"
    with command_line_options():
        assert option('on_invalid', 'skip') == '--on-invalid skip'
        assert option('s2_harmonize', 'never') == '--s2-harmonize never'
    assert option('s2_harmonize', 'never') == "s2_harmonize='never'"
    # The library (and torchgeo fit, its YAML keys) keeps the keyword name.
    with pytest.raises(ValueError, match="s2_harmonize='never'"):
        remove_offset(torch.ones(2, dtype=torch.uint8))


def test_a_corrupt_chip_names_the_embed_option_and_is_skipped_with_it(
    export: Path,
    corrupt_chips: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    chips = ['--chips', f's2={corrupt_chips}', '--s2-harmonize', 'never']
    assert embed(export, tmp_path / 'refused', *chips) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith('torchgeo-decur embed: error: invalid chip of key')
    assert 'tile_50_S2.tif' in err[0]
    assert '(pass --on-invalid skip to skip)' in err[0]
    assert 'on_invalid=' not in err[0]
    assert not (tmp_path / 'refused' / 'embeddings.parquet').exists()

    out = tmp_path / 'skipped'
    with pytest.warns(UserWarning, match=r"invalid chip of key 'tile_50_S2'.*skipping"):
        assert embed(export, out, *chips, '--on-invalid', 'skip') == 0
    summary = capsys.readouterr().out
    assert 'embedded 9 patches' in summary
    assert '1 invalid input(s) skipped: tile_50_S2' in summary
    emb = read_embeddings(out / 'embeddings.parquet')
    assert 'tile_50_S2' not in emb.frame['key'].tolist()
    assert len(emb.frame) == 9
    assert emb.metadata['on_invalid'] == 'skip'
    assert list(emb.metadata['skipped']) == ['tile_50_S2']
    # Outside the command the same reader names its keyword argument.
    with pytest.raises(ValueError, match=r"\(pass on_invalid='skip' to skip\)"):
        PairedChips({'s2': str(corrupt_chips)}, check_files=True)


def test_an_unreadable_raster_file_names_the_option_and_is_left_out(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / 's2'
    folder.mkdir()
    shutil.copy(RASTER, folder / 's2_l1c.tif')
    (folder / 'broken.tif').write_bytes(b'')
    rasters = ['--raster', f's2={folder}', '--s2-harmonize', 'never', '--no-geotiff']
    rasters += ['--patch-size', '32']
    assert embed(export, tmp_path / 'refused', *rasters) == 1
    err = capsys.readouterr().err
    assert 'broken.tif' in err
    assert err.rstrip().endswith('or pass --on-invalid skip')
    out = tmp_path / 'skipped'
    with pytest.warns(UserWarning, match='broken.tif'):
        assert embed(export, out, *rasters, '--on-invalid', 'skip') == 0
    assert f'1 invalid input(s) skipped: {folder / "broken.tif"}' in (
        capsys.readouterr().out
    )
    emb = read_embeddings(out / 'embeddings.parquet')
    assert emb.metadata['on_invalid'] == 'skip'
    assert list(emb.metadata['skipped']) == [str(folder / 'broken.tif')]


@pytest.fixture(scope='module')
def harmonized(
    export: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The S2 chips embedded with ``--s2-harmonize never`` and ``always``."""
    runs = {}
    for mode in ('never', 'always'):
        out = tmp_path_factory.mktemp(mode)
        assert embed(export, out, '--chips', f's2={CHIPS}', '--s2-harmonize', mode) == 0
        runs[mode] = read_embeddings(out / 'embeddings.parquet')
    return runs


def test_s2_harmonize_changes_the_vectors_and_is_recorded(
    harmonized: dict[str, Any],
) -> None:
    never, always = harmonized['never'], harmonized['always']
    assert never.frame['key'].tolist() == always.frame['key'].tolist()
    assert (never.metadata['s2_harmonize'], always.metadata['s2_harmonize']) == (
        'never',
        'always',
    )
    difference = np.abs(never.vectors['embedding'] - always.vectors['embedding'])
    assert difference.max(axis=1).min() > 1e-3  # every chip changes


def test_the_fit_config_gives_s2_harmonize_unless_the_command_does(
    export: Path, harmonized: dict[str, Any], tmp_path: Path
) -> None:
    config = tmp_path / 'fit.yaml'
    config.write_text(
        'data:\n'
        '  class_path: torchgeo_decur.datamodules.PairedChipsDataModule\n'
        '  init_args:\n'
        f'    folders: {{s2: {CHIPS}}}\n'
        '    s2_harmonize: always\n'
    )
    assert embed(export, tmp_path / 'config', '--config', str(config)) == 0
    emb = read_embeddings(tmp_path / 'config' / 'embeddings.parquet')
    assert emb.metadata['s2_harmonize'] == 'always'
    want = harmonized['always'].vectors['embedding']
    np.testing.assert_allclose(emb.vectors['embedding'], want, atol=1e-6, rtol=0)
    given = ['--config', str(config), '--s2-harmonize', 'never']
    assert embed(export, tmp_path / 'given', *given) == 0
    emb = read_embeddings(tmp_path / 'given' / 'embeddings.parquet')
    assert emb.metadata['s2_harmonize'] == 'never'


def test_a_resumed_run_with_another_s2_harmonize_is_refused(
    export: Path,
    harmonized: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    chips = ['--chips', f's2={CHIPS}', '--batch-size', '4']
    write = EmbeddingWriter.write_on_batch_end

    def killed_after_one_batch(self: EmbeddingWriter, *args: Any) -> None:
        write(self, *args)
        raise RuntimeError('killed after one batch')

    with monkeypatch.context() as m:
        m.setattr(EmbeddingWriter, 'write_on_batch_end', killed_after_one_batch)
        with pytest.raises(RuntimeError, match='killed'):
            embed(export, tmp_path, *chips, '--s2-harmonize', 'never')
    assert embed(export, tmp_path, *chips, '--s2-harmonize', 'always') == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "other settings (s2_harmonize: 'never' -> 'always')" in err[-1]
    assert embed(export, tmp_path, *chips, '--s2-harmonize', 'never') == 0
    assert 'embedded 9 patches (5 now, 4 from an earlier run' in (
        capsys.readouterr().out
    )
    emb = read_embeddings(tmp_path / 'embeddings.parquet')
    want = harmonized['never'].vectors['embedding']
    np.testing.assert_allclose(emb.vectors['embedding'], want, atol=1e-6, rtol=0)


def test_a_run_killed_before_merging_is_merged_when_run_again(
    export: Path,
    harmonized: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every part is written; the rerun has nothing to embed, only to merge."""
    chips = ['--chips', f's2={CHIPS}', '--s2-harmonize', 'always']

    def killed(*args: Any) -> None:
        raise RuntimeError('killed before merging')

    with monkeypatch.context() as m:
        m.setattr(EmbeddingWriter, 'on_predict_end', killed)
        with pytest.raises(RuntimeError, match='killed'):
            embed(export, tmp_path, *chips)
    assert embed(export, tmp_path, *chips) == 0
    assert 'embedded 9 patches (0 now, 9 from an earlier run' in (
        capsys.readouterr().out
    )
    emb = read_embeddings(tmp_path / 'embeddings.parquet')
    want = harmonized['always'].vectors['embedding']
    np.testing.assert_allclose(emb.vectors['embedding'], want, atol=1e-6, rtol=0)
    assert emb.metadata['s2_harmonize'] == 'always'


def test_chips_named_differently_per_modality_name_the_pattern_option(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s1 = os.path.join(DATA, 'chips', 's1')
    both = ['--chips', f's1={s1}', '--chips', f's2={CHIPS}']
    assert embed(export, tmp_path / 'refused', *both) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert 'No key is shared at all' in err[0]
    assert 'pass a pattern (--pattern REGEX)' in err[0]
    # One pattern for both folders pairs them; here the S2 folder alone.
    pattern = r'tile_(?P<key>\d+)_S2'
    chips = ['--chips', f's2={CHIPS}', '--pattern', pattern, '--s2-harmonize', 'never']
    assert embed(export, tmp_path / 'keys', *chips) == 0
    emb = read_embeddings(tmp_path / 'keys' / 'embeddings.parquet')
    assert emb.frame['key'].tolist() == [
        '00',
        '01',
        '02',
        '03',
        '04',
        '05',
        '06',
        '07',
        '99',
    ]
    assert emb.metadata['chip_options'] == {'pattern': pattern}
    argv = ['--raster', f's2={RASTER}', '--pattern', pattern]
    assert embed(export, tmp_path / 'rasters', *argv) == 1
    assert '--pattern applies to chips' in capsys.readouterr().err
