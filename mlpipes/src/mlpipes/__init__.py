"""mlpipes: the plumbing every ML pipeline needs, so a new pipeline is its model and its data."""

from mlpipes.errors import ConfigError, DataError, IntegrityError, UserError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "IntegrityError", "UserError", "__version__"]
