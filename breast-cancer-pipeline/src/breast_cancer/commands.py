"""The ``breast-cancer`` commands: writing the records and training are this pipeline's; the rest are mlpipes'.

Nothing heavy (numpy, torch, scikit-learn) is imported before a command runs.
"""

from typing import Annotated

from breast_cancer.config import BreastCancerConfig
from mlpipes.commands import STANDARD, report_records


def save_datasets(config: BreastCancerConfig, force: Annotated[bool, "write them even if up to date"] = False) -> None:
    """Split scikit-learn's bundled table (stratified, seeded) into train/test records with named columns."""
    from breast_cancer.dataset import save_datasets as write

    report_records(write(config, force))


def train_model(config: BreastCancerConfig, resume: Annotated[bool, "continue the newest run"] = False) -> None:
    """Train the MLP: run record, a checkpoint per epoch, calibrated and versioned weights."""
    from breast_cancer.train import train_model as train

    train(config, resume)


COMMANDS = [save_datasets, train_model, *STANDARD]
