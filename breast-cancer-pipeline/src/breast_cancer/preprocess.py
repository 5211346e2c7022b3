"""What a user hands the model: a CSV file, a DataFrame or an array of rows → float32 (N, 30).

Columns are matched by name (scikit-learn's ``"mean radius"`` or ``mean_radius``), in any order,
so a spreadsheet export works as it is; arrays must already hold the 30 features in ``FEATURES``
order. The model standardises its input itself, so raw measurements go in unchanged.
"""

from pathlib import Path

import numpy as np

from breast_cancer.config import FEATURES
from mlpipes.errors import DataError


def read_input(path: Path, config: object = None) -> np.ndarray:
    """A CSV file whose header row names the 30 features → float32 (N, 30)."""
    import pandas as pd

    # pyarrow's parser refuses ragged rows (pandas' own takes a first extra value as an index) and skips a BOM;
    # text cells become NaN, refused below with their row and column.
    try:
        return preprocess_rows(pd.read_csv(path, engine="pyarrow").apply(pd.to_numeric, errors="coerce"), str(path))
    except (OSError, ValueError) as e:  # pandas' parser errors and UnicodeDecodeError are ValueErrors
        raise DataError(f"{path}: not a readable CSV table ({str(e).strip()})") from None


def preprocess_rows(rows: object, source: str = "input") -> np.ndarray:
    """Rows as a pandas DataFrame (columns by name), numpy array or torch tensor → float32 (N, 30)."""
    if hasattr(rows, "columns"):
        found = {"_".join(str(name).split()): name for name in rows.columns}  # "mean radius" -> mean_radius
        for name in [*found, *FEATURES]:
            if name not in FEATURES or name not in found:
                raise DataError(f"{source}: column '{name}' is {'missing' if name in FEATURES else 'not a feature'}")
        rows = rows[[found[name] for name in FEATURES]].to_numpy()
    rows = np.atleast_2d(np.array(rows.detach().cpu().numpy() if hasattr(rows, "detach") else rows, dtype=np.float32))
    if rows.ndim != 2 or rows.shape[1] != len(FEATURES):
        raise DataError(f"{source}: expected rows of {len(FEATURES)} features, got an array of shape {rows.shape}")
    bad = np.argwhere(~np.isfinite(rows))
    if len(bad):
        raise DataError(f"{source}: row {bad[0, 0] + 1}, column '{FEATURES[bad[0, 1]]}': empty or not a finite number")
    return rows
