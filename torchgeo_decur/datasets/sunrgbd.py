"""Paired RGB + HHA (encoded depth) samples of SUN RGB-D in the RGB-X layout."""

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor
from torchgeo.datasets import DatasetNotFoundError, NonGeoDataset

from .rasters import check_values, naming_file

SUNRGBDSplit = Literal['train', 'test', 'all']

#: PIL modes decoded like OpenCV's ``IMREAD_COLOR`` (8 bits per channel).
_COLOR_MODES = ('RGB', 'RGBA', 'L', 'LA', 'P', 'CMYK', 'YCbCr')
#: PIL modes accepted for label images (one integer class per pixel).
_LABEL_MODES = ('L', 'P', 'I', 'I;16')


class SUNRGBD(NonGeoDataset):
    """SUN RGB-D (or NYU-Depth v2) RGB + HHA pairs for multimodal pretraining.

    Reads the folder layout of the RGB-X segmentation code (CMX /
    RGBX_Semantic_Segmentation), one file per modality with a shared name::

        root/RGB/<name>.jpg        colour image
        root/HHA/<name>.png|.jpg   HHA-encoded depth (3 channels, 8 bit)
        root/Label/<name>.png      class per pixel (optional)
        root/train.txt, test.txt   one name per line

    List lines may also be paths such as ``RGB/<name>.jpg`` (the form used by some
    forks); the RGB folder and suffix are then removed. Split ``'all'`` ignores the
    lists and takes every image in the RGB folder, as the DeCUR pretraining did.

    Images are decoded like OpenCV's ``cv2.imread`` in the reference code: EXIF
    orientation applied, 8-bit colour, channels in **B, G, R** order for both the
    RGB image and the HHA map. Decoding uses Pillow instead of
    OpenCV (not a dependency here); for PNG the pixels are identical, for JPEG both
    use libjpeg's default (accurate integer IDCT, fancy upsampling).

    Samples:

    * ``image_rgb``: (3, H, W) float32 in [0, 255], B, G, R order
    * ``image_hha``: (3, H, W) float32 in [0, 255], channels in file order reversed
      (as OpenCV reads them)
    * ``mask`` (with ``load_mask=True``): (H, W) int64 class indices as stored
      (SUN RGB-D: 0 = unlabelled, 1-37 classes; CMX maps 0 to its ignore index)

    With ``size`` set, every image is resized (bilinear, like ``cv2.resize``;
    nearest for masks) so samples of different cameras batch together; the
    reference instead cropped each image at its native size.
    """

    def __init__(
        self,
        root: str = 'data',
        split: SUNRGBDSplit = 'train',
        load_mask: bool = False,
        size: int | tuple[int, int] | None = (480, 640),
        rgb_dir: str = 'RGB',
        hha_dir: str = 'HHA',
        mask_dir: str = 'Label',
        rgb_suffix: str = '.jpg',
        hha_suffixes: Sequence[str] = ('.jpg', '.png'),
        mask_suffix: str = '.png',
        on_invalid: Literal['error', 'skip'] = 'error',
        transforms: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
    ) -> None:
        """Initialize a new SUNRGBD instance.

        Args:
            root: Dataset folder holding the modality folders and list files.
            split: ``'train'`` / ``'test'`` (names from ``<split>.txt``) or
                ``'all'`` (every image of the RGB folder).
            load_mask: Also return the ``mask`` label image.
            size: (height, width), or one side for squares, every sample is
                resized to; None keeps the native size (then a batch needs equal
                sizes).
            rgb_dir: Folder of the colour images, relative to ``root``.
            hha_dir: Folder of the HHA maps.
            mask_dir: Folder of the label images.
            rgb_suffix: File suffix of the colour images.
            hha_suffixes: Suffixes tried, in order, for an HHA map (the reference
                tried ``.jpg`` then ``.png``).
            mask_suffix: File suffix of the label images.
            on_invalid: ``'error'`` raises on an unpaired sample (a missing RGB,
                HHA or label file); ``'skip'`` drops it with a warning.
            transforms: Function applied to each sample dictionary.

        Raises:
            DatasetNotFoundError: If a modality folder or the list file is absent.
            ValueError: For an unpaired sample (naming the missing path) with
                ``on_invalid='error'``, an empty dataset or a bad argument.
        """
        if split not in ('train', 'test', 'all'):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        if on_invalid not in ('error', 'skip'):
            raise ValueError(
                f"on_invalid must be 'error' or 'skip', got {on_invalid!r}"
            )
        if isinstance(size, int):
            size = (size, size)
        if size is not None and (len(size) != 2 or min(size) <= 0):
            raise ValueError(f'size must be positive (height, width), got {size}')
        self.root = root
        self.split = split
        self.load_mask = load_mask
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.dirs = {
            'rgb': os.path.join(root, rgb_dir),
            'hha': os.path.join(root, hha_dir),
            'mask': os.path.join(root, mask_dir),
        }
        self.rgb_dir = rgb_dir
        self.rgb_suffix = rgb_suffix
        self.hha_suffixes = tuple(hha_suffixes)
        self.mask_suffix = mask_suffix
        self.on_invalid = on_invalid
        self.transforms = transforms
        self.listing = {
            m: self._scan(m) for m in ('rgb', 'hha', 'mask') if m != 'mask' or load_mask
        }
        names = self._all_names() if split == 'all' else self._list_names()
        self.samples = [s for s in map(self._pair, names) if s is not None]
        if not self.samples:
            raise ValueError(
                f'no paired SUN RGB-D samples for split {split!r} under {root!r}'
            )

    # ------------------------------------------------------------ indexing
    def _scan(self, modality: str) -> set[str]:
        """File names in one modality folder (raises if the folder is absent)."""
        directory = self.dirs[modality]
        if not os.path.isdir(directory):
            err = DatasetNotFoundError(self)
            err.args = (f'{err.args[0]} Missing folder: {directory!r}.',)
            raise err
        with os.scandir(directory) as entries:
            return {e.name for e in entries if e.is_file()}

    def _invalid(self, message: str) -> None:
        """Raise or warn about an unpaired sample depending on ``on_invalid``."""
        if self.on_invalid == 'error':
            raise ValueError(message + " (pass on_invalid='skip' to skip it)")
        warnings.warn(message + '; skipping it', UserWarning, stacklevel=3)

    def _list_names(self) -> list[str]:
        """Sample names of ``<split>.txt``, in file order."""
        path = os.path.join(self.root, f'{self.split}.txt')
        if not os.path.isfile(path):
            err = DatasetNotFoundError(self)
            err.args = (f'{err.args[0]} Missing list file: {path!r}.',)
            raise err
        rgb_prefix = self.rgb_dir.rstrip('/') + '/'
        names = []
        with open(path) as f:
            for line in f:
                fields = line.split()
                if not fields:
                    continue
                name = fields[0].removeprefix(rgb_prefix)
                names.append(name.removesuffix(self.rgb_suffix))
        return names

    def _all_names(self) -> list[str]:
        """Every image of the RGB folder; HHA maps without an image are unpaired."""
        names = sorted(
            n.removesuffix(self.rgb_suffix)
            for n in self.listing['rgb']
            if n.endswith(self.rgb_suffix)
        )
        have = set(names)
        for file in sorted(self.listing['hha']):
            stem, ext = os.path.splitext(file)
            if ext in self.hha_suffixes and stem not in have:
                self._invalid(
                    f'unpaired SUN RGB-D sample {stem!r}: '
                    f'{os.path.join(self.dirs["hha"], file)!r} exists but '
                    f'{self._path("rgb", stem + self.rgb_suffix)!r} does not'
                )
        return names

    def _path(self, modality: str, file: str) -> str:
        """Full path of a file in one modality folder."""
        return os.path.join(self.dirs[modality], file)

    def _pair(self, name: str) -> dict[str, str] | None:
        """Paths of one sample's files, or None if it is skipped."""
        rgb = name + self.rgb_suffix
        if rgb not in self.listing['rgb']:
            self._invalid(
                f'SUN RGB-D sample {name!r} has no RGB image {self._path("rgb", rgb)!r}'
            )
            return None
        hha = next(
            (name + s for s in self.hha_suffixes if name + s in self.listing['hha']),
            None,
        )
        if hha is None:
            tried = [self._path('hha', name + s) for s in self.hha_suffixes]
            self._invalid(
                f'unpaired SUN RGB-D sample {name!r}: {self._path("rgb", rgb)!r} '
                f'has no HHA map (looked for {tried})'
            )
            return None
        out = {'rgb': self._path('rgb', rgb), 'hha': self._path('hha', hha)}
        if self.load_mask:
            mask = name + self.mask_suffix
            if mask not in self.listing['mask']:
                self._invalid(
                    f'SUN RGB-D sample {name!r} has no label image '
                    f'{self._path("mask", mask)!r}'
                )
                return None
            out['mask'] = self._path('mask', mask)
        return out

    # ------------------------------------------------------------- reading
    @staticmethod
    def _read_color(path: str, modes: Sequence[str] = _COLOR_MODES) -> Tensor:
        """Decode an 8-bit image like ``cv2.imread(path)``: (3, H, W), B, G, R.

        Args:
            path: Image file.
            modes: PIL modes accepted (HHA maps: ``'RGB'`` only, since a gray or
                gray + alpha image would be read as three copies of one channel).
        """
        with naming_file(path, 'SUN RGB-D'), Image.open(path) as img:
            if img.mode not in modes:
                raise ValueError(
                    f'{path!r} has PIL mode {img.mode!r} ({len(img.getbands())} '
                    f'channel(s)); expected one of {list(modes)} (8-bit colour or '
                    'gray images; HHA maps are 3-channel 8-bit, not raw depth)'
                )
            rgb = ImageOps.exif_transpose(img).convert('RGB')
            array = np.asarray(rgb)[:, :, ::-1]
        check_values(array.transpose(2, 0, 1), f'{path!r} (SUN RGB-D)')
        return torch.from_numpy(array.transpose(2, 0, 1).astype(np.float32))

    @staticmethod
    def _read_mask(path: str) -> Tensor:
        """Read a label image: (H, W) int64 class indices."""
        with naming_file(path, 'SUN RGB-D label'), Image.open(path) as img:
            if img.mode not in _LABEL_MODES:
                raise ValueError(
                    f'{path!r} has PIL mode {img.mode!r}; a label image must hold '
                    f'one class index per pixel (modes {list(_LABEL_MODES)})'
                )
            array = np.asarray(img)
        return torch.from_numpy(array.astype(np.int64))

    def _resize(self, x: Tensor, mode: str) -> Tensor:
        """Resize (C, H, W) or (H, W) to ``size`` (no antialiasing, like cv2)."""
        if self.size is None or tuple(x.shape[-2:]) == self.size:
            return x
        if mode == 'nearest':
            out = F.interpolate(x[None, None].float(), size=self.size, mode='nearest')
            return out[0, 0].to(x.dtype)
        out = F.interpolate(x[None], size=self.size, mode='bilinear', antialias=False)
        return out[0]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Load one sample.

        Args:
            index: Index of the sample.

        Returns:
            ``image_rgb``, ``image_hha`` and optionally ``mask`` (see the class
            docstring).

        Raises:
            ValueError: If a file is not an 8-bit image, or the modalities of a
                sample differ in size.
        """
        paths = self.samples[index]
        rgb = self._read_color(paths['rgb'])
        hha = self._read_color(paths['hha'], ('RGB',))
        if rgb.shape != hha.shape:
            raise ValueError(
                f'{paths["rgb"]!r} is {tuple(rgb.shape[1:])} but its HHA map '
                f'{paths["hha"]!r} is {tuple(hha.shape[1:])}; the pair is not aligned'
            )
        sample = {
            'image_rgb': self._resize(rgb, 'bilinear'),
            'image_hha': self._resize(hha, 'bilinear'),
        }
        if self.load_mask:
            mask = self._read_mask(paths['mask'])
            if mask.shape != rgb.shape[1:]:
                raise ValueError(
                    f'label {paths["mask"]!r} is {tuple(mask.shape)} but its image '
                    f'{paths["rgb"]!r} is {tuple(rgb.shape[1:])}'
                )
            sample['mask'] = self._resize(mask, 'nearest')
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def __len__(self) -> int:
        """Number of paired samples."""
        return len(self.samples)

    def plot(self, sample: dict[str, Any], suptitle: str | None = None) -> Any:
        """Show the RGB image, the HHA map and (if present) the mask.

        Args:
            sample: A sample returned by :meth:`__getitem__` (raw, 0-255).
            suptitle: Optional figure title.

        Returns:
            A matplotlib Figure.
        """
        import matplotlib.pyplot as plt

        panels = [
            ('RGB', sample['image_rgb'].flip(0)),  # B, G, R → R, G, B for display
            ('HHA', sample['image_hha'].flip(0)),
        ]
        fig, axs = plt.subplots(1, 2 + ('mask' in sample), figsize=(12, 4))
        for ax, (title, image) in zip(axs, panels, strict=False):
            ax.imshow((image.permute(1, 2, 0) / 255).clamp(0, 1).numpy())
            ax.set_title(title)
        if 'mask' in sample:
            axs[2].imshow(sample['mask'].numpy(), cmap='tab20', interpolation='none')
            axs[2].set_title('Label')
        for ax in axs:
            ax.axis('off')
        if suptitle is not None:
            fig.suptitle(suptitle)
        return fig
