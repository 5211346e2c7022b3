import re
import subprocess
import sys
from pathlib import Path

from ascii_letter import AsciiLetterConfig
from mnist import MnistConfig


def test_child_overrides_only_what_differs(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPIPES_HOME", str(tmp_path))
    child, parent = AsciiLetterConfig(), MnistConfig()
    assert isinstance(child, MnistConfig)
    assert child.labels == tuple("abcdefghijklmnopqrstuvwxyz") and child.num_classes == 26
    assert child.image_shape == (1, 32, 32)
    assert (child.train_samples, child.test_samples) == (0, 0)  # all: a bigger tarball is never silently cut
    assert child.pretrained_features is True and parent.pretrained_features is False
    assert child.artifacts == tmp_path / "ascii_letter" and parent.artifacts == tmp_path / "mnist"
    inherited = {"channels", "weight_decay", "label_smoothing", "seed", "device", "model_version", "registry"}
    assert {name: getattr(child, name) for name in inherited} == {name: getattr(parent, name) for name in inherited}


def test_yaml_and_derived_values_are_inherited(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("batch_size: 16\nimage_size: 48\n")
    config = AsciiLetterConfig.from_yaml(path)
    assert type(config) is AsciiLetterConfig
    assert (config.batch_size, config.image_shape, config.learning_rate) == (16, (1, 48, 48), 0.003)
    assert config.drawing == {"size": 48, "box": round(48 * 20 / 28), "center": "mass"}  # MNIST's property
    assert AsciiLetterConfig.from_yaml(tmp_path / "c.yml") == config


def test_help_lists_parent_and_child_settings():
    out = subprocess.run([sys.executable, "-m", "ascii_letter", "train-model", "--help"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    for flag in ("--examples-per-class", "--test-per-class", "--tarball", "--batch-size", "--channels", "--resume"):
        assert flag in out
    assert "default: 32]" in " ".join(out.split())  # the child's image size


def test_a_generated_child_of_the_letters_refuses_their_own_data_settings_and_keeps_examples_per_class():
    import dataclasses

    import pytest

    from mlpipes.config import param
    from mlpipes.errors import ConfigError

    @dataclasses.dataclass(frozen=True)
    class Grandchild(AsciiLetterConfig):  # what `mlpipes new X --parent ascii_letter` writes, in short
        unused = AsciiLetterConfig.recipe_fields
        examples_per_class: int = param(60, "its own dataset.py draws these", gt=0)

    assert set(MnistConfig.recipe_fields) < set(AsciiLetterConfig.recipe_fields)
    assert Grandchild(examples_per_class=10).examples_per_class == 10
    for key, value in (("generator", "fonts"), ("tarball", "letters.tar.gz"), ("teachers", ("t.json",))):
        with pytest.raises(ConfigError, match=f"key '{key}': Grandchild's code does not read it"):
            Grandchild().replace(**{key: value})
    assert AsciiLetterConfig(generator="fonts").generator == "fonts"  # the letters themselves read it


def test_the_makefile_trains_the_teachers_the_recipe_distils_from():
    # `make pretrained-letters` trains a teacher per LETTER_TEACHERS seed, in its own artifact folder
    # and as version "teacher"; the recipe it distils with must list exactly those weights.
    repo = Path(__file__).resolve().parents[2]
    makefile = (repo / "Makefile").read_text()
    variables = dict(re.findall(r"^(LETTERS_CONFIG|LETTER_TEACHERS) := (.+)$", makefile, re.M))
    seeds = [teacher.split(":")[0] for teacher in variables["LETTER_TEACHERS"].split()]
    teacher_folder = re.search(r"--artifact-dir (\S+)-\$\$seed", makefile).group(1)
    version = re.search(r"--model-version (\S+) --artifact-dir " + re.escape(teacher_folder), makefile).group(1)
    recipe = AsciiLetterConfig.from_yaml(repo / variables["LETTERS_CONFIG"])
    assert seeds and list(recipe.teachers) == [
        f"{teacher_folder}-{seed}/weights/ascii_letter-{version}.json" for seed in seeds
    ]
