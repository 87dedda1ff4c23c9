"""benchmarks.compare_methods runs end to end on the real sample data (tiny budget)."""

import json
import math
from pathlib import Path

import pytest
import torch

from benchmarks import compare_methods
from benchmarks.probing import effective_rank, probe, stratified_folds


def test_compare_methods_smoke(
    shared_realdata: str, capsys: pytest.CaptureFixture[str]
) -> None:
    threads = torch.get_num_threads()
    try:
        result = compare_methods.main(
            [
                '--shared-root',
                shared_realdata,
                '--steps',
                '2',
                '--batch-size',
                '4',
                '--window',
                '24',
                '--crop-size',
                '16',
                '--embed-dim',
                '32',
                '--folds',
                '2',
                '--average-last',
                '1',
                '--device',
                'cpu',
                '--threads',
                '1',
            ]
        )
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    assert json.loads(captured.out) == json.loads(json.dumps(result))
    assert '| decur |' in captured.err
    assert set(result['methods']) == set(compare_methods.METHODS)
    assert result['data']['chance_top1'] == pytest.approx(0.1)
    assert '110 images, 10 classes' in result['data']['probe']
    for name, run in result['methods'].items():
        assert math.isfinite(run['loss_first']), name
        assert run['monitors']['std_s2_x_sqrt_k'] > 0, name
        assert isinstance(run['collapsed'], bool)
        assert 0 <= run['eurosat']['knn_top1'] <= 1
        assert 0 <= run['eurosat']['linear_top1'] <= 1
    assert result['methods']['decur']['views_per_modality'] == 2
    assert result['methods']['clip']['views_per_modality'] == 1
    assert 'temperature' in result['methods']['clip']['monitors']
    assert 'common_diag' in result['methods']['decur']['monitors']
    assert 'variance' in result['methods']['vicreg']['monitors']
    assert set(result['baselines']) == {'random_init', 'band_mean_std'}
    assert result['command'].startswith('python -m benchmarks.compare_methods --')


def test_missing_shared_root_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        compare_methods.main(['--shared-root', str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert (
        "lacks ['eurosat-ms-subset', 'ssl4eo-s12-sample', 'bigearthnet-example']" in err
    )


def test_probe_separates_separable_classes_and_not_noise() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(10)
    centres = 5 * torch.randn(4, 16, generator=g)
    separable = centres[labels] + torch.randn(40, 16, generator=g)
    good = probe(separable, labels, folds=5)
    assert good == {'knn_top1': 1.0, 'linear_top1': 1.0}
    noise = probe(torch.randn(40, 16, generator=g), labels, folds=5)
    assert noise['knn_top1'] < 0.6
    assert noise['linear_top1'] < 0.6


def test_folds_partition_and_balance() -> None:
    labels = torch.arange(3).repeat_interleave(7)
    folds = stratified_folds(labels, 3, seed=1)
    assert sorted(torch.cat(folds).tolist()) == list(range(21))
    for f in folds:
        assert set(torch.bincount(labels[f], minlength=3).tolist()) <= {2, 3}
    with pytest.raises(ValueError, match='class 0 has 7 samples, fewer than 8 folds'):
        stratified_folds(labels, 8, seed=0)


def test_effective_rank() -> None:
    g = torch.Generator().manual_seed(0)
    line = torch.randn(50, 1, generator=g) * torch.randn(1, 8, generator=g)
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(torch.ones(10, 4)) == 0.0
    iso = torch.randn(2000, 8, generator=g)
    assert 7.5 < effective_rank(iso) <= 8.0


def test_collapse_verdict() -> None:
    k = 64
    healthy = [
        {'train_loss': 5.0, 'train_std_s1': 1 / math.sqrt(k), 'train_std_s2': 0.9 / 8}
    ] * 3
    collapsed = [{'train_loss': 5.0, 'train_std_s1': 0.5 / 8, 'train_std_s2': 0.0}] * 3
    ok = compare_methods.summarise(healthy, k, last=2)
    assert ok['collapsed'] is False
    assert ok['monitors']['std_s1_x_sqrt_k'] == pytest.approx(1.0)
    # One modality's embeddings constant: collapsed, whatever the other does.
    bad = compare_methods.summarise(collapsed, k, last=2)
    assert bad['collapsed'] is True
    assert bad['monitors']['std_s2_x_sqrt_k'] == 0
