import dataclasses
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlpipes.config import Config, param
from mlpipes.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TrainConfig(Config):
    pipeline = "demo"
    batch_size: int = param(128, "examples per step")
    learning_rate: float = param(0.01, "peak learning rate")
    name: str = param("run", "a label")
    sizes: tuple[int, ...] = param((16, 32), "channel widths")
    device: Literal["auto", "cpu", "cuda"] = param("auto", "where to train")
    features: bool | str = param(False, "pretrained features")
    shuffle: bool = param(True, "shuffle each epoch")

    @property
    def steps(self) -> int:
        return 60_000 // self.batch_size


@dataclasses.dataclass(frozen=True)
class ChildConfig(TrainConfig):
    pipeline = "child"
    batch_size: int = param(32, "smaller batches")
    letters: int = param(26, "classes")


def test_yaml_overrides_only_the_keys_it_names(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("batch_size: 64\nsizes: [8, 8, 8]\n")
    config = TrainConfig.from_yaml(path)
    assert config.batch_size == 64 and config.sizes == (8, 8, 8)
    assert config.learning_rate == 0.01 and config.name == "run"
    assert config.steps == 937  # derived values follow the override


def test_from_yaml_returns_the_subclass_with_its_defaults(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("letters: 10\n")
    config = ChildConfig.from_yaml(path)
    assert type(config) is ChildConfig
    assert (config.letters, config.batch_size, config.learning_rate) == (10, 32, 0.01)


def test_unknown_key_names_the_key_and_the_closest_valid_one(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("batch_sise: 64\n")
    with pytest.raises(ConfigError, match=r"unknown key 'batch_sise'.*did you mean 'batch_size'"):
        TrainConfig.from_yaml(path)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("batch_size", "64", "int"),
        ("batch_size", 6.5, "int"),
        ("batch_size", True, "int"),
        ("name", 7.3, "str"),
        ("device", "tpu", "{auto,cpu,cuda}"),
        ("sizes", [1, "x"], "tuple"),
        ("shuffle", "yes", "bool"),
    ],
)
def test_wrong_type_names_key_expected_type_and_value(key, value, expected):
    with pytest.raises(ConfigError) as error:
        TrainConfig.from_dict({key: value})
    message = str(error.value)
    assert f"'{key}'" in message and expected in message and repr(value) in message


def test_int_is_accepted_for_float_and_string_stays_string():
    config = TrainConfig.from_dict({"learning_rate": 1, "name": "7.30"})
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)
    assert config.name == "7.30"


def test_union_field_accepts_each_member():
    assert TrainConfig(features=True).features is True
    assert TrainConfig(features="s3://bucket/x").features == "s3://bucket/x"


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yml"
    path.write_text("batch_size: 64\nname: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yml:\d+:\d+: invalid YAML"):
        TrainConfig.from_yaml(path)


def test_top_level_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yml: expected a mapping"):
        TrainConfig.from_yaml(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        TrainConfig.from_yaml(tmp_path / "nope.yml")


def test_replace_validates():
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig().replace(batch_size="big")


def test_artifact_directory_field_beats_environment_beats_default(tmp_path, monkeypatch):
    monkeypatch.delenv("MLPIPES_HOME", raising=False)
    assert TrainConfig().artifacts.parts[-2:] == (".mlpipes", "demo")
    monkeypatch.setenv("MLPIPES_HOME", str(tmp_path / "home"))
    assert TrainConfig().artifacts == tmp_path / "home" / "demo"
    assert ChildConfig().artifacts == tmp_path / "home" / "child"
    assert TrainConfig(artifact_dir=str(tmp_path / "x")).artifacts == tmp_path / "x"


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
configs = st.builds(
    TrainConfig,
    batch_size=st.integers(-(2**40), 2**40),
    learning_rate=st.floats(allow_nan=False, allow_infinity=False),
    name=names,
    sizes=st.lists(st.integers(0, 4096), max_size=5).map(tuple),
    device=st.sampled_from(["auto", "cpu", "cuda"]),
    features=st.one_of(st.booleans(), names),
    shuffle=st.booleans(),
)


@given(configs)
def test_yaml_round_trip_gives_an_equal_config(config):
    import yaml

    assert TrainConfig.from_dict(yaml.safe_load(config.to_yaml())) == config


@given(configs)
def test_saved_config_loads_back_equal(config):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(config.to_yaml())
        assert TrainConfig.from_yaml(path) == config
