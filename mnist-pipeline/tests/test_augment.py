import dataclasses

import pytest
import torch

from mlpipes.errors import ConfigError
from mnist import mnist_classifier
from mnist.augment import Augmentation, batch_seed
from mnist.dataset import load_split

OFF = Augmentation(rotation=0, shear=0, scale=0, translate=0, elastic=0, thickness=0)


def stroke_images(n: int = 16, size: int = 28) -> torch.Tensor:
    """White bars on black, one per image at a different place: something with shape to move."""
    x = torch.zeros(n, 1, size, size)
    for i in range(n):
        x[i, 0, 6 + i % 8 : 22, 12 + i % 4 : 15 + i % 4] = 1.0
    return x


def centre_of_mass(x: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(x.shape[2]), torch.arange(x.shape[3]), indexing="ij")
    total = x.sum((1, 2, 3))
    return torch.stack([(x[:, 0] * ys).sum((1, 2)) / total, (x[:, 0] * xs).sum((1, 2)) / total], 1)


def test_same_seed_same_batch_other_seed_other_batch():
    x = stroke_images()
    augment = Augmentation()
    a, b = augment(x, 7), augment(x, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, augment(x, 8))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= 0 and a.max() <= 1
    same = augment(x[:1].expand(4, -1, -1, -1), 0)
    assert not torch.equal(same[0], same[1])  # each image gets its own draw


def test_every_strength_zero_is_the_identity():
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(OFF(x, 0), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "strength", [{"rotation": 20}, {"shear": 0.4}, {"scale": 0.3}, {"translate": 0.1}, {"elastic": 1.0}]
)
def test_each_geometric_change_moves_ink_but_keeps_most_of_it(strength):
    x = stroke_images(64)
    out = dataclasses.replace(OFF, **strength)(x, 0)
    changed = (out - x).abs().sum((1, 2, 3)) > 1.0
    assert changed.float().mean() > 0.8  # nearly every image (a draw near 0 changes little)
    kept = out.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert kept.min() > 0.55 and kept.max() < 1.75  # resampled (scale 0.3 per axis: area × 0.59–1.69), not lost


def test_translation_stays_within_its_range():
    x = stroke_images(64)
    shift = centre_of_mass(dataclasses.replace(OFF, translate=0.1)(x, 0)) - centre_of_mass(x)
    assert shift.abs().max() <= 0.1 * 28 + 0.2
    assert shift.abs().max() > 0.5 * 0.1 * 28  # and uses it
    assert (shift[:, 1] > 0).any() and (shift[:, 1] < 0).any()


def test_pen_width_makes_strokes_thicker_and_thinner():
    x = stroke_images(64)
    out = dataclasses.replace(OFF, thickness=1.0)(x, 0)
    ink = out.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert ink.max() > 1.3 and ink.min() < 0.7
    thicker = ink > 1
    assert (out[thicker] >= x[thicker] - 1e-6).all()  # dilation only adds ink around the stroke
    assert (out[~thicker] <= x[~thicker] + 1e-6).all()


def test_runs_on_the_device_of_the_images_and_matches_the_cpu():
    x = stroke_images(8).double()
    out = Augmentation()(x, 3)
    assert out.dtype == torch.float64
    if torch.cuda.is_available():
        torch.testing.assert_close(Augmentation()(x.cuda(), 3).cpu(), out, atol=1e-4, rtol=0)


def test_bad_input_and_bad_strengths_are_refused():
    with pytest.raises(ValueError, match="expected float images"):
        Augmentation()(torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match="expected float images"):
        Augmentation()(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="key 'augment_rotation'"):
        Augmentation(rotation=-1)
    with pytest.raises(ConfigError, match="key 'augment_thickness'"):
        Augmentation(thickness=2)
    with pytest.raises(ConfigError, match="augment_elastic"):
        Augmentation(elastic=float("nan"))
    assert Augmentation()(torch.zeros(0, 1, 28, 28)).shape == (0, 1, 28, 28)


def test_from_config_reads_the_augment_fields():
    @dataclasses.dataclass(frozen=True)
    class Config:
        augment: bool = True
        augment_rotation: float = 5.0
        augment_elastic: float = 0.0
        seed: int = 0

    augmentation = Augmentation.from_config(Config())
    assert augmentation.rotation == 5.0 and augmentation.elastic == 0.0
    assert augmentation.shear == Augmentation().shear  # not set by the config: the default


def test_batch_seeds_differ_per_epoch_step_and_rank():
    seeds = {batch_seed(0, e, s, r) for e in range(3) for s in range(100) for r in range(4)}
    assert len(seeds) == 3 * 100 * 4
    assert batch_seed(1, 0, 0) != batch_seed(0, 0, 0) and batch_seed(5, 2, 3, 1) == batch_seed(5, 2, 3, 1)
    assert 0 <= batch_seed(2**40, 10**6, 10**6, 64) < 2**63


def test_augmented_digits_are_still_the_same_digits(mnist_config):
    """The bundled model (trained without augmentation) still reads augmented test digits: no label changes."""
    images, labels = load_split(mnist_config, "test", 500)
    x = images.float().div(255)
    model = mnist_classifier(pretrained=True).eval()
    with torch.no_grad():
        clean = (model(x).argmax(1) == labels).float().mean().item()
        augmented = (model(Augmentation()(x, 0)).argmax(1) == labels).float().mean().item()
    assert clean >= 0.98
    assert augmented >= 0.90, f"augmentation turns digits into others: accuracy {augmented:.3f} (clean {clean:.3f})"
