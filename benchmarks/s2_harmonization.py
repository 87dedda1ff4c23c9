"""Mean Sentinel-2 input of a released encoder for a post-2022 product, before/after.

Since processing baseline 04.00 (2022-01-25) Sentinel-2 DN carry a +1000 offset;
the released DeCUR weights were trained on pre-offset SSL4EO-S12 data. This script
takes the SSL4EO-S12 L1C samples under ``--root`` (pre-offset, 2020/2021), writes
each as the product of the same ground acquired on ``--date`` with baseline 05.09
would store it (every valid DN + 1000) into a TerraMesh-layout shard with that
acquisition ``time``, and streams it back with :class:`TerraMeshStream`:

* ``before``: ``s2_harmonize='never'`` (the offset reaches the encoder, as
  without harmonization);
* ``after``: ``s2_harmonize='auto'`` (offset removed by the sample's time);
* ``reference``: the pre-offset DN of the same ground.

Each goes through ``member.transforms`` of ``--weights`` (per-band mean ± 2σ →
[0, 1], resize, crop). Printed JSON: the mean input over all bands and pixels and
per band for the three, and the largest absolute difference of ``after`` from
``reference``.

Example (real sample beside the checkout)::

    python -m benchmarks.s2_harmonization --root /path/to/ssl4eo-s12-sample
"""

import argparse
import tempfile
from datetime import UTC, datetime
from typing import Any

import torch
from torch import Tensor

from torchgeo_decur.datasets import SSL4EOS12Pairs
from torchgeo_decur.datasets.shards import write_shards
from torchgeo_decur.datasets.terramesh import TerraMeshStream
from torchgeo_decur.weights.loading import as_decur_member

from .common import emit


class OffsetProducts:
    """SSL4EO-S12 L1C samples as offset (baseline 04.00+) products of one date."""

    def __init__(self, dataset: SSL4EOS12Pairs, ns: int) -> None:
        self.dataset = dataset
        self.ns = ns

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        dn = self.dataset[index]['image_s2']
        wide = dn.to(torch.int32)
        stored = torch.where(wide == 0, wide, wide + 1000).to(dn.dtype)
        return {
            'image_S2L1C': stored,
            'time_S2L1C': torch.tensor(self.ns, dtype=torch.int64),
        }


def mean_input(images: list[Tensor], transform: Any) -> Tensor:
    """Per-band mean of ``transform`` over the images, (C,) float64."""
    scaled = torch.stack([transform(x.float()) for x in images]).double()
    return scaled.mean(dim=(0, 2, 3))


def main(argv: list[str] | None = None) -> None:
    """Run the comparison and print JSON.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', required=True, help='SSL4EO-S12 root (s1, s2c)')
    parser.add_argument('--date', default='2023-06-15', help='acquisition date')
    parser.add_argument('--size', type=int, default=264, help='side length read')
    parser.add_argument(
        '--weights',
        default='DeCURViTSmall16_Weights.SENTINEL2_L1C_SSL4EO_DECUR',
        help='released member whose Sentinel-2 transforms to apply',
    )
    args = parser.parse_args(argv)
    when = datetime.strptime(args.date, '%Y-%m-%d').replace(tzinfo=UTC)
    ns = int(when.timestamp()) * 10**9
    member = as_decur_member(args.weights)
    if member is None or 's2' not in member.modalities:
        raise ValueError(f'{args.weights!r} is not a DeCUR member with an s2 encoder')
    transform = member.transforms_for('s2')
    source = SSL4EOS12Pairs(
        args.root, views=1, season_mode='fixed', season=0, size=args.size
    )
    reference = [source[i]['image_s2'] for i in range(len(source))]
    with tempfile.TemporaryDirectory() as tmp:
        write_shards(OffsetProducts(source, ns), tmp, prefix='post2022')
        streamed = {
            mode: [
                s['image_s2']
                for s in TerraMeshStream(
                    tmp, 'train', ['S2L1C'], shuffle=False, s2_harmonize=mode
                )
            ]
            for mode in ('never', 'auto')
        }
    means = {
        'before': mean_input(streamed['never'], transform),
        'after': mean_input(streamed['auto'], transform),
        'reference': mean_input(reference, transform),
    }
    after_vs_reference = max(
        float((a.double() - r.double()).abs().max())
        for a, r in zip(streamed['auto'], reference, strict=True)
    )
    emit(
        {
            'benchmark': 's2_harmonization',
            'weights': str(member),
            'samples': len(reference),
            'acquisition_date': args.date,
            'mean_input': {k: round(float(v.mean()), 6) for k, v in means.items()},
            'mean_input_per_band': {
                k: [round(float(b), 6) for b in v] for k, v in means.items()
            },
            'max_abs_dn_difference_after_vs_reference': after_vs_reference,
        }
    )


if __name__ == '__main__':
    main()
