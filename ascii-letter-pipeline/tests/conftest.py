"""Letter data rendered once per session: the default tarball and its records."""

import pytest

from ascii_letter import AsciiLetterConfig
from ascii_letter.dataset import save_datasets
from mlpipes.errors import DataError
from mnist.pen import find_fonts


@pytest.fixture(scope="session")
def letter_config(tmp_path_factory) -> AsciiLetterConfig:
    """The default letter config with rendered data and records in a private artifact directory."""
    config = AsciiLetterConfig(artifact_dir=str(tmp_path_factory.mktemp("letters")))
    save_datasets(config)
    return config


@pytest.fixture(scope="session")
def bundled_letter_config(tmp_path_factory) -> AsciiLetterConfig:
    """The config that produced the bundled letter weights, with its data rendered into a private directory."""
    from pathlib import Path

    import ascii_letter

    recipe = Path(ascii_letter.__file__).parent / "configs" / "pretrained.yml"
    config = AsciiLetterConfig.from_yaml(recipe, artifact_dir=str(tmp_path_factory.mktemp("bundled-letters")))
    try:
        find_fonts(config.handwriting_fonts)
    except DataError as e:  # Debian packages that .ci/run installs
        pytest.skip(f"the bundled recipe's handwriting fonts are not installed: {e}")
    save_datasets(config)
    return config
