"""Hostile configs and settings given to ``mnist train-model``: refused before any run is created.

A YAML bomb runs in a subprocess with an address-space limit, so an unguarded parser fails the
test instead of the machine.
"""

from __future__ import annotations

import pytest
from adversarial_helpers import assert_refused, run_console, snapshot

LAUGHS = (
    "channels: [&a [l, l, l, l, l, l, l, l, l], "
    + ", ".join(f"&{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi"))
    + "]\n"
)  # ~1 KB; nine nested levels: 9^9 (387 M) strings when expanded

YAML_CASES = {
    # id: (file content, culprits)
    "duplicate-key": ("epochs: 1\nepochs: 2\n", [r"dup\.yml", "epochs"]),
    "non-utf8": (b"epochs: 1\n# caf\xe9\n", [r"dup\.yml"]),
    "not-a-mapping": ("- epochs\n- 1\n", [r"dup\.yml"]),
    "syntax-error": ("epochs: [1, 2\n", [r"dup\.yml"]),
    "unknown-key": ("epoch: 3\n", [r"dup\.yml|epoch", "epoch"]),
    "nan-in-yaml": ("learning_rate: .nan\n", ["learning.rate"]),
    "python-tag": ("epochs: !!python/object/apply:os.system ['true']\n", [r"dup\.yml"]),
}


@pytest.mark.parametrize("case", list(YAML_CASES))
def test_hostile_yaml_is_refused_naming_the_file_or_key(cli, home, tmp_path, case):
    content, culprits = YAML_CASES[case]
    path = tmp_path / "dup.yml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    before = snapshot(home)
    result = cli("mnist", "train-model", "--config", path, "--epochs", "1")
    assert_refused(result, *culprits, before=before, home=home)
    assert not (home / "mnist" / "runs").exists() or not any((home / "mnist" / "runs").iterdir())


FLAG_CASES = {
    # id: (flags, culprit)
    "learning-rate-nan": (("--learning-rate", "nan"), "learning.rate"),
    "learning-rate-inf": (("--learning-rate", "inf"), "learning.rate"),
    "learning-rate-zero": (("--learning-rate", "0"), "learning.rate"),
    "learning-rate-negative": (("--learning-rate", "-0.1"), "learning.rate"),
    "epochs-zero": (("--epochs", "0"), "epochs"),
    "batch-size-zero": (("--batch-size", "0"), "batch.size"),
    "train-samples-negative": (("--train-samples", "-5"), "train.samples"),
    "weight-decay-nan": (("--weight-decay", "nan"), "weight.decay"),
}


@pytest.mark.parametrize("case", list(FLAG_CASES))
def test_out_of_range_settings_are_refused_before_a_run(cli, home, case):
    flags, culprit = FLAG_CASES[case]
    before = snapshot(home)
    result = cli("mnist", "train-model", *flags)
    assert_refused(result, culprit, before=before, home=home)
    assert not (home / "mnist" / "runs").exists()


def test_a_yaml_bomb_is_refused_within_bounded_memory(home, tmp_path):
    path = tmp_path / "laughs.yml"
    path.write_text(LAUGHS)
    assert path.stat().st_size < 2000
    result = run_console("mnist", "train-model", "--config", path, home=home, memory_gib=3, cpu_seconds=15)
    assert_refused(result, r"laughs\.yml")
