"""Build a small, real, importable library on disk (with dist-info metadata) for scanner tests."""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from pathlib import Path

from fcast_assets.registry.libraries import LibrarySpec

V1 = {
    "__init__.py": '''
        """A fake forecasting library."""
        from .core import Forecaster
        from .models import Alpha, AutoAlpha
        __version__ = "{version}"
    ''',
    "core.py": '''
        from typing import Literal, Optional, Union

        class Forecaster:
            """Fits models.

            Args:
                models (list): instantiated models.
                freq (str or int): frequency of the data.
                scaler_type (str): scaler to apply. Can be 'standard', 'robust' or 'minmax'.
            """

            def __init__(self, models: list, freq: Union[str, int], scaler_type: Optional[str] = None,
                         mode: Literal["fast", "slow"] = "fast", missing=float("nan")):
                self.models = models

            def fit(self, df=None, val_size: int = 0):
                """Fit.

                Args:
                    df (pandas.DataFrame): the data.
                    val_size (int): validation size.
                """
                return self

            def predict(self, h: Optional[int] = None, level=None, **kwargs):
                """Predict.

                Parameters
                ----------
                h : int, optional
                    horizon.
                level : list of float
                    confidence levels.
                """
                return None

            @property
            def n_models(self):
                """Number of models."""
                return len(self.models)

        def helper(x: int, *args, y: str = "a", **kw) -> int:
            """A helper function."""
            return x
    ''',
    "models/__init__.py": '''
        from .alpha import Alpha
        from .auto import AutoAlpha
        __all__ = ["Alpha", "AutoAlpha"]
    ''',
    "models/_base.py": '''
        class BaseModel:
            """Base.

            Args:
                max_steps (int): training steps.
            """
            EXOGENOUS_FUTR = False
            EXOGENOUS_HIST = False
            EXOGENOUS_STAT = False
            MULTIVARIATE = False
            RECURRENT = False

            def __init__(self, max_steps: int = 10):
                self.max_steps = max_steps

            def fit(self, dataset, val_size: int = 0):
                """Train the model."""
                return self
    ''',
    "models/alpha.py": '''
        from ._base import BaseModel

        class Alpha(BaseModel):
            """Alpha model.

            Args:
                h (int): horizon.
                activation (str): activation, one of 'ReLU' or 'Tanh'.
            """
            EXOGENOUS_FUTR = True
            EXOGENOUS_HIST = True

            def __init__(self, h: int, activation: str = "ReLU", max_steps: int = 10):
                super().__init__(max_steps=max_steps)
    ''',
    "models/auto.py": '''
        from .alpha import Alpha

        class AutoAlpha:
            """Tunes Alpha."""

            def __init__(self, h: int, backend: str = "ray", num_samples: int = 10):
                self.cls_model = Alpha
    ''',
    "losses.py": '''
        class MAE:
            """Point loss."""
            def __init__(self):
                self.outputsize_multiplier = 1
                self.output_names = [""]
                self.is_distribution_output = False

        class MQLoss:
            """Multi-quantile loss."""
            def __init__(self, level=[80, 90], quantiles=None):
                self.outputsize_multiplier = 5
                self.output_names = ["-median", "-lo-80", "-hi-80", "-lo-90", "-hi-90"]
                self.is_distribution_output = False

        class DistributionLoss:
            """Distribution loss.

            Available distributions:
            - Normal
            - Poisson
            """
            def __init__(self, distribution, level=[80, 90]):
                if distribution not in ("Normal", "Poisson"):
                    raise ValueError(f"{distribution} not available")
                self.outputsize_multiplier = 2
                self.output_names = ["-loc", "-scale"]
                self.is_distribution_output = True
    ''',
    "broken.py": '''
        raise RuntimeError("boom on import")
    ''',
    "needs_missing.py": '''
        import not_a_real_module_fcast_xyz
    ''',
}


def v2_files() -> dict[str, str]:
    files = dict(V1)
    files["core.py"] = (
        V1["core.py"]
        .replace("val_size: int = 0):\n                \"\"\"Fit.", "val_size: int = 1):\n                \"\"\"Fit.")
        .replace("level=None, **kwargs", "quantiles=None, **kwargs")
        # a body change behind an unchanged signature, and a function only re-documented and moved down a line
        .replace("self.models = models", "self.models = list(models)")
        .replace('"""A helper function."""', '\n            """A helper function (v2 wording)."""')
        + "\n        def newfunc(a: float = 1.5):\n            return a\n"
    )
    files["models/__init__.py"] = 'from .alpha import Alpha\n__all__ = ["Alpha"]\n'
    files["__init__.py"] = V1["__init__.py"].replace(", AutoAlpha", "")
    del files["models/auto.py"]
    return files


def write_library(root: Path, name: str, version: str, files: dict[str, str]) -> LibrarySpec:
    """Write package ``name`` at ``version`` under ``root`` (replacing an earlier version) and return its spec."""
    pkg = root / name
    for old in [pkg, *root.glob(f"{name}-*.dist-info")]:
        if old.exists():
            import shutil

            shutil.rmtree(old)
    for rel, body in files.items():
        p = pkg / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(body).format(version=version) if "{version}" in body
                     else textwrap.dedent(body))
    dist = root / f"{name}-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]
    importlib.invalidate_caches()
    return LibrarySpec(name=name, import_name=name, dist_name=name, vendor="tests")


def new_name() -> str:
    return f"fcastfake_{uuid.uuid4().hex[:8]}"
