"""Typed plans: what a plan file (or a stored run_plan / run_step row) says, as pydantic models.

- :class:`GoldRef` — one (game, selector) pair, the one code path that parses and formats it. Spellings read:
  ``gold:loto6:N1`` (a plan's ``data:``), ``loto6.N1`` (the Dagster ``model`` partition key, the model key in
  messages) and ``loto6:N1``; ``str(ref)`` is ``gold:loto6:N1``, ``ref.key`` is ``loto6.N1``.
- :class:`DataRef` — a plan's ``data:``: a named synthetic set, a gold (game, selector), a ``{synthetic: {...}}``
  description or the user's ``{files: {...}}``. Parsed without reading anything; :mod:`.data` loads it.
- :class:`Step` — one call (a model class, a NeuralForecast method, ``evaluate``) with its keyword arguments;
  ``kind`` / ``short`` / ``qualname`` are filled when the validator resolves the step against the registry.
- :class:`Plan` — name, library, data reference, steps (and the stored ids); ``model_class`` / ``model_kwargs`` are
  those of its first model step.
- :class:`Validation` — what :func:`fcast_assets.plans.validator.validate_plan` returns: the violations (a list, as
  before) with the resolved plan and its frames, which :func:`fcast_assets.plans.runner.run_plan` executes.
- :class:`PlanRun` — one execution's outcome (read by attribute, or as ``run["status"]`` like the old dict).

Malformed input raises :class:`PlanFormatError` with one line: where (file:line, or the stored plan), which field,
what the rule is.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

GOLD_PREFIX = "gold:"
EVALUATE = "utilsforecast.evaluation.evaluate"
# what a step does, once resolved: a model class, NeuralForecast's constructor / methods, or the evaluation
SHORTS = ("model", "__init__", "fit", "predict", "cross_validation", "predict_insample", "save", "load", "evaluate")


LIB_PREFIX = {"neuralforecast": ("neuralforecast.core.", "neuralforecast.models.")}


def qualify(method: str, library: str = "neuralforecast", model: bool = False) -> str:
    core, models = LIB_PREFIX.get(library, ("", ""))
    if method in ("evaluate", "utilsforecast.evaluate"):
        return EVALUATE
    if "." not in method:
        if library == "neuralforecast" and method.startswith("Auto") and method[4:5].isupper():
            return "neuralforecast.auto." + method
        return models + method if model or method[:1].isupper() else core + "NeuralForecast." + method
    if method.startswith("NeuralForecast."):
        return core + method
    return method



def raw_step(raw: Any, library: str = "neuralforecast") -> Any:
    """A step as a plan file writes it (``{model: MLP, params: ...}``, ``{method: NeuralForecast.fit}``) in the
    stored form (qualified ``method``, a ``name``); a stored step (qualified already) keeps its name."""
    if not isinstance(raw, dict):
        return raw
    if "model" in raw:
        method, name = qualify(str(raw["model"]), library, model=True), raw.get("name") or "model"
    elif isinstance(raw.get("method") or raw.get("call"), str):
        given = raw.get("method") or raw["call"]
        method = qualify(given, library)
        name = raw.get("name")
        if name is None and (method != given or "call" in raw):
            name = method.rsplit(".", 1)[-1].replace("__init__", "init")
    else:
        return raw
    return {**{k: v for k, v in raw.items() if k not in ("model", "call")}, "method": method, "name": name}


class PlanFormatError(ValueError):
    """A plan (or one of its parts) that is not well formed: one line naming where, the field and the rule."""


class GoldRefError(ValueError):
    """A (game, selector) spelling that is none of gold:<game>:<selector>, <game>.<selector>, <game>:<selector>."""


# ----------------------------------------------------------------------------------------------- (game, selector)
class GoldRef(BaseModel):
    """One (game, selector) pair. ``parse`` reads every spelling in use; ``str()`` / ``key`` write them."""

    model_config = ConfigDict(frozen=True)

    game: str = Field(min_length=1)
    selector: str = Field(min_length=1)

    @field_validator("game", "selector")
    @classmethod
    def _plain(cls, v: str) -> str:
        if any(c in v for c in ":/\\ ") or v != v.strip():
            raise ValueError(f"{v!r} must be a plain name (no ':', '/', spaces)")
        return v

    @classmethod
    def parse(cls, text: Any) -> "GoldRef":
        """``gold:loto6:N1``, ``loto6.N1`` or ``loto6:N1`` (a GoldRef passes through)."""
        if isinstance(text, GoldRef):
            return text
        if not isinstance(text, str):
            raise GoldRefError(f"a game and selector is gold:<game>:<selector> (e.g. gold:loto6:N1), not {text!r}")
        s = text.strip()
        if s.startswith(GOLD_PREFIX):
            parts = s[len(GOLD_PREFIX):].split(":")
        elif ":" in s:
            parts = s.split(":")
        else:
            game, sep, sel = s.rpartition(".")
            parts = [game, sel] if sep else [s]
        if len(parts) != 2 or not all(parts):
            what = "a gold data set is gold:<game>:<selector> (e.g. gold:loto6:N1)" if s.startswith(GOLD_PREFIX) \
                else "a model partition key is <game>.<selector> (e.g. loto6.N1)"
            raise GoldRefError(f"{what}, not {text!r}")
        try:
            return cls(game=parts[0], selector=parts[1])
        except ValidationError as e:
            raise GoldRefError(f"{text!r}: {e.errors()[0]['msg']}") from None

    @staticmethod
    def is_gold(text: Any) -> bool:
        """A plan data spec that names a gold data set (``gold:...``)."""
        return isinstance(text, str) and text.strip().startswith(GOLD_PREFIX)

    @property
    def key(self) -> str:
        """``<game>.<selector>``: the Dagster ``model`` partition key and the model's name in messages."""
        return f"{self.game}.{self.selector}"

    @property
    def lock(self) -> str:
        """The name of the lock one training of this selector holds (fcast_assets.locks)."""
        return f"train:{self.game}/{self.selector}"

    def __str__(self) -> str:
        return f"{GOLD_PREFIX}{self.game}:{self.selector}"


# ----------------------------------------------------------------------------------------------- data
class DataRef(BaseModel):
    """A plan's ``data:`` (what it names, nothing read yet)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["named", "gold", "synthetic", "files"]
    name: Optional[str] = None        # named: synthetic, synthetic_futr, ...
    gold: Optional[GoldRef] = None    # gold: the (game, selector)
    spec: Optional[Any] = None        # synthetic / files: the mapping as written

    @classmethod
    def parse(cls, raw: Any) -> "DataRef":
        """From the plan's ``data`` (a name, ``gold:<game>:<selector>``, a mapping, or the JSON text a stored plan
        keeps a mapping as). Raises :class:`PlanFormatError` (one line) on a malformed reference; whether a name is
        a known data set is checked when it is loaded."""
        if isinstance(raw, DataRef):
            return raw
        if isinstance(raw, GoldRef):
            return cls(kind="gold", gold=raw)
        raw = raw or "synthetic"
        if isinstance(raw, str) and raw.lstrip().startswith("{"):
            try:
                raw = json.loads(raw)
            except ValueError:
                raise PlanFormatError(f"data {raw[:80]!r} is not valid JSON") from None
        if isinstance(raw, dict):
            if len(raw) != 1 or next(iter(raw)) not in ("synthetic", "files"):
                raise PlanFormatError(f"a data mapping is {{synthetic: {{...}}}} or {{files: {{...}}}}, not {raw!r}")
            kind, spec = next(iter(raw.items()))
            return cls(kind=kind, spec=spec)
        if not isinstance(raw, str):
            raise PlanFormatError(f"data is a name or a mapping, not {raw!r}")
        if GoldRef.is_gold(raw):
            try:
                return cls(kind="gold", gold=GoldRef.parse(raw))
            except GoldRefError as e:
                raise PlanFormatError(str(e)) from None
        return cls(kind="named", name=raw)

    def raw(self) -> str:
        """The form a run_plan row stores (a mapping as sorted JSON text)."""
        if self.kind == "gold":
            return str(self.gold)
        if self.kind == "named":
            return str(self.name)
        return json.dumps({self.kind: self.spec}, sort_keys=True)

    def __str__(self) -> str:
        return self.raw()


# ----------------------------------------------------------------------------------------------- steps and plans
class Step(BaseModel):
    """One call of a plan. ``method`` is the qualified callable (loader.qualify); ``params`` its keyword
    arguments as data (``{__data__: frame}``, ``{__obj__: ...}`` markers stay as written)."""

    model_config = ConfigDict(extra="ignore")

    ord: int = 0
    method: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    name: Optional[str] = None
    step_id: Optional[int] = None
    # filled when the validator resolves the step against the registry
    kind: Optional[Literal["model", "core", "evaluate"]] = None
    short: Optional[str] = None
    qualname: Optional[str] = None
    params_of: Optional[str] = None
    label: Optional[str] = None

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, v: Any) -> Any:
        if v is None:
            return {}
        if isinstance(v, str):  # a CSV / hand-written row keeps params as JSON text
            try:
                v = json.loads(v)
            except ValueError:
                raise ValueError(f"params {v[:60]!r} is not JSON (e.g. {{\"h\": 2}})") from None
        if not isinstance(v, dict):
            raise ValueError(f"params must be a mapping of argument names, not {v!r}")
        return v

    @property
    def resolved(self) -> bool:
        return self.kind is not None

    def as_dict(self) -> dict[str, Any]:
        """The step as the validator's and runner's internals read it."""
        d = self.model_dump(exclude_none=True)
        d["params"] = dict(self.params)
        return d


class Plan(BaseModel):
    """A plan as typed data. ``Plan.parse`` reads the loader's dict form (a file's plan after loader._plan, or
    loader.get_plan's stored rows)."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    library: str = "neuralforecast"
    data: DataRef = Field(default_factory=lambda: DataRef(kind="named", name="synthetic"))
    metrics: Optional[list[str]] = None
    enabled: bool = True
    expect: Optional[str] = None
    description: Optional[str] = None
    source: Optional[str] = None
    plan_id: Optional[int] = None
    model_id: Optional[int] = None
    selector_id: Optional[int] = None
    steps: list[Step] = Field(default_factory=list)

    @field_validator("data", mode="before")
    @classmethod
    def _data(cls, v: Any) -> Any:
        return DataRef.parse(v)

    @field_validator("library", mode="before")
    @classmethod
    def _library(cls, v: Any) -> Any:
        return v or "neuralforecast"

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return json.loads(v)
            except ValueError:
                return [v]
        return v

    @classmethod
    def check(cls, raw: dict[str, Any]) -> None:
        """ValueError with one line (``<field>: <rule>``) when the plan's own fields (name, metrics, enabled, ...)
        are not a plan's; the data reference and the steps are left to the validation (an unknown data set is its
        ``unknown_data`` violation, a step without callable or with params that are no mapping its ``bad_plan``)."""
        try:
            cls.model_validate({**raw, "data": None, "steps": []})
        except ValidationError as e:
            raise ValueError(one_line(e)) from None

    @classmethod
    def parse(cls, raw: Any, where: str | None = None) -> "Plan":
        """A Plan from its dict form; one line on malformed input: ``<where>: plan <name>: <field>: <rule>``."""
        if isinstance(raw, Plan):
            return raw
        where = where or (raw.get("source") if isinstance(raw, dict) else None) or "plan"
        if not isinstance(raw, dict):
            raise PlanFormatError(f"{where}: a plan is a mapping with name: and steps:, not {str(raw)[:60]!r}")
        who = f"plan {raw.get('name')!r}" if raw.get("name") else "a plan without name"
        steps = raw.get("steps") or []
        if not isinstance(steps, list):
            raise PlanFormatError(f"{where}: {who}: steps: must be a list of mappings, not {str(steps)[:60]!r}")
        try:
            return cls.model_validate({**raw, "steps": _steps(steps, raw.get("library"))})
        except PlanFormatError as e:
            raise PlanFormatError(f"{where}: {who}: data: {e}") from None
        except ValidationError as e:
            raise PlanFormatError(f"{where}: {who}: {one_line(e)}") from None

    @property
    def model_step(self) -> Optional[Step]:
        """The first model step (resolved plans: kind model; else the first step whose callable is a class)."""
        for s in self.steps:
            if s.kind == "model" or (s.kind is None and s.method.rsplit(".", 1)[-1][:1].isupper()
                                     and "NeuralForecast" not in s.method and s.method != EVALUATE):
                return s
        return None

    @property
    def model_class(self) -> Optional[str]:
        s = self.model_step
        return (s.qualname or s.method) if s else None

    @property
    def model_kwargs(self) -> dict[str, Any]:
        s = self.model_step
        return dict(s.params) if s else {}

    @property
    def resolved(self) -> bool:
        return bool(self.steps) and all(s.resolved for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        """The dict form the validator's checks and the plan runner's internals read (data as stored)."""
        d = self.model_dump(exclude={"data", "steps"})
        return {**d, "data": self.data.raw(), "steps": [s.as_dict() for s in self.steps]}


def _steps(steps: list[Any], library: str | None) -> list[Any]:
    """Steps in the stored form, each with its ord (its position unless stored)."""
    out = []
    for i, s in enumerate(steps):
        s = raw_step(s, library or "neuralforecast")
        out.append({**s, "ord": s.get("ord", i) if s.get("ord") is not None else i} if isinstance(s, dict) else s)
    return out


def one_line(e: ValidationError) -> str:
    """The first error of a pydantic ValidationError as ``<field path>: <rule>`` (steps.2.params: ...)."""
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "plan"
    msg = str((err.get("ctx") or {}).get("error") or err["msg"])
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return f"{loc}: {msg}{more}"


# ----------------------------------------------------------------------------------------------- outcomes
class Validation(list):
    """The verdict of a plan: its violations (a list, empty when the plan may run — compared, iterated and tested
    for truth as a list) plus ``plan``, the plan resolved against the registry (typed steps with kind / short /
    qualname), ``frames``, the data its checks and its run use, and ``release_id``. ``plan`` is None when the plan
    could not even be read as a plan (bad_plan)."""

    def __init__(self, violations: Any = (), plan: Optional[Plan] = None, frames: Optional[dict[str, Any]] = None,
                 release_id: Optional[int] = None):
        super().__init__(violations)
        self.plan, self.frames, self.release_id = plan, frames, release_id

    @property
    def ok(self) -> bool:
        return not self


class PlanRun(BaseModel):
    """The outcome of one plan: status success / suspect / failed (executed) or invalid (not executed, with the
    violations). Read by attribute; ``run["status"]`` and ``run.get("steps")`` read it like the dict it was."""

    model_config = ConfigDict(frozen=True)

    plan: str
    execution_id: Optional[int] = None
    status: Literal["success", "suspect", "failed", "invalid"]
    steps: dict[int, str] = Field(default_factory=dict)
    work_dir: Optional[str] = None
    violations: list[str] = Field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default) if key in type(self).model_fields else default

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields

    def keys(self) -> list[str]:
        return list(type(self).model_fields)
