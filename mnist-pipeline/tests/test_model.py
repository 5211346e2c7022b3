import numpy as np
import pytest
import torch

from mnist import MnistConfig, mnist_classifier, mnist_features


@pytest.mark.parametrize("size", [28, 32, 64])
def test_features_take_any_image_of_28_pixels_or_more(size):
    features = mnist_features()
    out = features(torch.rand(2, 1, size, size))
    assert out.shape == (2, 64, size // 4, size // 4)


@pytest.mark.parametrize("size", [28, 32, 64])
def test_classifier_gives_probabilities_for_any_size(size):
    model = mnist_classifier()
    probabilities = model.predict(np.random.default_rng(0).integers(0, 256, (3, size, size), dtype=np.uint8))
    assert probabilities.dtype == np.float32 and probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(1), 1, rtol=1e-5)


def test_predict_leaves_the_model_in_eval_mode_and_needs_no_grad():
    model = mnist_classifier().train()
    model.predict(np.zeros((1, 28, 28), np.uint8))
    assert not model.training


def test_config_shapes_the_model():
    model = mnist_classifier(MnistConfig(channels=(8, 8, 16)))
    assert model.head[-1].in_features == 16 and model.labels == tuple("0123456789")
