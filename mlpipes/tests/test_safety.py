"""One safe-name rule for paths, and credentials stripped from every URL that is stored or printed."""

from __future__ import annotations

import pytest

from mlpipes.errors import ConfigError
from mlpipes.safety import has_credentials, redact_config, redact_text, redact_url, safe_name


@pytest.mark.parametrize("name", ["1.0.0", "1.0.0+20261121-210400", "mnist", "ascii_letter", "a-b_c.d+e", "x" * 128])
def test_plain_names_pass_unchanged(name: str) -> None:
    assert safe_name(name, "model version") == name


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", ".hidden", "/../../../../x", "../x", "a/b", "a\\b", "a..b", "x" * 129, "a b", "a\x00b", "é", "-rf"],
)
def test_names_that_could_leave_their_folder_are_refused_in_one_line(name: str) -> None:
    with pytest.raises(ConfigError, match="model version .* is not a safe name") as refused:
        safe_name(name, "model version")
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300


def test_non_strings_are_refused() -> None:
    with pytest.raises(ConfigError, match="must be a string"):
        safe_name(3, "pipeline name")


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("s3://AKIAKEY:SeCrEt@bucket/models", "s3://bucket/models"),
        ("https://user:pa55@mirror.example/mnist/", "https://mirror.example/mnist/"),
        ("https://token@host/x", "https://host/x"),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=abc123&X-Amz-Expires=60",
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Expires=60",
        ),
        (
            "https://h/x?token=t0k&page=2&api_key=k3y&Password=p",
            "https://h/x?token=REDACTED&page=2&api_key=REDACTED&Password=REDACTED",
        ),
        ("s3://bucket/models", "s3://bucket/models"),
        ("/plain/path", "/plain/path"),
    ],
)
def test_credentials_are_stripped_from_urls(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
    assert has_credentials(url) == (url != redacted)


def test_every_url_in_a_config_is_redacted_and_nothing_else_changes() -> None:
    config = {
        "registry": "s3://AK:SK@bucket/m",
        "mirrors": ["https://u:pw@h/mnist", "https://h2/x?sig=zz"],
        "nested": {"dataset_url": "https://h/d?token=tt", "epochs": 3, "name": "a:b@c"},
        "device": "cpu",
    }
    out = redact_config(config)
    assert out == {
        "registry": "s3://bucket/m",
        "mirrors": ["https://h/mnist", "https://h2/x?sig=REDACTED"],
        "nested": {"dataset_url": "https://h/d?token=REDACTED", "epochs": 3, "name": "a:b@c"},
        "device": "cpu",
    }
    assert config["registry"] == "s3://AK:SK@bucket/m"  # a copy: the caller's dict is untouched


def test_urls_inside_text_are_redacted() -> None:
    text = "registry: s3://AK:SK@bucket/m\nmirror: 'https://u:pw@h/x?token=t'\n"
    out = redact_text(text)
    assert "SK" not in out and "pw" not in out and "token=t'" not in out
    assert "s3://bucket/m" in out
