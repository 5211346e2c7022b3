import numpy as np
import pytest
import torch

from mnist import MnistConfig, mnist_classifier, mnist_features
from mnist.model import GridPool, uniform_windows


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
    model = mnist_classifier(MnistConfig(channels=(8, 8, 16), head_grid=2))
    assert model.head[-1].in_features == 16 * 2 * 2 and model.labels == tuple("0123456789")
    assert mnist_classifier(MnistConfig(channels=(8, 8, 16), head_grid=1)).head[-1].in_features == 16


def test_grid_pool_passes_maps_of_its_size_and_averages_others():
    maps = torch.rand(2, 4, 7, 7)
    assert GridPool(7)(maps) is maps
    np.testing.assert_allclose(GridPool(2)(torch.rand(2, 4, 8, 8)).shape, (2, 4, 2, 2))
    shapes = [(16, 16, 7), (7, 7, 3), (7, 7, 2), (8, 8, 4), (7, 7, 4), (10, 10, 4), (9, 7, 1), (7, 9, 3)]
    shapes += [(7, 7, 14), (2, 3, 4)]  # more cells than positions
    for height, width, grid in shapes:
        maps = torch.rand(2, 4, height, width)
        torch.testing.assert_close(GridPool(grid)(maps), torch.nn.functional.adaptive_avg_pool2d(maps, grid))


def test_evenly_spaced_cells_run_as_a_plain_average_pool(monkeypatch):
    """Only equal, evenly spaced windows become a plain average pool (one AveragePool op when exported)."""
    assert uniform_windows(7, 3) == (3, 2) and uniform_windows(7, 2) == (4, 3) and uniform_windows(8, 4) == (2, 2)
    assert uniform_windows(7, 1) == (7, 7)
    assert uniform_windows(7, 4) is None  # windows 2, 3, 3 and 2 wide
    assert uniform_windows(10, 4) is None  # all 3 wide, but starting at 0, 2, 5 and 7
    assert uniform_windows(7, 14) is None  # more cells than positions: adaptive pooling repeats values
    maps = torch.rand(2, 4, 7, 7)
    expected = torch.nn.functional.adaptive_avg_pool2d(maps, 3)

    def refuse(*args, **kwargs):
        raise AssertionError("adaptive pooling called for evenly spaced windows")

    monkeypatch.setattr(torch.nn.functional, "adaptive_avg_pool2d", refuse)
    torch.testing.assert_close(GridPool(3)(maps), expected)


def test_the_default_head_tells_where_a_stroke_is():
    """A global average cannot tell a feature firing top-left from the same one bottom-right."""
    top_left, bottom_right = torch.zeros(1, 1, 28, 28), torch.zeros(1, 1, 28, 28)
    top_left[..., 2:10, 2:10] = 1
    bottom_right[..., 18:26, 18:26] = 1
    torch.manual_seed(0)
    for grid, tells_apart in [(MnistConfig().head_grid, True), (1, False)]:
        model = mnist_classifier(MnistConfig(head_grid=grid)).eval()
        model.features = torch.nn.Identity()  # the head alone, on maps that differ only in position
        model.head[-1] = torch.nn.Linear(grid * grid, 10)
        a, b = model(top_left[..., ::4, ::4]), model(bottom_right[..., ::4, ::4])
        assert (not torch.allclose(a, b)) is tells_apart


def test_versions_saved_before_the_head_grid_existed_load_with_a_global_average(tmp_path):
    from mlpipes.weights import save_version

    old = mnist_classifier(MnistConfig(head_grid=1))
    config = {k: v for k, v in MnistConfig().to_dict().items() if k != "head_grid"}  # as 1.3.0's manifest
    manifest = save_version(
        tmp_path, name="mnist", version="1.3.0", state_dicts={"classifier": old.state_dict()}, config=config,
        metrics={}, dataset_sha256=None, code_version="mnist 0.1.0",
    )  # fmt: skip
    model = mnist_classifier(pretrained=str(manifest))
    assert model.head[-1].in_features == 64
    torch.testing.assert_close(model.head[-1].weight, old.head[-1].weight)
