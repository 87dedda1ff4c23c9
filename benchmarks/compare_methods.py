"""Compare DeCUR and the multimodal baselines on real data with a small budget.

1. Pretrain every method (DeCUR, SimCLR, CLIP, Barlow Twins, VICReg) from the same
   random initialisation, for the same number of steps on the same batches, through
   Lightning's ``Trainer`` and the tasks' own optimiser/schedule. The data are random
   ``--window`` x ``--window`` windows of the REAL SSL4EO-S12 sample location
   (Sentinel-1 GRD + Sentinel-2 L1C, 264 x 264, two timestamps per modality); as in
   the reference, every view of every modality draws its own timestamp, and the
   tasks crop and augment each modality independently. Inputs are scaled with the
   DeCUR mean ± 2σ window.
2. Extract the pooled features of the Sentinel-2 encoder on the REAL EuroSAT-MS
   subset (13-band L1C, 64 x 64, 11 images per class) resized to ``--crop-size``, and
   score them by 5-fold stratified cross-validation with a kNN vote and a linear
   probe, next to a random-initialised encoder and per-band statistics.
3. Report the collapse monitors of every run (the tasks' ``train_std_<m>`` scaled by
   sqrt(K): about 1 when healthy, 0 when collapsed, the method's own monitors, and
   the effective rank of the EuroSAT features), so a collapsed run shows as such.

Default run: a few minutes on 2 CPU cores. Example::

    python -m benchmarks.compare_methods --shared-root /path/to/realdata
"""

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from statistics import mean
from typing import Any

import rasterio
import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from rasterio.enums import Resampling
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchgeo.datasets import EuroSAT, NonGeoClassificationDataset
from torchgeo.datasets.utils import rasterio_loader

import torchgeo_decur
from torchgeo_decur.datasets import SSL4EOS12Pairs
from torchgeo_decur.models import build_backbone
from torchgeo_decur.tasks import MultimodalSSLTask
from torchgeo_decur.transforms import ssl4eo_s12_normalization
from torchgeo_decur.transforms.normalize import (
    SSL4EO_S12_S1_BANDS,
    SSL4EO_S12_S2_BANDS,
    SSL4EO_S12_S2_MEAN,
    SSL4EO_S12_S2_STD,
    ClipNormalize,
)

from .common import emit, environment, pick_device
from .probing import effective_rank, probe

METHODS = ('decur', 'simclr', 'clip', 'barlow_twins', 'vicreg')
SSL4EO_DIR = 'ssl4eo-s12-sample'
BIGEARTHNET_DIR = 'bigearthnet-example'
EUROSAT_DIR = 'eurosat-ms-subset'
#: A run whose embeddings' std (x sqrt(K)) falls below this is flagged collapsed.
COLLAPSE_THRESHOLD = 0.1


def method_task(name: str, args: argparse.Namespace) -> MultimodalSSLTask:
    """Build the task of one method with the shared settings.

    Args:
        name: One of :data:`METHODS`.
        args: Parsed command line.

    Returns:
        The task (random initialisation from the current seed).
    """
    shared: dict[str, Any] = {
        'model': args.model,
        'crop_size': args.crop_size,
        'optimizer': 'adamw',
        'lr': args.lr,
        'weight_decay': args.weight_decay,
        'aligned_crops': args.aligned_crops,
    }
    wide = [args.embed_dim] * 3
    if name == 'decur':
        k = wide[-1]
        return torchgeo_decur.DeCURTask(
            projector_dims=wide, common_dim=k * 7 // 8, **shared
        )
    if name == 'simclr':
        return torchgeo_decur.MultimodalSimCLRTask(
            projector_dims=[args.embed_dim, 128], temperature=0.1, **shared
        )
    if name == 'clip':
        return torchgeo_decur.MultimodalCLIPTask(
            projector_dims=[args.embed_dim, 128], temperature=0.07, **shared
        )
    if name == 'barlow_twins':
        return torchgeo_decur.MultimodalBarlowTwinsTask(projector_dims=wide, **shared)
    if name == 'vicreg':
        return torchgeo_decur.MultimodalVICRegTask(projector_dims=wide, **shared)
    raise ValueError(f'unknown method {name!r}; choose from {METHODS}')


# ---------------------------------------------------------------- pretraining
def load_ssl4eo_scene(root: str) -> dict[str, Tensor]:
    """Every timestamp of the SSL4EO-S12 sample location, scaled to [0, 1].

    Args:
        root: The ``ssl4eo-s12-sample`` folder.

    Returns:
        ``{'s1': (T, 2, 264, 264), 's2': (T, 13, 264, 264)}``.

    Raises:
        ValueError: If the folder does not hold exactly one location.
    """
    norm = ssl4eo_s12_normalization('s2c')
    stamps: dict[str, list[Tensor]] = {'s1': [], 's2': []}
    for t in range(1000):
        ds = SSL4EOS12Pairs(root, views=1, season_mode='fixed', season=t, size=264)
        if len(ds) != 1:
            raise ValueError(f'{root}: expected one location, found {len(ds)}')
        try:
            sample = norm(ds[0])
        except ValueError as err:
            # 'fixed' mode reports a timestamp index past the last one.
            if t == 0 or 'out of range' not in str(err):
                raise
            break
        stamps['s1'].append(sample['image_s1'])
        stamps['s2'].append(sample['image_s2'])
    return {m: torch.stack(v) for m, v in stamps.items()}


def _read_band(path: str, size: int) -> Tensor:
    """One single-band GeoTIFF as float32 (size, size), bilinear resampling."""
    with rasterio.open(path) as src:
        array = src.read(
            1,
            out_shape=(size, size),
            resampling=Resampling.bilinear,
            out_dtype='float32',
        )
    return torch.from_numpy(array)


def load_bigearthnet_scenes(root: str, size: int = 120) -> list[dict[str, Tensor]]:
    """The BigEarthNet v1 example S1/S2 pairs, scaled to [0, 1].

    Read directly with rasterio (the layout is BigEarthNet v1's, with ``-Example``
    folder names). Each S1 patch's JSON names its S2 partner. S2 is L2A with 12
    bands; B10 is inserted as zeros to match the 13-band L1C encoders, as the DeCUR
    BigEarthNet code does. Both use the DeCUR mean ± 2σ scaling.

    Args:
        root: The ``bigearthnet-example`` folder.
        size: Grid every band is resampled to (the 10 m grid, 120 px).

    Returns:
        One ``{'s1': (1, 2, size, size), 's2': (1, 13, size, size)}`` per pair.

    Raises:
        ValueError: If an S1 patch names a missing S2 patch or a band is missing.
    """
    norm = ssl4eo_s12_normalization('s2c')
    s1_root = os.path.join(root, 'BigEarthNet-S1-Example')
    s2_root = os.path.join(root, 'BigEarthNet-S2-Example')
    scenes = []
    for s1_name in sorted(os.listdir(s1_root)):
        s1_dir = os.path.join(s1_root, s1_name)
        with open(os.path.join(s1_dir, f'{s1_name}_labels_metadata.json')) as f:
            s2_name = json.load(f)['corresponding_s2_patch']
        s2_dir = os.path.join(s2_root, s2_name)
        if not os.path.isdir(s2_dir):
            raise ValueError(f'{s1_dir!r} names S2 patch {s2_name!r}, not found')
        bands = {}
        for band in SSL4EO_S12_S1_BANDS:
            bands[band] = _read_band(
                os.path.join(s1_dir, f'{s1_name}_{band}.tif'), size
            )
        s1 = torch.stack([bands[b] for b in SSL4EO_S12_S1_BANDS])
        s2_bands = []
        for band in SSL4EO_S12_S2_BANDS:
            if band == 'B10':  # absent from L2A
                s2_bands.append(torch.zeros(size, size))
                continue
            name = band if band == 'B8A' else f'B{int(band[1:]):02d}'
            path = os.path.join(s2_dir, f'{s2_name}_{name}.tif')
            if not os.path.isfile(path):
                raise ValueError(f'{s2_dir!r} lacks band file {os.path.basename(path)}')
            s2_bands.append(_read_band(path, size))
        sample = norm({'image_s1': s1, 'image_s2': torch.stack(s2_bands)})
        scenes.append({'s1': sample['image_s1'][None], 's2': sample['image_s2'][None]})
    return scenes


class RandomWindows(Dataset[dict[str, Tensor]]):
    """Co-located random windows of several scenes, two views per modality.

    Sample i is drawn from a generator seeded with (seed, i), so every method sees
    exactly the same samples: a scene uniformly at random, a window position in it,
    and for each view of each modality its own timestamp of that scene.
    """

    def __init__(
        self, scenes: Sequence[dict[str, Tensor]], window: int, length: int, seed: int
    ) -> None:
        """Initialize a new RandomWindows instance.

        Args:
            scenes: ``{'s1': (T, 2, H, W), 's2': (T, 13, H, W)}`` per scene.
            window: Window side length in pixels.
            length: Number of samples.
            seed: Base seed.

        Raises:
            ValueError: If the window does not fit a scene.
        """
        self.scenes = list(scenes)
        self.window = window
        self.length = length
        self.seed = seed
        for i, scene in enumerate(self.scenes):
            h, w = scene['s1'].shape[-2:]
            if window > min(h, w) or scene['s2'].shape[-2:] != (h, w):
                raise ValueError(
                    f'scene {i}: window {window} must fit the common S1/S2 grid, got '
                    f'{tuple(scene["s1"].shape[-2:])} and {tuple(scene["s2"].shape[-2:])}'
                )

    def __len__(self) -> int:
        """Number of samples."""
        return self.length

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Return ``{'image_s1': (2 x 2, W, W), 'image_s2': (2 x 13, W, W)}``."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        scene = self.scenes[int(torch.randint(len(self.scenes), (1,), generator=g))]
        h, w = scene['s1'].shape[-2:]
        y = int(torch.randint(h - self.window + 1, (1,), generator=g))
        x = int(torch.randint(w - self.window + 1, (1,), generator=g))
        out = {}
        for m, stack in scene.items():
            stamps = torch.randint(len(stack), (2,), generator=g).tolist()
            views = [
                stack[t, :, y : y + self.window, x : x + self.window] for t in stamps
            ]
            out[f'image_{m}'] = torch.cat(views)
        return out


class StepRecorder(Callback):
    """Keeps every training step's logged scalars."""

    def __init__(self) -> None:
        """Initialize a new StepRecorder instance."""
        self.steps: list[dict[str, float]] = []

    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Record the logged scalars of this step."""
        self.steps.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def pretrain(
    task: MultimodalSSLTask, data: Dataset[dict[str, Tensor]], args: argparse.Namespace
) -> list[dict[str, float]]:
    """Train ``task`` for ``args.steps`` steps; return the logged scalars per step."""
    recorder = StepRecorder()
    trainer = Trainer(
        accelerator='gpu' if args.device_obj.type == 'cuda' else 'cpu',
        devices=1,
        max_steps=args.steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
    )
    loader = DataLoader(data, batch_size=args.batch_size, drop_last=True)
    trainer.fit(task, loader)
    return recorder.steps


def summarise(steps: list[dict[str, float]], k: int, last: int) -> dict[str, Any]:
    """Loss and monitors averaged over the last steps, plus the collapse verdict."""
    tail = steps[-last:]
    monitors = {
        name.removeprefix('train_'): mean(s[name] for s in tail)
        for name in tail[0]
        if name != 'train_loss'
    }
    for m in ('s1', 's2'):
        monitors[f'std_{m}_x_sqrt_k'] = monitors.pop(f'std_{m}') * math.sqrt(k)
    scaled = min(monitors['std_s1_x_sqrt_k'], monitors['std_s2_x_sqrt_k'])
    return {
        'loss_first': steps[0]['train_loss'],
        'loss_last': mean(s['train_loss'] for s in tail),
        'monitors': monitors,
        'collapsed': bool(scaled < COLLAPSE_THRESHOLD),
    }


# ---------------------------------------------------------------------- probe
def load_eurosat(root: str, size: int) -> tuple[Tensor, Tensor, list[str]]:
    """EuroSAT-MS images in the SSL4EO-S12 L1C band order, scaled and resized.

    Args:
        root: The ``eurosat-ms-subset`` folder (one sub-folder per class).
        size: Side length the 64 x 64 images are resized to.

    Returns:
        Images (N, 13, size, size) in [0, 1], labels (N,), class names.
    """
    ds = NonGeoClassificationDataset(root, loader=rasterio_loader)
    # EuroSAT stores B8A last; the encoders expect the SSL4EO-S12 order.
    names = [b.replace('B0', 'B') for b in EuroSAT.all_band_names]
    order = [names.index(b) for b in SSL4EO_S12_S2_BANDS]
    samples = [ds[i] for i in range(len(ds))]
    images = torch.stack([s['image'][order] for s in samples])
    labels = torch.stack([s['label'] for s in samples])
    images = ClipNormalize(SSL4EO_S12_S2_MEAN, SSL4EO_S12_S2_STD)(images)
    if size != images.shape[-1]:
        images = F.interpolate(images, size=size, mode='bilinear', antialias=True)
    return images, labels, list(ds.classes)


@torch.no_grad()
def s2_features(
    encoder: torch.nn.Module, images: Tensor, device: torch.device
) -> Tensor:
    """Pooled features (N, D) of the frozen encoder in eval mode."""
    encoder = encoder.to(device).eval()
    feats = [encoder(x.to(device)).float().cpu() for x in images.split(64)]
    return torch.cat(feats)


def evaluate(
    encoder: torch.nn.Module,
    images: Tensor,
    labels: Tensor,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Probe accuracies and feature effective rank of one S2 encoder."""
    feats = s2_features(encoder, images, args.device_obj)
    return {
        **probe(feats, labels, folds=args.folds, seed=args.seed, knn_k=args.knn_k),
        'feature_effective_rank': effective_rank(feats),
        'feature_dim': feats.shape[1],
    }


# ----------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        '--shared-root',
        default=os.path.join('..', 'shared', 'realdata'),
        help='folder holding ssl4eo-s12-sample/ and eurosat-ms-subset/',
    )
    p.add_argument(
        '--pretrain-data',
        nargs='+',
        default=['ssl4eo', 'bigearthnet'],
        choices=['ssl4eo', 'bigearthnet'],
        help='real S1/S2 pairs to pretrain on (SSL4EO-S12 sample location: 2 '
        'timestamps, 264 px; BigEarthNet example: 6 pairs, 120 px)',
    )
    p.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS)
    p.add_argument('--model', default='resnet18', help='timm encoder name')
    p.add_argument('--steps', type=int, default=50, help='pretraining steps per method')
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--window', type=int, default=48, help='pretraining window (px)')
    p.add_argument('--crop-size', type=int, default=32, help='augmented crop (px)')
    p.add_argument('--embed-dim', type=int, default=512, help='projector width K')
    p.add_argument(
        '--aligned-crops',
        action=argparse.BooleanOptionalAction,
        default=False,
        help='share crops/flips between the modalities (pixel-aligned pairs)',
    )
    p.add_argument('--lr', type=float, default=1e-3, help='AdamW learning rate')
    p.add_argument('--weight-decay', type=float, default=1e-4)
    p.add_argument('--folds', type=int, default=5, help='cross-validation folds')
    p.add_argument('--knn-k', type=int, default=5)
    p.add_argument('--average-last', type=int, default=10, help='steps averaged')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='auto', help="'auto', 'cpu', 'cuda', ...")
    p.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch CPU threads (default: torch default; 1 is faster on a busy CPU)',
    )
    args = p.parse_args(argv)
    needed = [EUROSAT_DIR]
    needed += [SSL4EO_DIR] if 'ssl4eo' in args.pretrain_data else []
    needed += [BIGEARTHNET_DIR] if 'bigearthnet' in args.pretrain_data else []
    missing = [
        d for d in needed if not os.path.isdir(os.path.join(args.shared_root, d))
    ]
    if missing:
        p.error(
            f'--shared-root {os.path.abspath(args.shared_root)!r} lacks {missing}: '
            'point it at the real sample data (realdata/ with eurosat-ms-subset/ '
            'and the --pretrain-data folders)'
        )
    args.device_obj = pick_device(args.device)
    return args


def table(result: dict[str, Any]) -> str:
    """Markdown summary of the result."""
    rows = [
        '| method | kNN top-1 | linear top-1 | loss first → last | '
        'std·√K s1 / s2 | eff. rank | collapsed | s |',
        '|---|---|---|---|---|---|---|---|',
    ]
    for name, r in result['methods'].items():
        mon, ev = r['monitors'], r['eurosat']
        rows.append(
            f'| {name} | {ev["knn_top1"]:.3f} | {ev["linear_top1"]:.3f} | '
            f'{r["loss_first"]:.3f} → {r["loss_last"]:.3f} | '
            f'{mon["std_s1_x_sqrt_k"]:.2f} / {mon["std_s2_x_sqrt_k"]:.2f} | '
            f'{ev["feature_effective_rank"]:.1f} | {r["collapsed"]} | '
            f'{r["pretrain_seconds"]:.0f} |'
        )
    for name, ev in result['baselines'].items():
        rows.append(
            f'| {name} | {ev["knn_top1"]:.3f} | {ev["linear_top1"]:.3f} | – | – | '
            f'{ev["feature_effective_rank"]:.1f} | – | – |'
        )
    return '\n'.join(rows)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the comparison, print JSON on stdout (and a table on stderr).

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The result dictionary that was printed.
    """
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    root = args.shared_root
    scenes = []
    if 'ssl4eo' in args.pretrain_data:
        scenes.append(load_ssl4eo_scene(os.path.join(root, SSL4EO_DIR)))
    if 'bigearthnet' in args.pretrain_data:
        scenes += load_bigearthnet_scenes(os.path.join(root, BIGEARTHNET_DIR))
    data = RandomWindows(scenes, args.window, args.steps * args.batch_size, args.seed)
    images, labels, classes = load_eurosat(
        os.path.join(root, EUROSAT_DIR), args.crop_size
    )

    methods: dict[str, Any] = {}
    for name in args.methods:
        seed_everything(args.seed, verbose=False)
        task = method_task(name, args)
        k = int(task.hparams['projector_dims'][-1])
        start = time.perf_counter()
        steps = pretrain(task, data, args)
        seconds = time.perf_counter() - start
        methods[name] = {
            **summarise(steps, k, args.average_last),
            'embedding_dim': k,
            'views_per_modality': task.num_views,
            'pretrain_seconds': seconds,
            'eurosat': evaluate(task.backbones['s2'], images, labels, args),
        }

    seed_everything(args.seed, verbose=False)
    random_encoder = build_backbone(args.model, 13)
    band_stats = torch.cat([images.mean((2, 3)), images.std((2, 3))], dim=1)
    baselines = {
        'random_init': evaluate(random_encoder, images, labels, args),
        'band_mean_std': {
            **probe(band_stats, labels, args.folds, args.seed, args.knn_k),
            'feature_effective_rank': effective_rank(band_stats),
            'feature_dim': band_stats.shape[1],
        },
    }
    config = {k: v for k, v in vars(args).items() if k != 'device_obj'}
    result = {
        'benchmark': 'compare_methods',
        'command': 'python -m benchmarks.compare_methods '
        + ' '.join(argv if argv is not None else sys.argv[1:]),
        'config': config,
        'environment': environment(args.device_obj),
        'data': {
            'pretrain_scenes': [
                f'S1 {tuple(sc["s1"].shape)}, S2 {tuple(sc["s2"].shape)}'
                for sc in scenes
            ],
            'pretrain_windows': len(data),
            'probe': f'{EUROSAT_DIR}: {len(labels)} images, {len(classes)} classes',
            'chance_top1': 1 / len(classes),
        },
        'collapse_threshold_std_x_sqrt_k': COLLAPSE_THRESHOLD,
        'methods': methods,
        'baselines': baselines,
    }
    emit(result)
    print(table(result), file=sys.stderr)
    return result


if __name__ == '__main__':
    main()
