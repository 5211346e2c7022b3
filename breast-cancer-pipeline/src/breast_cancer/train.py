"""The training recipe: standardise by the training rows, then AdamW with cosine decay on cross-entropy.

Read top to bottom. The loop around it (seeding, validation and a checkpoint each epoch,
``--resume``, data-parallel under ``torchrun``, run record, plots, calibration, versioned
weights) is ``mlpipes.training.Trainer``'s.
"""

from pathlib import Path

import torch

from breast_cancer.config import FEATURES, BreastCancerConfig
from breast_cancer.dataset import batch_inputs
from breast_cancer.model import breast_cancer_classifier
from mlpipes.training import Trainer


def train_model(config: BreastCancerConfig, resume: bool = False) -> Path:
    """Train the classifier; returns the manifest of the versioned weights it wrote."""
    trainer = Trainer(config, resume)
    run_config, data = trainer.config, trainer.data()  # a resumed run keeps the config it started with

    model = breast_cancer_classifier(run_config).to(trainer.device)
    # The input scaler: the rows of this process's first-epoch batches, training rows only (never validation or
    # test); a resumed run restores the saved one. Under torchrun, DDP gives every process rank 0's.
    model.std[:], model.mean[:] = torch.std_mean(torch.cat([batch_inputs(b) for b in data.train.batches(epoch=0)]), 0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=run_config.learning_rate, weight_decay=run_config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=run_config.epochs * len(data.train))

    def loss(net: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = net(batch_inputs(batch))
        return torch.nn.functional.cross_entropy(logits, batch["label"]), logits

    trainer.fit(model, optimizer, schedule, data, loss, inputs=batch_inputs)
    return trainer.save(model, {"features": model.features, "classifier": model}, meta={"features": list(FEATURES)})
