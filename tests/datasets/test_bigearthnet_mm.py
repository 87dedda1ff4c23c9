import glob
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import rasterio
import torch
from torchgeo.datasets import BigEarthNet, DatasetNotFoundError

from torchgeo_decur.datasets import (
    BigEarthNetMM,
    BigEarthNetV2MM,
    pairs_from_s1_metadata,
)
from torchgeo_decur.datasets.bigearthnet_mm import S2_BANDS

from ..conftest import DATA

V1 = os.path.join(DATA, 'bigearthnet', 'v1')
V2 = os.path.join(DATA, 'bigearthnet', 'v2')


def expected_labels(json_path: str, num_classes: int = 19) -> torch.Tensor:
    with open(json_path) as f:
        names = json.load(f)['labels']
    idx = [BigEarthNet.class_sets[43].index(n) for n in names]
    if num_classes == 19:
        idx = [
            BigEarthNet.label_converter[i]
            for i in idx
            if i in BigEarthNet.label_converter
        ]
    target = torch.zeros(num_classes, dtype=torch.long)
    target[idx] = 1
    return target


def test_v1_sample_layout_and_values() -> None:
    ds = BigEarthNetMM(V1, 'train', image_size=12)
    assert len(ds) == 6
    sample = ds[0]
    assert set(sample) == {'image_s1', 'image_s2', 'label'}
    assert sample['image_s1'].shape == (2, 12, 12)
    assert sample['image_s2'].shape == (12, 12, 12)
    assert sample['image_s1'].dtype == torch.float32
    s1_folder, s2_folder = ds.folders[0]['s1'], ds.folders[0]['s2']
    # VV first (torchgeo's sorted glob puts VH first), and dB kept as float (torchgeo
    # reads int32, which truncates backscatter to whole decibels).
    with rasterio.open(glob.glob(os.path.join(s1_folder, '*_VV.tif'))[0]) as src:
        vv = torch.from_numpy(src.read(1))
    assert torch.equal(sample['image_s1'][0], vv)
    assert not torch.equal(vv, vv.trunc())
    # B8A sits after B08 and B10 is absent; 10 m bands are read unchanged.
    assert S2_BANDS.index('B8A') == 8
    with rasterio.open(glob.glob(os.path.join(s2_folder, '*_B04.tif'))[0]) as src:
        assert torch.equal(sample['image_s2'][3], torch.from_numpy(src.read(1)).float())
    label_file = glob.glob(os.path.join(s1_folder, '*_labels_metadata.json'))[0]
    assert torch.equal(sample['label'], expected_labels(label_file))


def test_v1_modalities_classes_and_resampling() -> None:
    s2_only = BigEarthNetMM(V1, 'val', modalities=['s2'])[0]
    assert set(s2_only) == {'image_s2', 'label'}
    assert s2_only['image_s2'].shape == (12, 120, 120)
    s1_only = BigEarthNetMM(V1, 'test', modalities=['s1'], num_classes=43)
    sample = s1_only[1]
    assert set(sample) == {'image_s1', 'label'}
    label_file = glob.glob(os.path.join(s1_only.folders[1]['s1'], '*.json'))[0]
    assert torch.equal(sample['label'], expected_labels(label_file, 43))
    with pytest.raises(ValueError, match='modalities'):
        BigEarthNetMM(V1, modalities=['s1', 's1'])
    with pytest.raises(ValueError, match='modalities'):
        BigEarthNetMM(V1, modalities=['rgb'])  # type: ignore[list-item]


def test_v1_broken_samples_name_the_problem() -> None:
    root = os.path.join(V1, 'invalid')
    train = BigEarthNetMM(root, 'train')
    train[0]
    with pytest.raises(ValueError, match=r'unpaired sample: .* belongs to S2 patch'):
        train[1]
    # Without the check the mismatched pair loads (the user's choice).
    BigEarthNetMM(root, 'train', check_pairs=False)[1]
    with pytest.raises(ValueError, match=r'expected one file \*_B8A.tif'):
        BigEarthNetMM(root, 'val')[0]
    with pytest.raises(ValueError, match='does not exist'):
        BigEarthNetMM(root, 'test')[0]


def test_v1_missing_dataset_and_custom_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        BigEarthNetMM(str(tmp_path))
    message = str(info.value)
    # Every absent path is named: both patch folders and the three split files.
    for name in ('BigEarthNet-S1-v1.0', 'BigEarthNet-v1.0', 'bigearthnet-test.csv'):
        assert os.path.join(str(tmp_path), name) in message
    # Only what is absent: with the S2 folder and the splits present, S1 is named.
    only_s2 = tmp_path / 'only_s2'
    shutil.copytree(os.path.join(V1, 'BigEarthNet-v1.0'), only_s2 / 'BigEarthNet-v1.0')
    for split in ('train', 'val', 'test'):
        (only_s2 / f'bigearthnet-{split}.csv').write_text('')
    with pytest.raises(DatasetNotFoundError) as info:
        BigEarthNetMM(str(only_s2))
    message = str(info.value)
    assert str(only_s2 / 'BigEarthNet-S1-v1.0') in message
    assert repr(str(only_s2 / 'BigEarthNet-v1.0')) not in message
    assert '.csv' not in message
    with pytest.raises(ValueError, match='default folder layout'):
        BigEarthNetMM(str(tmp_path), s1_dir='S1', download=True)
    # Split files elsewhere: a hand-written one-pair train split.
    pairs = pairs_from_s1_metadata(os.path.join(V1, 'BigEarthNet-S1-v1.0'))
    assert len(pairs) == 12
    with open(os.path.join(V1, 'bigearthnet-val.csv')) as f:
        val = [tuple(line.split(',')) for line in f.read().split()]
    assert set(val) <= set(pairs)
    for split in ('train', 'val', 'test'):
        (tmp_path / f'bigearthnet-{split}.csv').write_text(','.join(pairs[5]) + '\n')
    ds = BigEarthNetMM(V1, 'train', split_dir=str(tmp_path), image_size=12)
    assert len(ds) == 1
    assert ds.folders[0]['s2'].endswith(pairs[5][0])


def test_v1_plot() -> None:
    ds = BigEarthNetMM(V1, 'train', image_size=12)
    sample = ds[0]
    sample['prediction'] = sample['label']
    fig = ds.plot(sample, suptitle='x')
    assert len(fig.axes) == 2


def test_v2_layout() -> None:
    # The fixture's real metadata.parquet, read by torchgeo with pyarrow.
    root = Path(V2)
    table = pd.read_parquet(root / 'metadata.parquet', engine='pyarrow')
    ds = BigEarthNetV2MM(str(root), 'val', image_size=12)
    assert len(ds) == 1
    sample = ds[0]
    assert sample['image_s1'].shape == (2, 12, 12)
    assert sample['image_s2'].shape == (12, 12, 12)
    row = table[table['split'] == 'validation'].iloc[0]
    names = BigEarthNet.class_sets[19]
    assert sorted(names[i] for i in torch.nonzero(sample['label']).flatten()) == sorted(
        row['labels']
    )
    s1_folder = ds.patch_folder(0, 's1')
    assert os.path.basename(s1_folder) == row['s1_name']
    with rasterio.open(glob.glob(os.path.join(s1_folder, '*_VV.tif'))[0]) as src:
        assert torch.equal(sample['image_s1'][0], torch.from_numpy(src.read(1)))
    assert set(BigEarthNetV2MM(str(root), 'test', modalities=['s2'])[0]) == {
        'image_s2',
        'label',
    }
    assert len(ds.plot(sample).axes) == 2
    with pytest.raises(ValueError, match='v2 does not support'):
        BigEarthNetV2MM(str(root), num_classes=43)


def test_real_bigearthnet_example_pairs(shared_realdata: str, tmp_path: Path) -> None:
    root = os.path.join(shared_realdata, 'bigearthnet-example')
    s1_dir, s2_dir = 'BigEarthNet-S1-Example', 'BigEarthNet-S2-Example'
    pairs = pairs_from_s1_metadata(os.path.join(root, s1_dir))
    assert len(pairs) == 6
    for split in ('train', 'val', 'test'):
        (tmp_path / f'bigearthnet-{split}.csv').write_text(
            ''.join(f'{s2},{s1}\n' for s2, s1 in pairs)
        )
    ds = BigEarthNetMM(
        root, 'train', s1_dir=s1_dir, s2_dir=s2_dir, split_dir=str(tmp_path)
    )
    assert len(ds) == 6
    for i in range(len(ds)):
        sample = ds[i]
        s1, s2 = sample['image_s1'], sample['image_s2']
        assert s1.shape == (2, 120, 120)
        assert s2.shape == (12, 120, 120)
        assert torch.isfinite(s1).all()
        assert torch.isfinite(s2).all()
        # Real backscatter: dB with fractions, VV brighter than VH on average.
        assert -40 < s1.mean() < 5
        assert s1[0].mean() > s1[1].mean()
        assert not torch.equal(s1, s1.trunc())
        # Real L2A reflectance: DN, the NIR (B08) brighter than blue (B02) over land.
        assert 0 <= s2.min()
        assert s2.max() < 20000
        assert sample['label'].sum() >= 1
        s1_json = glob.glob(os.path.join(ds.folders[i]['s1'], '*.json'))[0]
        assert torch.equal(sample['label'], expected_labels(s1_json))
    nir_over_blue = sum(
        float(ds[i]['image_s2'][7].mean() > ds[i]['image_s2'][1].mean())
        for i in range(len(ds))
    )
    assert nir_over_blue >= 5


def v2_copy(tmp_path: Path, *drop: str) -> Path:
    """Copy the v2 fixture without the named top-level folders."""
    root = tmp_path / 'v2'
    shutil.copytree(V2, root, ignore=shutil.ignore_patterns(*drop))
    return root


def test_v2_needs_only_what_it_reads(tmp_path: Path) -> None:
    # Classification needs no Reference_Maps; S2 alone needs no S1 folder.
    root = v2_copy(tmp_path, 'Reference_Maps', 'BigEarthNet-S1')
    sample = BigEarthNetV2MM(str(root), 'train', modalities=['s2'])[0]
    assert sample['image_s2'].shape == (12, 120, 120)
    with pytest.raises(DatasetNotFoundError, match='BigEarthNet-S1') as info:
        BigEarthNetV2MM(str(root), 'train')
    assert str(root / 'BigEarthNet-S1') in str(info.value)
    assert 'Reference_Maps' not in str(info.value)
    (root / 'metadata.parquet').unlink()
    with pytest.raises(DatasetNotFoundError, match=r'metadata\.parquet'):
        BigEarthNetV2MM(str(root), 'train', modalities=['s2'])


def test_v2_downloaded_archive_parts_are_extracted(tmp_path: Path) -> None:
    import tarfile

    root = v2_copy(tmp_path, 'Reference_Maps')
    archive = tmp_path / 'S2.tar.gz'
    with tarfile.open(archive, 'w:gz') as tar:
        tar.add(root / 'BigEarthNet-S2', arcname='BigEarthNet-S2')
    shutil.rmtree(root / 'BigEarthNet-S2')
    data = archive.read_bytes()
    # torchgeo downloads the archive as parts ...gzaa, ...gzab.
    (root / 'BigEarthNet-S2.tar.gzaa').write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetNotFoundError, match=r'BigEarthNet-S2.tar.gzab'):
        BigEarthNetV2MM(str(root), 'val', modalities=['s2'])
    (root / 'BigEarthNet-S2.tar.gzab').write_bytes(data[len(data) // 2 :])
    ds = BigEarthNetV2MM(str(root), 'val', modalities=['s2'], image_size=12)
    assert (root / 'BigEarthNet-S2').is_dir()
    assert ds[0]['image_s2'].shape == (12, 12, 12)
