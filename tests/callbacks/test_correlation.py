import glob
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from torchgeo_decur import DeCURTask, MultimodalVICRegTask
from torchgeo_decur.callbacks import (
    CorrelationPicture,
    block_average,
    correlation_figure,
    correlation_matrix,
    correlation_panels,
    figure_to_array,
    write_figure_png,
)
from torchgeo_decur.cli import main
from torchgeo_decur.datamodules import SSL4EOS12PairsDataModule

from ..conftest import DATA, ROOT


def red_pixels(image: np.ndarray) -> int:
    """Pixels of the boundary colour (pure red is not in the colour map)."""
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return int(((r > 200) & (g < 60) & (b < 60)).sum())


def embeddings(
    n: int = 64, k: int = 32, seed: int = 0
) -> dict[str, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    shared = torch.randn(n, k, generator=g)
    return {
        's1': [shared + 0.1 * torch.randn(n, k, generator=g) for _ in range(2)],
        's2': [shared + 0.1 * torch.randn(n, k, generator=g) for _ in range(2)],
    }


def test_correlation_matrix_is_the_batch_normalised_cross_correlation() -> None:
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(50, 6, generator=g), torch.randn(50, 4, generator=g)
    c = correlation_matrix(a, b)
    expected = torch.corrcoef(torch.cat([a, b], 1).T)[:6, 6:]
    assert c.shape == (6, 4)
    assert torch.allclose(c, expected, atol=1e-4)
    with pytest.raises(ValueError, match='equal N'):
        correlation_matrix(a, b[:3])


def test_block_average_keeps_means_and_caps_size() -> None:
    m = torch.arange(512 * 512, dtype=torch.float32).reshape(512, 512)
    small = block_average(m, 256)
    assert small.shape == (256, 256)
    assert torch.isclose(small.mean(), m.mean())
    assert small[0, 0] == m[:2, :2].mean()
    uneven = block_average(torch.ones(300, 300), 256)
    assert uneven.shape == (256, 256)
    assert torch.allclose(uneven, torch.ones(1))
    tiny = torch.rand(8, 8)
    assert block_average(tiny, 256) is tiny


def test_figure_marks_the_boundary_only_when_given(tmp_path: Path) -> None:
    emb = embeddings()
    rows = correlation_panels(emb, common_dim=24, max_size=16)
    assert len(rows) == 1
    assert len(rows[0]) == 3
    cross, intra1, intra2 = rows[0]
    assert cross.matrix.shape == (16, 16)
    assert cross.boundary == 12  # 24 of 32 dimensions, drawn at 16 cells
    assert intra1.boundary is None
    assert intra2.boundary is None
    # Strongly shared embeddings: every diagonal is near 1.
    assert torch.diagonal(cross.matrix).mean() > 0.5
    marked = figure_to_array(correlation_figure(emb, common_dim=24, max_size=16))
    plain = figure_to_array(correlation_figure(emb, common_dim=None, max_size=16))
    assert marked.dtype == np.uint8
    assert marked.ndim == 3
    assert marked.shape[2] == 3
    assert red_pixels(plain) == 0
    assert red_pixels(marked) > 50
    with pytest.raises(ValueError, match='outside'):
        correlation_panels(emb, common_dim=33)


def test_one_row_per_modality_pair() -> None:
    g = torch.Generator().manual_seed(0)
    emb = {m: [torch.randn(20, 8, generator=g)] for m in ('s1', 's2', 'dem')}
    rows = correlation_panels(emb, common_dim=4)
    assert [[p.title.split('\n')[0] for p in row] for row in rows] == [
        ['s1 x s2 (view 1)', 's1 x s1', 's2 x s2'],
        ['s1 x dem (view 1)', 's1 x s1', 'dem x dem'],
        ['s2 x dem (view 1)', 's2 x s2', 'dem x dem'],
    ]
    three = figure_to_array(correlation_figure(emb, common_dim=4))
    two = figure_to_array(correlation_figure({'s1': emb['s1'], 's2': emb['s2']}))
    assert three.shape[0] > 2 * two.shape[0]  # one row of panels per pair


def test_write_png_is_atomic_and_refuses_overwrite(tmp_path: Path) -> None:
    path = tmp_path / 'picture.png'
    figure = correlation_figure(embeddings(), common_dim=24)
    write_figure_png(figure, path)
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r'picture\.png'):
        write_figure_png(figure, path)
    assert path.read_bytes() == before
    write_figure_png(correlation_figure(embeddings(seed=5)), path, overwrite=True)
    assert path.read_bytes() != before
    assert os.listdir(tmp_path) == ['picture.png']  # no temporary file left
    with pytest.raises(FileNotFoundError, match='does not exist'):
        write_figure_png(figure, tmp_path / 'missing' / 'x.png')


def test_logged_to_tensorboard_and_changes_with_training(tmp_path: Path) -> None:
    dm = SSL4EOS12PairsDataModule(
        root=os.path.join(DATA, 'ssl4eo_s12'), size=24, batch_size=4
    )
    torch.manual_seed(0)
    task = DeCURTask(
        model='resnet18', projector_dims=[32, 32], common_dim=24, crop_size=24, lr=1e-3
    )
    picture = CorrelationPicture(max_size=16)
    trainer = Trainer(
        accelerator='cpu',
        max_epochs=2,
        logger=[
            TensorBoardLogger(tmp_path, name='tb'),
            CSVLogger(tmp_path, name='csv'),
        ],
        callbacks=[picture],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(task, dm, verbose=False)
    assert picture.last_image is not None
    untrained, untrained_cross = picture.last_image, picture.last_panels[0][0]
    trainer.fit(task, dm)
    trained, trained_cross = picture.last_image, picture.last_panels[0][0]
    assert trained.shape == untrained.shape
    assert trained.shape[2] == 3
    assert red_pixels(trained) > 50  # the common/unique boundary is drawn
    assert trained_cross.boundary == 12
    assert trained_cross.matrix.shape == (16, 16)
    assert not torch.allclose(trained_cross.matrix, untrained_cross.matrix, atol=1e-3)
    assert np.abs(trained.astype(int) - untrained.astype(int)).mean() > 1

    # TensorBoard holds one image per validation run (validate + 2 epochs).
    (run,) = glob.glob(str(tmp_path / 'tb' / 'version_*'))
    acc = EventAccumulator(run, size_guidance={'images': 0})
    acc.Reload()
    images = acc.Images('correlation')
    assert len(images) == 3
    assert (images[-1].height, images[-1].width) == trained.shape[:2]


def test_baseline_picture_has_no_boundary(tmp_path: Path) -> None:
    dm = SSL4EOS12PairsDataModule(
        root=os.path.join(DATA, 'ssl4eo_s12'), size=24, batch_size=4, views=1
    )
    task = MultimodalVICRegTask(model='resnet18', projector_dims=[16, 16], crop_size=24)
    picture = CorrelationPicture()
    trainer = Trainer(
        accelerator='cpu',
        logger=False,
        callbacks=[picture],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(task, dm, verbose=False)
    assert picture.last_image is not None
    assert red_pixels(picture.last_image) == 0
    titles = [p.title.split('\n')[0] for p in picture.last_panels[0]]
    assert titles == ['s1 x s2 (view 1)', 's1 x s1', 's2 x s2']


def test_picture_subcommand_from_a_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = Path(ROOT, 'tests', 'conf', 'decur_ssl4eo_s12.yaml').read_text()
    config = tmp_path / 'run.yaml'
    config.write_text(text.replace('tests/data/ssl4eo_s12', f'{DATA}/ssl4eo_s12'))
    task = DeCURTask(
        model='resnet18', projector_dims=[64, 64], common_dim=56, crop_size=32
    )
    trainer = Trainer(accelerator='cpu', logger=False, max_epochs=0)
    trainer.strategy.connect(task)
    checkpoint = tmp_path / 'task.ckpt'
    trainer.save_checkpoint(checkpoint)
    out = tmp_path / 'picture.png'
    args = ['picture', str(checkpoint), str(out), '--config', str(config)]
    assert main([*args, '--max-size', '32']) == 0
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert capsys.readouterr().out.strip() == str(out)
    # An existing picture is kept unless --overwrite.
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith('torchgeo-decur picture: error: ')
    assert 'exists' in err[0]
    assert (
        main(
            [
                'picture',
                str(tmp_path / 'none.ckpt'),
                str(tmp_path / 'x.png'),
                '--config',
                str(config),
            ]
        )
        == 1
    )
    assert 'none.ckpt' in capsys.readouterr().err
