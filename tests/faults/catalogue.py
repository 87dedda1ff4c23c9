"""The fault catalogue: every reader x every fault of :mod:`.library` -> an outcome.

A reader entry (:class:`Reader`) copies its tiny fixture, names the file a fault
damages (and the modality it belongs to) and reads everything the way a user's
run would: under ``on_invalid='error'`` and, where the reader has one, under the
skip policy. :func:`outcome` runs one cell and classifies what happened:

* ``error`` - an exception whose message names the damaged file (its path, or
  for a missing file its folder or name) and the modality;
* ``skipped`` - under the skip policy, the run finished and a warning named the
  file;
* ``warned`` - the run finished, values usable, and a warning named the file;
* ``same values`` - the run finished and returned exactly the values of the
  undamaged copy (e.g. another storage type read as float32);
* ``BARE ERROR`` / ``SILENT`` - a library's error without the file, or a run that
  finished with other values and no word: the two outcomes a cell must not have.

``python -m tests.faults.catalogue`` prints the table (a hang fails the test
suite's per-cell timeout).
"""

import glob
import os
import shutil
import sys
import tarfile
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..conftest import DATA
from .library import FAULTS

Load = Callable[[str, str], list[np.ndarray]]

#: Outcomes a cell must never have.
BAD = ('BARE ERROR', 'SILENT')


@dataclass(frozen=True)
class Reader:
    """One reader of the catalogue.

    Attributes:
        name: Row name.
        copy: Copies the fixture under a folder; returns the root to read.
        target: The file a fault damages, given the root.
        modality: The modality that file belongs to (as messages name it).
        load: Reads everything under a policy (``'error'`` or ``'skip'``) and
            returns the values read, in order.
        skip: Whether the reader has a skip policy.
    """

    name: str
    copy: Callable[[Path], str]
    target: Callable[[str], str]
    modality: str
    load: Load
    skip: bool = True


def arrays(samples: list[dict[str, Any]]) -> list[np.ndarray]:
    """The image tensors of samples as float64 arrays, in key order."""
    out = []
    for sample in samples:
        for key in sorted(sample):
            value = sample[key]
            if key.startswith('image') and isinstance(value, torch.Tensor):
                out.append(value.double().numpy())
    return out


# ------------------------------------------------------------------ readers
def _copy(*parts: str) -> Callable[[Path], str]:
    def copy(tmp: Path) -> str:
        root = tmp / 'data'
        shutil.copytree(os.path.join(DATA, *parts), root)
        return str(root)

    return copy


def _ssl4eo_copy(tmp: Path) -> str:
    root = tmp / 'ssl4eo'
    for product in ('s1', 's2c'):
        shutil.copytree(os.path.join(DATA, 'ssl4eo_s12', product), root / product)
    return str(root)


def _ssl4eo_target(root: str) -> str:
    stamp = sorted(Path(root, 's2c', '0000001').iterdir())[0]
    return str(stamp / 'B2.tif')


def _ssl4eo_load(root: str, policy: str) -> list[np.ndarray]:
    from torchgeo_decur.datasets import SSL4EOS12Pairs

    ds = SSL4EOS12Pairs(
        root, size=12, season_mode='fixed', on_invalid=policy, check_files=True
    )
    return arrays([ds[i] for i in range(len(ds))])


def _cache_load(root: str, policy: str) -> list[np.ndarray]:
    from torchgeo_decur.cli.cache_ssl4eo_s12 import write_cache
    from torchgeo_decur.datasets import SSL4EOS12Pairs

    out = os.path.join(os.path.dirname(root), f'cache-{policy}')
    write_cache(root, out, size=12, on_invalid=policy, progress=False)
    ds = SSL4EOS12Pairs(root, size=12, season_mode='fixed', cache=out)
    return arrays([ds[i] for i in range(len(ds))])


def _ben_target(root: str) -> str:
    files = glob.glob(os.path.join(root, '**', '*_B03.tif'), recursive=True)
    return sorted(files)[0]


def _ben_load(version: str) -> Load:
    def load(root: str, policy: str) -> list[np.ndarray]:
        from torchgeo_decur.datasets import BigEarthNetMM, BigEarthNetV2MM

        cls = BigEarthNetMM if version == 'v1' else BigEarthNetV2MM
        samples = []
        for split in ('train', 'val', 'test'):
            ds = cls(root, split, image_size=12)  # type: ignore[arg-type]
            samples += [ds[i] for i in range(len(ds))]
        return arrays(samples)

    return load


def _geonrw_target(root: str) -> str:
    return sorted(glob.glob(os.path.join(root, 'aachen', '*_dem.tif')))[0]


def _geonrw_load(root: str, policy: str) -> list[np.ndarray]:
    from torchgeo_decur.datasets import GeoNRWMM

    samples = []
    for split in ('train', 'test'):
        ds = GeoNRWMM(root, split, tile_size=None)  # type: ignore[arg-type]
        samples += [ds[i] for i in range(len(ds))]
    return arrays(samples)


def _sunrgbd_target(root: str) -> str:
    return os.path.join(root, 'HHA', '000001.png')


def _sunrgbd_load(root: str, policy: str) -> list[np.ndarray]:
    from torchgeo_decur.datasets import SUNRGBD

    ds = SUNRGBD(root, split='all', size=(24, 32), on_invalid=policy)  # type: ignore[arg-type]
    return arrays([ds[i] for i in range(len(ds))])


def _own_copy(tmp: Path) -> str:
    root = tmp / 'own'
    for m in ('s1', 's2'):
        shutil.copytree(os.path.join(DATA, 'own_rasters', m), root / m)
    # A second S2 file over the same ground: the damaged one is one of several.
    shutil.copy(root / 's2' / 's2_l1c.tif', root / 's2' / 's2_l1c_b.tif')
    return str(root)


def _own_load(root: str, policy: str) -> list[np.ndarray]:
    from torchgeo.datasets import RasterDataset

    from torchgeo_decur.datamodules import MultimodalGeoDataModule

    datasets = {m: RasterDataset(paths=os.path.join(root, m)) for m in ('s1', 's2')}
    dm = MultimodalGeoDataModule(
        datasets,
        patch_size=8,
        length=8,
        batch_size=4,
        statistics_patches=8,
        on_invalid=policy,  # type: ignore[arg-type]
    )
    dm.setup('fit')
    return arrays(list(dm.train_dataloader()))


CHIP_PATTERN = {'s1': 'S1_(?P<key>.+)', 's2': '(?P<key>.+)_S2'}


def _chips_copy(tmp: Path) -> str:
    root = tmp / 'chips'
    for m in ('s1', 's2'):
        shutil.copytree(os.path.join(DATA, 'chips', m), root / m)
    # The fixture's unmatched chips are another case (tests/datasets/test_chips.py).
    os.remove(root / 's1' / 'S1_tile_98.tif')
    os.remove(root / 's2' / 'tile_99_S2.tif')
    return str(root)


def _chips(root: str, policy: str) -> Any:
    from torchgeo_decur.datasets import PairedChips

    return PairedChips(
        {m: os.path.join(root, m) for m in ('s1', 's2')},
        pattern=CHIP_PATTERN,
        on_invalid=policy,  # type: ignore[arg-type]
        check_files=True,
    )


def _chips_load(root: str, policy: str) -> list[np.ndarray]:
    ds = _chips(root, policy)
    return arrays([ds[i] for i in range(len(ds))])


def _writer_load(root: str, policy: str) -> list[np.ndarray]:
    from torchgeo_decur.datasets.shards import write_shards
    from torchgeo_decur.datasets.terramesh import TerraMeshStream

    out = os.path.join(os.path.dirname(root), f'shards-{policy}')
    write_shards(_chips(root, policy), out, samples_per_shard=3)
    return arrays(list(TerraMeshStream(out, 'train', ['s1', 's2'], shuffle=False)))


TERRAMESH_SHARD = 'ssl4eos12_shard_000003.tar'


def _terramesh_copy(tmp: Path) -> str:
    root = tmp / 'terramesh'
    for folder in ('S1GRD', 'S2L1C'):
        os.makedirs(root / 'train' / folder)
        for shard in ('ssl4eos12_shard_000003.tar', 'ssl4eos12_shard_000004.tar'):
            shutil.copy(
                os.path.join(DATA, 'terramesh', 'train', folder, shard),
                root / 'train' / folder / shard,
            )
    return str(root)


def _terramesh_load(root: str, policy: str) -> list[np.ndarray]:
    from torchgeo_decur.datasets.terramesh import TerraMeshStream

    ds = TerraMeshStream(
        root,
        'train',
        ['S1GRD', 'S2L1C'],
        shuffle=False,
        on_missing=policy,  # type: ignore[arg-type]
        on_error=policy,  # type: ignore[arg-type]
    )
    return arrays(list(ds))


READERS: dict[str, Reader] = {
    r.name: r
    for r in (
        Reader('ssl4eo-s12', _ssl4eo_copy, _ssl4eo_target, 's2', _ssl4eo_load),
        Reader('ssl4eo-s12 cache', _ssl4eo_copy, _ssl4eo_target, 's2', _cache_load),
        Reader(
            'bigearthnet v1',
            _copy('bigearthnet', 'v1'),
            _ben_target,
            's2',
            _ben_load('v1'),
            skip=False,
        ),
        Reader(
            'bigearthnet v2',
            _copy('bigearthnet', 'v2'),
            _ben_target,
            's2',
            _ben_load('v2'),
            skip=False,
        ),
        Reader(
            'geonrw',
            _copy('geonrw'),
            _geonrw_target,
            'dem',
            _geonrw_load,
            skip=False,
        ),
        Reader('sun rgb-d', _copy('sunrgbd'), _sunrgbd_target, 'HHA', _sunrgbd_load),
        Reader(
            'own rasters',
            _own_copy,
            lambda root: os.path.join(root, 's2', 's2_l1c_b.tif'),
            's2',
            _own_load,
        ),
        Reader(
            'chip folders',
            _chips_copy,
            lambda root: os.path.join(root, 's2', 'tile_03_S2.tif'),
            's2',
            _chips_load,
        ),
        Reader(
            'terramesh shards',
            _terramesh_copy,
            lambda root: os.path.join(root, 'train', 'S2L1C', TERRAMESH_SHARD),
            'S2L1C',
            _terramesh_load,
        ),
        Reader(
            'shards writer',
            _chips_copy,
            lambda root: os.path.join(root, 's2', 'tile_03_S2.tif'),
            's2',
            _writer_load,
        ),
    )
}


# ------------------------------------------------------------ shard faults
def _rewrite_tar(path: str, change: Callable[[np.ndarray], np.ndarray]) -> None:
    """Apply an array fault to the first sample of a TerraMesh shard."""
    from torchgeo_decur.datasets.shards import encode_zarr_zip
    from torchgeo_decur.datasets.terramesh import read_zarr_zip

    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    first, data = members[0]
    sample = read_zarr_zip(data, first.name)
    new = encode_zarr_zip(change(sample.bands))
    first.size = len(new)
    members[0] = (first, new)
    tmp = path + '.tmp'
    with tarfile.open(tmp, 'w') as tar:
        for info, payload in members:
            import io

            tar.addfile(info, io.BytesIO(payload))
    os.replace(tmp, path)


def _shard_fault(name: str) -> Callable[[str], None] | None:
    """The shard version of an array fault (None: the file fault applies)."""

    def band_count(a: np.ndarray) -> np.ndarray:
        return a[:-1]

    def dtype(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float64)

    def nodata(a: np.ndarray) -> np.ndarray:
        return np.zeros_like(a)

    def constant(a: np.ndarray) -> np.ndarray:
        out = a.copy()
        out[0] = 7
        return out

    def nan_inf(a: np.ndarray) -> np.ndarray:
        out = a.astype(np.float32)
        out[0] = np.nan
        out[0, :, :2] = np.inf
        return out

    changes = {
        'wrong-band-count': band_count,
        'mixed-dtypes': dtype,
        'all-nodata': nodata,
        'constant-band': constant,
        'nan-inf': nan_inf,
    }
    if name not in changes:
        return None
    change = changes[name]
    return lambda path: _rewrite_tar(path, change)


# ------------------------------------------------------------------ outcome
def _named(text: str, path: str, fault: str, modality: str) -> bool:
    if path in text:
        return True
    # A whole modality's property (a constant band over all its files, all of
    # its ground nodata) is named by the modality and its folder.
    if f"'{modality}'" in text and os.path.dirname(path) in text:
        return True
    if fault == 'missing-partner':
        stem = os.path.basename(path).split('.')[0]
        return os.path.dirname(path) in text or stem in text
    return False


def _run(reader: Reader, root: str, policy: str) -> tuple[Any, str, str]:
    """(values or exception, warning text, traceback text) of one run."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        try:
            result: Any = reader.load(root, policy)
            tb = ''
        except Exception as err:
            result = err
            tb = ''.join(traceback.format_exception(err))
    text = ' '.join(str(w.message) for w in record)
    return result, text, tb


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and np.array_equal(x, y, equal_nan=True)
        for x, y in zip(a, b, strict=True)
    )


def classify(
    reader: Reader, fault: str, result: Any, text: str, path: str, reference: Any
) -> str:
    """Name the outcome of one run (see the module docstring)."""
    if isinstance(result, Exception):
        message = ' '.join([str(result), *getattr(result, '__notes__', [])])
        if _named(message, path, fault, reader.modality):
            return 'error'
        return f'BARE ERROR ({type(result).__name__}: {message[:80]})'
    if _named(text, path, fault, reader.modality):
        return 'warned'
    if _same(result, reference):
        return 'same values'
    return 'SILENT'


#: Values each reader returns for its undamaged fixture (computed once).
_REFERENCES: dict[str, list[np.ndarray]] = {}


def reference(reader: Reader, tmp: Path) -> list[np.ndarray]:
    """What the reader returns for its undamaged fixture (cached per reader)."""
    if reader.name not in _REFERENCES:
        clean = reader.copy(tmp / 'clean')
        values, _, tb = _run(reader, clean, 'error')
        if isinstance(values, Exception):
            raise AssertionError(f'{reader.name}: the undamaged copy fails:\n{tb}')
        _REFERENCES[reader.name] = values
    return _REFERENCES[reader.name]


def outcome(reader: Reader, fault: str, tmp: Path) -> str:
    """Run one cell: the fault applied to a fresh copy, under each policy.

    Args:
        reader: The reader entry.
        fault: Name in :data:`~tests.faults.library.FAULTS`.
        tmp: An empty folder to work in.

    Returns:
        E.g. ``'error / skip: skipped'``.
    """
    expected = reference(reader, tmp)
    root = reader.copy(tmp / 'damaged')
    path = reader.target(root)
    damage = (
        _shard_fault(fault) if reader.name == 'terramesh shards' else None
    ) or FAULTS[fault]
    damage(path)
    parts = []
    for policy in ('error', 'skip') if reader.skip else ('error',):
        result, text, _ = _run(reader, root, policy)
        name = classify(reader, fault, result, text, path, expected)
        if policy == 'skip' and name == 'warned':
            name = 'skipped'
        parts.append(name if policy == 'error' else f'skip: {name}')
    return ' / '.join(parts)


def table(tmp: Path) -> str:
    """The whole catalogue as a Markdown table (rows: readers, columns: faults)."""
    lines = [
        '| reader | ' + ' | '.join(FAULTS) + ' |',
        '|---' * (len(FAULTS) + 1) + '|',
    ]
    for name, reader in READERS.items():
        cells = []
        for fault in FAULTS:
            cell = tmp / f'{name}-{fault}'.replace(' ', '_')
            try:
                cells.append(outcome(reader, fault, cell))
            except Exception as err:
                cells.append(f'CRASH ({err!r})'[:80])
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


if __name__ == '__main__':
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        print(table(Path(folder)))
    sys.exit(0)

__all__ = ('BAD', 'READERS', 'Reader', 'classify', 'outcome', 'reference', 'table')
