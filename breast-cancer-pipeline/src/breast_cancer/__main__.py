"""Breast-cancer diagnosis from 30 cell-nucleus measurements: records, training, evaluation, prediction.

Every setting is a flag: see breast-cancer COMMAND --help.
"""

import sys

from breast_cancer import BreastCancerConfig, __version__
from breast_cancer.commands import COMMANDS
from mlpipes.cli import run_cli


def main() -> None:
    sys.exit(run_cli(COMMANDS, BreastCancerConfig, prog="breast-cancer", version=__version__, description=__doc__))


if __name__ == "__main__":
    main()
