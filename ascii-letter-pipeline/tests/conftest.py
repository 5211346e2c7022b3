"""Letter data rendered once per session: the default tarball and its records."""

import pytest

from ascii_letter import AsciiLetterConfig
from ascii_letter.dataset import save_datasets


@pytest.fixture(scope="session")
def letter_config(tmp_path_factory) -> AsciiLetterConfig:
    """The default letter config with rendered data and records in a private artifact directory."""
    config = AsciiLetterConfig(artifact_dir=str(tmp_path_factory.mktemp("letters")))
    save_datasets(config)
    return config
