"""Breast-cancer diagnosis (malignant or benign) from scikit-learn's Wisconsin table, as a pipeline package.

>>> from breast_cancer import breast_cancer_classifier
>>> model = breast_cancer_classifier(pretrained=True)   # bundled weights, offline, sha256-verified
>>> model.predict(rows)                                  # (N, 30) array or DataFrame -> float32 (N, 2)

Reading input: ``breast_cancer.preprocess`` (``read_input`` for CSV files, ``preprocess_rows``).
"""

from breast_cancer.__version__ import __version__
from breast_cancer.config import FEATURES, BreastCancerConfig

__all__ = ["FEATURES", "BreastCancerConfig", "__version__", "breast_cancer_classifier"]


def __getattr__(name: str) -> object:
    """The classifier, imported on first use so that the command line starts without torch."""
    if name == "breast_cancer_classifier":
        from breast_cancer.model import breast_cancer_classifier

        return breast_cancer_classifier
    raise AttributeError(f"module 'breast_cancer' has no attribute {name!r}")
