import pytest
import torch

from torchgeo_decur.transforms import InsertChannel, RepeatChannels, SelectChannels


def test_insert_channel_places_constant_at_index() -> None:
    x = torch.arange(12.0).reshape(1, 12, 1, 1).expand(2, 12, 3, 3)
    y = InsertChannel(10, 0.0, in_channels=12)(x)
    assert y.shape == (2, 13, 3, 3)
    assert torch.equal(y[:, :10], x[:, :10])
    assert torch.equal(y[:, 10], torch.zeros(2, 3, 3))
    assert torch.equal(y[:, 11:], x[:, 10:])
    # Single samples (C, H, W) and appending at the end work too.
    assert torch.equal(
        InsertChannel(2, 7.0)(torch.zeros(2, 1, 1))[2], torch.full((1, 1), 7.0)
    )


def test_insert_channel_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match='expected 12 channels, got 13'):
        InsertChannel(10, in_channels=12)(torch.zeros(1, 13, 2, 2))
    with pytest.raises(ValueError, match='cannot insert at index 5'):
        InsertChannel(5)(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match=r'\(C, H, W\)'):
        InsertChannel(0)(torch.zeros(4, 4))


def test_select_channels_reorders_rgb_to_bgr() -> None:
    rgb = torch.stack([torch.full((2, 2), v) for v in (0.1, 0.2, 0.3)])
    bgr = SelectChannels([2, 1, 0])(rgb)
    assert bgr[:, 0, 0].tolist() == pytest.approx([0.3, 0.2, 0.1])
    assert SelectChannels([2, 1, 0])(rgb[None]).shape == (1, 3, 2, 2)
    with pytest.raises(ValueError, match='out of range'):
        SelectChannels([3])(rgb)
    with pytest.raises(ValueError, match='at least one'):
        SelectChannels([])


def test_repeat_channels() -> None:
    dem = torch.rand(2, 1, 4, 4)
    out = RepeatChannels(3)(dem)
    assert out.shape == (2, 3, 4, 4)
    assert all(torch.equal(out[:, i], dem[:, 0]) for i in range(3))
    with pytest.raises(ValueError, match='expected one channel'):
        RepeatChannels(3)(torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match='positive'):
        RepeatChannels(0)
