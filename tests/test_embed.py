"""``torchgeo-decur embed`` / ``neighbours`` and the library behind them.

Tiny ResNet-18 exports (random weights, real export layouts) embed the own-rasters
fixture; the vectors are compared with the encoder applied to the same windows,
read independently through torchgeo.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import geopandas
import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
import timm
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn
from torchgeo.datasets import RasterDataset
from torchgeo.samplers import GriddedPatchSampler

from torchgeo_decur.callbacks import EmbeddingWriter
from torchgeo_decur.checkpoints.layouts import to_reference_joint
from torchgeo_decur.cli import main
from torchgeo_decur.datamodules.embedding import EmbeddingDataModule
from torchgeo_decur.embeddings import METADATA_KEY, nearest_patches, read_embeddings
from torchgeo_decur.options import command_line_options
from torchgeo_decur.tasks.embedding import EmbeddingTask
from torchgeo_decur.transforms import ClipNormalize
from torchgeo_decur.weights import DeCURResNet50_Weights

from .conftest import DATA
from .models.released import reference_encoder, write_backbone

RASTERS = os.path.join(DATA, 'own_rasters')
S1, S2 = os.path.join(RASTERS, 's1'), os.path.join(RASTERS, 's2')
#: Statistics of the tiny exports (raw units): S1 in dB, S2 in DN.
STATS = {
    's1': {'mean': [-12.0, -19.0], 'std': [3.0, 3.5]},
    's2': {'mean': [1200.0 + 10 * i for i in range(13)], 'std': [400.0] * 13},
}
PATCH, STRIDE = 32, 16


def tiny_encoder(in_chans: int, seed: int) -> nn.Module:
    """A random ResNet-18 with pooled output, in eval mode."""
    torch.manual_seed(seed)
    return timm.create_model('resnet18', in_chans=in_chans, num_classes=0).eval()


@pytest.fixture(scope='module')
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``tiny_s2_decur.pth``, ``tiny_joint_decur.pth`` (s1, s2) and their scaling."""
    folder = tmp_path_factory.mktemp('exports')
    s1, s2 = tiny_encoder(2, 1), tiny_encoder(13, 2)
    torch.save(s2.state_dict(), folder / 'tiny_s2_decur.pth')
    joint = to_reference_joint({'s1': s1.state_dict(), 's2': s2.state_dict()}, {})
    torch.save({'model': joint}, folder / 'tiny_joint_decur.pth')
    text = json.dumps({'statistics': STATS})
    (folder / 'tiny_input_scaling.json').write_text(text)
    return {'folder': folder, 's1': s1, 's2': s2}


@pytest.fixture(scope='module')
def s2_run(exports: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embed run of the S2 raster, through the command line in-process."""
    out = tmp_path_factory.mktemp('s2_run')
    source = exports['folder'] / 'tiny_s2_decur.pth'
    argv = ['embed', str(source), str(out), '--raster', f's2={S2}', '--no-progress']
    argv += ['--patch-size', str(PATCH), '--stride', str(STRIDE), '--batch-size', '5']
    assert main([*argv, '--picture']) == 0
    return out


def windows(paths: str) -> list[tuple[float, float, float, float]]:
    """Grid windows of a raster, computed here from torchgeo directly."""
    data = RasterDataset(paths=paths)
    return [
        (x.start, x.stop, y.start, y.stop)
        for x, y in GriddedPatchSampler(data, size=PATCH, stride=STRIDE)
    ]


def expected_vectors(
    paths: str, encoder: nn.Module, stats: dict[str, list[float]]
) -> np.ndarray:
    """The encoder applied to every window, read through torchgeo."""
    data = RasterDataset(paths=paths)
    scale = ClipNormalize(stats['mean'], stats['std'])
    images = [data[x0:x1, y0:y1]['image'] for x0, x1, y0, y1 in windows(paths)]
    with torch.no_grad():
        return encoder(scale(torch.stack(images).float())).numpy()


def test_vectors_equal_the_encoder_on_the_same_windows(
    s2_run: Path, exports: dict[str, Any]
) -> None:
    emb = read_embeddings(s2_run / 'embeddings.parquet')
    expected = expected_vectors(S2, exports['s2'], STATS['s2'])
    assert emb.frame['patch_id'].tolist() == list(range(len(expected)))
    np.testing.assert_allclose(emb.vectors['embedding'], expected, atol=1e-6, rtol=0)


def test_geometries_are_the_windows_in_the_raster_crs(s2_run: Path) -> None:
    frame = geopandas.read_parquet(s2_run / 'embeddings.parquet')
    with rasterio.open(os.path.join(S2, 's2_l1c.tif')) as src:
        assert frame.crs == src.crs.to_epsg() or frame.crs.to_epsg() == 32632
    got = frame.geometry.bounds.to_numpy()
    want = np.array([(x0, y0, x1, y1) for x0, x1, y0, y1 in windows(S2)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert (frame.geometry.area == (PATCH * 30.0) ** 2).all()


def test_geoparquet_records_how_the_vectors_were_made(s2_run: Path) -> None:
    frame = geopandas.read_parquet(s2_run / 'embeddings.parquet')
    assert list(frame.columns) == ['patch_id', 'geometry', 'embedding']
    assert len(frame['embedding'].iloc[0]) == 512
    meta = json.loads(
        pq.read_schema(s2_run / 'embeddings.parquet').metadata[METADATA_KEY]
    )
    assert meta['model'] == 'resnet18'
    assert meta['modalities'] == ['s2']
    assert meta['scaling']['s2']['mean'] == STATS['s2']['mean']
    assert (meta['patch_size'], meta['stride']) == (PATCH, STRIDE)
    assert not (s2_run / '.parts').exists()
    assert oct(os.stat(s2_run / 'embeddings.parquet').st_mode & 0o777) == oct(
        0o666 & ~_umask()
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_geotiff_holds_each_vector_at_its_window(s2_run: Path) -> None:
    emb = read_embeddings(s2_run / 'embeddings.parquet')
    with rasterio.open(s2_run / 'embeddings.tif') as src:
        assert src.count == 512
        assert src.crs.to_epsg() == 32632
        assert src.res == (STRIDE * 30.0, STRIDE * 30.0)
        assert src.profile['tiled']
        assert src.compression is not None
        image = src.read()
        for i, box in enumerate(emb.frame.geometry.bounds.to_numpy()):
            centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            row, col = src.index(*centre)
            np.testing.assert_array_equal(
                image[:, row, col], emb.vectors['embedding'][i]
            )
    assert (s2_run / 'embeddings.png').stat().st_size > 10_000


def test_existing_output_is_refused_by_the_command(
    s2_run: Path, exports: dict[str, Any]
) -> None:
    source = exports['folder'] / 'tiny_s2_decur.pth'
    before = (s2_run / 'embeddings.parquet').read_bytes()
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'torchgeo_decur.cli',
            'embed',
            str(source),
            str(s2_run),
            '--raster',
            f's2={S2}',
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"torchgeo-decur embed: error: '{s2_run / 'embeddings.parquet'}' exists; "
        'pass --overwrite (overwrite=True) to compute it again'
    ]
    assert (s2_run / 'embeddings.parquet').read_bytes() == before


class StopAfter(Callback):
    """Interrupt a predict run after some batches (a crash or a kill)."""

    def __init__(self, batches: int) -> None:
        self.batches = batches

    def on_predict_batch_end(self, *args: Any, **kwargs: Any) -> None:
        self.batches -= 1
        if self.batches == 0:
            raise RuntimeError('interrupted')


def predict(
    source: Path,
    out: Path,
    stride: int = STRIDE,
    callbacks: list[Callback] | None = None,
    **kw: Any,
) -> EmbeddingWriter:
    if callbacks is None:
        callbacks = []
    task = EmbeddingTask(str(source))
    data = EmbeddingDataModule(
        {'s2': RasterDataset(paths=S2)}, patch_size=PATCH, stride=stride, batch_size=5
    )
    writer = EmbeddingWriter(str(out), geotiff=False, **kw)
    trainer = Trainer(
        accelerator='cpu',
        logger=False,
        callbacks=[writer, *callbacks],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.predict(task, data, return_predictions=False)
    return writer


def test_an_interrupted_run_resumes_and_refuses_changed_settings(
    tmp_path: Path, exports: dict[str, Any], s2_run: Path
) -> None:
    source = exports['folder'] / 'tiny_s2_decur.pth'
    with pytest.raises(RuntimeError, match='interrupted'):
        predict(source, tmp_path, callbacks=[StopAfter(3)])
    parts = sorted(os.listdir(tmp_path / '.parts'))
    assert parts == [
        'part-0000000000.parquet',
        'part-0000000005.parquet',
        'part-0000000010.parquet',
        'settings.json',
    ]
    with pytest.raises(
        ValueError, match=r'other settings \(patches: .*stride: 16 -> 32'
    ):
        predict(source, tmp_path, stride=32)
    writer = predict(source, tmp_path)
    total = writer.summary['patches']
    assert writer.summary['written_now'] == total - 15
    resumed = read_embeddings(tmp_path / 'embeddings.parquet').vectors['embedding']
    whole = read_embeddings(s2_run / 'embeddings.parquet').vectors['embedding']
    np.testing.assert_allclose(resumed, whole, atol=1e-6, rtol=0)
    with pytest.raises(FileExistsError, match='pass --overwrite'):
        predict(source, tmp_path)
    assert predict(source, tmp_path, overwrite=True).summary['written_now'] == total


def test_two_modalities_concatenated_or_per_modality(
    tmp_path: Path, exports: dict[str, Any]
) -> None:
    source = exports['folder'] / 'tiny_joint_decur.pth'
    base = ['embed', str(source), '--raster', f's1={S1}', '--raster', f's2={S2}']
    base += ['--patch-size', '24', '--no-progress', '--no-geotiff']
    assert main([base[0], base[1], str(tmp_path / 'cat'), *base[2:]]) == 0
    assert (
        main([base[0], base[1], str(tmp_path / 'sep'), *base[2:], '--fuse', 'separate'])
        == 0
    )
    cat = read_embeddings(tmp_path / 'cat' / 'embeddings.parquet')
    sep = read_embeddings(tmp_path / 'sep' / 'embeddings.parquet')
    assert cat.metadata['modalities'] == ['s1', 's2']
    assert sorted(sep.vectors) == ['embedding_s1', 'embedding_s2']
    joined = np.concatenate(
        [sep.vectors['embedding_s1'], sep.vectors['embedding_s2']], 1
    )
    np.testing.assert_allclose(cat.vectors['embedding'], joined, atol=1e-6, rtol=0)
    # The s2 half is the s2 encoder on s2 windows of the common (S1) grid.
    task = EmbeddingTask(str(source), ['s2'])
    assert torch.equal(
        task.encoders['s2'].state_dict()['conv1.weight'],
        exports['s2'].state_dict()['conv1.weight'],
    )


@pytest.mark.parametrize(
    ('rasters', 'message'),
    [
        ([f's2={S1}'], "modality 's2' of s2: RasterDataset.* has 2 bands"),
        ([f's1={S1}'], r"needs the modalities \['s2'\]; .* has no \['s2'\]"),
    ],
)
def test_data_that_do_not_fit_the_encoder_are_named(
    tmp_path: Path,
    exports: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    rasters: list[str],
    message: str,
) -> None:
    source = exports['folder'] / 'tiny_s2_decur.pth'
    argv = ['embed', str(source), str(tmp_path), '--no-progress']
    for r in rasters:
        argv += ['--raster', r]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith('torchgeo-decur embed: error: ')
    assert __import__('re').search(message, err[0]), err[0]


def test_rasters_without_overlap_are_named(
    tmp_path: Path, exports: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    far = tmp_path / 'far'
    far.mkdir()
    with rasterio.open(os.path.join(S1, 's1_grd.tif')) as src:
        profile = src.profile
        profile['transform'] = src.transform * src.transform.translation(0, 0)
        profile['transform'] = rasterio.Affine(
            src.transform.a, 0, src.transform.c + 5, 0, src.transform.e, src.transform.f
        )
        with rasterio.open(far / 's1.tif', 'w', **profile) as dst:
            dst.write(src.read())
    source = exports['folder'] / 'tiny_joint_decur.pth'
    argv = ['embed', str(source), str(tmp_path / 'out'), '--raster', f's1={far}']
    assert main([*argv, '--raster', f's2={S2}']) == 1
    err = capsys.readouterr().err
    assert "modality 's2'" in err
    assert 'does not overlap' in err


def test_a_released_member_embeds_with_its_own_scaling(
    hub: Path, tmp_path: Path
) -> None:
    member = DeCURResNet50_Weights.SENTINEL1_GRD_SSL4EO_DECUR
    encoder = reference_encoder('resnet50', 2, seed=3)
    write_backbone(member, hub, encoder, 1)
    argv = ['embed', str(member), str(tmp_path), '--raster', f's1={S1}', '--no-geotiff']
    assert main([*argv, '--patch-size', '32', '--stride', '48', '--no-progress']) == 0
    emb = read_embeddings(tmp_path / 'embeddings.parquet')
    assert emb.metadata['encoder'] == str(member)
    assert emb.metadata['scaling']['s1']['transforms'].startswith(str(member))
    data = RasterDataset(paths=S1)
    boxes = emb.frame.geometry.bounds.to_numpy()
    images = torch.stack([data[b[0] : b[2], b[1] : b[3]]['image'] for b in boxes])
    with torch.no_grad():
        want = encoder(member.transforms(images.float())).numpy()
    np.testing.assert_allclose(emb.vectors['embedding'], want, atol=1e-5, rtol=1e-5)


def test_chip_folders_are_embedded_with_keys_and_footprints(
    tmp_path: Path, exports: dict[str, Any]
) -> None:
    source = exports['folder'] / 'tiny_s2_decur.pth'
    chips = os.path.join(DATA, 'chips', 's2')
    argv = ['embed', str(source), str(tmp_path), '--chips', f's2={chips}']
    assert main([*argv, '--no-progress']) == 0
    emb = read_embeddings(tmp_path / 'embeddings.parquet')
    names = sorted(os.listdir(chips))
    assert emb.frame['key'].tolist() == [n[: -len('.tif')] for n in names]
    assert not (tmp_path / 'embeddings.tif').exists()
    with rasterio.open(os.path.join(chips, names[0])) as src:
        bounds = tuple(src.bounds) if src.crs is not None else None
    if bounds is not None:
        np.testing.assert_allclose(emb.frame.geometry.bounds.to_numpy()[0], bounds)


def test_nearest_patches_by_id_and_by_coordinate(
    s2_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = s2_run / 'embeddings.parquet'
    emb = read_embeddings(path)
    v = emb.vectors['embedding'].astype(np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    distance = 1 - v @ v[7]
    distance[7] = np.inf
    found = nearest_patches(path, 4, patch_id=7)
    assert [n.patch_id for n in found] == np.argsort(distance)[:4].tolist()
    np.testing.assert_allclose(
        [n.distance for n in found], np.sort(distance)[:4], atol=1e-9
    )
    box = emb.frame.geometry.iloc[7].bounds
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    assert nearest_patches(path, 4, point=centre) == found
    assert main(['neighbours', str(path), '--id', '7', '-k', '4', '--json']) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [n['patch_id'] for n in printed] == [n.patch_id for n in found]
    assert main(['neighbours', str(path), '--at', '0', '0']) == 1
    assert 'no patch of' in capsys.readouterr().err


def test_the_predict_path_needs_no_command(exports: dict[str, Any]) -> None:
    """EmbeddingTask.predict_step is what Lightning runs (shape check)."""
    task: LightningModule = EmbeddingTask(
        str(exports['folder'] / 'tiny_joint_decur.pth'), fuse='separate'
    )
    batch = {
        'image_s1': torch.zeros(2, 2, 16, 16),
        'image_s2': torch.zeros(2, 13, 16, 16),
        'patch_id': torch.tensor([3, 4]),
        'bounds': torch.zeros(2, 4, dtype=torch.float64),
    }
    with torch.no_grad():
        out = task.predict_step(batch, 0)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        'embedding_s1': (2, 512),
        'embedding_s2': (2, 512),
        'patch_id': (2,),
        'bounds': (2, 4),
    }


def test_a_task_checkpoint_gives_its_encoders_and_recorded_scaling(
    tmp_path: Path, exports: dict[str, Any]
) -> None:
    state = {f'backbones.s1.{k}': v for k, v in exports['s1'].state_dict().items()}
    state |= {f'backbones.s2.{k}': v for k, v in exports['s2'].state_dict().items()}
    ckpt = {
        'epoch': 3,
        'global_step': 30,
        'state_dict': state,
        'hyper_parameters': {'modalities': ['s1', 's2'], 'model': 'resnet18'},
        'datamodule_hyper_parameters': {'statistics': STATS},
    }
    path = tmp_path / 'last.ckpt'
    torch.save(ckpt, path)
    task = EmbeddingTask(str(path), ['s2'])
    assert task.modalities == ['s2']
    assert task.embedding_settings()['scaling']['s2']['std'] == STATS['s2']['std']
    x = torch.rand(2, 13, 32, 32) * 3000
    scale = ClipNormalize(STATS['s2']['mean'], STATS['s2']['std'])
    with torch.no_grad():
        want = exports['s2'](scale(x))
        got = task.embed({'image_s2': x})['embedding']
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    del ckpt['datamodule_hyper_parameters']
    torch.save(ckpt, path)
    with pytest.raises(
        ValueError,
        match=r"records no input scaling for modalities \['s2'\]; pass scaling='none'",
    ):
        EmbeddingTask(str(path), ['s2'])
    # Under the embed command the same message names the command's argument.
    with command_line_options(), pytest.raises(ValueError, match='pass --scaling none'):
        EmbeddingTask(str(path), ['s2'])
    assert EmbeddingTask(str(path), ['s2'], scaling='none').scaling['s2'](x) is x
