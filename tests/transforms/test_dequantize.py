import pytest
import torch

from torchgeo_decur.transforms import ClipNormalize, Dequantize


def test_dequantize_inverts_quantised_clip_normalize_bit_for_bit() -> None:
    # Inputs spanning the window finely, so every code 0..255 occurs.
    x = torch.linspace(-1.0, 2.0, 200_001).reshape(1, 1, -1)
    quantised = ClipNormalize([0.5], [0.25], quantize=True)(x)
    codes = torch.floor(ClipNormalize([0.5], [0.25])(x) * 255.0).to(torch.uint8)
    assert codes.unique().numel() == 256
    assert torch.equal(Dequantize()(codes), quantised)


def test_dequantize_needs_uint8() -> None:
    with pytest.raises(ValueError, match='uint8'):
        Dequantize()(torch.zeros(2))
