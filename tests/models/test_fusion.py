import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from torchgeo_decur.models import (
    FCNFusionSegmenter,
    LateFusionClassifier,
    build_backbone,
)


def pyramid(in_chans: int) -> nn.Module:
    return timm.create_model(
        'resnet18', features_only=True, out_indices=(2, 3, 4), in_chans=in_chans
    )


@pytest.fixture
def classifier() -> LateFusionClassifier:
    torch.manual_seed(0)
    encoders = {
        's1': build_backbone('resnet18', 2),
        's2': build_backbone('resnet18', 13),
    }
    return LateFusionClassifier(encoders, 19).eval()


def test_late_fusion_concatenates_pooled_features(
    classifier: LateFusionClassifier,
) -> None:
    x = {'s1': torch.rand(3, 2, 32, 32), 's2': torch.rand(3, 13, 32, 32)}
    assert classifier.head.in_features == 1024
    assert float(classifier.head.weight.std()) == pytest.approx(0.01, rel=0.1)
    assert torch.equal(classifier.head.bias, torch.zeros(19))
    with torch.no_grad():
        logits = classifier(x)
        f1 = classifier.encoders['s1'](x['s1'])
        f2 = classifier.encoders['s2'](x['s2'])
        expected = classifier.head(torch.cat([f1, f2], 1))
        dropped = classifier({'s1': x['s1']}, drop=['s2'])
        expected_dropped = classifier.head(torch.cat([f1, torch.zeros_like(f2)], 1))
    assert logits.shape == (3, 19)
    assert torch.allclose(logits, expected, atol=1e-6)
    assert torch.allclose(dropped, expected_dropped, atol=1e-6)


def test_late_fusion_errors(classifier: LateFusionClassifier) -> None:
    x = {'s1': torch.rand(1, 2, 32, 32)}
    with pytest.raises(ValueError, match=r"no input for modalities \['s2'\]"):
        classifier(x)
    with pytest.raises(ValueError, match='unknown modalities'):
        classifier(x, drop=['rgb'])
    with pytest.raises(ValueError, match='every modality'):
        classifier(x, drop=['s1', 's2'])
    with pytest.raises(ValueError, match='at least one encoder'):
        LateFusionClassifier({}, 19)


def reference_fcn(
    model: FCNFusionSegmenter, x: dict[str, torch.Tensor]
) -> torch.Tensor:
    """The reference order: 1x1 reduce -> upsample (x8/16/32) -> 1x1 classify."""
    feats = {m: model.encoders[m](x[m]) for m in model.modalities}
    out = torch.zeros(())
    for level, scale in enumerate((8, 16, 32)):
        cat = torch.cat([feats[m][level] for m in model.modalities], 1)
        up = F.interpolate(
            model.reduce[level](cat),
            scale_factor=scale,
            mode='bilinear',
            align_corners=True,
        )
        out = out + model.classify[level](up)
    return out


def test_fcn_matches_reference_order_and_sums_levels() -> None:
    torch.manual_seed(0)
    model = FCNFusionSegmenter({'rgb': pyramid(3), 'dem': pyramid(3)}, 11).eval()
    # Per-level fused channels of two resnet18 pyramids (128, 256, 512 each).
    assert [r.in_channels for r in model.reduce] == [256, 512, 1024]
    assert [r.out_channels for r in model.reduce] == [128, 256, 512]
    x = {'rgb': torch.rand(2, 3, 64, 64), 'dem': torch.rand(2, 3, 64, 64)}
    with torch.no_grad():
        ours = model(x)
        ref = reference_fcn(model, x)
    assert ours.shape == (2, 11, 64, 64)
    assert torch.allclose(ours, ref, atol=1e-4)


def test_fcn_any_tile_size_single_modality_and_drop() -> None:
    torch.manual_seed(0)
    single = FCNFusionSegmenter({'rgb': pyramid(3)}, 11).eval()
    assert [r.in_channels for r in single.reduce] == [128, 256, 512]
    with torch.no_grad():
        assert single({'rgb': torch.rand(1, 3, 50, 50)}).shape == (1, 11, 50, 50)
    model = FCNFusionSegmenter({'rgb': pyramid(3), 'dem': pyramid(1)}, 5).eval()
    x = {'rgb': torch.rand(2, 3, 32, 32)}
    with torch.no_grad():
        dropped = model(x, drop=['dem'])
        # Dropping = zero feature maps for the missing branch.
        feats = model.encoders['rgb'](x['rgb'])
        expected = torch.zeros(())
        for level, f in enumerate(feats):
            zeros = torch.zeros(2, model.level_channels['dem'][level], *f.shape[-2:])
            y = model.classify[level](model.reduce[level](torch.cat([f, zeros], 1)))
            expected = expected + F.interpolate(
                y, size=(32, 32), mode='bilinear', align_corners=True
            )
    assert torch.allclose(dropped, expected, atol=1e-5)
    with pytest.raises(ValueError, match='one grid'):
        model({'rgb': torch.rand(1, 3, 32, 32), 'dem': torch.rand(1, 1, 64, 64)})


def test_fcn_needs_feature_pyramids() -> None:
    with pytest.raises(ValueError, match='features_only=True'):
        FCNFusionSegmenter({'rgb': build_backbone('resnet18', 3)}, 11)
    with pytest.raises(ValueError, match='reduce_channels'):
        FCNFusionSegmenter({'rgb': pyramid(3)}, 11, reduce_channels=(128, 256))
