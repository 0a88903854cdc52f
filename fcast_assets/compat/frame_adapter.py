"""A declarative adapter for libraries with a core class over a list of models (statsforecast's StatsForecast,
mlforecast's MLForecast). Each library is one YAML file: the core class, how models are found (registry
module, or a fixed list of estimators), the calibration, and the cells as *steps* (core method calls) into
which the probed value is injected. Same tables, same runner, same post-conditions as neuralforecast.

Cost: the cells of a model that start with the same fit (same model, core, data and fit kwargs: a predict
``h`` / ``level`` / ``X_df`` probe) form one group whose setup fits once; each such cell runs only its remaining
steps, on a private copy of the fitted core. The other cells run in groups of at most ``group_cells``, the
longest (Auto) groups first, so that the workers stay busy to the end.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import time
import warnings
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import Engine

from .candidates import candidates, label
from .spec import H, N_IDS, N_POINTS, baseline_kwargs, decode
from .synthetic import build_data
from .postconditions import check_cross_validation, check_fitted, check_forecast
from ..registry.view import model_classes, params_of
from .runner import Cell, Group, is_auto


def _import(qualname: str) -> Any:
    mod, _, attr = qualname.rpartition(".")
    return getattr(importlib.import_module(mod), attr)


@lru_cache(maxsize=4)
def load_spec(name: str) -> dict[str, Any]:
    return yaml.safe_load(resources.files("fcast_assets.compat").joinpath(f"{name}_cells.yaml").read_text(encoding="utf-8"))


class DeclarativeAdapter:
    """What the YAML-driven adapters share: importing the library before the workers start, and choosing
    ``models`` (qualname -> {name}) by short name or qualname."""

    library: str
    spec: dict[str, Any]
    models: dict[str, dict[str, Any]]
    kind_word = "model"
    # cells of milliseconds (a function call, a statistical fit): in fork mode one child runs a group's cells in
    # turn, each on its own copy of the set-up state, instead of a process per cell (runner._batch)
    batch_cells = True

    def prepare(self) -> None:
        importlib.import_module(self.spec["import"])
        for q in self.spec.get("prepare_imports", []):
            importlib.import_module(q)
        logging.getLogger(self.spec["import"]).setLevel(logging.ERROR)

    def select_models(self, names: list[str] | None) -> list[str]:
        if not names:
            return sorted(self.models)
        by_name = {m["name"]: q for q, m in self.models.items()}
        unknown = [n for n in names if n not in by_name and n not in self.models]
        if unknown:
            raise ValueError(f"unknown {self.library} {self.kind_word}(s) {unknown}: known {sorted(by_name)}")
        return [by_name.get(n, n) for n in names]


class FrameAdapter(DeclarativeAdapter):
    spec_name: str = ""

    def __init__(self, engine: Engine, release_id: int, work_dir: str):
        self.spec = load_spec(self.spec_name)
        self.library = self.spec["library"]
        self.release_id, self.work_dir = release_id, work_dir
        core = self.spec["core"]
        # spec methods are "Class.method"; the registry's qualname is the core class's qualname + ".method"
        self.core_params = {m.split(".")[-1]: {p["name"]: p for p in params_of(engine, release_id,
                                                                             f"{core}.{m.split('.')[-1]}")}
                            for m in self.spec["methods"]}
        self.core_params["__init__"] = {p["name"]: p for p in params_of(engine, release_id, f"{core}.__init__")}
        if "models_module" in self.spec:
            found = model_classes(engine, release_id, self.spec["models_module"], tuple(self.spec["model_marks"]))
            skip = set(self.spec.get("skip_models", []))
            self.models = {m["qualname"]: m for m in found if not m["name"].startswith("_") and m["name"] not in skip}
            self.init_params = {q: params_of(engine, release_id, q + ".__init__") for q in self.models}
        else:  # estimators of other libraries (sklearn, lightgbm): not in the registry; a bare qualname is
            # constructed with its defaults, {qualname, kwargs} with those (tiny settings for a fast fit)
            self.models, self.estimator_kwargs = {}, {}
            for e in self.spec["estimators"]:
                q = e if isinstance(e, str) else e["qualname"]
                self.models[q] = {"qualname": q, "name": q.rsplit(".", 1)[1]}
                self.estimator_kwargs[q] = {} if isinstance(e, str) else dict(e.get("kwargs") or {})
            self.init_params = {q: [] for q in self.models}


    # planning ----------------------------------------------------------------------------------------
    def _model_kwargs(self, q: str, calibrated: Any) -> dict[str, Any]:
        kw = {k: v for k, v in baseline_kwargs(self.init_params[q], 0).items()
              if k in {p["name"] for p in self.init_params[q] if p["required"]}}
        cal = self.spec.get("calibration")
        if cal and calibrated is not None and any(p["name"] == cal["param"] for p in self.init_params[q]):
            kw[cal["param"]] = calibrated
        kw.update(getattr(self, "estimator_kwargs", {}).get(q, {}))
        kw.update(self.spec.get("model_overrides", {}).get(self.models[q]["name"], {}))
        return kw

    def _model_setup(self, q: str) -> dict[str, Any]:
        """A model's own setup (``model_setup`` in the spec): data it needs (exogenous columns for a model that
        only regresses on them) and kwargs added to its steps; its cells carry the setup's scenario."""
        return self.spec.get("model_setup", {}).get(self.models[q]["name"], {})

    def _steps(self, q: str, method: str) -> list[dict[str, Any]]:
        steps = copy.deepcopy(self.spec["methods"][method])
        for op, extra in (self._model_setup(q).get("with") or {}).items():
            for s in steps:
                if s["op"] == op:
                    s["kwargs"] = {**s.get("kwargs", {}), **extra}
        return steps

    def _setup(self, q: str, calibrated: Any) -> dict[str, Any]:
        ms = self._model_setup(q)
        return {"kind": "data", "model": q, "model_kwargs": self._model_kwargs(q, calibrated),
                "core_kwargs": dict(self.spec["core_kwargs"]),
                "data": dict(ms.get("data") or {"ds_kind": "datetime", "exog": []}),
                "warmup": self._steps(q, self.spec["warmup"])}

    def calibration_groups(self, models: list[str]) -> list[Group]:
        cal = self.spec.get("calibration")
        groups = []
        for q in models:
            has = cal and any(p["name"] == cal["param"] for p in self.init_params[q])
            values = cal["values"] if has else [None]
            method = self.spec["warmup"]
            cells = []
            # a model whose output is NaN by design (NaNModel): the calibration asks only whether the call runs;
            # its cells judge the output (suspect through the no-NaN post-condition)
            unchecked = self.models[q]["name"] in self.spec.get("calibration_unchecked", [])
            for v in values:
                steps = self._steps(q, method)
                if unchecked:
                    for s in steps:
                        s.pop("check", None)
                mk = {cal["param"]: v} if has else {}
                cells.append(Cell(q, "Model.__init__", cal["param"] if has else "baseline", v,
                                  label(v, "baseline calibration") if has else "baseline",
                                  spec={"steps": steps, "model_kwargs": mk}))
            groups.append(Group(f"{q}:calibrate", q, self._setup(q, None), cells))
        # Auto searches first: the cells wait for the whole calibration, so a slow one must not start last
        return sorted(groups, key=lambda g: not is_auto(g.cells[0]))

    def plan(self, models: list[str], calibrated: dict[str, Any], families: set[str] | None = None) -> list[Group]:
        groups = []
        for q in models:
            cells: list[Cell] = []
            for entry in self.spec["cells"]:
                short = entry["method"].split(".")[-1]
                if families and short not in families and entry["param"] not in families \
                        and entry.get("family") not in families:
                    continue
                cells += self._cells_for(q, entry)
            if cells:
                groups += self._split(Group(f"{q}:cells", q, self._setup(q, calibrated.get(q)), cells))
        # the longest groups first (Auto searches, then the most cells), so that no long group starts last
        return sorted(groups, key=lambda g: (not is_auto(g.cells[0]), -len(g.cells)))

    def _split(self, group: Group) -> list[Group]:
        """A model's cells as groups that run in parallel: the cells on a shared fit together (``setup`` fits
        each such fit once), the others in chunks of at most ``group_cells`` (spec; default 24) — the cells of
        one group run one after the other, so a model with many slow cells does not hold the matrix's tail alone.
        Which group a cell is in changes only its speed, never its result."""
        s, size = group.setup, int(self.spec.get("group_cells", 24))
        keys = self._shared_keys(group)
        shared = [c for c in group.cells if self.fit_key(s, c.spec) in keys]
        rest = [c for c in group.cells if self.fit_key(s, c.spec) not in keys]
        n = -(-len(rest) // size) if rest else 0
        parts = ([shared] if shared else []) + [rest[i * len(rest) // n:(i + 1) * len(rest) // n] for i in range(n)]
        if len(parts) <= 1:
            return [group]
        return [Group(f"{group.key}:{i + 1}", group.model, s, cells) for i, cells in enumerate(parts)]

    def _cells_for(self, q: str, entry: dict[str, Any]) -> list[Cell]:
        method, param = entry["method"], entry["param"]
        short = method.split(".")[-1]
        if method == "Model.__init__" and not any(p["name"] == param for p in self.init_params[q]):
            return []  # a model constructor parameter this model does not take
        values: list[tuple[Any, str]] = []
        if entry.get("generic"):
            p = self.core_params.get(short, {}).get(param)
            if p is not None:
                values = candidates(p, N_POINTS)
        for v in entry.get("values", []):
            if all(json.dumps(v, sort_keys=True) != json.dumps(x, sort_keys=True) for x, _ in values):
                values.append((v, label(v)))
        run_method = entry.get("run", method)
        scenario = entry.get("scenario") or self._model_setup(q).get("scenario")
        if entry.get("scenario") and self._model_setup(q).get("scenario") not in (None, entry["scenario"]):
            scenario = f"{self._model_setup(q)['scenario']}; {entry['scenario']}"
        cells = []
        for v, lab in values:
            steps = self._steps(q, run_method)
            data = entry.get("data")
            if data and self._model_setup(q).get("data"):  # the model's own exog columns stay in the frame
                data = {**data, "exog": sorted(set(data["exog"]) | set(self._model_setup(q)["data"]["exog"]))}
            spec: dict[str, Any] = {"steps": steps, "data": data}
            if entry.get("core"):
                spec["core_kwargs"] = dict(entry["core"])
            if method == "Model.__init__":
                spec["model_kwargs"] = {param: v}
            elif short == "__init__":
                spec["core_kwargs"] = {**spec.get("core_kwargs", {}), param: v}
            else:
                target = next(s for s in steps if s["op"] == entry.get("inject", short))
                target["kwargs"] = {**target.get("kwargs", {}), param: v}
            for op, extra in (entry.get("with") or {}).items():
                for s in steps:
                    if s["op"] == op:
                        s["kwargs"] = {**s.get("kwargs", {}), **extra}
            lab = lab + (f" | {scenario}" if scenario else "")
            cells.append(Cell(q, method, param, v, lab, scenario or "baseline", spec))
        return cells

    # execution ---------------------------------------------------------------------------------------
    # A group's cells that build the same core (model, core kwargs, data) and start with the same fit step(s)
    # share one fit: ``setup`` makes it once (the warmup, when it starts the same way, is that fit) and such a
    # cell runs only its remaining steps on a private deep copy of the fitted core. A cell whose value changes
    # the model, the core, the data or the fit kwargs has another key and fits itself; so does every cell when
    # the shared fit raised in the setup (the cell meets the same exception itself) or when the setup already
    # spent ``SHARED_FIT_BUDGET_S`` on shared fits (a slow Auto search: the setup stays well inside its timeout).
    SHARED_FIT_BUDGET_S = 20.0

    def _fit_ops(self) -> set[str]:
        return set(self.spec.get("shared_fit", ["fit"]))

    def _prefix(self, steps: list[dict[str, Any]]) -> int:
        """How many leading steps are a fit to share: fit ops without a post-condition, and not every step."""
        n, ops = 0, self._fit_ops()
        while n < len(steps) and steps[n]["op"] in ops and not steps[n].get("check"):
            n += 1
        return n if n < len(steps) else 0

    def fit_key(self, setup: dict[str, Any], spec: dict[str, Any]) -> str | None:
        """What a cell's leading fit depends on (None: nothing to share): equal keys, equal fitted cores."""
        n = self._prefix(spec["steps"])
        if not n:
            return None
        return json.dumps({"model": setup["model"], "model_kwargs": {**setup["model_kwargs"],
                                                                     **spec.get("model_kwargs", {})},
                           "core_kwargs": {**setup["core_kwargs"], **spec.get("core_kwargs", {})},
                           "data": spec.get("data") or setup["data"], "fit": spec["steps"][:n]},
                          sort_keys=True, default=str)

    def _shared_keys(self, group: Group) -> set[str]:
        """The fits worth sharing in ``group``: two cells start with it, or one cell and the warmup (which makes
        that fit anyway)."""
        s = group.setup
        keys = [k for k in (self.fit_key(s, c.spec) for c in group.cells) if k is not None]
        wkey = self.fit_key(s, {"steps": s["warmup"]}) if s.get("warmup") else None
        return {k for k in keys if keys.count(k) + (k == wkey) >= 2}

    @staticmethod
    def _data(state: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        """The cell's data: a private copy of the frames the setup built (a cell forked from the group process
        would otherwise build them again, touching its pages), else built now."""
        d = spec.get("data") or state["setup"]["data"]
        key = json.dumps(d, sort_keys=True)
        built = state.get("data", {}).get(key)
        return copy.deepcopy(built) if built is not None else build_data(d["ds_kind"], tuple(d["exog"]))

    def _build(self, state: dict[str, Any], spec: dict[str, Any]) -> tuple[dict[str, Any], Any, list[str]]:
        """The cell's data, its core over its model (not fitted) and the model's column name."""
        s = state["setup"]
        data = self._data(state, spec)
        model = _import(s["model"])(**{k: decode(v, data) for k, v in {**s["model_kwargs"],
                                                                         **spec.get("model_kwargs", {})}.items()})
        core_kwargs = {**s["core_kwargs"], "freq": data["freq"], **spec.get("core_kwargs", {})}
        core = _import(self.spec["core"])(models=[model], **{k: decode(v, data) for k, v in core_kwargs.items()})
        return data, core, [type(model).__name__ if self.spec.get("model_name") == "class" else repr(model)]

    def setup(self, group: Group) -> dict[str, Any]:
        s = group.setup
        state: dict[str, Any] = {"setup": s, "fitted": {}, "data": {}}
        for d in [s["data"]] + [c.spec["data"] for c in group.cells if c.spec.get("data")]:
            if json.dumps(d, sort_keys=True) not in state["data"]:
                state["data"][json.dumps(d, sort_keys=True)] = build_data(d["ds_kind"], tuple(d["exog"]))
        warm = Cell(group.model, "warmup", "warmup", None, "warmup", spec={"steps": s["warmup"]})
        wkey = self.fit_key(s, warm.spec) if s.get("warmup") else None
        first: dict[str, dict[str, Any]] = {}
        for c in group.cells:
            first.setdefault(self.fit_key(s, c.spec) or "", c.spec)
        shared = sorted(self._shared_keys(group), key=lambda k: (k != wkey, k))  # the warmup's first
        t0 = time.perf_counter()
        for key in shared:
            if key != wkey and time.perf_counter() - t0 > self.SHARED_FIT_BUDGET_S:
                break
            spec = warm.spec if key == wkey else first[key]
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    data, core, names = self._build(state, spec)
                    for step in spec["steps"][:self._prefix(spec["steps"])]:
                        getattr(core, step["op"])(**{k: decode(v, data) for k, v in step.get("kwargs", {}).items()})
            except Exception:  # noqa: BLE001 - its cells fit themselves and record what happens
                continue
            state["fitted"][key] = {"core": core, "names": names,
                                    "warnings": [(w.category, str(w.message)) for w in caught]}
        if s.get("warmup") and (wkey in state["fitted"] or not state["fitted"]):
            try:  # run the calls once in the group process (lazy imports, kernels) so every forked cell inherits
                self.run(state, warm)  # them; with a shared fit only its remaining steps, on a copy
            except Exception:  # noqa: BLE001 - the cells will record the failure themselves
                pass
        return state

    def run(self, state: dict[str, Any], cell: Cell) -> list[str]:
        s, spec = state["setup"], cell.spec
        key = self.fit_key(s, spec)
        shared = state.get("fitted", {}).get(key) if key is not None else None
        steps = spec["steps"]
        asked_level = None
        core = None
        if shared is not None:  # the group's fitted core: a private copy, so nothing this cell does reaches
            try:                # another cell (a core that cannot be copied: the cell fits its own)
                core = copy.deepcopy(shared["core"])
            except Exception:  # noqa: BLE001
                shared = None
        if shared is None:
            data, core, names = self._build(state, spec)
        else:
            data, names = self._data(state, spec), shared["names"]
            for category, message in shared["warnings"]:  # what the fit warned, as if the cell had fitted
                try:
                    warnings.warn(message, category, stacklevel=1)
                except Exception:  # noqa: BLE001 - a warning class that cannot be re-made from its message
                    pass
            n = self._prefix(steps)
            for step in steps[:n]:
                asked_level = step.get("kwargs", {}).get("level", asked_level)
            steps = steps[n:]
        breaches: list[str] = []
        for step in steps:
            kwargs = {k: decode(v, data) for k, v in step.get("kwargs", {}).items()}
            asked_level = kwargs.get("level", asked_level)
            out = getattr(core, step["op"])(**kwargs)
            check = step.get("check")
            if check == "forecast":
                breaches += check_forecast(out, last_ds=data["last_ds"], h=kwargs.get("h", H), freq=data["freq"],
                                           model_names=names, level=kwargs.get("level"))
            elif check == "fitted":  # in-sample values of the forecast / fit before it, with its level
                breaches += check_fitted(out, n_rows=len(data["df"]), model_names=names, level=asked_level)
            elif check == "cv":
                breaches += check_cross_validation(out, n_ids=N_IDS, h=kwargs.get("h", H),
                                                   n_windows=kwargs.get("n_windows", 1)
                                                   if kwargs.get("test_size") is None else None,
                                                   model_names=names, level=kwargs.get("level"))
        return breaches

    def cleanup(self) -> None:
        pass


class StatsForecastAdapter(FrameAdapter):
    spec_name = "statsforecast"
    # a process per cell: run in turn in one process, one statsforecast cell changed its result (MSTL forecast with
    # ConformalIntervals(n_windows=40): NotImplementedError alone, ok after other cells; MSTL's default
    # trend_forecaster is one AutoETS instance shared by every MSTL), so its cells are not independent that way
    batch_cells = False


class MLForecastAdapter(FrameAdapter):
    spec_name = "mlforecast"
