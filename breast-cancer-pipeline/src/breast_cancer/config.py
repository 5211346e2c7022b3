"""Every setting of the breast-cancer pipeline: mlpipes' ``PipelineConfig`` plus the recipe's own fields.

The data is the Wisconsin diagnostic table scikit-learn ships in its wheel: 569 cases, 30
measurements of cell nuclei each, labelled malignant or benign. Nothing here imports numpy,
torch or scikit-learn, so ``breast-cancer --help`` answers at once.
"""

import dataclasses
from pathlib import Path

from mlpipes.config import param
from mlpipes.pipeline import PipelineConfig

# scikit-learn measures ten things three ways ("mean radius", "radius error", "worst radius");
# records, CSV headers and DataFrames name the columns as identifiers, in this order.
MEASURES = "radius texture perimeter area smoothness compactness concavity concave_points symmetry fractal_dimension"
FEATURES = tuple(f"{a}{m}{b}" for a, b in (("mean_", ""), ("", "_error"), ("worst_", "")) for m in MEASURES.split())


@dataclasses.dataclass(frozen=True)
class BreastCancerConfig(PipelineConfig):
    pipeline = "breast_cancer"
    bundled_weights = Path(__file__).parent / "pretrained"
    model_factory = "breast_cancer.model:breast_cancer_classifier"
    batch_inputs = "breast_cancer.dataset:batch_inputs"
    read_input = "breast_cancer.preprocess:read_input"
    preprocess = "breast_cancer.preprocess:preprocess_rows"
    recipe_fields = ("test_per_class",)  # read by dataset.py alone: a generated child draws its own split

    test_per_class: int = param(57, "cases of each class held out (seeded) as the test split: 114 of 569, 20 %", gt=0)
    validation_samples: int = param(91, "training cases held out (seeded) for validation and calibration: a fifth")
    hidden: tuple[int, ...] = param((32, 16), "widths of the MLP's hidden layers (none: logistic regression)", gt=0)
    dropout: float = param(0.1, "dropout after each hidden layer", ge=0, lt=1)
    epochs: int = param(40, "passes over the training set")
    batch_size: int = param(32, "cases per optimisation step, over all processes")

    labels = ("malignant", "benign")  # scikit-learn's targets 0 and 1; a class constant, not a setting

    def onnx_metadata(self) -> dict[str, object]:
        return {"features": list(FEATURES), "input_layout": "one row of the 30 features per case, raw units"}
