"""The breast-cancer model: standardise the 30 raw measurements, a small MLP trunk, a two-class head.

The mean and standard deviation that standardise the input are buffers of the model: fitted on
the training rows (``train.py``), saved with the weights and exported to ONNX, so neither
``predict`` nor an ONNX consumer needs a separate scaler. They belong to the data, not to the
trunk: a child pipeline that reuses ``features`` fits its own on its own rows.
"""

import numpy as np
import torch
from torch import nn

from breast_cancer.config import FEATURES, BreastCancerConfig
from breast_cancer.preprocess import preprocess_rows
from mlpipes.resolve import locate
from mlpipes.weights import load_weights


def breast_cancer_features(hidden: tuple[int, ...] = (32, 16), dropout: float = 0.1) -> nn.Sequential:
    """Linear → ReLU → Dropout per hidden width: standardised rows (N, 30) → (N, hidden[-1])."""
    widths = zip((len(FEATURES), *hidden), hidden)
    return nn.Sequential(*(layer for i, o in widths for layer in (nn.Linear(i, o), nn.ReLU(), nn.Dropout(dropout))))


class TabularClassifier(nn.Module):
    """Standardisation + trunk + linear head; ``predict`` divides the logits by the fitted ``temperature``."""

    def __init__(self, features: nn.Sequential, width: int, labels: tuple[str, ...]):
        super().__init__()
        self.features, self.head = features, nn.Linear(width, len(labels))
        self.labels, self.temperature = labels, 1.0
        self.mean, self.std = nn.Buffer(torch.zeros(len(FEATURES))), nn.Buffer(torch.ones(len(FEATURES)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Raw feature rows (N, 30) → class logits (N, 2)."""
        return self.head(self.features((features - self.mean) / self.std))

    @torch.no_grad()
    def predict(self, rows: object) -> np.ndarray:
        """Rows (numpy, torch or a DataFrame; see ``preprocess_rows``) → float32 (N, 2) calibrated probabilities."""
        logits = self.eval()(torch.from_numpy(preprocess_rows(rows)).to(self.head.weight.device))
        return (logits.float() / self.temperature).softmax(1).cpu().numpy()  # fp32 even under bf16 autocast


def breast_cancer_classifier(
    config: BreastCancerConfig | None = None, pretrained: bool | str = False, version: str | None = None
) -> TabularClassifier:
    """The classifier ``config`` describes; ``pretrained``: True (bundled), a registry URL or a manifest path."""
    config = config or BreastCancerConfig()
    width = (len(FEATURES), *config.hidden)[-1]  # no hidden layers: logistic regression on the scaled features
    model = TabularClassifier(breast_cancer_features(config.hidden, config.dropout), width, config.labels)
    if pretrained:  # every load verifies the file's sha256 against the manifest and fails closed
        manifest = load_weights(model, locate(config, pretrained, version).manifest, "classifier", config.labels)
        model.temperature = float(manifest["meta"].get("temperature", 1.0))
    return model.eval() if pretrained else model
