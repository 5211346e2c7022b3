import dataclasses
from pathlib import Path
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


@dataclasses.dataclass(frozen=True)
class OwnRecipeConfig(TrainConfig):
    """A child whose own training code never reads its parent's ``shuffle`` or ``sizes``."""

    unused = ("shuffle", "sizes")


def test_unused_inherited_fields_are_refused_when_set_and_harmless_at_their_defaults(tmp_path):
    assert OwnRecipeConfig().shuffle is True
    assert OwnRecipeConfig(sizes=[16, 32]).sizes == (16, 32)  # the default, however it is spelled
    with pytest.raises(ConfigError, match=r"key 'shuffle': OwnRecipeConfig's code does not read it .* at True"):
        OwnRecipeConfig().replace(shuffle=False)
    with pytest.raises(ConfigError, match="^key 'shuffle'"):
        OwnRecipeConfig(shuffle=False)
    (tmp_path / "c.yml").write_text("sizes: [8]\n")
    with pytest.raises(ConfigError, match=r"c.yml: key 'sizes': .* \(8,\) would be ignored"):
        OwnRecipeConfig.from_yaml(tmp_path / "c.yml")
    assert TrainConfig(shuffle=False).shuffle is False  # the parent, whose code reads it, still takes it


def test_unused_must_name_fields():
    @dataclasses.dataclass(frozen=True)
    class Typo(TrainConfig):
        unused = ("shufle",)

    with pytest.raises(TypeError, match="Typo: unused/recipe_fields name no field shufle"):
        Typo()


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


# ---- richer field types ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Optimizer:
    name: Literal["adamw", "sgd"] = param("adamw", "which optimizer")
    learning_rate: float = param(0.01, "peak learning rate", gt=0)
    betas: tuple[float, float] = param((0.9, 0.999), "Adam betas", ge=0, lt=1)


@dataclasses.dataclass(frozen=True)
class Schedule(Config):
    warmup: float = param(0.25, "fraction of steps warming up", ge=0, le=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.warmup == 0.5:
            raise ConfigError("key 'warmup': 0.5 is reserved, got 0.5")


@dataclasses.dataclass(frozen=True)
class RichConfig(Config):
    pipeline = "rich"
    data_dir: Path = param(Path("data"), "where the data is")
    cache: Path | None = param(None, "optional cache folder")
    tags: list[str] = param(help="labels", factory=list)
    class_weights: dict[str, float] = param({"cat": 1.0}, "loss weight per class", ge=0)
    shape: tuple[int, str] = param((3, "rgb"), "channels and mode")
    optimizer: Optimizer = param(Optimizer(learning_rate=0.5), "the optimizer")
    schedule: Schedule = param(help="the schedule", factory=Schedule)
    epochs: int = param(3, "passes", gt=0)
    dropout: float | None = param(None, "dropout probability", ge=0, lt=1)


def test_param_needs_exactly_one_of_default_or_factory():
    with pytest.raises(TypeError):
        param(help="nothing")
    with pytest.raises(TypeError):
        param(1, "both", factory=list)


def test_mutable_defaults_are_fresh_per_instance():
    a, b = RichConfig(), RichConfig()
    a.tags.append("x")
    a.class_weights["dog"] = 2.0
    assert b.tags == [] and b.class_weights == {"cat": 1.0}
    assert RichConfig().class_weights == {"cat": 1.0}


def test_paths_lists_dicts_and_tuples_are_typed_and_normalised(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("data_dir: /srv/d\ncache: ~/c\ntags: [a, b]\nclass_weights: {cat: 1, dog: 2.5}\nshape: [1, gray]\n")
    config = RichConfig.from_yaml(path)
    assert config.data_dir == Path("/srv/d") and isinstance(config.data_dir, Path)
    assert config.cache == Path("~/c")
    assert config.tags == ["a", "b"]
    assert config.class_weights == {"cat": 1.0, "dog": 2.5} and isinstance(config.class_weights["cat"], float)
    assert config.shape == (1, "gray")


def test_nested_mapping_overrides_only_its_keys_and_keeps_the_field_default(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("optimizer:\n  name: sgd\nschedule: {warmup: 0.1}\n")
    config = RichConfig.from_yaml(path)
    assert config.optimizer == Optimizer(name="sgd", learning_rate=0.5)  # 0.5: the field's default, not 0.01
    assert config.schedule == Schedule(warmup=0.1) and type(config.schedule) is Schedule


def test_replace_and_overrides_merge_into_nested_fields(tmp_path):
    config = RichConfig().replace(optimizer={"betas": [0.8, 0.9]})
    assert config.optimizer == Optimizer(learning_rate=0.5, betas=(0.8, 0.9))
    path = tmp_path / "c.yml"
    path.write_text("optimizer: {name: sgd}\n")
    assert RichConfig.from_yaml(path, optimizer={"learning_rate": 0.1}).optimizer == Optimizer("sgd", 0.1)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"optimizer": {"lerning_rate": 1}},
            "unknown key 'optimizer.lerning_rate'; did you mean 'optimizer.learning_rate'?",
        ),
        ({"optimizer": {"name": "adam"}}, "key 'optimizer.name': expected {adamw,sgd}, got 'adam' (str)"),
        ({"optimizer": {"learning_rate": 0}}, "key 'optimizer.learning_rate': must be > 0, got 0"),
        ({"optimizer": {"betas": [0.9, 1.0]}}, "key 'optimizer.betas': must be >= 0 and < 1, got 1.0"),
        ({"optimizer": "adamw"}, "key 'optimizer': expected Optimizer, got 'adamw' (str)"),
        ({"schedule": {"warmup": 2}}, "key 'schedule.warmup': must be >= 0 and <= 1, got 2.0"),
        ({"schedule": {"warmup": 0.5}}, "key 'schedule.warmup': 0.5 is reserved"),
        ({"data_dir": 3}, "key 'data_dir': expected path, got 3 (int)"),
        ({"tags": "a"}, "key 'tags': expected list[str], got 'a' (str)"),
        ({"tags": ["a", 1]}, "key 'tags': expected list[str], got ['a', 1] (list)"),
        ({"class_weights": {"cat": "x"}}, "key 'class_weights': expected dict[str, float]"),
        ({"class_weights": {"cat": -1}}, "key 'class_weights': must be >= 0, got -1.0"),
        ({"shape": [1, 2]}, "key 'shape': expected tuple[int, str], got [1, 2] (list)"),
        ({"shape": [1]}, "key 'shape': expected tuple[int, str]"),
        ({"epochs": 0}, "key 'epochs': must be > 0, got 0"),
        ({"dropout": 1.0}, "key 'dropout': must be >= 0 and < 1, got 1.0"),
        ({"dropout": float("nan")}, "key 'dropout': must be finite, got nan"),
        ({"class_weights": {"cat": float("inf")}}, "key 'class_weights.cat': must be finite, got inf"),
    ],
)
def test_nested_and_typed_errors_name_the_dotted_key(values, message):
    with pytest.raises(ConfigError) as error:
        RichConfig.from_dict(values)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_every_float_refuses_nan_and_infinity_and_bounds_hold_on_direct_construction():
    for bad in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(ConfigError, match="key 'learning_rate': must be finite"):
            TrainConfig(learning_rate=bad)
    with pytest.raises(ConfigError, match=r"key 'epochs': must be > 0, got -1"):
        RichConfig(epochs=-1)
    assert RichConfig(dropout=None).dropout is None and RichConfig(dropout=0.0).dropout == 0.0


def test_seed_is_not_negative():  # numpy's generators refuse negative seeds mid-run
    with pytest.raises(ConfigError, match=r"key 'seed': must be >= 0, got -1"):
        TrainConfig(seed=-1)


def test_none_for_optional_and_only_for_optional():
    assert RichConfig.from_dict({"cache": None}).cache is None
    with pytest.raises(ConfigError, match="key 'data_dir': expected path, got None"):
        RichConfig.from_dict({"data_dir": None})


def test_source_names_the_file_for_type_errors(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("epochs: many\n")
    with pytest.raises(ConfigError, match=r"c\.yml: key 'epochs': expected int, got 'many'"):
        RichConfig.from_yaml(path)


def test_to_yaml_writes_plain_types_paths_as_strings():
    import yaml

    config = RichConfig(data_dir=Path("/x"), tags=["a"], optimizer=Optimizer("sgd", 0.2))
    data = yaml.safe_load(config.to_yaml())
    assert data["data_dir"] == "/x" and data["optimizer"] == {
        "name": "sgd",
        "learning_rate": 0.2,
        "betas": [0.9, 0.999],
    }
    assert data["shape"] == [3, "rgb"] and data["schedule"]["warmup"] == 0.25


def test_describe_shows_factory_defaults():
    rows = {name: (tp, default, help_text) for name, tp, default, help_text in RichConfig.describe()}
    assert rows["tags"] == (list[str], [], "labels")
    assert rows["schedule"][1] == Schedule()


# ---- safe YAML ----------------------------------------------------------------------------------
def test_duplicate_keys_are_refused_naming_file_line_and_key(tmp_path):
    path = tmp_path / "dup.yml"
    path.write_text("epochs: 1\nseed: 2\nepochs: 3\n")
    with pytest.raises(ConfigError, match=r"dup\.yml:3:1: invalid YAML: duplicate key 'epochs' \(first at line 1\)"):
        RichConfig.from_yaml(path)
    path.write_text("optimizer:\n  name: sgd\n  name: adamw\n")
    with pytest.raises(ConfigError, match=r"dup\.yml:3:3: .*duplicate key 'name'"):
        RichConfig.from_yaml(path)


def test_merge_keys_may_override_without_being_duplicates(tmp_path):
    path = tmp_path / "m.yml"
    from mlpipes.config import read_yaml

    path.write_text("optimizer:\n  <<: {name: sgd, learning_rate: 0.1}\n  learning_rate: 0.2\n")
    assert read_yaml(path) == {"optimizer": {"name": "sgd", "learning_rate": 0.2}}


def test_billion_laughs_is_refused_quickly_in_one_line(tmp_path):
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        levels.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    levels.append("channels: *j")
    path = tmp_path / "lol.yml"
    path.write_text("\n".join(levels) + "\n")
    assert path.stat().st_size < 1500
    with pytest.raises(ConfigError, match=r"lol\.yml:\d+:\d+: invalid YAML: aliases expand to more than") as error:
        RichConfig.from_yaml(path)
    assert "\n" not in str(error.value)


def test_modest_aliases_still_work(tmp_path):
    path = tmp_path / "a.yml"
    path.write_text("tags: &t [x, y]\nclass_weights: {cat: 2}\n")
    assert RichConfig.from_yaml(path).tags == ["x", "y"]


def test_self_referencing_alias_and_deep_nesting_are_refused(tmp_path):
    path = tmp_path / "r.yml"
    path.write_text("tags: &t [*t]\n")
    with pytest.raises(ConfigError, match=r"r\.yml:1:\d+: invalid YAML: alias \*t"):
        RichConfig.from_yaml(path)
    path.write_text("tags: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"r\.yml:1:\d+: invalid YAML: nested deeper than"):
        RichConfig.from_yaml(path)


def test_oversized_file_is_refused_before_parsing_and_the_limit_can_be_raised(tmp_path, monkeypatch):
    path = tmp_path / "big.yml"
    path.write_text("tags: [x]\n" + "#" * (1 << 20) + "\n")
    with pytest.raises(
        ConfigError, match=r"big\.yml: config file is larger than 1048576 bytes.*MLPIPES_MAX_CONFIG_BYTES"
    ):
        RichConfig.from_yaml(path)
    path.write_text("tags: [" + ", ".join(["x"] * 1000) + "]\n")
    monkeypatch.setenv("MLPIPES_MAX_CONFIG_BYTES", "1000")
    with pytest.raises(ConfigError, match=r"larger than 1000 bytes"):
        RichConfig.from_yaml(path)
    monkeypatch.setenv("MLPIPES_MAX_CONFIG_BYTES", "4000")
    assert len(RichConfig.from_yaml(path).tags) == 1000
    monkeypatch.setenv("MLPIPES_MAX_CONFIG_BYTES", "lots")
    with pytest.raises(ConfigError, match=r"\$MLPIPES_MAX_CONFIG_BYTES=lots: expected a positive integer"):
        RichConfig.from_yaml(path)


@pytest.mark.parametrize("fast", [True, False], ids=["libyaml-events", "pure-python"])
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\nb: 2\na: 3\n", "f:3:1: invalid YAML: duplicate key 'a' (first at line 1)"),
        ("a: &a [*a]\n", "f:1:8: invalid YAML: alias *a refers to a node that contains it"),
        ("a: " + "[" * 150 + "]" * 150, "f:1:103: invalid YAML: nested deeper than 100 levels"),
        ("a: !!python/object/apply:os.system [x]", "f:1:4: invalid YAML: could not determine a constructor"),
        ("a: b\x00", "f: invalid YAML: character #x0000 at offset 4 is not allowed"),
    ],
)
def test_both_yaml_parsers_refuse_the_same_hostile_documents(fast, text, message):
    from mlpipes.config import load_yaml

    with pytest.raises(ConfigError) as error:
        load_yaml(text, "f", fast=fast)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("fast", [True, False], ids=["libyaml-events", "pure-python"])
def test_both_yaml_parsers_read_anchors_merges_and_types_alike(fast):
    from mlpipes.config import load_yaml

    text = "a: 1\nb: [1.5, {c: d}, null, true]\nx: &x {q: 1}\ny: *x\nm:\n  <<: *x\n  q: 2\n"
    expected = {"a": 1, "b": [1.5, {"c": "d"}, None, True], "x": {"q": 1}, "y": {"q": 1}, "m": {"q": 2}}
    assert load_yaml(text, fast=fast) == expected


def test_non_utf8_file_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "latin1.yml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.yml: not UTF-8 text \(byte 0xe9 at offset 9\)"):
        TrainConfig.from_yaml(path)


def test_byte_order_mark_and_control_characters(tmp_path):
    path = tmp_path / "bom.yml"
    path.write_bytes(b"\xef\xbb\xbfname: x\n")
    assert TrainConfig.from_yaml(path).name == "x"
    path.write_bytes(b"name: a\x00b\n")
    with pytest.raises(ConfigError, match=r"bom\.yml: invalid YAML: character #x0000 at offset 7 is not allowed"):
        TrainConfig.from_yaml(path)


def test_python_tags_are_not_executed(tmp_path):
    path = tmp_path / "evil.yml"
    path.write_text("name: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match=r"evil\.yml:1:7: invalid YAML: could not determine a constructor"):
        TrainConfig.from_yaml(path)


# ---- round trips of the richer types ----------------------------------------------------------------
finite = st.floats(allow_nan=False, allow_infinity=False)
rich_configs = st.builds(
    RichConfig,
    data_dir=names.map(Path),
    cache=st.one_of(st.none(), names.map(Path)),
    tags=st.lists(names, max_size=4),
    class_weights=st.dictionaries(names, st.floats(0, 1e6), max_size=4),
    shape=st.tuples(st.integers(-5, 5), names),
    optimizer=st.builds(
        Optimizer,
        name=st.sampled_from(["adamw", "sgd"]),
        learning_rate=st.floats(min_value=1e-9, max_value=10),
        betas=st.tuples(st.floats(0, 0.99), st.floats(0, 0.99)),
    ),
    schedule=st.builds(Schedule, warmup=st.floats(0, 1).filter(lambda w: w != 0.5)),
    epochs=st.integers(1, 1000),
    dropout=st.one_of(st.none(), st.floats(0, 0.99)),
)


@given(rich_configs)
def test_rich_config_saved_as_yaml_loads_back_equal(config):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(config.to_yaml())
        assert RichConfig.from_yaml(path) == config
        assert RichConfig.from_dict(config.to_dict()) == config
