#!/usr/bin/env python3
"""Write a tiny SUN RGB-D fixture in the RGB-X (CMX) folder layout.

Layout (as RGBX_Semantic_Segmentation's ``RGBXDataset`` and the DeCUR pretraining
read it)::

    RGB/<name>.jpg      8-bit colour image (JPEG)
    HHA/<name>.png      8-bit 3-channel HHA map (PNG; one sample as .jpg, which
                        the reference also accepted)
    Label/<name>.png    8-bit gray label image, 0 = unlabelled, 1-37 classes
    train.txt           one name per line (CMX form)
    test.txt            ``RGB/<name>.jpg`` per line (the path form of some forks)

Images come in two native sizes, as SUN RGB-D mixes cameras.

``invalid/`` holds broken samples for error-handling tests: 000011 has no HHA
map, 000012 has no label image, 000013 is listed but has no RGB image, 000014 has
an HHA map but no RGB image (only visible to split 'all'), 000015 has a 16-bit HHA
file (raw depth by mistake), and 000016's HHA map is smaller than its image.

Run from anywhere: ``python tests/data/sunrgbd/data.py``.
"""

import os
import shutil

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = ((36, 48), (40, 52))  # (height, width); real data ~ 427-531 x 561-730
TRAIN = ('000001', '000002', '000003', '000004')
TEST = ('000005', '000006')
JPG_HHA = '000004'


def smooth(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Spatially correlated values in [0, 1]."""
    coarse = rng.random((shape[0] // 4 + 2, shape[1] // 4 + 2))
    field = np.kron(coarse, np.ones((4, 4)))[: shape[0], : shape[1]]
    return (field - field.min()) / (np.ptp(field) + 1e-9)


def write_sample(
    root: str,
    name: str,
    rng: np.random.Generator,
    shape: tuple[int, int],
    rgb: bool = True,
    hha: str | None = '.png',
    label: bool = True,
    hha_shape: tuple[int, int] | None = None,
) -> None:
    """Write the files of one sample (``hha=None``: no HHA map)."""
    for folder in ('RGB', 'HHA', 'Label'):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    base = smooth(rng, shape)
    if rgb:
        colour = np.stack(
            [base * 200 + 20, (1 - base) * 180 + 30, smooth(rng, shape) * 255], axis=-1
        )
        Image.fromarray(colour.astype(np.uint8), 'RGB').save(
            os.path.join(root, 'RGB', f'{name}.jpg'), quality=90
        )
    if hha == '.png16':
        depth = (base * 8000).astype(np.uint16)  # raw millimetres, not HHA
        Image.fromarray(depth).save(os.path.join(root, 'HHA', f'{name}.png'))
    elif hha is not None:
        hshape = hha_shape or shape
        hbase = smooth(rng, hshape)
        # Disparity, height above ground, angle with gravity.
        maps = np.stack(
            [
                hbase * 255,
                np.linspace(0, 255, hshape[0])[:, None] + 0 * hbase,
                128 + 0 * hbase,
            ],
            axis=-1,
        )
        path = os.path.join(root, 'HHA', f'{name}{hha}')
        image = Image.fromarray(maps.astype(np.uint8), 'RGB')
        image.save(path, **({'quality': 95} if hha == '.jpg' else {}))
    if label:
        classes = np.floor(base * 36.999).astype(np.uint8) + 1
        classes[:2] = 0  # an unlabelled border row
        Image.fromarray(classes, 'L').save(os.path.join(root, 'Label', f'{name}.png'))


def main() -> None:
    rng = np.random.default_rng(0)
    for entry in ('RGB', 'HHA', 'Label', 'invalid', 'train.txt', 'test.txt'):
        path = os.path.join(HERE, entry)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    for i, name in enumerate(TRAIN + TEST):
        hha = '.jpg' if name == JPG_HHA else '.png'
        write_sample(HERE, name, rng, SIZES[i % 2], hha=hha)
    with open(os.path.join(HERE, 'train.txt'), 'w') as f:
        f.write(''.join(f'{n}\n' for n in TRAIN))
    with open(os.path.join(HERE, 'test.txt'), 'w') as f:
        f.write(''.join(f'RGB/{n}.jpg\n' for n in TEST))

    invalid = os.path.join(HERE, 'invalid')
    write_sample(invalid, '000010', rng, SIZES[0])  # a good one
    write_sample(invalid, '000011', rng, SIZES[0], hha=None)
    write_sample(invalid, '000012', rng, SIZES[0], label=False)
    write_sample(invalid, '000014', rng, SIZES[0], rgb=False, label=False)
    write_sample(invalid, '000015', rng, SIZES[0], hha='.png16')
    write_sample(invalid, '000016', rng, SIZES[0], hha_shape=(18, 24))
    lists = {
        'train.txt': ('000010', '000011', '000012', '000013'),
        'test.txt': ('000010', '000015', '000016'),
    }
    for file, names in lists.items():
        with open(os.path.join(invalid, file), 'w') as f:
            f.write(''.join(f'{n}\n' for n in names))


if __name__ == '__main__':
    main()
