"""One vocabulary for the three kinds of exogenous data, imported by every layer.

neuralforecast names them in three ways (``futr_exog_list`` arguments, ``EXOGENOUS_FUTR`` class attributes,
``futr_df`` frames), the registry stores capabilities (``exog_futr``), the model registry columns
(``futr_exog``), and the gold features carry prefixes (``fut_`` — calendar facts known in advance). Each
spelling is derived here from one enum member, so a layer never writes its own mapping.
"""

from __future__ import annotations

from enum import Enum


class Exog(str, Enum):
    HIST = "hist"  # known only up to the forecast origin (lags, rolling statistics)
    FUTR = "futr"  # known for the forecast horizon too (calendar of the next draws)
    STAT = "stat"  # one value per series

    @property
    def list_param(self) -> str:
        """The model argument naming the columns: ``hist_exog_list``."""
        return f"{self.value}_exog_list"

    @property
    def capability(self) -> str:
        """The registry capability code: ``exog_hist``."""
        return f"exog_{self.value}"

    @property
    def class_attribute(self) -> str:
        """The model class attribute that declares support: ``EXOGENOUS_HIST``."""
        return f"EXOGENOUS_{self.value.upper()}"

    @property
    def registry_column(self) -> str:
        """The model_registry column holding the trained list: ``hist_exog``."""
        return f"{self.value}_exog"

    @property
    def feature_group(self) -> str:
        """The feature generators' group (generators.yaml): ``hist``, ``fut``, ``stat``."""
        return "fut" if self is Exog.FUTR else self.value

    @property
    def feature_prefix(self) -> str:
        """The prefix of a gold feature column of this kind: ``hist_``, ``fut_``, ``stat_``."""
        return self.feature_group + "_"

    @classmethod
    def of_list_param(cls, name: str) -> "Exog":
        for e in cls:
            if e.list_param == name:
                return e
        raise ValueError(f"{name!r} is not an exogenous list argument ({', '.join(e.list_param for e in cls)})")


LIST_PARAMS: dict[str, Exog] = {e.list_param: e for e in Exog}
