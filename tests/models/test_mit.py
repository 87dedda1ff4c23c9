import pytest
import segmentation_models_pytorch as smp
import timm
import torch

from torchgeo_decur.models import MiTEncoder, build_backbone, feature_dim

# Full-size MiT encoders are only filled with random weights here: skip the slow
# truncated-normal initialisation.
pytestmark = pytest.mark.usefixtures('fast_init')


@pytest.mark.parametrize(('variant', 'keys'), [('mit_b2', 332), ('mit_b5', 1052)])
def test_keys_equal_smp_and_segformer_counts(variant: str, keys: int) -> None:
    model = timm.create_model(variant, num_classes=0)
    assert isinstance(model, MiTEncoder)
    ours = model.state_dict()
    assert len(ours) == keys  # SegFormer encoder without head
    assert list(ours) == list(smp.encoders.get_encoder(variant).state_dict())


def test_pooled_features_are_mean_of_last_stage() -> None:
    torch.manual_seed(0)
    model = build_backbone('mit_b2', 3).eval()
    x = torch.rand(2, 3, 64, 64)
    stages = model.forward_stages(x)
    assert [s.shape[1] for s in stages[2:]] == [64, 128, 320, 512]
    assert torch.allclose(model(x), stages[-1].mean(dim=(2, 3)))
    assert feature_dim(model) == 512


def test_head_matches_decur_pretraining_backbone() -> None:
    model = build_backbone('mit_b2', 3, num_classes=2048).eval()
    assert feature_dim(model) == 2048
    assert model.state_dict()['head.weight'].shape == (2048, 512)
    x = torch.rand(1, 3, 64, 64)
    pooled = model.forward_stages(x)[-1].mean(dim=(2, 3))
    assert torch.allclose(model(x), model.head(pooled))


def test_loading_is_strict() -> None:
    model = build_backbone('mit_b2', 3)
    state = model.state_dict()
    state['head.weight'] = torch.zeros(2048, 512)
    with pytest.raises(RuntimeError, match='Unexpected key'):
        model.load_state_dict(state)


def test_unknown_arguments_are_errors() -> None:
    with pytest.raises(ValueError, match=r"mit_b2 does not accept \['img_size'\]"):
        timm.create_model('mit_b2', img_size=128)
