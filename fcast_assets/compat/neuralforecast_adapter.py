"""neuralforecast adapter of the prober: turns registry rows + the cell catalogue into groups of cells, and
executes them against the real library on tiny synthetic data.

Baselines are derived from the registry (``baseline_kwargs``): h, input_size (calibrated: the first of a few
sizes whose fit + predict runs), n_series for multivariate models, max_steps=1, small batch sizes, quiet CPU
trainer. Everything in a group's setup and a cell's spec is JSON, so a cell can be re-run from its row.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import tempfile
from functools import lru_cache
from importlib import resources
from typing import Any

import pandas as pd
import yaml
from sqlalchemy import Engine

from .candidates import INVALID_ENUM, candidates, label
from .postconditions import check_columns, check_cross_validation, check_forecast
from . import scenario
from ..registry.view import auto_classes, loss_classes, loss_kinds, model_classes, params_of
from .runner import Cell, Group
from .spec import (AUTO_SAMPLER_SEED, H, N_IDS, N_POINTS, QUIET_TRAINER, baseline_kwargs,  # noqa: F401 - re-exported
                   decode, seeded_search_alg)
from .synthetic import build_data  # noqa: F401 - re-exported (the probes' data)

INPUT_SIZES = [4, 8, 16, 24]
CORE = "neuralforecast.core.NeuralForecast"
PI = "neuralforecast.utils.PredictionIntervals"
# constructor parameters probed by their own cells or holding objects, not plain values
_NOT_CONSTRUCTOR_CELLS = {"h", "input_size", "n_series", "loss", "valid_loss", "futr_exog_list", "hist_exog_list",
                          "stat_exog_list", "cat_exog_list", "categorical_cardinalities", "alias", "optimizer",
                          "lr_scheduler", "callbacks", "random_seed", "max_steps", "val_check_steps"}


@lru_cache(maxsize=1)
def _cells_file() -> dict[str, Any]:
    return yaml.safe_load(resources.files("fcast_assets.compat").joinpath("neuralforecast_cells.yaml").read_text(encoding="utf-8"))


def catalogue() -> list[dict[str, Any]]:
    return _cells_file()["cells"]


def auto_catalogue() -> list[dict[str, Any]]:
    return _cells_file()["auto_cells"]


def prepare() -> None:
    """Import once in the parent (forked workers inherit it) and quiet the trainer."""
    import optuna
    import torch

    importlib.import_module("neuralforecast")
    importlib.import_module("neuralforecast.auto")
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for name in ("pytorch_lightning", "lightning_fabric", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # no network at run time: a model that wants hub weights (TimeLLM's default LLM) fails at once, recorded
    # (fcast_assets sets HF_HUB_OFFLINE before any import; this covers a hub module imported earlier)
    try:
        import huggingface_hub.constants as hub

        hub.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE") == "1"
    except ImportError:
        pass


# ------------------------------------------------------------------------------------------------ data
# ------------------------------------------------------------------------------------------------ adapter
class NeuralForecastAdapter:
    library = "neuralforecast"
    models_module = "neuralforecast.models"

    def __init__(self, engine: Engine, release_id: int, work_dir: str):
        self.release_id = release_id
        self.work_dir = work_dir
        self.models = {m["qualname"]: m for m in model_classes(engine, release_id, self.models_module)}
        self.init_params = {q: params_of(engine, release_id, q + ".__init__") for q in self.models}
        self.losses = loss_classes(engine, release_id)
        self.loss_kinds = loss_kinds(engine, release_id)
        self.core_params = {m: {p["name"]: p for p in params_of(engine, release_id, f"{CORE}.{m}")}
                            for m in ("__init__", "fit", "predict", "cross_validation", "predict_insample",
                                      "save", "load")}
        self.pi_params = {p["name"]: p for p in params_of(engine, release_id, PI + ".__init__")}
        self.autos = {a["qualname"]: a for a in auto_classes(engine, release_id, "neuralforecast.auto")}
        for q in self.autos:
            self.init_params[q] = params_of(engine, release_id, q + ".__init__")
        for a in self.autos.values():  # the tuned model's constructor, for the tiny config
            if a["auto_of"] not in self.init_params:
                self.init_params[a["auto_of"]] = params_of(engine, release_id, a["auto_of"] + ".__init__")

    prepare = staticmethod(prepare)

    # planning ----------------------------------------------------------------------------------------
    def select_models(self, names: list[str] | None) -> list[str]:
        if not names:
            return sorted(self.models) + sorted(self.autos)
        by_name = {m["name"]: q for q, m in {**self.models, **self.autos}.items()}
        unknown = [n for n in names if n not in by_name and n not in self.models and n not in self.autos]
        if unknown:
            raise ValueError(f"unknown {self.library} model(s) {unknown}: known {sorted(by_name)}")
        return [by_name.get(n, n) for n in names]

    def calibration_groups(self, models: list[str]) -> list[Group]:
        """One group per model: the first input_size whose fit + predict runs. An Auto class's tiny config uses its
        model's size, so a selected Auto class brings its model's calibration even when the model itself is not
        selected: ``--models AutoX`` (or re-running only the Auto cells) sets AutoX up as a whole matrix does."""
        groups = []
        bases = [self.autos[q]["auto_of"] for q in models if q in self.autos]
        for q in dict.fromkeys([*(q for q in models if q not in self.autos), *bases]):
            base = baseline_kwargs(self.init_params[q], INPUT_SIZES[0])
            cells = [Cell(q, "Model.__init__", "input_size", s, label(s, "baseline calibration"),
                          spec={"kind": "fit_predict", "model_kwargs": {"input_size": s}}) for s in INPUT_SIZES]
            groups.append(Group(f"{q}:calibrate", q, self._setup(q, base, kind="data"), cells))
        return groups

    def _setup(self, q: str, model_kwargs: dict[str, Any], kind: str, **extra: Any) -> dict[str, Any]:
        return {"kind": kind, "model": q, "model_kwargs": model_kwargs, "nf_kwargs": {"freq": "D"},
                "fit_kwargs": {}, "data": {"ds_kind": "datetime", "exog": []}, **extra}

    def plan(self, models: list[str], input_sizes: dict[str, int], families: set[str] | None = None) -> list[Group]:
        groups: list[Group] = []
        for q in models:
            if q in self.autos:
                if not families or "auto" in families or "Auto" in families:
                    groups += self._auto_groups(q, input_sizes)
                continue
            base = baseline_kwargs(self.init_params[q], input_sizes[q])
            by_group: dict[str, list[Cell]] = {"fits": [], "base": [], "pi": [], "futr": []}
            loss_cells: list[dict[str, Any]] = []
            for entry in catalogue():
                if families and entry["method"].split(".")[-1] not in families and entry["param"] not in families:
                    continue
                targets = entry["group"] if isinstance(entry["group"], list) else [entry["group"]]
                for g in targets:
                    if g == "loss":
                        loss_cells.append(entry)
                        continue
                    by_group[g] += self._cells_for(q, entry, g)
            setups = {
                "fits": self._setup(q, base, "data"),
                "base": self._setup(q, base, "fit"),
                "pi": self._setup(q, base, "fit", fit_kwargs={
                    "prediction_intervals": {"__obj__": PI, "kwargs": {"n_windows": 2}}}),
                "futr": {**self._setup(q, {**base, "futr_exog_list": ["fut_x"]}, "fit"),
                         "data": {"ds_kind": "datetime", "exog": ["futr"]}},
            }
            for g, cells in by_group.items():
                if cells:
                    groups.append(Group(f"{q}:{g}", q, setups[g], cells))
            if loss_cells:
                for loss in self.losses:
                    obj = {"__obj__": loss["qualname"], "kwargs": loss["kwargs"]}
                    scenario = f"loss={loss['name']}"
                    cells = [Cell(q, "Model.__init__", "loss", obj, label(obj), scenario,
                                  {"kind": "predict", "call": {}})]
                    for entry in loss_cells:
                        if entry["param"] == "loss":
                            continue
                        cells += [Cell(c.model, c.method, c.param, c.value, c.value_label, scenario, c.spec)
                                   for c in self._cells_for(q, entry, "loss")]
                    groups.append(Group(f"{q}:{scenario}", q, self._setup(q, {**base, "loss": obj}, "fit"), cells))
        for g in groups:
            for c in g.cells:
                c.facts = self.cell_facts(g.setup, c)
        if not families or "interactions" in families or any(f.startswith("interactions:") for f in families):
            groups += self.interaction_groups([q for q in models if q not in self.autos], input_sizes, families)
        return groups

    _frames_cache: dict[tuple[str, tuple[str, ...]], tuple[dict[str, Any], Any]] = {}

    def _frames(self, data_spec: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """The synthetic frames of a data spec and the spacing of their df, built once per spec."""
        key = (data_spec["ds_kind"], tuple(data_spec["exog"]))
        if key not in self._frames_cache:
            frames = build_data(*key)
            self._frames_cache[key] = (frames, scenario.spacing(frames["df"]))
        return self._frames_cache[key]

    def cell_facts(self, setup: dict[str, Any], cell: Cell) -> dict[str, Any] | None:
        """The scenario facts of a cell (compat.scenario): the data, freq, loss, exog, fit and call it runs with."""
        spec, kind = cell.spec, cell.spec.get("kind")
        if kind in (None, "auto_fit") or setup.get("kind") not in ("data", "fit"):
            return None
        q = setup["model"]
        own_data = kind in ("fit_predict", "cv")
        data_spec = (spec.get("data") if own_data else None) or setup["data"]
        frames, data_spacing = self._frames(data_spec)
        nf_kwargs = {**setup["nf_kwargs"], **(spec.get("nf_kwargs", {}) if own_data else {})}
        freq = nf_kwargs["freq"] if not own_data or "freq" in spec.get("nf_kwargs", {}) else frames["freq"]
        model = {**setup["model_kwargs"], **(spec.get("model_kwargs", {}) if own_data else {})}
        fit = {**setup["fit_kwargs"], **(spec.get("fit_kwargs", {}) if kind == "fit_predict" else {})}
        default_loss = next((p.get("default") for p in self.init_params.get(q, []) if p["name"] == "loss"), None)
        common = {"frames": frames, "data_spacing": data_spacing, "freq": freq, "model": model,
                  "loss_kinds": self.loss_kinds,
                  "default_loss": default_loss, "multivariate": bool(self.models.get(q, {}).get("caps", {})
                                                                      .get("multivariate"))}
        short = cell.method.rsplit(".", 1)[-1]
        if kind == "fit_predict":
            method = "fit" if short == "fit" else "__init__"
            return scenario.facts(**common, method=method, call=fit, fit=fit, state="fresh")
        if kind == "cv":
            return scenario.facts(**common, method="cross_validation", call=spec.get("call", {}), state="fresh")
        futr = {"futr_df": {"__data__": "futr_df"}} if "futr" in data_spec["exog"] else {}
        if kind == "predict":
            call = {**futr, **spec.get("call", {})}
            return scenario.facts(**common, method="predict", call=call, fit=fit, state="fit")
        if kind == "insample":
            return scenario.facts(**common, method="predict_insample", call=spec.get("call", {}), fit=fit,
                                  state="fit")
        if kind in ("save", "load"):
            path_state = "written" if spec.get("twice") else "existing" if spec.get("path") == "existing" else "new"
            return scenario.facts(**common, method=kind, call=spec.get("call", {}), fit=fit, state="fit",
                                  path_state=path_state)
        return None

    def _cells_for(self, q: str, entry: dict[str, Any], group: str) -> list[Cell]:
        method, param = entry["method"], entry["param"]
        scenario = {"pi": "prediction_intervals", "futr": "futr_exog_list"}.get(group, "baseline")
        short = method.split(".")[-1]
        values: list[tuple[Any, str]] = []
        if entry.get("constructor"):
            return self._constructor_cells(q)
        if entry.get("exog"):
            return self._exog_cells(q, entry["exog"])
        if entry.get("freq_cells"):
            return [Cell(q, method, param, f, f"{f!r} (ds {k})", scenario,
                         {"kind": "fit_predict", "nf_kwargs": {"freq": f}, "data": {"ds_kind": k, "exog": []}})
                    for k in ("datetime", "int") for f in ("D", 1)]
        if entry.get("h_cells"):
            values = [(None, "None"), (1, "1 (< trained h)"), (H, f"{H} (= h)"), (H + 2, f"{H + 2} (> h)")]
        elif entry.get("pi_cells"):
            pi = lambda **kw: {"__obj__": PI, "kwargs": kw}  # noqa: E731
            values = [(None, "None")] + [(pi(n_windows=n), label(pi(n_windows=n))) for n in (1, 2)]
            methods = (self.pi_params.get("method") or {}).get("enums") or []
            values += [(pi(n_windows=2, method=m), label(pi(n_windows=2, method=m))) for m in methods]
            values.append((pi(n_windows=2, method=INVALID_ENUM), label(pi(n_windows=2, method=INVALID_ENUM))))
        else:
            if entry.get("generic", True):
                p = self.core_params.get(short, {}).get(param)
                if p is not None:
                    values = candidates(p, N_POINTS, invalid_enum=entry.get("invalid_enum", True))
            for v in entry.get("values", []):
                if all(json.dumps(v, sort_keys=True) != json.dumps(x, sort_keys=True) for x, _ in values):
                    values.append((v, label(v)))
        cells = []
        for v, lab in values:
            spec = self._spec(short, param, v, entry)
            cells.append(Cell(q, method, param, v, lab, scenario, spec))
        return cells

    def _spec(self, short: str, param: str, v: Any, entry: dict[str, Any]) -> dict[str, Any]:
        if short == "__init__":
            data = {"ds_kind": "datetime", "exog": []}
            fit = {"static_df": {"__data__": "static_df"}} if entry.get("with_static") else {}
            return {"kind": "fit_predict", "nf_kwargs": {param: v}, "fit_kwargs": fit, "data": data}
        if short == "fit":
            return {"kind": "fit_predict", "fit_kwargs": {param: v}}
        if short == "cross_validation":
            return {"kind": "cv", "call": {param: v}}
        if short == "predict":
            return {"kind": "predict", "call": dict(v) if param == "level+quantiles" else {param: v}}
        if short == "predict_insample":
            return {"kind": "insample", "call": {param: v}}
        if short == "save":
            if param == "path":
                return {"kind": "save", "path": v["__path__"], "call": {}}
            return {"kind": "save", "path": "new", "call": {param: v}, "twice": bool(entry.get("twice"))}
        if short == "load":
            return {"kind": "load", "path": v["__path__"]}
        raise ValueError(f"no cell kind for {short}.{param}")

    def _exog_cells(self, q: str, which: str) -> list[Cell]:
        col = {"futr": "fut_x", "hist": "hist_x", "stat": "stat_x"}[which]
        param = f"{which}_exog_list"
        with_data = {"ds_kind": "datetime", "exog": [which]}
        cells = []
        for present in (True, False):
            fit_kwargs = {"static_df": {"__data__": "static_df"}} if which == "stat" and present else {}
            call = {"futr_df": {"__data__": "futr_df"}} if which == "futr" and present else {}
            spec = {"kind": "fit_predict", "model_kwargs": {param: [col]}, "fit_kwargs": fit_kwargs,
                    "predict_kwargs": call, "data": with_data if present else {"ds_kind": "datetime", "exog": []}}
            lab = f"['{col}'] " + ("with data" if present else "without the data")
            cells.append(Cell(q, "Model.__init__", param, [col], lab, "with_data" if present else "without_data",
                              spec))
        return cells

    def _constructor_cells(self, q: str) -> list[Cell]:
        cells = []
        for p in self.init_params[q]:
            n = p["name"]
            if n in _NOT_CONSTRUCTOR_CELLS or n.endswith("_kwargs") or p["kind"].startswith("var_"):
                continue
            values: list[tuple[Any, str]] = []
            if p["enums"]:
                values = [(e, label(e)) for e in p["enums"] if e is not None] + [(INVALID_ENUM, label(INVALID_ENUM, "outside enum"))]
            elif p["has_default"] and isinstance(p["default"], (int, float)) and not isinstance(p["default"], bool):
                values = [(0, "0 (boundary)")]
            for v, lab in values:
                cells.append(Cell(q, "Model.__init__", n, v, lab, "baseline",
                                  {"kind": "fit_predict", "model_kwargs": {n: v}}))
        return cells

    def auto_input_size(self, q: str, input_sizes: dict[str, int]) -> int:
        return input_sizes.get(self.autos[q]["auto_of"]) or 8

    def _auto_groups(self, q: str, input_sizes: dict[str, int]) -> list[Group]:
        model_q = self.autos[q]["auto_of"]
        tiny = {k: v for k, v in baseline_kwargs(self.init_params[model_q], self.auto_input_size(q, input_sizes)).items()
                if k not in ("h", "loss", "valid_loss")}
        auto_base = {k: v for k, v in baseline_kwargs(self.init_params[q], 0).items()
                     if k not in QUIET_TRAINER and k != "input_size"}
        auto_base.update(backend="optuna", num_samples=1, config={"__config__": "tiny"})
        params = {p["name"]: p for p in self.init_params[q]}
        cells = []
        for entry in auto_catalogue():
            param = entry["param"]
            if param not in params:
                continue
            values = candidates(params[param], N_POINTS) if entry.get("generic") else []
            for v in entry.get("values", []):
                if all(json.dumps(v, sort_keys=True) != json.dumps(x, sort_keys=True) for x, _ in values):
                    values.append((v, label(v)))
            for v, lab in values:
                kw: dict[str, Any] = {param: v}
                if isinstance(v, dict) and "__config__" in v and "num_samples" in v:
                    kw["num_samples"] = v["num_samples"]
                if param == "backend" and v in (entry.get("config_for") or {}):
                    kw["config"] = {"__config__": entry["config_for"][v]}
                # auto: the registry lists it as an Auto class -> the runner's Auto cell timeout (runner.cell_limit)
                spec: dict[str, Any] = {"kind": "auto_fit", "auto_kwargs": kw, "auto": True}
                t = (entry.get("timeout") or {}).get(json.dumps(v))
                if t:
                    spec["timeout"] = t
                cells.append(Cell(q, "Auto.__init__", param, v, lab, "optuna", spec))
        setup = {"kind": "data", "model": q, "model_kwargs": auto_base, "tiny_config": tiny, "nf_kwargs": {"freq": "D"},
                 "fit_kwargs": {"val_size": H}, "data": {"ds_kind": "datetime", "exog": []}}
        return [Group(f"{q}:auto", q, setup, cells)]

    def auto_kwargs(self, setup: dict[str, Any], spec: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """The Auto class's arguments of an ``auto_fit`` cell. With the optuna backend and no ``search_alg`` of the
        cell's own, a sampler seeded with AUTO_SAMPLER_SEED (``seeded_search_alg``): unseeded, the sampled config
        (input_size, random_seed, ...) and so the cell's outcome would vary from run to run (a flip between releases
        that is only chance)."""
        kwargs = {**setup["model_kwargs"], **spec["auto_kwargs"]}
        kwargs = {k: (self._auto_config(v, setup) if k == "config" else decode(v, data)) for k, v in kwargs.items()}
        sampler = seeded_search_alg(kwargs.get("backend"), "search_alg" in spec["auto_kwargs"])
        if sampler is not None:
            kwargs["search_alg"] = sampler
        return kwargs

    def _auto_config(self, spec: Any, setup: dict[str, Any]) -> Any:
        """Build a config value: a callable (optuna), a dict (ray), or the class's default (None)."""
        if not (isinstance(spec, dict) and "__config__" in spec):
            return spec
        tiny = dict(setup["tiny_config"])
        kind = spec["__config__"]
        mod, _, attr = setup["model"].rpartition(".")
        auto_cls = getattr(importlib.import_module(mod), attr)
        n_series = setup["model_kwargs"].get("n_series")

        def default(trial):
            kw = {"n_series": n_series} if n_series else {}
            return auto_cls.get_default_config(h=H, backend="optuna", **kw)(trial)

        constants = {k: v for k, v in tiny.items() if k != "input_size"}
        if kind == "tiny":
            return lambda trial: dict(tiny)
        if kind == "tiny_dict":
            return dict(tiny)
        if kind == "default_override_constant":  # the default search space, with tiny constant training
            return lambda trial: {**default(trial), **constants}
        if kind == "default_override_distribution":  # same key again with another distribution kind
            return lambda trial: {**default(trial), **constants,
                                  "input_size": trial.suggest_int("input_size", 2, 8)}
        if kind == "dynamic_space":  # a categorical whose choices change between calls
            calls = {"n": 0}

            def dynamic(trial):
                calls["n"] += 1
                choices = [4, 8] if calls["n"] <= 2 else [8, 16]
                return {**tiny, "input_size": trial.suggest_categorical("input_size", choices)}

            return dynamic
        raise ValueError(f"unknown config spec {kind!r}")

    # execution (in forked processes) -------------------------------------------------------------------
    def _build(self, setup: dict[str, Any], spec: dict[str, Any], data: dict[str, Any]):
        from neuralforecast import NeuralForecast

        mod, _, attr = setup["model"].rpartition(".")
        cls = getattr(importlib.import_module(mod), attr)
        kwargs = {**setup["model_kwargs"], **spec.get("model_kwargs", {})}
        model = cls(**{k: decode(v, data) for k, v in kwargs.items()})
        nf_kwargs = {**setup["nf_kwargs"], **spec.get("nf_kwargs", {})}
        return NeuralForecast(models=[model], **{k: decode(v, data) for k, v in nf_kwargs.items()})

    def setup(self, group: Group) -> dict[str, Any]:
        s = group.setup
        data = build_data(s["data"]["ds_kind"], tuple(s["data"]["exog"]))
        state: dict[str, Any] = {"setup": s, "data": data, "tmp": tempfile.mkdtemp(dir=self.work_dir)}
        if s["kind"] == "fit":
            nf = self._build(s, {}, data)
            nf.fit(df=data["df"], **{k: decode(v, data) for k, v in s["fit_kwargs"].items()})
            state["nf"] = nf
            state["predict_kwargs"] = {"futr_df": data["futr_df"]} if "futr" in s["data"]["exog"] else {}
        return state

    def run(self, state: dict[str, Any], cell: Cell) -> list[str]:
        spec, s = cell.spec, state["setup"]
        kind = spec["kind"]
        if kind == "interaction":
            return self._run_interaction(state, cell)
        if kind in ("fit_predict", "cv"):
            data_spec = spec.get("data") or s["data"]
            data = build_data(data_spec["ds_kind"], tuple(data_spec["exog"]))
            setup = {**s, "nf_kwargs": {**s["nf_kwargs"], **({"freq": data["freq"]} if "freq" not in
                                                            spec.get("nf_kwargs", {}) else {})}}
            nf = self._build(setup, spec, data)
            names = [repr(m) for m in nf.models]
            if kind == "cv":
                call = {k: decode(v, data) for k, v in spec["call"].items()}
                out = nf.cross_validation(df=data["df"], **call)
                n_windows = call.get("n_windows", 1) if call.get("test_size") is None else None
                return check_cross_validation(out, n_ids=N_IDS, h=call.get("h") or nf.h, n_windows=n_windows,
                                              model_names=names, level=call.get("level"),
                                              quantiles=call.get("quantiles"))
            fit_kwargs = {**s["fit_kwargs"], **spec.get("fit_kwargs", {})}
            nf.fit(df=data["df"], **{k: decode(v, data) for k, v in fit_kwargs.items()})
            call = {k: decode(v, data) for k, v in spec.get("predict_kwargs", {}).items()}
            out = nf.predict(**call)
            return check_forecast(out, last_ds=data["last_ds"], h=nf.h, freq=data["freq"], model_names=names)
        if kind == "auto_fit":
            from neuralforecast import NeuralForecast

            data = state["data"]
            mod, _, attr = s["model"].rpartition(".")
            cls = getattr(importlib.import_module(mod), attr)
            nf = NeuralForecast(models=[cls(**self.auto_kwargs(s, spec, data))], freq=data["freq"])
            nf.fit(df=data["df"], **s["fit_kwargs"])
            out = nf.predict()
            return check_forecast(out, last_ds=data["last_ds"], h=nf.h, freq=data["freq"],
                                  model_names=[repr(m) for m in nf.models])
        data, nf = state["data"], state["nf"]
        names = [repr(m) for m in nf.models]
        if kind == "predict":
            call = {**state["predict_kwargs"], **{k: decode(v, data) for k, v in spec["call"].items()}}
            out = nf.predict(**call)
            h = call.get("h") or nf.h
            return check_forecast(out, last_ds=data["last_ds"], h=h, freq=data["freq"], model_names=names,
                                  level=call.get("level"), quantiles=call.get("quantiles"))
        if kind == "insample":
            call = {k: decode(v, data) for k, v in spec["call"].items()}
            out = nf.predict_insample(**call)
            if out is None or len(out) == 0:
                return ["empty in-sample frame"]
            return [b for b in check_columns(out, model_names=names, level=call.get("level"),
                                             quantiles=call.get("quantiles")) if not b.startswith("NaN")]
        path = os.path.join(tempfile.mkdtemp(dir=state["tmp"]), "cell")  # a folder of its own per cell
        if kind == "save":
            if spec["path"] == "existing":
                os.makedirs(path)
                with open(os.path.join(path, "existing.txt"), "w", encoding="utf-8") as f:
                    f.write("already here")
            call = {k: decode(v, data) for k, v in spec["call"].items()}
            nf.save(path, **call)
            if spec.get("twice"):
                nf.save(path, **call)
            files = os.listdir(path) if os.path.isdir(path) else []
            saved = [f for f in files if any(f.startswith(f"{n}_") for n in names)]
            return [] if saved else [f"no model file written for {names}: {sorted(files)[:5]}"]
        if kind == "load":
            from neuralforecast import NeuralForecast

            if spec["path"] == "missing":
                path = os.path.join(state["tmp"], "does-not-exist")
            else:
                nf.save(path, overwrite=True)
                if spec["path"] == "corrupt":
                    for f in os.listdir(path):
                        with open(os.path.join(path, f), "wb") as fh:
                            fh.write(b"\x00corrupt\x00")
            loaded = NeuralForecast.load(path)
            out = loaded.predict(**state["predict_kwargs"])
            return check_forecast(out, last_ds=data["last_ds"], h=loaded.h, freq=data["freq"],
                                  model_names=[repr(m) for m in loaded.models])
        raise ValueError(f"unknown cell kind {kind!r}")

    # interaction cells (neuralforecast_interactions.yaml) --------------------------------------------------
    def _loss_of_kind(self, kind: str) -> dict[str, Any] | None:
        """The registry's loss of an output type (point / quantile / distribution) as an ``__obj__`` value:
        MAE / MQLoss / DistributionLoss where the registry lists them, else the first of that kind."""
        of_kind = [x for x in self.losses if x.get("output_type") == kind]
        if not of_kind:
            return None
        pick = next((x for x in of_kind if x["name"] in _PREFERRED_LOSS), of_kind[0])
        return {"__obj__": pick["qualname"], "kwargs": pick["kwargs"]}

    def _factor_values(self, factor: dict[str, Any]) -> list[Any]:
        raw = factor["values"] if "values" in factor else [factor.get("value")]
        out: list[Any] = []
        for v in raw:
            if isinstance(v, dict) and "__loss__" in v:
                kinds = LOSS_KINDS if v["__loss__"] == "*" else [v["__loss__"]]
                out += [x for x in (self._loss_of_kind(k) for k in kinds) if x is not None]
            else:
                out.append(v)
        return out

    @staticmethod
    def _factor_label(factor: dict[str, Any], value: Any) -> str:
        text = label(value)
        prefix = "data " if factor["method"] == "data" else ""
        return f"{prefix}{factor.get('name', factor['param'])}={text}"

    @staticmethod
    def _place(spec: dict[str, Any], factor: dict[str, Any], value: Any) -> None:
        method, param = factor["method"], factor["param"]
        if method == "state" or param == "state":
            return  # implied by the steps (predict with no fit before it, predict_insample after cv)
        if method == "Model.__init__":
            spec["model_kwargs"][param] = value
        elif method == "NeuralForecast.__init__" or (param == "freq" and method != "data"):
            spec["nf_kwargs"][param] = value
        elif method == "data":
            if param == "freq":
                spec["data"]["freq"] = value
        elif method.startswith("NeuralForecast."):
            short = method.rsplit(".", 1)[1]
            step = next((st for st in spec["steps"] if short in st), None)
            if step is not None:
                step[short][param] = value

    def interaction_groups(self, models: list[str], input_sizes: dict[str, int],
                           families: set[str] | None = None) -> list[Group]:
        """One group per (model, interaction): every cell builds, fits and calls on its own (no shared fit)."""
        groups: list[Group] = []
        for q in models:
            multivariate = bool(self.models.get(q, {}).get("caps", {}).get("multivariate"))
            base = baseline_kwargs(self.init_params[q], input_sizes.get(q) or INPUT_SIZES[0])
            for entry in interaction_catalogue():
                if families and "interactions" not in families and f"interactions:{entry['id']}" not in families:
                    continue
                if entry.get("multivariate_only") and not multivariate:
                    continue
                w, c = entry["with"], entry["call"]
                cells = []
                for cv in self._factor_values(c):
                    for wv in self._factor_values(w):
                        if entry.get("distinct") and json.dumps(cv, sort_keys=True) == json.dumps(wv, sort_keys=True):
                            continue
                        data = {"ds_kind": "datetime", "exog": [], **entry.get("data", {})}
                        spec: dict[str, Any] = {"kind": "interaction", "interaction": entry["id"],
                                                "model_kwargs": {}, "nf_kwargs": {}, "data": data,
                                                "steps": json.loads(json.dumps(entry["steps"]))}
                        self._place(spec, w, wv)
                        self._place(spec, c, cv)
                        if "futr" in data["exog"]:
                            spec["model_kwargs"].setdefault("futr_exog_list", ["fut_x"])
                        if "hist" in data["exog"]:
                            spec["model_kwargs"].setdefault("hist_exog_list", ["hist_x"])
                        scen = f"{self._factor_label(w, wv)} × {self._factor_label(c, cv)}"
                        cells.append(Cell(q, c["method"], c["param"], cv, label(cv), scen, spec))
                if not cells:
                    continue
                setup = {**self._setup(q, base, "data"), "interaction": entry["id"]}
                for cell in cells:
                    cell.facts = self.interaction_facts(setup, cell)
                groups.append(Group(f"{q}:interactions:{entry['id']}", q, setup, cells))
        return groups

    @staticmethod
    def _steps(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return [next(iter(st.items())) for st in spec["steps"]]

    def interaction_facts(self, setup: dict[str, Any], cell: Cell) -> dict[str, Any]:
        """Scenario facts of an interaction cell: the call's method with both factors in its setup / call."""
        spec, q = cell.spec, setup["model"]
        frames = interaction_data(spec["data"])
        model = {**setup["model_kwargs"], **spec["model_kwargs"]}
        freq = {**setup["nf_kwargs"], "freq": frames["freq"], **spec["nf_kwargs"]}["freq"]
        steps = self._steps(spec)
        short = cell.method.rsplit(".", 1)[1]
        method = "__init__" if short == "__init__" or cell.method == "Model.__init__" else short
        idx = next((i for i, (name, _) in enumerate(steps) if name == method), None)
        if method in ("__init__", "fit"):
            idx = next((i for i, (name, _) in enumerate(steps) if name in ("fit", "cross_validation")), 0)
        call = dict(steps[idx][1]) if idx is not None else {}
        before = [name for name, _ in steps[: idx or 0]]
        state = "fresh"
        for name in before:
            state = {"fit": "fit", "cross_validation": "cv", "load": "loaded"}.get(name, state)
        fit = next((kw for name, kw in steps if name in ("fit", "cross_validation")), {})
        if method in ("__init__", "fit"):
            call, state = dict(fit), "fresh"
        default_loss = next((p.get("default") for p in self.init_params.get(q, []) if p["name"] == "loss"), None)
        multivariate = bool(self.models.get(q, {}).get("caps", {}).get("multivariate"))
        return scenario.facts(frames=frames, freq=freq, model=model, method=method, call=call, fit=fit,
                              state=state, loss_kinds=self.loss_kinds, default_loss=default_loss,
                              multivariate=multivariate, path_state="new" if method == "save" else None)

    def _run_interaction(self, state: dict[str, Any], cell: Cell) -> list[str]:
        from neuralforecast import NeuralForecast

        spec, s = cell.spec, state["setup"]
        data = interaction_data(spec["data"])
        setup = {**s, "nf_kwargs": {**s["nf_kwargs"], "freq": data["freq"]}}
        nf = self._build(setup, spec, data)
        out, last, last_call = None, None, {}
        for name, kwargs in self._steps(spec):
            call = {k: decode(v, data) for k, v in kwargs.items()}
            if name == "fit":
                nf.fit(df=data["df"], **call)
            elif name == "cross_validation":
                out = nf.cross_validation(df=data["df"], **call)
            elif name == "save":
                path = os.path.join(tempfile.mkdtemp(dir=state["tmp"]), "cell")
                nf.save(path, **call)
            elif name == "load":
                nf = NeuralForecast.load(path)
            elif name == "predict":
                if "futr" in spec["data"]["exog"]:
                    call.setdefault("futr_df", data["futr_df"])
                out = nf.predict(**call)
            elif name == "predict_insample":
                out = nf.predict_insample(**call)
            else:
                raise ValueError(f"unknown interaction step {name!r}")
            last, last_call = name, call
        names = [repr(m) for m in nf.models]
        if last == "predict":
            return check_forecast(out, last_ds=data["last_ds"], h=last_call.get("h") or nf.h, freq=data["freq"],
                                  model_names=names, level=last_call.get("level"),
                                  quantiles=last_call.get("quantiles"))
        if last == "cross_validation":
            n_windows = last_call.get("n_windows", 1) if last_call.get("test_size") is None else None
            return check_cross_validation(out, n_ids=N_IDS, h=last_call.get("h") or nf.h, n_windows=n_windows,
                                          model_names=names, level=last_call.get("level"),
                                          quantiles=last_call.get("quantiles"))
        if last == "predict_insample":
            if out is None or len(out) == 0:
                return ["empty in-sample frame"]
            return [b for b in check_columns(out, model_names=names, level=last_call.get("level"),
                                             quantiles=last_call.get("quantiles")) if not b.startswith("NaN")]
        return []

    def cleanup(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)


LOSS_KINDS = ("point", "quantile", "distribution")
_PREFERRED_LOSS = ("MAE", "MQLoss", "DistributionLoss")


@lru_cache(maxsize=1)
def _interactions_file() -> dict[str, Any]:
    text = resources.files("fcast_assets.compat").joinpath("neuralforecast_interactions.yaml").read_text(
        encoding="utf-8")
    return yaml.safe_load(text)


def interaction_catalogue() -> list[dict[str, Any]]:
    """The pairs of interacting factors (neuralforecast_interactions.yaml)."""
    return _interactions_file()["interactions"]


WEEK_START = pd.Timestamp("2020-01-05")  # a Sunday: weekly data on the W (W-SUN) grid


def interaction_data(spec: dict[str, Any]) -> dict[str, Any]:
    """``build_data`` for an interaction cell; ``freq: W`` puts every frame's ds on a weekly grid instead."""
    data = build_data(spec.get("ds_kind", "datetime"), tuple(spec.get("exog", ())))
    if spec.get("freq") in (None, "D") or spec.get("ds_kind", "datetime") != "datetime":
        return data
    day0 = pd.Timestamp("2020-01-01")
    step = pd.tseries.frequencies.to_offset(spec["freq"])

    def move(ds: pd.Series) -> pd.Series:
        return pd.Series([WEEK_START + int((d - day0).days) * step for d in ds], index=ds.index)

    out = dict(data)
    for k, v in data.items():
        if isinstance(v, pd.DataFrame) and "ds" in v.columns:
            out[k] = v.assign(ds=move(v["ds"]))
    out["last_ds"] = out["df"].groupby("unique_id")["ds"].max().to_dict()
    out["freq"] = spec["freq"]
    return out
