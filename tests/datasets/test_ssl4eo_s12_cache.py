import json
import os
import random
import re
import shutil

import numpy as np
import pytest
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from torchgeo_decur.cli import main
from torchgeo_decur.cli.cache_ssl4eo_s12 import _encode, write_cache
from torchgeo_decur.datamodules import SSL4EOS12PairsDataModule
from torchgeo_decur.datasets import SSL4EOS12Cache, SSL4EOS12Pairs
from torchgeo_decur.datasets.utils import collate_batch_rows
from torchgeo_decur.transforms import ApplyToKeys, Dequantize, ssl4eo_s12_normalization

from ..conftest import DATA, SSL4EO_S12_LOCATIONS

ROOT = os.path.join(DATA, 'ssl4eo_s12')
INVALID = os.path.join(ROOT, 'invalid')
SEEDS = range(4)
DEQUANTIZE = ApplyToKeys({'image_s1': Dequantize(), 'image_s2': Dequantize()})


@pytest.fixture(scope='module')
def caches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = {}
    for encoding in ('raw', 'float32', 'uint8'):
        path = str(tmp_path_factory.mktemp(encoding))
        write_cache(ROOT, path, encoding=encoding, size=24, progress=False)  # type: ignore[arg-type]
        out[encoding] = path
    return out


def seeded(ds: SSL4EOS12Pairs, index: int, seed: int) -> dict[str, Tensor]:
    """Sample ``index`` with the season draws of ``seed``, as a batch of one."""
    random.seed(seed)
    return {k: v[None] for k, v in ds[index].items()}


def same(a: Tensor, b: Tensor) -> bool:
    """Bitwise equality that treats NaN like any other value."""
    return a.dtype == b.dtype and torch.equal(
        a.view(torch.int32) if a.is_floating_point() else a,
        b.view(torch.int32) if b.is_floating_point() else b,
    )


def test_cli_writes_cache_with_progress_bar(
    tmp_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = os.path.join(tmp_path, 'cache')
    args = ['cache-ssl4eo-s12', '--root', ROOT, '--output', out, '--size', '24']
    assert main([*args, '--encoding', 'uint8']) == 0
    captured = capsys.readouterr()
    assert 'Caching SSL4EO-S12 (uint8)' in captured.err  # tqdm progress bar
    assert f'wrote {len(SSL4EO_S12_LOCATIONS)} locations' in captured.out
    with open(os.path.join(out, 'manifest.json')) as f:
        manifest = json.load(f)
    assert manifest['locations'] == {loc: [4, 4] for loc in SSL4EO_S12_LOCATIONS}
    s2 = np.load(os.path.join(out, 's2c', '0000002.npy'), mmap_mode='r')
    assert s2.shape == (4 * 13, 24, 24)
    assert s2.dtype == np.uint8


@pytest.mark.parametrize('encoding', ['raw', 'float32'])
@pytest.mark.parametrize('season_mode', ['random', 'same'])
def test_lossless_cache_gives_identical_samples(
    caches: dict[str, str], encoding: str, season_mode: str
) -> None:
    tiffs = SSL4EOS12Pairs(ROOT, size=24, season_mode=season_mode)  # type: ignore[arg-type]
    cached = SSL4EOS12Pairs(
        ROOT, size=24, season_mode=season_mode, cache=caches[encoding]
    )  # type: ignore[arg-type]
    assert cached.locations == tiffs.locations
    for index in range(len(tiffs)):
        for seed in SEEDS:
            want, got = seeded(tiffs, index, seed), seeded(cached, index, seed)
            for key in want:
                # 'raw' keeps the GeoTIFF types (uint16 DN); 'float32' widens them.
                if encoding == 'raw':
                    assert got[key].dtype == want[key].dtype, key
                assert same(got[key].float(), want[key].float()), (index, seed, key)
            # The fixture's -inf / NaN backscatter survives the cache.
            assert not torch.isfinite(got['image_s1']).all()
            for quantize in (False, True):
                norm = ssl4eo_s12_normalization(quantize=quantize)
                a, b = norm(want), norm(got)
                assert all(torch.equal(a[k], b[k]) for k in a)


def test_uint8_cache_equals_quantised_normalisation(caches: dict[str, str]) -> None:
    tiffs = SSL4EOS12Pairs(ROOT, size=24)
    cached = SSL4EOS12Pairs(ROOT, size=24, cache=caches['uint8'])
    quantised = ssl4eo_s12_normalization(quantize=True)
    continuous = ssl4eo_s12_normalization(quantize=False)
    largest_gap = 0.0
    for index in range(len(tiffs)):
        for seed in SEEDS:
            raw, codes = seeded(tiffs, index, seed), seeded(cached, index, seed)
            assert codes['image_s2'].dtype == torch.uint8
            want, got = quantised(raw), DEQUANTIZE(codes)
            for key in want:
                assert torch.equal(got[key], want[key]), (index, seed, key)
            exact = continuous(raw)
            gap = max((exact[k] - got[k]).abs().max().item() for k in exact)
            largest_gap = max(largest_gap, gap)
    # The documented trade-off: without quantisation the GeoTIFF path keeps
    # detail below one uint8 step that the codes cannot hold.
    assert 0 < largest_gap < 1 / 255


def test_real_sample_cache_is_exact(shared_realdata: str, tmp_path: str) -> None:
    root = os.path.join(shared_realdata, 'ssl4eo-s12-sample')
    tiffs = SSL4EOS12Pairs(root)
    for encoding in ('raw', 'uint8'):
        path = os.path.join(tmp_path, encoding)
        write_cache(root, path, encoding=encoding, progress=False)  # type: ignore[arg-type]
        cached = SSL4EOS12Pairs(root, cache=path)
        for seed in SEEDS:
            raw, stored = seeded(tiffs, 0, seed), seeded(cached, 0, seed)
            if encoding == 'raw':
                assert all(same(stored[k], raw[k]) for k in raw)
                norm = ssl4eo_s12_normalization()
                want, got = norm(raw), norm(stored)
            else:
                want = ssl4eo_s12_normalization(quantize=True)(raw)
                got = DEQUANTIZE(stored)
            assert all(torch.equal(got[k], want[k]) for k in want)


def test_data_module_batches_identical_to_geotiff_path(
    caches: dict[str, str],
) -> None:
    for cache, normalization in (
        (caches['raw'], 'decur'),
        (caches['uint8'], 'decur_uint8'),
    ):
        batches = []
        for source in (None, cache):
            dm = SSL4EOS12PairsDataModule(
                root=ROOT,
                size=24,
                batch_size=3,
                normalization=normalization,  # type: ignore[arg-type]
                cache=source,
            )
            dm.setup('fit')
            torch.manual_seed(1)  # shuffling order
            random.seed(1)  # season draws
            batches.append(dm.aug(next(iter(dm.train_dataloader()))))
        tiffs, cached = batches
        for key in ('image_s1', 'image_s2'):
            assert cached[key].dtype == torch.float32
            assert torch.equal(cached[key], tiffs[key]), (cache, key)


def test_uint8_cache_refuses_settings_it_cannot_reproduce(
    caches: dict[str, str],
) -> None:
    with pytest.raises(ValueError, match="only normalization='decur_uint8'"):
        SSL4EOS12PairsDataModule(root=ROOT, size=24, cache=caches['uint8'])
    with pytest.raises(ValueError, match="normalization='none'"):
        SSL4EOS12PairsDataModule(
            root=ROOT, size=24, cache=caches['uint8'], normalization='none'
        )
    raw = SSL4EOS12PairsDataModule(
        root=ROOT, size=24, cache=caches['raw'], normalization='none'
    )
    # normalization='none' passes raw values through unchanged as float32 (it
    # only warns about non-finite values).
    x = torch.rand(2, 4, 8, 8)
    dn = torch.randint(0, 65536, (2, 26, 8, 8)).to(torch.uint16)
    out = raw.aug({'image_s1': x, 'image_s2': dn})
    assert out['image_s1'] is x
    assert torch.equal(out['image_s2'], dn.to(torch.int32).float())


def test_invalid_locations_follow_dataset_rules(tmp_path: str) -> None:
    with pytest.raises(ValueError, match=r'unpaired SSL4EO-S12 location .0000005.'):
        write_cache(INVALID, os.path.join(tmp_path, 'a'), size=24, progress=False)
    out = os.path.join(tmp_path, 'b')
    with pytest.warns(UserWarning, match='skipping it') as record:
        manifest = write_cache(INVALID, out, size=24, on_invalid='skip', progress=False)
    messages = ' '.join(str(w.message) for w in record)
    assert "lacks band file(s) ['B8A.tif']" in messages
    assert 'has 2 bands' in messages
    assert sorted(manifest['locations']) == ['0000000', '0000001']
    assert sorted(manifest['skipped']) == ['0000005', '0000006', '0000007', '0000008']
    assert not os.path.exists(os.path.join(out, 's1', '0000008.npy'))
    assert len(SSL4EOS12Pairs(INVALID, size=24, cache=out)) == 2
    # Malformed locations abort with on_invalid='error' too.
    shutil.copytree(INVALID, os.path.join(tmp_path, 'paired'))
    for loc in ('0000005', '0000006'):
        for product in ('s1', 's2c'):
            shutil.rmtree(os.path.join(tmp_path, 'paired', product, loc), True)
    with pytest.raises(ValueError, match=r'malformed SSL4EO-S12 location .0000007.'):
        write_cache(
            os.path.join(tmp_path, 'paired'),
            os.path.join(tmp_path, 'c'),
            size=24,
            progress=False,
        )


def test_cli_reports_errors(tmp_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = os.path.join(tmp_path, 'cache')
    status = main(['cache-ssl4eo-s12', '--root', INVALID, '--output', out])
    assert status == 1
    assert '0000005' in capsys.readouterr().err


def test_cache_mismatch_and_damage(caches: dict[str, str], tmp_path: str) -> None:
    with pytest.raises(ValueError, match='size=12'):
        SSL4EOS12Pairs(ROOT, size=12, cache=caches['raw'])
    with pytest.raises(ValueError, match='products'):
        SSL4EOS12Pairs(ROOT, size=24, s2_product='s2a', cache=caches['raw'])
    with pytest.raises(ValueError, match=r'manifest\.json.* not found'):
        SSL4EOS12Pairs(ROOT, size=24, cache=str(tmp_path))

    damaged = os.path.join(tmp_path, 'damaged')
    shutil.copytree(caches['raw'], damaged)
    bad = os.path.join(damaged, 's2c', '0000001.npy')
    np.save(bad, np.zeros((13, 24, 24), np.uint16))  # one timestamp, not four
    ds = SSL4EOS12Pairs(ROOT, size=24, cache=damaged)
    with pytest.raises(
        ValueError, match=r'0000001\.npy.*expected uint16 \(52, 24, 24\)'
    ):
        ds[1]
    truncated = os.path.join(damaged, 's1', '0000003.npy')
    with open(truncated, 'r+b') as f:
        f.truncate(os.path.getsize(truncated) - 10)
    last = SSL4EOS12Pairs(ROOT, size=24, cache=damaged, season_mode='fixed', season=3)
    with pytest.raises(ValueError, match=r'0000003\.npy.* is truncated'):
        last[3]
    with pytest.warns(UserWarning, match='0000001') as record:
        checked = SSL4EOS12Pairs(
            ROOT, size=24, cache=damaged, check_files=True, on_invalid='skip'
        )
    assert 'truncated' in str(record[-1].message)
    assert checked.locations == ['0000000', '0000002']


def test_rerun_only_writes_what_is_missing_or_wrong(tmp_path: str) -> None:
    out = str(tmp_path)
    write_cache(ROOT, out, size=24, progress=False)
    files = {
        p: os.path.join(out, p, f'{loc:07d}.npy')
        for p in ('s1', 's2c')
        for loc in (0, 1)
    }
    stamps = {p: os.stat(f).st_mtime_ns for p, f in files.items()}
    os.remove(os.path.join(out, 's1', '0000003.npy'))
    np.save(os.path.join(out, 's2c', '0000002.npy'), np.zeros((1, 24, 24), np.uint16))
    write_cache(ROOT, out, size=24, progress=False)
    assert {p: os.stat(f).st_mtime_ns for p, f in files.items()} == stamps
    cache = SSL4EOS12Cache(out)
    for loc in ('0000002', '0000003'):
        cache.verify(loc)  # rewritten with the right shape


def test_lossless_encodings_refuse_values_they_cannot_hold() -> None:
    raw = {
        's1': torch.zeros(2, 4, 4),
        's2c': torch.full((13, 4, 4), 1000.5),  # not a whole DN
    }
    with pytest.raises(ValueError, match="encoding='float32'"):
        _encode('raw', raw, 's2c')
    assert _encode('float32', raw, 's2c')['s2c'].dtype == np.float32


def test_cache_keeps_acquisition_order(caches: dict[str, str]) -> None:
    # The fixture's S1 folders mix S1A and S1B, so name order is not date order;
    # season k of the cache is the k-th acquisition, as on the GeoTIFF path.
    for season in range(4):
        kwargs = {'size': 24, 'views': 1, 'season_mode': 'fixed', 'season': season}
        tiffs = SSL4EOS12Pairs(ROOT, **kwargs)  # type: ignore[arg-type]
        cached = SSL4EOS12Pairs(ROOT, cache=caches['raw'], **kwargs)  # type: ignore[arg-type]
        location = tiffs.locations[0]
        stamp = tiffs._timestamps('s1', location)[season]
        want = tiffs._read_timestamp('s1', location, stamp)
        assert same(cached[0]['image_s1'], want)
        assert same(tiffs[0]['image_s1'], want)
    with open(os.path.join(caches['raw'], 'manifest.json')) as f:
        assert json.load(f)['version'] == 2


def copy_cache(source: str, tmp_path: str) -> str:
    path = os.path.join(tmp_path, 'copy')
    shutil.copytree(source, path)
    return path


def edit_manifest(path: str, **changes: object) -> None:
    file = os.path.join(path, 'manifest.json')
    with open(file) as f:
        manifest = json.load(f)
    manifest.update(changes)
    with open(file, 'w') as f:
        json.dump(manifest, f)


def test_version_1_cache_refused_with_rewrite_hint(
    caches: dict[str, str], tmp_path: str
) -> None:
    old = copy_cache(caches['raw'], tmp_path)
    edit_manifest(old, version=1)
    with pytest.raises(ValueError, match=r'version-1 cache.*--overwrite'):
        SSL4EOS12Pairs(ROOT, size=24, cache=old)


def test_broken_manifests_name_the_file(caches: dict[str, str], tmp_path: str) -> None:
    path = copy_cache(caches['raw'], tmp_path)
    manifest = os.path.join(path, 'manifest.json')
    for text in ('{"format": ', '[]', '{"format": "torchgeo_decur/ssl4eo_s12_cache"'):
        with open(manifest, 'w') as f:
            f.write(text)
        with pytest.raises(ValueError, match=re.escape(repr(manifest))):
            SSL4EOS12Pairs(ROOT, size=24, cache=path)
    shutil.copy(os.path.join(caches['raw'], 'manifest.json'), manifest)
    with open(manifest) as f:
        content = json.load(f)
    del content['locations']
    with open(manifest, 'w') as f:
        json.dump(content, f)
    with pytest.raises(ValueError, match=r"lacks entries \['locations'\]"):
        SSL4EOS12Pairs(ROOT, size=24, cache=path)


def test_garbage_npy_header_names_the_file(
    caches: dict[str, str], tmp_path: str
) -> None:
    path = copy_cache(caches['raw'], tmp_path)
    bad = os.path.join(path, 's1', '0000002.npy')
    for garbage in (b'garbage, not an array', b'\x93NUMPY\x01\x00\x10\x00{oops'):
        with open(bad, 'wb') as f:
            f.write(garbage)
        ds = SSL4EOS12Pairs(ROOT, size=24, cache=path)
        with pytest.raises(ValueError, match=re.escape(repr(bad)) + '.*no valid .npy'):
            ds[2]


def test_no_locations_names_the_cache(caches: dict[str, str], tmp_path: str) -> None:
    path = copy_cache(caches['raw'], tmp_path)
    edit_manifest(path, locations={})
    unused_root = os.path.join(tmp_path, 'unused')
    with pytest.raises(ValueError, match=re.escape(repr(path))) as info:
        SSL4EOS12Pairs(unused_root, size=24, cache=path)
    assert unused_root not in str(info.value)


def test_unfinished_cache_says_to_rerun(caches: dict[str, str], tmp_path: str) -> None:
    path = copy_cache(caches['raw'], tmp_path)
    os.replace(os.path.join(path, 'manifest.json'), os.path.join(path, 'writing.json'))
    with pytest.raises(ValueError, match=r'unfinished.*rerun the same'):
        SSL4EOS12Pairs(ROOT, size=24, cache=path)


def float32_in_worker(sample: dict[str, Tensor]) -> dict[str, Tensor]:
    """What the workers returned before native types: every image as float32."""
    return {k: v.float() if v.dtype == torch.uint16 else v for k, v in sample.items()}


@pytest.mark.parametrize(
    ('source', 'normalization'),
    [
        (None, 'decur'),
        (None, 'decur_uint8'),
        (None, 'none'),
        ('raw', 'decur'),
        ('raw', 'decur_uint8'),
        ('raw', 'none'),
        ('uint8', 'decur_uint8'),
    ],
)
def test_native_types_scale_bit_identically(
    caches: dict[str, str], source: str | None, normalization: str
) -> None:
    # Old path: float32 samples from the GeoTIFFs; new path: storage types
    # converted and scaled after the "transfer". One case goes through a worker
    # process (shared memory); the seeds give both loaders the same draws.
    workers = 1 if source == 'raw' and normalization == 'decur_uint8' else 0
    new_dm = SSL4EOS12PairsDataModule(
        root=ROOT,
        size=24,
        batch_size=4,
        num_workers=workers,
        normalization=normalization,  # type: ignore[arg-type]
        cache=None if source is None else caches[source],
    )
    old_dm = SSL4EOS12PairsDataModule(
        root=ROOT,
        size=24,
        batch_size=4,
        num_workers=workers,
        normalization=normalization,  # type: ignore[arg-type]
    )
    batches = []
    for dm, float32 in ((old_dm, True), (new_dm, False)):
        dm.setup('fit')
        if float32:
            dm.dataset.transforms = float32_in_worker
        torch.manual_seed(3)  # shuffling order
        random.seed(3)  # season draws (main process)
        batch = next(iter(dm.train_dataloader()))
        if not float32:
            stored = {'raw': torch.uint16, 'uint8': torch.uint8}.get(
                source or 'raw', torch.uint16
            )
            assert batch['image_s2'].dtype == stored
            assert batch['image_s1'].dtype == (
                torch.uint8 if source == 'uint8' else torch.float32
            )
        batches.append(dm.aug(batch))
    old, new = batches
    for key in ('image_s1', 'image_s2'):
        assert new[key].dtype == torch.float32, key
        assert same(new[key], old[key]), (source, normalization, key)


def bits(x: Tensor) -> Tensor:
    """The tensor's bits as signed integers (exact; CPU torch cannot compare uint16)."""
    return x.view({1: torch.int8, 2: torch.int16, 4: torch.int32}[x.element_size()])


def test_batched_cache_reads_equal_per_sample_reads(caches: dict[str, str]) -> None:
    order = [2, 0, 3, 1]
    for encoding, path in caches.items():
        ds = SSL4EOS12Pairs(ROOT, size=24, cache=path)
        random.seed(5)
        singles = [ds[i] for i in order]
        random.seed(5)  # the same season draws, in the same order
        rows = ds.__getitems__(order)
        batch = collate_batch_rows(rows)
        for key in ('image_s1', 'image_s2'):
            assert batch[key].shape == (len(order), *singles[0][key].shape)
            assert batch[key].dtype == singles[0][key].dtype
            # The batch is the buffer the rows were read into: no second copy.
            assert batch[key].data_ptr() == rows[0][key].data_ptr()
            for row, sample in enumerate(singles):
                assert torch.equal(bits(batch[key][row]), bits(sample[key])), (
                    encoding,
                    key,
                    row,
                )
    # Samples that are not rows of one buffer are stacked as usual.
    stacked = collate_batch_rows(singles)
    for key in ('image_s1', 'image_s2'):
        expected = torch.stack([s[key] for s in singles])
        assert torch.equal(bits(stacked[key]), bits(expected))
        assert stacked[key].data_ptr() != singles[0][key].data_ptr()
    # Rows of any other tensor (e.g. a dataset's preloaded array that happens to
    # be one batch long) are copied: the batch must not alias that memory.
    preloaded = torch.arange(8.0).reshape(4, 2)
    aliased = collate_batch_rows([{'x': preloaded[i]} for i in range(4)])
    assert torch.equal(aliased['x'], preloaded)
    assert aliased['x'].data_ptr() != preloaded.data_ptr()
    # Samples that are not dictionaries are collated as usual too.
    plain = collate_batch_rows([torch.ones(2), torch.zeros(2)])
    assert torch.equal(plain, torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    # A buffer of the wrong type is refused, naming what the product needs.
    ds = SSL4EOS12Pairs(ROOT, size=24, cache=caches['raw'])
    with pytest.raises(ValueError, match='needs uint16'):
        ds.cache.read('s2c', ds.locations[0], [0], out=torch.empty(13, 24, 24))  # type: ignore[union-attr]


def test_batched_cache_reads_through_a_worker(caches: dict[str, str]) -> None:
    # In a worker the batch is assembled in shared memory and sent as it is;
    # the values equal those read one sample at a time in this process.
    ds = SSL4EOS12Pairs(ROOT, size=24, cache=caches['raw'], season_mode='fixed')
    loader = DataLoader(ds, batch_size=4, num_workers=1, collate_fn=collate_batch_rows)
    (batch,) = list(loader)
    for key in ('image_s1', 'image_s2'):
        expected = torch.stack([ds[i][key] for i in range(len(ds))])
        assert batch[key].dtype == expected.dtype
        assert torch.equal(bits(batch[key]), bits(expected)), key
