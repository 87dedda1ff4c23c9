"""BigEarthNet-MM: paired Sentinel-1 / Sentinel-2 patches with 19 (or 43) labels.

Thin layers over torchgeo's :class:`~torchgeo.datasets.BigEarthNet` (v1 layout) and
:class:`~torchgeo.datasets.BigEarthNetV2` that keep their layouts, splits, label
tables and downloads but return one tensor per modality, as the multimodal tasks
need. Two reader differences, both deliberate:

* bands are read by name (``*_VV.tif``, ``*_B8A.tif``, ...) in a fixed order, so a
  missing or duplicated band file is an error naming it instead of a silently
  shorter tensor, and Sentinel-1 comes as (VV, VH) (torchgeo's sorted glob gives
  VH first);
* values are read as float32; torchgeo reads with ``out_dtype='int32'``, which
  truncates Sentinel-1 backscatter (dB) to whole decibels.
"""

import glob
import json
import os
import shutil
from collections.abc import Callable, Sequence
from typing import Any, Literal, cast

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor
from torchgeo.datasets import BigEarthNet, BigEarthNetV2, DatasetNotFoundError
from torchgeo.datasets.utils import Path, Sample

from .rasters import read_band
from .utils import distinct_subset

#: Sentinel-1 band order of the samples (and of the DeCUR checkpoints).
S1_BANDS = ('VV', 'VH')
#: The 12 Sentinel-2 L2A bands of BigEarthNet, in the order of the samples (the
#: L1C order of the checkpoints without B10, which BigEarthNet does not have).
S2_BANDS = (
    'B01',
    'B02',
    'B03',
    'B04',
    'B05',
    'B06',
    'B07',
    'B08',
    'B8A',
    'B09',
    'B11',
    'B12',
)
BANDS = {'s1': S1_BANDS, 's2': S2_BANDS}

Modality = Literal['s1', 's2']


def check_modalities(modalities: Sequence[str]) -> tuple[Modality, ...]:
    """Validate a BigEarthNet modality list (non-empty, distinct, s1/s2 only)."""
    mods = distinct_subset(modalities, ('s1', 's2'))
    return cast(tuple[Modality, ...], mods)


def read_bands(folder: str, bands: Sequence[str], size: int) -> Tensor:
    """Read single-band GeoTIFFs named ``*_<band>.tif`` from one patch folder.

    Args:
        folder: Patch directory.
        bands: Band names, in output order.
        size: Output height and width; bands on coarser grids (20 m, 60 m) are
            resampled bilinearly, like torchgeo does.

    Returns:
        Float32 tensor of shape (len(bands), size, size) in the file units.

    Raises:
        ValueError: If the folder is missing, a band has no or several files, or a
            file holds more than one band, is corrupt or cannot be read (a
            :class:`~torchgeo_decur.datasets.rasters.RasterReadError` naming it).
    """
    if not os.path.isdir(folder):
        raise ValueError(f'patch folder {folder!r} does not exist (unpaired sample?)')
    arrays = []
    for band in bands:
        matches = glob.glob(os.path.join(glob.escape(folder), f'*_{band}.tif'))
        if len(matches) != 1:
            raise ValueError(
                f'expected one file *_{band}.tif in {folder!r}, found {len(matches)}'
            )
        arrays.append(
            read_band(matches[0], (size, size), where=f'BigEarthNet band {band}')
        )
    return torch.from_numpy(np.stack(arrays, axis=0))


def metadata_path(folder: str) -> str:
    """Path of the ``*_labels_metadata.json`` of a BigEarthNet v1 patch folder.

    Raises:
        ValueError: If there is not exactly one such file.
    """
    matches = glob.glob(os.path.join(glob.escape(folder), '*_labels_metadata.json'))
    if len(matches) != 1:
        raise ValueError(
            f'expected one *_labels_metadata.json in {folder!r}, found {len(matches)}'
        )
    return matches[0]


def pairs_from_s1_metadata(s1_root: Path) -> list[tuple[str, str]]:
    """Pair every Sentinel-1 patch under ``s1_root`` with its Sentinel-2 patch.

    BigEarthNet v1 Sentinel-1 label files name their partner
    (``corresponding_s2_patch``). Use this to write a split file (``S2,S1`` lines,
    torchgeo's format) for a folder without one, such as the BigEarthNet example
    archives.

    Args:
        s1_root: Directory holding the Sentinel-1 patch folders.

    Returns:
        Sorted ``(s2_patch, s1_patch)`` names.

    Raises:
        ValueError: If a label file lacks ``corresponding_s2_patch``.
    """
    pairs = []
    for folder in sorted(glob.glob(os.path.join(glob.escape(str(s1_root)), '*', ''))):
        folder = folder.rstrip(os.sep)
        with open(metadata_path(folder)) as f:
            meta = json.load(f)
        if 'corresponding_s2_patch' not in meta:
            raise ValueError(f'{folder!r}: label file names no corresponding_s2_patch')
        pairs.append((str(meta['corresponding_s2_patch']), os.path.basename(folder)))
    return sorted(pairs)


def _stretch(x: Tensor) -> 'np.typing.NDArray[np.float32]':
    """Per-channel 2-98 % stretch of (C, H, W) to an (H, W, C) array in [0, 1]."""
    a = x.detach().float().cpu().numpy()
    lo = np.nanpercentile(a, 2, axis=(1, 2), keepdims=True)
    hi = np.nanpercentile(a, 98, axis=(1, 2), keepdims=True)
    out = np.clip((a - lo) / np.maximum(hi - lo, 1e-6), 0, 1)
    return cast('np.typing.NDArray[np.float32]', np.moveaxis(out, 0, -1))


class _BigEarthNetPlot:
    """Plotting shared by the BigEarthNet-MM datasets (raw or normalised samples)."""

    def class_names(self) -> Sequence[str]:
        """Names of the label classes, in label order."""
        raise NotImplementedError

    def plot(
        self,
        sample: Sample,
        show_titles: bool = True,
        suptitle: str | None = None,
    ) -> Figure:
        """Plot S2 true colour and/or S1 VV with the labels (and predictions).

        ``image`` (single-modality key) is shown as S2 with 12+ channels, else as S1.

        Args:
            sample: A sample or an unbound batch element.
            show_titles: Unused; titles are always shown.
            suptitle: Optional figure title.

        Returns:
            The figure.
        """
        classes = self.class_names()
        images = {k: v for k, v in sample.items() if k.startswith('image')}
        fig, axes = plt.subplots(1, len(images), figsize=(4 * len(images), 4))
        axes = np.atleast_1d(axes)
        for ax, image in zip(axes, images.values(), strict=True):
            if image.shape[0] >= 12:
                ax.imshow(_stretch(image[[3, 2, 1]]))
                ax.set_title('Sentinel-2 (B4, B3, B2)')
            else:
                ax.imshow(_stretch(image[:1])[..., 0], cmap='gray')
                ax.set_title('Sentinel-1 VV')
            ax.axis('off')
        names = [classes[i] for i in torch.nonzero(sample['label']).flatten()]
        title = 'Labels: ' + ', '.join(names)
        if 'prediction' in sample:
            pred = [classes[i] for i in torch.nonzero(sample['prediction']).flatten()]
            title += '\nPredictions: ' + ', '.join(pred)
        fig.suptitle(title if suptitle is None else f'{suptitle}\n{title}', fontsize=8)
        return fig


class BigEarthNetMM(_BigEarthNetPlot, BigEarthNet):
    """BigEarthNet v1 with one tensor per modality.

    Samples: ``image_s1`` (2, S, S) backscatter in dB (VV, VH), ``image_s2``
    (12, S, S) L2A reflectance DN (B01-B09, B8A after B08, B11, B12; no B10) and
    ``label`` (num_classes,) multi-hot, where S = ``image_size``. Only the requested
    modalities are read. Splits come from torchgeo's split files
    (``bigearthnet-{train,val,test}.csv``, lines ``S2 patch,S1 patch``).

    The folder names default to the v1 archives (``BigEarthNet-S1-v1.0``,
    ``BigEarthNet-v1.0``) and can be changed, e.g. to the ``*-Example`` folders of
    the BigEarthNet example archives; split files may live elsewhere
    (``split_dir``). With both modalities the Sentinel-1 label file's
    ``corresponding_s2_patch`` is checked against the paired Sentinel-2 folder.
    """

    def __init__(
        self,
        root: Path = 'data',
        split: Literal['train', 'val', 'test'] = 'train',
        modalities: Sequence[Modality] = ('s1', 's2'),
        num_classes: int = 19,
        image_size: int = 120,
        s1_dir: str | None = None,
        s2_dir: str | None = None,
        split_dir: Path | None = None,
        check_pairs: bool = True,
        transforms: Callable[[Sample], Sample] | None = None,
        download: bool = False,
        checksum: bool = False,
    ) -> None:
        """Initialize a new BigEarthNetMM instance.

        Args:
            root: Directory holding the two patch folders (and the split files).
            split: ``'train'``, ``'val'`` or ``'test'``.
            modalities: Which of ``'s1'`` and ``'s2'`` to load.
            num_classes: 19 (the BigEarthNet-19 nomenclature) or 43.
            image_size: Side length every band is resampled to, in pixels (the
                10 m grid is 120 px).
            s1_dir: Sentinel-1 folder name under ``root`` (default
                ``BigEarthNet-S1-v1.0``).
            s2_dir: Sentinel-2 folder name under ``root`` (default
                ``BigEarthNet-v1.0``).
            split_dir: Directory of the split files (default ``root``).
            check_pairs: Verify each S1/S2 pair against the S1 label file.
            transforms: Transform applied to every sample dictionary.
            download: Download and extract the archives (default layout only).
            checksum: Check the MD5 of downloaded files.

        Raises:
            ValueError: For invalid modalities, sizes, or downloads with a
                customised layout.
            DatasetNotFoundError: If the folders or split file are missing.
        """
        self.modalities = check_modalities(modalities)
        if image_size < 1:
            raise ValueError(f'image_size must be positive, got {image_size}')
        if download and (s1_dir or s2_dir or split_dir):
            raise ValueError('download=True needs the default folder layout')
        # Instance copies of torchgeo's class-level layout tables: its _verify and
        # _load_folders then look in the given folders and split directory.
        self.metadata = {k: dict(v) for k, v in BigEarthNet.metadata.items()}  # type: ignore[misc]
        if s1_dir:
            self.metadata['s1']['directory'] = s1_dir
        if s2_dir:
            self.metadata['s2']['directory'] = s2_dir
        self.splits_metadata = {  # type: ignore[misc]
            k: dict(v) for k, v in BigEarthNet.splits_metadata.items()
        }
        if split_dir is not None:
            for entry in self.splits_metadata.values():
                entry['filename'] = os.path.abspath(
                    os.path.join(split_dir, entry['filename'])
                )
        self.image_size = (image_size, image_size)
        self.check_pairs = check_pairs
        bands: Literal['s1', 's2', 'all'] = (
            'all' if len(self.modalities) == 2 else self.modalities[0]
        )
        super().__init__(
            root, split, bands, num_classes, transforms, download, checksum
        )

    def __getitem__(self, index: int) -> Sample:
        """Load one pair.

        Args:
            index: Sample index.

        Returns:
            ``image_<modality>`` tensors and the multi-hot ``label``.

        Raises:
            ValueError: If a band file, label file or partner folder is missing,
                or the S1 label file names a different S2 patch.
        """
        folders = self.folders[index]
        sample: Sample = {
            f'image_{m}': read_bands(folders[m], BANDS[m], self.image_size[0])
            for m in self.modalities
        }
        if self.check_pairs and len(self.modalities) == 2:
            self._check_pair(folders)
        sample['label'] = self._load_target(index)
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def _verify(self) -> None:
        """Run torchgeo's check, with every missing folder and split file named.

        torchgeo's message only says the dataset was not found; with a
        customised layout (``s1_dir``, ``s2_dir``, ``split_dir``) the user needs
        to know which of the paths it looked for is absent.

        Raises:
            DatasetNotFoundError: Naming each missing patch folder (and the
                archive that would have been extracted into it) and split file.
        """
        try:
            super()._verify()
        except DatasetNotFoundError as err:
            root = str(self.root)
            missing = []
            for key in self.modalities:
                entry = self.metadata[key]
                folder = os.path.join(root, entry['directory'])
                if not os.path.isdir(folder):
                    archive = os.path.join(root, entry['filename'])
                    missing.append(f'{folder!r} (or its archive {archive!r})')
            for entry in self.splits_metadata.values():
                split_file = os.path.join(root, entry['filename'])
                if not os.path.isfile(split_file):
                    missing.append(repr(split_file))
            if missing:
                err.args = (
                    f'{err.args[0]} Missing for modalities {list(self.modalities)}: '
                    + ', '.join(missing)
                    + '.',
                )
            raise

    def _check_pair(self, folders: dict[str, str]) -> None:
        """Raise if the S1 label file names another S2 patch than the paired one."""
        with open(metadata_path(folders['s1'])) as f:
            partner = json.load(f).get('corresponding_s2_patch')
        s2_name = os.path.basename(os.path.normpath(folders['s2']))
        if partner is not None and partner != s2_name:
            raise ValueError(
                f'unpaired sample: {folders["s1"]!r} belongs to S2 patch {partner!r}, '
                f'but the split file pairs it with {s2_name!r}'
            )

    def _load_target(self, index: int) -> Tensor:
        """Multi-hot label of one sample (torchgeo's mapping to 19/43 classes).

        Raises:
            ValueError: If the patch has no label file.
        """
        folder = self.folders[index]['s2' if self.bands == 's2' else 's1']
        metadata_path(folder)
        return super()._load_target(index)

    def class_names(self) -> Sequence[str]:
        """Names of the 19 or 43 classes."""
        return self.class_sets[self.num_classes]


class BigEarthNetV2MM(_BigEarthNetPlot, BigEarthNetV2):
    """BigEarthNet v2 (reBEN) with one tensor per modality.

    Same samples as :class:`BigEarthNetMM` (19 classes): ``image_s1`` (VV, VH) in
    dB, ``image_s2`` (12 L2A bands), ``label``. Layout, splits and downloads are
    torchgeo's :class:`~torchgeo.datasets.BigEarthNetV2` (its ``metadata.parquet``
    is read with ``pyarrow``), except that only ``metadata.parquet`` and the
    folders of the requested modalities must exist (see :meth:`_verify`).
    """

    def __init__(
        self,
        root: Path = 'data',
        split: Literal['train', 'val', 'test'] = 'train',
        modalities: Sequence[Modality] = ('s1', 's2'),
        image_size: int = 120,
        transforms: Callable[[Sample], Sample] | None = None,
        download: bool = False,
        checksum: bool = False,
        **kwargs: Any,
    ) -> None:
        """Initialize a new BigEarthNetV2MM instance.

        Args:
            root: Dataset directory.
            split: ``'train'``, ``'val'`` or ``'test'``.
            modalities: Which of ``'s1'`` and ``'s2'`` to load.
            image_size: Side length every band is resampled to, in pixels.
            transforms: Transform applied to every sample dictionary.
            download: Download and extract the dataset.
            checksum: Verify downloaded files.
            **kwargs: Ignored v1-only options (``num_classes`` must be 19).

        Raises:
            ValueError: For invalid modalities or a v1-only option.
        """
        self.modalities = check_modalities(modalities)
        unsupported = {k: v for k, v in kwargs.items() if v not in (None, 19, True)}
        if unsupported:
            raise ValueError(f'BigEarthNet v2 does not support {unsupported}')
        self.image_size = (image_size, image_size)
        bands: Literal['s1', 's2', 'all'] = (
            'all' if len(self.modalities) == 2 else self.modalities[0]
        )
        super().__init__(root, split, bands, transforms, download, checksum)

    def _verify(self) -> None:
        """Find (or extract, or download) only what the chosen modalities need.

        torchgeo's check wants every part (S1, S2, ``Reference_Maps``, metadata)
        and, when only archive parts are present, returns without extracting
        them. Here a root needs ``metadata.parquet`` and the folders of the
        requested modalities only (no ``Reference_Maps``: the samples carry the
        multi-label targets, not the maps); a folder whose downloaded archive
        parts (``BigEarthNet-S2.tar.gzaa``, ...) are all present is extracted;
        anything still missing is named.

        Raises:
            DatasetNotFoundError: Naming every missing folder, file or archive
                part (with ``download=False``).
        """
        root = str(self.root)
        keys = ['metadata', *self.modalities]
        missing: list[str] = []
        for key in keys:
            target = os.path.join(root, self.dir_file_names[key])
            if os.path.exists(target):
                continue
            parts = [os.path.join(root, f) for f in self.metadata_locs[key]['files']]
            if key != 'metadata' and all(os.path.isfile(p) for p in parts):
                self._extract_parts(key)
                continue
            if self.download:
                self._download_parts(key)
                if key != 'metadata':
                    self._extract_parts(key)
                continue
            absent = [p for p in parts if not os.path.isfile(p)]
            note = (
                ''
                if key == 'metadata' or len(absent) == len(parts)
                else f' (archive parts present, but not {absent})'
            )
            missing.append(f'{target!r}{note}')
        if missing:
            err = DatasetNotFoundError(self)
            err.args = (
                f'{err.args[0]} Missing for modalities {list(self.modalities)}: '
                + ', '.join(missing)
                + '.',
            )
            raise err

    def _download_parts(self, key: str) -> None:
        """Download the archive parts (or file) of one entry of torchgeo's table."""
        from torchgeo.datasets.utils import download_url

        for name, digest in self.metadata_locs[key]['files'].items():
            if not os.path.isfile(os.path.join(str(self.root), name)):
                download_url(
                    self.url.format(name),
                    str(self.root),
                    filename=name,
                    sha256=digest if self.checksum and len(digest) == 64 else None,
                )

    def _extract_parts(self, key: str) -> None:
        """Join the downloaded ``<folder>.tar.gz??`` parts and extract them.

        Raises:
            DatasetNotFoundError: If the archive does not hold the folder.
        """
        from torchgeo.datasets.utils import extract_archive

        root = str(self.root)
        folder = os.path.join(root, self.dir_file_names[key])
        joined = folder + '.tar.gz'
        tmp = f'{joined}.tmp-{os.getpid()}'
        with open(tmp, 'wb') as out:
            for name in self.metadata_locs[key]['files']:
                with open(os.path.join(root, name), 'rb') as part:
                    shutil.copyfileobj(part, out, 2**20)
        os.replace(tmp, joined)
        extract_archive(joined, root)
        if not os.path.isdir(folder):
            err = DatasetNotFoundError(self)
            err.args = (
                f'{err.args[0]} Extracting {joined!r} did not create {folder!r}.',
            )
            raise err

    def patch_folder(self, index: int, modality: Modality) -> str:
        """Folder of one modality of a sample (v2 layout: tile folder/patch folder).

        Args:
            index: Sample index.
            modality: ``'s1'`` or ``'s2'``.

        Returns:
            The patch directory.
        """
        row = self.metadata_df.loc[index]
        name = str(row['s1_name' if modality == 's1' else 'patch_id'])
        # Patch ids end in _<row>_<col> (S2) or _<tile>_<row>_<col> (S1).
        tile = '_'.join(name.split('_')[: -3 if modality == 's1' else -2])
        return os.path.join(self.root, self.dir_file_names[modality], tile, name)

    def __getitem__(self, index: int) -> Sample:
        """Load one pair.

        Args:
            index: Sample index.

        Returns:
            ``image_<modality>`` tensors and the multi-hot ``label``.
        """
        sample: Sample = {
            f'image_{m}': read_bands(
                self.patch_folder(index, m), BANDS[m], self.image_size[0]
            )
            for m in self.modalities
        }
        sample['label'] = self._load_target(index)
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def class_names(self) -> Sequence[str]:
        """Names of the 19 classes."""
        return self.class_set
