"""MNIST digit classifier: fetch data, train, evaluate, predict. Every setting is a flag; see <command> --help."""

import sys

from mlpipes.cli import run_cli
from mnist.__version__ import __version__
from mnist.commands import COMMANDS
from mnist.config import MnistConfig


def main() -> None:
    sys.exit(run_cli(COMMANDS, MnistConfig, prog="mnist", version=__version__, description=__doc__))


if __name__ == "__main__":
    main()
