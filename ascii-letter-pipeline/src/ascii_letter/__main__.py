"""Letter classifier (a-z) transferred from MNIST: render data, train, evaluate, predict. See <command> --help."""

import sys

from ascii_letter.__version__ import __version__
from ascii_letter.commands import COMMANDS
from ascii_letter.config import AsciiLetterConfig
from mlpipes.cli import run_cli


def main() -> None:
    sys.exit(run_cli(COMMANDS, AsciiLetterConfig, prog="ascii-letter", version=__version__, description=__doc__))


if __name__ == "__main__":
    main()
