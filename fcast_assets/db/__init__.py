"""Metadata store: SQLModel tables (``models``) and engine helpers (``engine``)."""
from . import dataset_models  # noqa: F401
from . import feature_models  # noqa: F401
from . import run_models  # noqa: F401
from . import model_models  # noqa: F401
