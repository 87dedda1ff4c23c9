"""The benchmark scripts run and print well-formed JSON (tiny settings)."""

import json
import os
import shutil
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import DATA, SSL4EO_S12_LOCATIONS


def test_train_step_benchmark(run_benchmark: Callable[..., dict[str, Any]]) -> None:
    result = run_benchmark(
        'benchmarks.train_step',
        '--model',
        'resnet18',
        '--batch-size',
        '4',
        '--size',
        '32',
        '--input-size',
        '40',
        '--projector-dims',
        '64',
        '64',
        '--warmup',
        '1',
        '--steps',
        '1',
        '--device',
        'cpu',
        '--variants',
        'fp32',
        'bf16+cl',
        '--verify-steps',
        '2',
    )
    assert result['benchmark'] == 'train_step'
    assert result['baseline'] == 'fp32'
    assert result['peak_rss_increase_mib'] >= 0
    fp32, fast = result['variants']['fp32'], result['variants']['bf16+cl']
    assert fp32['samples_per_second'] > 0
    assert fast['precision'] == 'bf16'
    assert fast['channels_last'] is True
    assert len(fast['losses']) == 2
    assert fp32['max_rel_loss_diff_vs_baseline'] == 0
    assert 0 < fast['max_rel_loss_diff_vs_baseline'] < 0.05


def test_data_loading_benchmark(run_benchmark: Callable[..., dict[str, Any]]) -> None:
    result = run_benchmark(
        'benchmarks.data_loading',
        '--root',
        os.path.join(DATA, 'ssl4eo_s12'),
        '--size',
        '24',
        '--samples',
        '8',
        '--cache-samples',
        '8',
        '--batch-size',
        '4',
        '--repeats',
        '1',
        '--write-cache',
        'raw',
        'uint8',
        '--floor',
        '--float32-baseline',
    )
    assert result['locations'] == len(SSL4EO_S12_LOCATIONS)
    assert set(result['paths']) == {
        'geotiff',
        'geotiff+float32',
        'cache:raw',
        'cache:raw+float32',
        'cache:uint8',
        'floor:cache:raw',
        'floor:cache:raw+float32',
        'floor:cache:uint8',
        'floor-distinct:cache:raw',
        'floor-distinct:cache:uint8',
    }
    for path in result['paths'].values():
        assert path['samples'] == 8
        assert path['samples_per_second'] > 0
        assert path['cpu_seconds_per_sample'] > 0
    assert result['paths']['cache:uint8']['write_seconds'] > 0
    bandwidth = result['copy_bandwidth']
    assert set(bandwidth) == {'memcpy_gb_per_s', 'file_read_gb_per_s'}
    assert all(0 < rate < float('inf') for rate in bandwidth.values())
    assert result['speedup_vs_geotiff']['cache:uint8'] > 0
    # Storage types vs the float32 baseline; floors load what their path loads.
    dtypes = result['dtypes']
    assert dtypes['geotiff']['image_s2'] == 'torch.uint16'
    assert dtypes['cache:raw+float32']['image_s2'] == 'torch.float32'
    assert dtypes['floor:cache:uint8'] == dtypes['cache:uint8']
    assert dtypes['floor:cache:uint8']['image_s1'] == 'torch.uint8'
    assert dtypes['floor-distinct:cache:uint8'] == dtypes['cache:uint8']
    assert result['targets']['uint8_vs_floor']['ratio_to_distinct_floor'] > 0
    assert set(result['targets']) == {
        'raw_vs_geotiff',
        'raw_vs_geotiff+float32',
        'uint8_vs_floor',
    }


def test_streaming_benchmark(run_benchmark: Callable[..., dict[str, Any]]) -> None:
    # fmt: off
    result = run_benchmark(
        'benchmarks.streaming', '--root', os.path.join(DATA, 'ssl4eo_s12'),
        '--size', '24', '--samples', '8', '--batch-size', '4', '--repeats', '1',
        '--shard-samples', '8', '--samples-per-shard', '4',
    )
    # fmt: on
    assert set(result['paths']) == {'cache:raw', 'shards:zstd'}
    for path in result['paths'].values():
        assert path['samples'] == 8
        assert path['samples_per_second'] > 0
        assert path['write_seconds'] > 0
    assert result['paths']['shards:zstd']['bytes_per_sample'] > 0
    assert result['cpu_ratio_vs_cache']['shards:zstd'] > 0


def test_decur_loss_benchmark(run_benchmark: Callable[..., dict[str, Any]]) -> None:
    result = run_benchmark(
        'benchmarks.decur_loss',
        '--device',
        'cpu',
        '--k',
        '32',
        '--n',
        '8',
        '--methods',
        'reference',
        'gram',
        '--repeats',
        '1',
        '--in-process',
    )
    (row,) = result['results']
    assert row['n'] == 8
    for method in ('reference', 'gram'):
        assert row[method]['seconds_median'] > 0
        assert 'peak_memory_mib' in row[method]
    assert row['gram']['speedup_vs_reference'] > 0
    # The equality check covers every method against the K x K transcription.
    for method in ('direct', 'gram', 'auto'):
        check = row['check'][method]
        assert check['values_equal'], (method, check)
        assert check['grads_equal'], (method, check)


def test_step_breakdown_benchmark(
    run_benchmark: Callable[..., dict[str, Any]], tmp_path: Any
) -> None:
    output = tmp_path / 'breakdown.json'
    # fmt: off
    result = run_benchmark(
        'benchmarks.step_breakdown', '--device', 'cpu', '--model', 'resnet18',
        '--batch-size', '2', '--crop', '32', '--input-size', '40',
        '--projector-dims', '32', '32', '--warmup', '1', '--steps', '2',
        '--data', 'ssl4eo', '--root', os.path.join(DATA, 'ssl4eo_s12'),
        '--output', str(output), '--threads', '1',
    )
    # fmt: on
    assert result['benchmark'] == 'step_breakdown'
    assert json.loads(output.read_text()) == result
    phases = result['phases']
    expected = {
        'data_wait', 'h2d', 'normalize', 'augment_s1', 'augment_s2',
        'augment_other', 'forward', 'loss', 'backward', 'optimizer',
        'unaccounted', 'total',
    }  # fmt: skip
    assert set(phases) == expected
    total = phases['total']['mean_ms']
    timed = [k for k in expected if k not in ('total', 'unaccounted')]
    assert abs(sum(phases[k]['mean_ms'] for k in timed) - total) <= 0.05 * total
    for name in ('data_wait', 'augment_s1', 'augment_s2', 'forward', 'backward'):
        assert phases[name]['mean_ms'] > 0, name
    # Every operation of both pipelines is timed: crop, flips, photometric ops.
    ops = result['augment_ops_mean_ms']
    assert {'s1/RandomResizedCrop', 's2/RandomSolarize', 's1/RandomGaussianBlur'} <= (
        set(ops)
    )
    s2_ops = sum(v for k, v in ops.items() if k.startswith('s2/'))
    assert abs(s2_ops - phases['augment_s2']['mean_ms']) < 1e-6
    assert 0 < result['augment_share_of_step'] < 1
    assert result['in_channels'] == {'s1': 2, 's2': 13}


def test_gpu_decur_vs_reference_tiny(
    run_benchmark: Callable[..., dict[str, Any]], tmp_path: Any
) -> None:
    output = tmp_path / 'gpu.json'
    result = run_benchmark(
        'benchmarks.gpu_decur_vs_reference',
        '--device',
        'cpu',
        '--tiny',
        '--threads',
        '1',
        '--output',
        str(output),
    )
    assert json.loads(output.read_text()) == result
    assert result['config']['model'] == 'resnet18'
    for variant in ('ours', 'reference'):
        measured = result['variants'][variant]
        assert measured['throughput']['samples_per_second'] > 0
        assert 0 <= measured['throughput']['data_wait_share'] <= 1
        # A CPU raises no out-of-memory error: the search stops at the cap.
        search = measured['max_batch']
        assert search['largest_fitting'] == result['config']['max_batch']
        assert search['reached_cap'] is True
    assert result['speedup_ours_vs_reference'] > 0


def test_largest_fitting_search() -> None:
    import torch

    from benchmarks.gpu_decur_vs_reference import largest_fitting, out_of_memory

    assert out_of_memory(torch.cuda.OutOfMemoryError('CUDA out of memory'))
    assert out_of_memory(RuntimeError('CUBLAS_STATUS_ALLOC_FAILED when calling'))
    assert not out_of_memory(RuntimeError('mat1 and mat2 shapes cannot be multiplied'))

    tried: list[int] = []

    def fits(n: int) -> bool:
        tried.append(n)
        return n <= 300

    found = largest_fitting(fits, 64, 4096, 32, budget_s=1e9)
    assert tried[:4] == [64, 128, 256, 512]  # doubling up to the first failure
    assert 300 - 32 < found['largest_fitting'] <= 300
    assert 300 < found['smallest_failing'] <= found['largest_fitting'] + 32
    assert found['reached_cap'] is False
    assert found['probes']['512'] is False
    # Nothing fits; everything fits up to the cap.
    assert largest_fitting(lambda n: False, 8, 64, 1, 1e9)['largest_fitting'] == 0
    capped = largest_fitting(lambda n: True, 8, 100, 1, 1e9)
    assert capped['largest_fitting'] == 100
    assert capped['reached_cap'] is True
    assert capped['smallest_failing'] is None
    # Out of time after the first probe: the bracket found so far.
    ticks = iter(range(100))
    timed = largest_fitting(lambda n: True, 8, 1024, 1, 0.5, clock=lambda: next(ticks))
    assert timed['out_of_budget'] is True
    assert timed['largest_fitting'] == 8


def test_step_breakdown_crop_mode_keeps_the_crops() -> None:
    """Kornia's batched crop mode draws the same boxes; pixels differ by rounding."""
    import torch

    from benchmarks.step_breakdown import set_crop_mode
    from torchgeo_decur import DeCURTask

    task = DeCURTask(model='resnet18', projector_dims=[8], common_dim=4, crop_size=16)
    crop = task.augmentation('s2').geometric[0]
    x = torch.rand(6, 13, 24, 24)
    torch.manual_seed(0)
    sliced = crop(x)
    boxes = crop._params['src'].clone()
    set_crop_mode(task, 'resample')
    assert crop.flags['cropping_mode'] == 'resample'
    torch.manual_seed(0)
    resampled = crop(x)
    assert torch.equal(crop._params['src'], boxes)
    assert resampled.shape == sliced.shape == (6, 13, 16, 16)
    torch.testing.assert_close(resampled, sliced, rtol=0, atol=1e-4)


def test_quickstart_curve_from_a_csv_log(tmp_path: Any) -> None:
    from benchmarks.quickstart_picture import main, read_log

    # A CSVLogger layout: train_loss every step, val_* once per epoch, and the
    # learning-rate monitor's rows, which have a step but no epoch.
    log = tmp_path / 'run' / 'csv' / 'version_0'
    log.mkdir(parents=True)
    rows = ['epoch,step,train_loss,val_loss,val_std_s1,val_std_s2']
    train = {0: (10.0, 8.0), 1: (6.0, 5.0), 2: (4.0, 3.0)}
    val = {0: 9.0, 1: 6.5, 2: 4.5}
    step = 0
    for epoch, losses in train.items():
        rows.append(f',{step},,,,')
        for loss in losses:
            rows.append(f'{epoch},{step},{loss},,,')
            step += 1
        rows.append(f'{epoch},{step - 1},,{val[epoch]},0.08,0.07')
    (log / 'metrics.csv').write_text('\n'.join(rows) + '\n')
    # An older version of the log is ignored.
    (tmp_path / 'run' / 'csv' / 'version_10').mkdir()
    (tmp_path / 'run' / 'csv' / 'version_10' / 'metrics.csv').write_text(
        '\n'.join(rows).replace('9.0,', '99.0,') + '\n'
    )
    (tmp_path / 'run' / 'csv' / 'version_2').mkdir()
    (tmp_path / 'run' / 'csv' / 'version_2' / 'metrics.csv').write_text(
        'epoch,step,train_loss\n0,0,1.0\n'
    )
    parsed = read_log(str(tmp_path / 'run' / 'csv'))
    assert parsed['train_loss'] == {e: sum(v) / len(v) for e, v in train.items()}
    assert parsed['val_loss'] == {0: 99.0, 1: 6.5, 2: 4.5}  # version_10 is newest
    assert parsed['val_std_s1'] == dict.fromkeys(val, 0.08)

    shutil.rmtree(tmp_path / 'run' / 'csv' / 'version_10')
    shutil.rmtree(tmp_path / 'run' / 'csv' / 'version_2')
    png, result = tmp_path / 'loss.png', tmp_path / 'quickstart.json'
    args = [
        f'--output-dir={tmp_path / "run"}',
        f'--loss={png}',
        '--correlation=',
        f'--json={result}',
    ]
    assert main(args) == 0
    assert png.read_bytes().startswith(b'\x89PNG')
    written = json.loads(result.read_text())
    assert written['per_epoch']['val_loss'] == {str(e): v for e, v in val.items()}
    assert written['summary']['val_loss_change'] == val[2] / val[0] - 1
    assert 'fit_time' not in written  # only with --run
    # Existing outputs are kept unless --overwrite.
    before = png.read_bytes()
    with pytest.raises(SystemExit, match='2'):
        main(args)
    assert png.read_bytes() == before
    assert main([*args, '--overwrite']) == 0


def test_s2_harmonization_benchmark(
    run_benchmark: Callable[..., dict[str, Any]],
) -> None:
    root = os.path.join(DATA, 'ssl4eo_s12')
    result = run_benchmark(
        'benchmarks.s2_harmonization', '--root', root, '--size', '24'
    )
    assert result['benchmark'] == 's2_harmonization'
    assert result['samples'] == len(SSL4EO_S12_LOCATIONS)
    means = result['mean_input']
    # The offset makes every band brighter; harmonized it is the pre-offset input.
    assert means['after'] == means['reference']
    assert means['before'] > means['after'] + 0.05
    per_band = result['mean_input_per_band']
    assert all(
        b > a for b, a in zip(per_band['before'], per_band['after'], strict=True)
    )
    assert result['max_abs_dn_difference_after_vs_reference'] == 0.0
