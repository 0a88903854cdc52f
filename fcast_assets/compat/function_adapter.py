"""A declarative adapter for libraries of functions and small transform classes (utilsforecast, coreforecast):
no core class over a list of models, but many callables, each probed on tiny data built here.

One YAML per library (``<library>_cells.yaml``) names *families*. A family has:

- ``targets``: the callables it probes, from the registry — ``{module: M, kind: function|class}`` (every public
  function / class the registry lists in M) or ``{names: [qualname, ...]}``; ``skip`` drops some by short name;
- ``op``: how one call is made (a closed set, :data:`OPS`: ``evaluate``, ``call``, ``frame``, ``scaler``,
  ``lag_transform``, ``array``, ``grouped_array``), the ``method`` label of its cells and the ``check`` its
  output must pass (post-conditions: a breach makes the cell ``suspect``);
- ``base``: base keyword arguments of the call; ``fills``: values for a target's *required* parameters (looked
  up by parameter name in the registry, so a target gets only the arguments it takes);
- ``data``: the tiny data set (freq, ds kind, n_series, length, gaps, dtype, NaN) every cell of the family runs on;
- ``cells``: ``{param, values, generic, data, scenario, only, with}``: the probed parameter, its values (plus,
  with ``generic: true``, the candidates derived from the registry row of that parameter), optionally a data
  override, a scenario label, the targets it applies to and extra kwargs.

Value specs are JSON: ``{__data__: name}`` is a frame / array of the data set, ``{__fn__: qualname, kwargs}`` a
function of the library itself (``functools.partial`` when kwargs are given; only functions the registry lists
for this library), ``{__array__: [...]}`` a NumPy array, ``{__obj__: ...}`` the closed table of objects.yaml.
Every cell records its scenario facts (data: freq, ds dtype, n_series, length, gaps, dtype, NaN; call: the freq
asked for and whether it fits the data, level / quantiles asked for).
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import warnings
from functools import lru_cache
from importlib import resources
from typing import Any, Callable

import numpy as np
import pandas as pd
import yaml
from sqlalchemy import Engine, text

from . import scenario
from .candidates import candidates, label
from .frame_adapter import DeclarativeAdapter
from ..registry.view import params_of
from .runner import Cell, Group

H = 3  # horizon of the forecast frames and of the feature-engineering calls
DEFAULT_DATA = {"freq": "D", "ds": "datetime", "n_series": 2, "length": 24, "gaps": False, "dtype": "float64",
                "nan": False, "levels": [50, 80, 95, 99]}


@lru_cache(maxsize=4)
def load_spec(name: str) -> dict[str, Any]:
    return yaml.safe_load(resources.files("fcast_assets.compat").joinpath(f"{name}_cells.yaml")
                          .read_text(encoding="utf-8"))


def _import(qualname: str) -> Any:
    mod, _, attr = qualname.rpartition(".")
    return getattr(importlib.import_module(mod), attr)


def _short(q: str) -> str:
    return q.rsplit(".", 1)[-1]


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


# ------------------------------------------------------------------------------------------------ data
def data_spec(*overrides: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(DEFAULT_DATA)
    for o in overrides:
        out.update(o or {})
    return out


@lru_cache(maxsize=32)
def _build(key: str) -> dict[str, Any]:
    return build_data(json.loads(key))


def build_data(spec: dict[str, Any]) -> dict[str, Any]:
    """Every frame / array a family may name, for one data spec (deterministic, no network).

    - ``series``: unique_id / ds / y (+ ``fut_x``), ``n_series`` ids of ``length`` points (id k starts k steps
      later, so per-series and global bounds differ); ``gaps`` drops rows 3, 4 and 9 of each id;
    - ``train`` / ``forecasts``: the first ``length - H`` points, and the last H with columns ``model`` and
      ``Naive`` and their ``-lo-`` / ``-hi-`` intervals for ``levels`` (50, 80, 95, 99), and a ``cutoff``;
    - ``x`` / ``indptr``: the y values as one array with group boundaries (``dtype``; ``nan`` puts a NaN at
      position 5 of each group), ``x_future``: H more values per group, for inverse transforms;
    - ``weights``: a weights frame for ``agg_fn='weighted_mean'``."""
    rng = np.random.default_rng(0)
    freq, n, length = spec["freq"], int(spec["n_series"]), int(spec["length"])
    frames, full_y = [], []
    for i in range(n):
        t = np.arange(length + H)
        y = 10 + i + 3 * np.sin(2 * np.pi * t / 7) + 0.05 * t + rng.normal(0, 0.2, len(t))
        full_y.append(y)
        if spec["ds"] == "datetime":
            ds = pd.date_range(pd.Timestamp("2021-01-04") + i * pd.tseries.frequencies.to_offset(freq),
                               periods=length, freq=freq)
        else:
            step = freq if isinstance(freq, int) else 1
            ds = pd.Series(np.arange(1 + i, 1 + i + length) * step, dtype="int64")
        frames.append(pd.DataFrame({"unique_id": f"s{i + 1}", "ds": ds, "y": y[:length],
                                    "fut_x": np.cos(t[:length] / 5)}))
    series = pd.concat(frames, ignore_index=True)
    if spec.get("gaps"):
        pos = series.groupby("unique_id").cumcount()
        series = series[~pos.isin([3, 4, 9])].reset_index(drop=True)
    pos = series.groupby("unique_id").cumcount(ascending=False)
    train = series[pos >= H][["unique_id", "ds", "y"]].reset_index(drop=True)
    test = series[pos < H][["unique_id", "ds", "y"]].reset_index(drop=True)
    fc = test.copy()
    fc["cutoff"] = fc["unique_id"].map(train.groupby("unique_id")["ds"].max())
    fc["model"] = fc["y"] + rng.normal(0, 0.5, len(fc))
    fc["Naive"] = fc["unique_id"].map(train.groupby("unique_id")["y"].last())
    for m in ("model", "Naive"):
        for lv in spec.get("levels", DEFAULT_DATA["levels"]):
            z = {50: 0.674, 80: 1.2816, 95: 1.96, 99: 2.5758}.get(lv, abs(lv) / 40 + 0.1)
            fc[f"{m}-lo-{lv}"] = fc[m] - z
            fc[f"{m}-hi-{lv}"] = fc[m] + z
    dtype = np.dtype(spec.get("dtype", "float64"))
    ys = [y[:length].astype(dtype) for y in full_y]
    if spec.get("nan"):
        for y in ys:
            if len(y) > 5:
                y[5] = np.nan
    x = np.concatenate(ys) if ys else np.array([], dtype=dtype)
    indptr = np.cumsum([0] + [len(y) for y in ys]).astype(np.int32)
    x_future = np.concatenate([y[length:] for y in full_y]).astype(dtype)
    return {"series": series, "train": train, "x1": x[indptr[0]:indptr[1]].copy() if n else x, "forecasts": fc, "forecasts_nocutoff": fc.drop(columns="cutoff"),
            "weights": pd.DataFrame({"unique_id": sorted(series["unique_id"].unique()),
                                     "weight": np.arange(1.0, n + 1)}),
            "x": x, "indptr": indptr, "x_future": x_future,
            "indptr_future": (np.arange(n + 1) * H).astype(np.int32), "spec": spec}


# ------------------------------------------------------------------------------------------------ adapter
class FunctionAdapter(DeclarativeAdapter):
    kind_word = "callable"

    spec_name: str = ""

    def __init__(self, engine: Engine, release_id: int, work_dir: str):
        self.spec = load_spec(self.spec_name)
        self.library = self.spec["library"]
        self.release_id, self.work_dir = release_id, work_dir
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT qualname, name, kind, module FROM registry_symbol WHERE release_id = :r AND is_public "
                "AND kind IN ('function', 'class') ORDER BY symbol_id"), {"r": release_id}).all()
        self.functions = {r.qualname for r in rows if r.kind == "function"}
        self.targets: dict[str, list[str]] = {}  # family name -> target qualnames
        self.params: dict[str, dict[str, dict[str, Any]]] = {}  # callable qualname -> param name -> registry row
        for fam in self.spec["families"]:
            t = fam["targets"]
            if "names" in t:
                found = [q for q in t["names"]]
            else:
                found = [r.qualname for r in rows if r.module == t["module"] and r.kind == t.get("kind", "function")
                         and not r.name.startswith("_") and r.qualname == f"{r.module}.{r.name}"]
            skip = set(fam.get("skip", []))
            self.targets[fam["name"]] = [q for q in found if _short(q) not in skip]
            for q in self.targets[fam["name"]]:
                sig = q + ".__init__" if t.get("kind") == "class" else q
                self.params.setdefault(q, {p["name"]: p for p in params_of(engine, release_id, sig)})
            callee = fam.get("callee")  # the function the cells call (evaluate) when targets are its arguments
            if callee:
                self.params.setdefault(callee, {p["name"]: p for p in params_of(engine, release_id, callee)})
        self.models = {q: {"qualname": q, "name": _short(q)} for qs in self.targets.values() for q in qs}


    def calibration_groups(self, models: list[str]) -> list[Group]:
        return []  # functions need no calibrated baseline

    # planning ----------------------------------------------------------------------------------------
    def _base_kwargs(self, fam: dict[str, Any], q: str) -> dict[str, Any]:
        """The family's base kwargs plus, for every required parameter of the target that the base lacks, the
        family's fill for that name (``name@variant`` fills are picked by ``_fill_key``)."""
        kw = copy.deepcopy(fam.get("base", {}))
        if fam["op"] == "evaluate":
            return kw
        params = self.params.get(q, {})
        fills = fam.get("fills", {})
        for name, p in params.items():
            if p["kind"] in ("var_positional", "var_keyword") or name in kw:
                continue
            key = f"{name}@{_short(q)}" if f"{name}@{_short(q)}" in fills else self._fill_key(name, params)
            if key in fills and (p["required"] or name in fam.get("fill_optional", [])):
                kw[name] = copy.deepcopy(fills[key])
        return kw

    @staticmethod
    def _fill_key(name: str, params: dict[str, dict[str, Any]]) -> str:
        if name == "models":
            if "quantiles" in params:
                return "models@quantiles"
            if "dict" in (params[name].get("type_norm") or []):
                return "models@q"
        return name

    def _target_spec(self, fam: dict[str, Any], q: str) -> dict[str, Any]:
        """How evaluate takes this loss: the required parameters it cannot pass (seasonality, baseline) are bound
        with functools.partial (``fills``) — what a user of evaluate writes."""
        params = self.params.get(q, {})
        evaluated = {"df", "models", "train_df", "level", "quantiles", "q", "id_col", "target_col", "cutoff_col",
                     "time_col"}
        bind = {n: fam.get("fills", {})[n] for n, p in params.items()
                if p["required"] and n not in evaluated and n in fam.get("fills", {})}
        return {"__fn__": q, "kwargs": bind} if bind else {"__fn__": q}

    def _values(self, fam: dict[str, Any], entry: dict[str, Any], q: str, length: int) -> list[tuple[Any, str]]:
        values: list[tuple[Any, str]] = []
        if entry.get("generic"):
            owner = fam.get("callee") or q
            p = self.params.get(owner, {}).get(entry["param"])
            if p is not None:
                values = candidates(p, length)
        for v in entry.get("values", []):
            if all(not _same(v, x) for x, _ in values):
                values.append((v, label(v)))
        return values

    def plan(self, models: list[str], calibrated: dict[str, Any], families: set[str] | None = None) -> list[Group]:
        chosen = set(models)
        groups = []
        for fam in self.spec["families"]:
            for q in self.targets[fam["name"]]:
                if q not in chosen:
                    continue
                params = self.params.get(q, {})
                cells: list[Cell] = []
                for entry in fam["cells"]:
                    param = entry["param"]
                    if families and not families & {fam["name"], fam["method"], _short(fam["method"]), param}:
                        continue
                    if entry.get("only") and _short(q) not in entry["only"]:
                        continue
                    if fam["op"] != "evaluate" and param != "data" and param not in params \
                            and not entry.get("always"):
                        continue  # the target does not take this parameter
                    if entry.get("needs") and not all(n in params for n in entry["needs"]):
                        continue
                    data = data_spec(fam.get("data"), entry.get("data"))
                    for v, lab in self._values(fam, entry, q, int(data["length"])):
                        kwargs = self._base_kwargs(fam, q)
                        kwargs.update(copy.deepcopy(entry.get("with") or {}))
                        cell_data = data
                        if param == "data":
                            cell_data = data_spec(data, v)
                        else:
                            kwargs[param] = v
                        spec = {"op": fam["op"], "target": q, "kwargs": kwargs, "data": cell_data,
                                "check": fam.get("check"), "init": fam.get("init", {}),
                                "callee": fam.get("callee")}
                        if fam["op"] == "evaluate":
                            spec["metric"] = self._target_spec(fam, q)
                        if fam["op"] in ("scaler", "lag_transform"):
                            spec = self._split_init(spec, params, param)
                        sc = entry.get("scenario", "baseline")
                        cell = Cell(q, fam["method"], param, v,
                                    lab + (f" | {entry['scenario']}" if entry.get("scenario") else ""), sc, spec)
                        cell.facts = self.cell_facts(cell)
                        cells.append(cell)
                if cells:
                    groups.append(Group(f"{q}:{fam['name']}", q, {"kind": "functions", "family": fam["name"]},
                                        cells))
        return self._coalesce(groups)

    def _coalesce(self, groups: list[Group], parts: int = 4) -> list[Group]:
        """Functions need no set-up: the cells of all targets in ``parts`` groups (at most ``group_cells`` each,
        spec; default 200) instead of a group per target, so a matrix of cells of milliseconds does not pay a
        process per target. Cell order is kept; each cell still names its own target."""
        cells = [c for g in groups for c in g.cells]
        if not cells:
            return []
        size = max(1, min(int(self.spec.get("group_cells", 200)), -(-len(cells) // parts)))
        out = []
        for k in range(0, len(cells), size):
            part = cells[k:k + size]
            fams = list(dict.fromkeys(c.method for c in part))
            out.append(Group(f"{self.library}:cells:{k // size}", part[0].model,
                             {"kind": "functions", "methods": fams}, part))
        return out

    @staticmethod
    def _split_init(spec: dict[str, Any], params: dict[str, Any], param: str) -> dict[str, Any]:
        """A class target: constructor kwargs (the class's own parameters) apart from the call's."""
        init = {k: v for k, v in spec["kwargs"].items() if k in params}
        spec["init"] = {**spec.get("init", {}), **init}
        spec["kwargs"] = {k: v for k, v in spec["kwargs"].items() if k not in params}
        return spec

    # facts -------------------------------------------------------------------------------------------
    def cell_facts(self, cell: Cell) -> dict[str, Any]:
        d = cell.spec["data"]
        kw = {**cell.spec.get("init", {}), **cell.spec.get("kwargs", {})}
        out: dict[str, Any] = {"ds_dtype": "datetime" if d["ds"] == "datetime" else "int", "data_freq": d["freq"],
                               "n_series": int(d["n_series"]), "length": int(d["length"]),
                               "gaps": bool(d.get("gaps")), "dtype": d.get("dtype", "float64"),
                               "nan_in_data": bool(d.get("nan")), "state": "fresh"}
        if cell.spec["op"] in ARRAY_OPS:  # arrays of values: no time column, no frequency
            out["ds_dtype"] = out["data_freq"] = None
            out.pop("gaps")
        if "freq" in kw:
            out["freq"] = kw["freq"]
            with warnings.catch_warnings():  # a deprecated alias ('M') is a value under test, not a problem here
                warnings.simplefilter("ignore")
                out["freq_fits_data"] = scenario.freq_fits(kw["freq"], self._spacing(d))
        if "level" in kw or cell.spec["op"] == "evaluate":
            out["level"] = kw.get("level")
        for k in ("quantiles", "q", "agg_fn", "start", "end", "h"):
            if k in kw:
                out[k] = kw[k]
        return json.loads(json.dumps(out, sort_keys=True, default=str))

    @staticmethod
    @lru_cache(maxsize=64)
    def _spacing_of(key: str) -> Any:
        return scenario.spacing(_build(key)["series"])

    def _spacing(self, d: dict[str, Any]) -> Any:
        """The spacing of the data's ds, measured on the same data without gaps."""
        return self._spacing_of(json.dumps({**d, "gaps": False}, sort_keys=True))

    # execution ---------------------------------------------------------------------------------------
    def setup(self, group: Group) -> dict[str, Any]:
        return {"group": group.key}

    def decode(self, value: Any, data: dict[str, Any]) -> Any:
        if isinstance(value, dict):
            if "__obj__" in value:  # only the closed table of compat/objects.yaml
                from .objects import build

                return build(value, lambda v: self.decode(v, data))
            if "__data__" in value:
                return data[value["__data__"]]
            if "__array__" in value:
                return np.asarray(value["__array__"], dtype=value.get("dtype"))
            if "__fn__" in value:
                q = value["__fn__"]
                if q not in self.functions:
                    raise ValueError(f"{{__fn__: {q!r}}} is not a function the registry lists for {self.library}")
                fn = _import(q)
                kw = {k: self.decode(v, data) for k, v in (value.get("kwargs") or {}).items()}
                return functools.partial(fn, **kw) if kw else fn
            return {k: self.decode(v, data) for k, v in value.items() if k != "label"}
        if isinstance(value, list):
            return [self.decode(v, data) for v in value]
        return value

    def run(self, state: Any, cell: Cell) -> list[str]:
        spec = cell.spec
        # a cell re-run from its stored row names what it calls: only this library's registry targets, the
        # spec's own callees and ops are accepted (nothing else is imported)
        callees = {f.get("callee") for f in self.spec["families"]}
        if spec.get("target") not in self.models or spec.get("callee") not in callees or spec.get("op") not in OPS:
            raise ValueError(f"cell spec names {spec.get('op')!r} on {spec.get('target')!r} / "
                             f"{spec.get('callee')!r}: not a target of the {self.library} adapter")
        data = _build(json.dumps(spec["data"], sort_keys=True))
        data = {k: (v.copy() if hasattr(v, "copy") else v) for k, v in data.items()}  # a cell may mutate them
        kwargs = {k: self.decode(v, data) for k, v in spec.get("kwargs", {}).items()}
        init = {k: self.decode(v, data) for k, v in spec.get("init", {}).items()}
        return OPS[spec["op"]](self, spec, data, kwargs, init)

    def cleanup(self) -> None:
        pass


# ------------------------------------------------------------------------------------------------ ops + checks
def _nan_ok(spec: dict[str, Any]) -> bool:
    return bool(spec["data"].get("nan")) or bool(spec["data"].get("gaps"))


def _op_evaluate(ad: FunctionAdapter, spec: dict[str, Any], data: dict[str, Any], kwargs: dict[str, Any],
                 init: dict[str, Any]) -> list[str]:
    metric = ad.decode(spec["metric"], data)
    data = {**data, "seasonality_bound": (spec["metric"].get("kwargs") or {}).get("seasonality")}
    fn = _import(spec["callee"])
    out = fn(metrics=[metric], **kwargs)
    return check_evaluate(out, ad.params.get(spec["target"], {}), kwargs, data)


def check_evaluate(out: Any, metric_params: dict[str, Any], kwargs: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """One row per id × metric (× cutoff), the number of metrics the level asks for, no NaN."""
    if not isinstance(out, pd.DataFrame):
        return [f"no DataFrame returned ({type(out).__name__})"]
    level = kwargs.get("level") or []
    per_q = "q" in metric_params or ("dict" in (metric_params.get("models", {}).get("type_norm") or [])
                                     and "quantiles" not in metric_params)
    n_metrics = 2 * len(level) if per_q else len(level) if "level" in metric_params else 1
    if "quantiles" in metric_params:
        n_metrics = 1
    ids = data["forecasts"]["unique_id"].nunique()
    b: list[str] = []
    if "metric" not in out.columns:
        return ["no metric column"]
    if out["metric"].nunique() != n_metrics:
        b.append(f"{out['metric'].nunique()} metric names, expected {n_metrics}: {sorted(out['metric'].unique())}")
    agg = kwargs.get("agg_fn")
    key = ["metric"] + ([] if agg else ["unique_id"]) + (["cutoff"] if "cutoff" in out.columns else [])
    if out.duplicated(key).any():
        b.append(f"duplicated {tuple(key)} rows")
    df = kwargs.get("df")
    cut = "cutoff" in out.columns and isinstance(df, pd.DataFrame) and "cutoff" in df.columns
    groups = (df["cutoff"].nunique() if cut else 1) if agg else \
        (len(df[["unique_id", "cutoff"]].drop_duplicates()) if cut else ids)
    expected = n_metrics * groups
    if len(out) != expected:
        b.append(f"{len(out)} rows, expected {expected} "
                 f"({'one per metric (× cutoff)' if agg else 'one per id (× cutoff) × metric'})")
    models = [c for c in out.columns if c not in ("unique_id", "metric", "cutoff")]
    nan = [c for c in models if out[c].isna().any()]
    if nan and not _nan_legit(metric_params, kwargs, data):
        b.append(f"NaN in {nan}")
    return b


def _nan_legit(params: dict[str, Any], kwargs: dict[str, Any], data: dict[str, Any]) -> bool:
    """A scaled loss (seasonality, train_df) gives NaN when no series of train_df is longer than the seasonality:
    the seasonal-naive scale does not exist — the metric's own answer, not a wrong output."""
    if "seasonality" not in params:
        return False
    season = kwargs.get("seasonality", data.get("seasonality_bound"))
    train = kwargs.get("train_df")
    if not isinstance(season, int) or not isinstance(train, pd.DataFrame) or train.empty:
        return False
    return int(train.groupby("unique_id").size().min()) <= season


def _op_call(ad: FunctionAdapter, spec: dict[str, Any], data: dict[str, Any], kwargs: dict[str, Any],
             init: dict[str, Any]) -> list[str]:
    """A loss called directly: one row per id, a finite value per model."""
    out = _import(spec["target"])(**kwargs)
    if not isinstance(out, pd.DataFrame):
        return [f"no DataFrame returned ({type(out).__name__})"]
    df = kwargs.get("df")
    b = []
    if isinstance(df, pd.DataFrame):
        keys = [c for c in ("unique_id", "cutoff") if c in df.columns]
        n = len(df[keys].drop_duplicates())
        if len(out) != n:
            b.append(f"{len(out)} rows, expected one per {' × '.join(keys)} ({n})")
    vals = [c for c in out.columns if c not in ("unique_id", "cutoff", "metric")]
    nan = [c for c in vals if out[c].isna().any()]
    if nan and not _nan_legit(ad.params.get(spec["target"], {}), kwargs, data):
        b.append(f"NaN in {nan}")
    return b


def _on_grid(ds: pd.Series, freq: Any) -> bool:
    ds = ds.sort_values()
    if len(ds) < 2:
        return True
    if isinstance(freq, int) and not isinstance(freq, bool):
        return bool((ds.diff().dropna() == freq).all())
    grid = pd.date_range(ds.iloc[0], ds.iloc[-1], freq=freq)
    return len(grid) == len(ds) and bool((grid.values == ds.values).all())


def check_frame(out: Any, kwargs: dict[str, Any], data: dict[str, Any], fn_name: str) -> list[str]:
    """fill_gaps / id_time_grid: no duplicated (id, ds), every id's dates consecutive on the freq grid, the
    original rows kept, start / end honoured. Feature engineering ((train, future)): train keeps the rows of df,
    features without NaN, future has h rows per id on the grid after the last ds."""
    df, freq = kwargs.get("df"), kwargs.get("freq")
    b: list[str] = []
    if isinstance(out, tuple):
        if len(out) != 2 or not all(isinstance(x, pd.DataFrame) for x in out):
            return [f"expected (train, future) DataFrames, got {type(out).__name__} of {len(out)}"]
        train, future = out
        if len(train) != len(df):
            b.append(f"train has {len(train)} rows, df {len(df)}")
        new = [c for c in train.columns if c not in df.columns]
        if fn_name != "future_exog_to_historic" and not new:
            b.append("no feature column added")
        nan = [c for c in new if train[c].isna().any()]
        if nan:
            b.append(f"NaN in train features {nan}")
        h = kwargs.get("h", 0)
        ids = df["unique_id"].nunique()
        if isinstance(h, int) and h > 0:
            if len(future) != ids * h:
                b.append(f"future has {len(future)} rows, expected {ids} ids × h={h}")
            last = df.groupby("unique_id")["ds"].max()
            for uid, part in future.groupby("unique_id"):
                got = list(part["ds"].sort_values())
                off = pd.tseries.frequencies.to_offset(freq) if not isinstance(freq, int) else freq
                want = [last[uid] + k * off for k in range(1, h + 1)]
                if got != want:
                    b.append(f"future dates of {uid} not the {h} steps after its last ds on freq {freq!r}")
                    break
        return b
    if not isinstance(out, pd.DataFrame):
        return [f"no DataFrame returned ({type(out).__name__})"]
    if out.duplicated(["unique_id", "ds"]).any():
        b.append("duplicated (unique_id, ds) rows")
    off = [uid for uid, part in out.groupby("unique_id") if not _on_grid(part["ds"], freq)]
    if off:
        b.append(f"dates of {off} are not consecutive on the freq={freq!r} grid")
    inside = df
    for side, op in (("start", "ge"), ("end", "le")):
        bound = kwargs.get(side)
        if bound is not None and bound not in ("per_serie", "global") and not isinstance(bound, bool):
            try:
                want = bound if isinstance(bound, int) else pd.Timestamp(bound)
                inside = inside[getattr(inside["ds"], op)(want)]
            except (TypeError, ValueError):
                pass
    keys = set(zip(inside["unique_id"], inside["ds"]))  # values, not strings: a str of datetimes depends on
    kept = set(zip(out["unique_id"], out["ds"]))         # whether the column holds any time of day
    if fn_name == "fill_gaps" and not keys <= kept:
        b.append(f"{len(keys - kept)} original (id, ds) rows dropped")
    if fn_name == "fill_gaps" and "y" in out.columns:
        merged = df.merge(out, on=["unique_id", "ds"], suffixes=("", "_out"))
        if len(merged) and not np.allclose(merged["y"], merged["y_out"], equal_nan=True):
            b.append("values of original rows changed")
    lo, hi = out.groupby("unique_id")["ds"].min(), out.groupby("unique_id")["ds"].max()
    first, last = df.groupby("unique_id")["ds"].min(), df.groupby("unique_id")["ds"].max()
    for side, got, orig, agg in (("start", lo, first, "min"), ("end", hi, last, "max")):
        bound = kwargs.get(side, "per_serie" if side == "start" else "global")
        if bound == "per_serie" and not (got == orig).all():
            b.append(f"{side}='per_serie' but some ids {side} away from their own first/last ds")
        elif bound == "global" and got.nunique() != 1:
            b.append(f"{side}='global' but ids {side} at different dates")
        elif bound not in ("per_serie", "global") and not isinstance(bound, bool):
            want = pd.Timestamp(bound) if not isinstance(bound, int) else bound
            if not (got == want).all():
                b.append(f"{side}={bound!r} but ids {side} at {sorted(set(map(str, got)))}")
    return b


def _op_frame(ad: FunctionAdapter, spec: dict[str, Any], data: dict[str, Any], kwargs: dict[str, Any],
              init: dict[str, Any]) -> list[str]:
    out = _import(spec["target"])(**kwargs)
    return check_frame(out, kwargs, data, _short(spec["target"]))


def _ga(x: np.ndarray, indptr: np.ndarray) -> Any:
    from coreforecast.grouped_array import GroupedArray

    return GroupedArray(x, indptr)


def _leading_nan_ok(out: np.ndarray, indptr: np.ndarray, allowed: int, data_nan: bool) -> list[str]:
    """NaN only in the first ``allowed`` positions of each group (no history yet), and there."""
    b = []
    for g in range(len(indptr) - 1):
        part = out[indptr[g]:indptr[g + 1]]
        nan = np.isnan(part)
        if data_nan:
            continue
        if nan[allowed:].any():
            b.append(f"group {g}: NaN at positions {np.flatnonzero(nan[allowed:])[:5] + allowed} after the "
                     f"{allowed} without history")
            break
    return b


def _op_scaler(ad: FunctionAdapter, spec: dict[str, Any], data: dict[str, Any], kwargs: dict[str, Any],
               init: dict[str, Any]) -> list[str]:
    """A coreforecast scaler: fit_transform keeps the length; local scalers invert exactly
    (inverse(transform(x)) ≈ x); differences invert a continuation (Difference: exactly the next values)."""
    x, indptr = data["x"], data["indptr"]
    sc = _import(spec["target"])(**init)
    out = np.asarray(sc.fit_transform(_ga(x, indptr), **kwargs))
    b = []
    if out.shape != x.shape:
        return [f"fit_transform returned shape {out.shape}, input {x.shape}"]
    tol = 1e-3 if x.dtype == np.float32 else 1e-6
    if hasattr(sc, "transform"):  # local scalers: stats per group, exact inverse
        back = np.asarray(sc.inverse_transform(_ga(out, indptr)))
        ok = ~np.isnan(x)
        if spec["data"].get("nan") and not init.get("skipna"):  # skipna=False: a NaN spreads over its group
            ok &= ~np.isnan(out)
        if np.isnan(out[ok]).any():
            b.append("NaN in the transformed values of non-NaN inputs")
        elif not np.allclose(back[ok], x[ok], rtol=tol, atol=tol):
            b.append(f"inverse_transform(fit_transform(x)) differs from x by up to {np.nanmax(np.abs(back - x)):.3g}")
        return b
    # differences: NaN only in the leading positions each difference consumes; the inverse of the next values'
    # differences is those values
    allowed = int(init.get("d", 0)) if "d" in init else int(np.isnan(out[indptr[0]:indptr[1]]).sum())
    b += _leading_nan_ok(out, indptr, allowed, bool(spec["data"].get("nan")))
    fut = data["x_future"]
    fi = data["indptr_future"]
    if _short(spec["target"]) == "Difference" and isinstance(init.get("d"), int):
        d = init["d"]
        full = [np.concatenate([x[indptr[g]:indptr[g + 1]], fut[fi[g]:fi[g + 1]]]) for g in range(len(indptr) - 1)]
        diffs = np.concatenate([f[-H:] - f[-H - d:-d] for f in full]).astype(x.dtype)
        back = np.asarray(sc.inverse_transform(_ga(diffs, fi)))
        if spec["data"].get("nan"):
            return b
        if not np.allclose(back, fut, rtol=tol, atol=tol):
            b.append(f"inverse_transform of the next {H} differences differs from the next values by up to "
                     f"{np.nanmax(np.abs(back - fut)):.3g}")
    else:
        back = np.asarray(sc.inverse_transform(_ga(np.zeros_like(fut), fi)))
        if back.shape != fut.shape:
            b.append(f"inverse_transform returned shape {back.shape}, expected {fut.shape}")
        elif not spec["data"].get("nan") and not np.isfinite(back).all():
            b.append("inverse_transform of a continuation is not finite")
    return b


_ROLL = {"Mean": "mean", "Std": "std", "Min": "min", "Max": "max"}


def _history_needed(name: str, init: dict[str, Any]) -> int:
    """Positions of each group without a value: the lag plus what the statistic needs."""
    lag = int(init.get("lag", 0))
    if name == "Lag":
        return lag
    ws = init.get("window_size")
    ms = init.get("min_samples") or ws
    if name.endswith("Std") and isinstance(ms, int):  # a standard deviation needs two values
        if isinstance(ws, int) and ws < 2:
            return 10**9  # a window of one value has no standard deviation anywhere
        ms = max(ms, 2)
    if name.startswith("SeasonalRolling"):
        return lag + int(init.get("season_length", 1)) * (int(ms) - 1)
    if name.startswith("Rolling"):
        return lag + int(ms) - 1
    if name == "ExpandingStd":
        return lag + 1

    return lag


def _reference(name: str, part: np.ndarray, init: dict[str, Any]) -> np.ndarray | None:
    """pandas' value of the simple transforms, for a numeric check (None where no reference is kept)."""
    s, lag = pd.Series(part.astype("float64")), int(init.get("lag", 0))
    if name == "Lag":
        return s.shift(lag).to_numpy()
    for pre, kind in (("Rolling", "rolling"), ("Expanding", "expanding")):
        stat = name[len(pre):] if name.startswith(pre) else None
        if stat in _ROLL:
            w = (s.rolling(int(init["window_size"]), min_periods=int(init.get("min_samples") or init["window_size"]))
                 if kind == "rolling" else s.expanding(min_periods=2 if stat == "Std" else 1))
            return getattr(w, _ROLL[stat])().shift(lag).to_numpy()
    if name == "ExponentiallyWeightedMean":
        return s.ewm(alpha=float(init["alpha"]), adjust=False).mean().shift(lag).to_numpy()
    return None


def _op_lag_transform(ad: FunctionAdapter, spec: dict[str, Any], data: dict[str, Any], kwargs: dict[str, Any],
                      init: dict[str, Any]) -> list[str]:
    """A coreforecast lag transform: output length = input length, NaN only where the lag has no history (and
    there), pandas' value for the simple statistics, update() one value per group."""
    x, indptr = data["x"], data["indptr"]
    name = _short(spec["target"])
    tr = _import(spec["target"])(**init)
    out = np.asarray(tr.transform(_ga(x, indptr), **kwargs))
    if out.shape != x.shape:
        return [f"transform returned shape {out.shape}, input {x.shape}"]
    b = []
    need = _history_needed(name, init)
    has_nan = bool(spec["data"].get("nan"))
    for g in range(len(indptr) - 1):
        part = out[indptr[g]:indptr[g + 1]]
        lag = int(init.get("lag", 0))
        if not np.isnan(part[:min(lag, len(part))]).all():
            b.append(f"group {g}: values in the first {lag} positions, which have no history at lag {lag}")
            break
        if not has_nan and np.isnan(part[need:]).any():
            b.append(f"group {g}: NaN after the first {need} positions")
            break
        ref = None if has_nan else _reference(name, x[indptr[g]:indptr[g + 1]], init)
        if ref is not None and not np.allclose(part, ref, rtol=1e-4, atol=1e-4, equal_nan=True):
            b.append(f"group {g}: differs from pandas' {name} by up to {np.nanmax(np.abs(part - ref)):.3g}")
            break
    upd = np.asarray(tr.update(_ga(x, indptr)))
    if upd.shape != (len(indptr) - 1,):
        b.append(f"update() returned shape {upd.shape}, expected one value per group ({len(indptr) - 1})")
    return b


def _op_array(ad: FunctionAdapter, spec: dict[str, Any], data: dict[str, Any], kwargs: dict[str, Any],
              init: dict[str, Any]) -> list[str]:
    """A coreforecast array function on one series: an array of the input's length with NaN only in the
    leading positions its window needs, or a finite scalar."""
    x = data["x"][data["indptr"][0]:data["indptr"][1]]
    out = _import(spec["target"])(**kwargs) if "x" in kwargs else _import(spec["target"])(x, **kwargs)
    if np.ndim(out) == 0:
        return [] if np.isfinite(out) else [f"non-finite result {out}"]
    out = np.asarray(out)
    if out.shape != x.shape:
        return [f"returned shape {out.shape}, input {x.shape}"]
    name = _short(spec["target"])
    ws, ms = kwargs.get("window_size"), kwargs.get("min_samples")
    need = 0
    if isinstance(ws, int):
        need = max(int(ms) if isinstance(ms, int) else ws, 2 if name.endswith("_std") else 1) - 1
        if name.endswith("_std") and ws < 2:
            return []  # a window of one value has no standard deviation anywhere
        if name.startswith("seasonal") and isinstance(kwargs.get("season_length"), int):
            need *= kwargs["season_length"]
    elif name == "diff":
        need = kwargs.get("d", 0) if isinstance(kwargs.get("d"), int) else 0
    elif name == "expanding_std":
        need = 1
    if spec["data"].get("nan"):
        return []
    if np.isnan(out[need:]).any():
        return [f"NaN after the first {need} positions"]
    return []


def _op_grouped_array(ad: FunctionAdapter, spec: dict[str, Any], data: dict[str, Any], kwargs: dict[str, Any],
                      init: dict[str, Any]) -> list[str]:
    """GroupedArray(data, indptr) then a transform on it (LocalStandardScaler): the groups it sees."""
    from coreforecast.scalers import LocalStandardScaler

    ga = _import(spec["target"])(kwargs["array"], kwargs["indptr"])
    out = np.asarray(LocalStandardScaler().fit_transform(ga))
    x = np.asarray(kwargs["array"])
    if out.shape != x.shape:
        return [f"a transform on it returned shape {out.shape}, data {x.shape}"]
    ip = np.asarray(kwargs["indptr"])
    b = []
    if len(ip) and (ip[0] != 0 or ip[-1] != len(x)):
        b.append(f"indptr [{ip[0]} … {ip[-1]}] leaves data positions outside every group (data has {len(x)}): "
                 f"accepted without an error")
    for g in range(len(ip) - 1):
        part = out[ip[g]:ip[g + 1]]
        if len(part) > 1 and not np.isnan(part).all() and abs(float(np.nanmean(part))) > 1e-4:
            b.append(f"group {g} ({ip[g]}:{ip[g + 1]}) is not standardised on its own (mean {np.nanmean(part):.3g})")
            break
    return b


ARRAY_OPS = {"scaler", "lag_transform", "array", "grouped_array"}
OPS: dict[str, Callable[..., list[str]]] = {
    "evaluate": _op_evaluate, "call": _op_call, "frame": _op_frame, "scaler": _op_scaler,
    "lag_transform": _op_lag_transform, "array": _op_array, "grouped_array": _op_grouped_array,
}


class UtilsForecastAdapter(FunctionAdapter):
    spec_name = "utilsforecast"


class CoreForecastAdapter(FunctionAdapter):
    spec_name = "coreforecast"


# ------------------------------------------------------------------------------------------------ hierarchicalforecast
HIER_DEFAULT = {"hier": "strict", "n_bottom": 4, "length": 24, "h": 3, "fitted": True, "y_df": True, "nan": False,
                "negative": False, "levels": [80, 95]}
HIER_SPECS = {"strict": [["Country"], ["Country", "State"], ["Country", "State", "City"]],
              "grouped": [["Country"], ["Country", "State"], ["Country", "Purpose"], ["Country", "State", "Purpose"]]}


def hier_spec(d: dict[str, Any]) -> dict[str, Any]:
    return {**HIER_DEFAULT, **{k: v for k, v in d.items() if k in HIER_DEFAULT}}


@lru_cache(maxsize=32)
def _build_hier(key: str) -> dict[str, Any]:
    return build_hier_data(json.loads(key))


def build_hier_data(spec: dict[str, Any]) -> dict[str, Any]:
    """A small hierarchy built with hierarchicalforecast's own ``aggregate`` (no network): ``n_bottom`` bottom
    series (Country / State / City, two cities a state; ``hier: grouped`` crosses State × Purpose instead, which
    is not strictly hierarchical) of ``length`` daily points; the last ``h`` are the horizon. Base forecasts are
    an in-code naive forecast (``Naive``: each series' last value) with normal intervals for ``levels``; ``Y_df``
    holds the training values with the in-sample ``Naive`` fitted values (``fitted: false`` leaves them out,
    ``y_df: false`` passes no Y_df); ``nan`` puts a NaN in one base forecast; ``negative`` centres the bottom
    series near zero so that base forecasts are negative."""
    from hierarchicalforecast.utils import aggregate

    s = hier_spec(spec)
    rng = np.random.default_rng(0)
    n, length, h = int(s["n_bottom"]), int(s["length"]), int(s["h"])
    rows = []
    for i in range(n):
        t = np.arange(length)
        base = (0.0 if s["negative"] else 10.0 + i) - (0.5 * (i + 1) if s["negative"] else 0.0)
        y = base + 2 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.3, length)
        rows.append(pd.DataFrame({"Country": "C", "State": f"S{i // 2 + 1}", "City": f"c{i + 1}",
                                  "Purpose": f"p{i % 2 + 1}", "ds": pd.date_range("2021-01-04", periods=length),
                                  "y": y}))
    df = pd.concat(rows, ignore_index=True)
    Y, S_df, tags = aggregate(df, HIER_SPECS[s["hier"]])
    Y = Y.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    pos = Y.groupby("unique_id").cumcount(ascending=False)
    train, test = Y[pos >= h].reset_index(drop=True), Y[pos < h].reset_index(drop=True)
    last = train.groupby("unique_id")["y"].last()
    sigma = train.groupby("unique_id")["y"].apply(lambda v: float(np.std(np.diff(v.to_numpy()), ddof=1)))
    fc = test[["unique_id", "ds"]].copy()
    fc["Naive"] = fc["unique_id"].map(last)
    step = fc.groupby("unique_id").cumcount() + 1
    for lv in s["levels"]:
        z = {80: 1.2816, 95: 1.96, 50: 0.674, 90: 1.645, 99: 2.5758}.get(lv, 1.0)
        half = z * fc["unique_id"].map(sigma) * np.sqrt(step)
        fc[f"Naive-lo-{lv}"] = fc["Naive"] - half
        fc[f"Naive-hi-{lv}"] = fc["Naive"] + half
    if s["nan"]:
        fc.loc[fc.index[-1], "Naive"] = np.nan
    y_df = train.copy()
    if s["fitted"]:
        y_df["Naive"] = y_df.groupby("unique_id")["y"].shift(1).fillna(y_df["y"])
    return {"Y_hat_df": fc, "Y_df": y_df if s["y_df"] else None, "S_df": S_df, "tags": tags, "spec": s}


def _op_reconcile(ad: FunctionAdapter, spec: dict[str, Any], data: dict[str, Any], kwargs: dict[str, Any],
                  init: dict[str, Any]) -> list[str]:
    """HierarchicalReconciliation([reconciler]).reconcile on the hierarchy: the reconciler's constructor takes
    its own parameters (from the registry), reconcile the rest."""
    from hierarchicalforecast.core import HierarchicalReconciliation

    hd = _build_hier(json.dumps(hier_spec(spec["data"]), sort_keys=True))
    hd = {k: (v.copy() if hasattr(v, "copy") else v) for k, v in hd.items()}
    own = ad.params.get(spec["target"], {})
    init = {**init, **{k: v for k, v in kwargs.items() if k in own}}
    call = {k: v for k, v in kwargs.items() if k not in own}
    rec = _import(spec["target"])(**init)
    hrec = HierarchicalReconciliation(reconcilers=[rec])
    args = {"Y_hat_df": hd["Y_hat_df"], "S_df": hd["S_df"], "tags": hd["tags"], "Y_df": hd["Y_df"], **call}
    out = hrec.reconcile(**args)
    return check_reconcile(out, hd, _short(spec["target"]), init, call)


def check_reconcile(out: Any, hd: dict[str, Any], cls: str, init: dict[str, Any], call: dict[str, Any]) -> list[str]:
    """One row per (unique_id of every level, ds) for h steps; the reconciler's columns (and ``-lo-`` / ``-hi-``
    for each level asked, lo ≤ hi); no NaN; coherence: every aggregate equals S × the bottom values; nonnegative
    reconcilers give no negative value."""
    if not isinstance(out, pd.DataFrame):
        return [f"no DataFrame returned ({type(out).__name__})"]
    s, S_df = hd["spec"], hd["S_df"]
    ids = list(S_df["unique_id"])
    b: list[str] = []
    if out.duplicated(["unique_id", "ds"]).any():
        b.append("duplicated (unique_id, ds) rows")
    expected = len(ids) * int(s["h"])
    if len(out) != expected or set(out["unique_id"]) != set(ids):
        b.append(f"{len(out)} rows over {out['unique_id'].nunique()} ids, expected {expected} "
                 f"({len(ids)} ids × h={s['h']})")
    cols = [c for c in out.columns if c.startswith(f"Naive/{cls}")]
    point = [c for c in cols if "-lo-" not in c and "-hi-" not in c]  # the mean and any samples
    means = [c for c in point if "-sample-" not in c]
    if not means:
        return b + [f"no reconciled column Naive/{cls}…: {list(out.columns)}"]
    n_samples = call.get("num_samples")
    if isinstance(n_samples, int) and n_samples > 0 and call.get("level"):
        got = sum("-sample-" in c for c in point)
        if got != n_samples * len(means):
            b.append(f"{got} sample columns, expected num_samples={n_samples} per reconciled column")
    levels = call.get("level") or []
    for c in means:
        for lv in levels:
            for side in ("lo", "hi"):
                if f"{c}-{side}-{lv}" not in out.columns:
                    b.append(f"no interval column {c}-{side}-{lv}")
            lo, hi = f"{c}-lo-{lv}", f"{c}-hi-{lv}"
            if lo in out.columns and hi in out.columns and (out[lo] > out[hi] + 1e-8).any():
                b.append(f"{lo} above {hi}")
    nan = [c for c in cols if out[c].isna().any()]
    if nan:
        b.append(f"NaN in {nan}")
    bottom = [c for c in S_df.columns if c != "unique_id"]
    S = S_df.set_index("unique_id")[bottom].to_numpy(dtype="float64")
    for c in point:
        wide = out.pivot_table(index="unique_id", columns="ds", values=c, dropna=False).reindex(ids)
        if wide.shape[0] != len(ids) or wide.isna().any().any():
            continue
        agg = S @ wide.loc[bottom].to_numpy()
        diff = float(np.max(np.abs(agg - wide.to_numpy())))
        scale = max(1.0, float(np.max(np.abs(wide.to_numpy()))))
        if diff > 1e-4 * scale:
            b.append(f"{c} is not coherent: aggregates differ from the sum of their bottom series by up to {diff:.3g}")
        if init.get("nonnegative") and float(np.min(wide.to_numpy())) < -1e-6:
            b.append(f"{c}: nonnegative=True but a value is {float(np.min(wide.to_numpy())):.3g}")
    return b


OPS["reconcile"] = _op_reconcile


class HierarchicalForecastAdapter(FunctionAdapter):
    """Every reconciler class of hierarchicalforecast.methods (from the registry) through
    HierarchicalReconciliation.reconcile: a reconciler's own parameters (method enums from the registry) take
    their values from its ``__init__`` row, reconcile's (intervals_method, level) from reconcile's row."""
    spec_name = "hierarchicalforecast"

    def _values(self, fam: dict[str, Any], entry: dict[str, Any], q: str, length: int) -> list[tuple[Any, str]]:
        if entry.get("generic") and entry["param"] in self.params.get(q, {}):
            values = candidates(self.params[q][entry["param"]], length)
            for v in entry.get("values", []):
                if all(not _same(v, x) for x, _ in values):
                    values.append((v, label(v)))
            return values
        return super()._values(fam, entry, q, length)

    def cell_facts(self, cell: Cell) -> dict[str, Any]:
        s = hier_spec(cell.spec["data"])
        kw = cell.spec.get("kwargs", {})
        n_ids = len(_build_hier(json.dumps(s, sort_keys=True))["S_df"])
        out = {"ds_dtype": "datetime", "data_freq": "D", "n_series": n_ids, "n_bottom": int(s["n_bottom"]),
               "length": int(s["length"]), "h": int(s["h"]), "hierarchy": s["hier"],
               "levels": ["/".join(lv) for lv in HIER_SPECS[s["hier"]]],
               "fitted_values": bool(s["fitted"]) and bool(s["y_df"]), "y_df": bool(s["y_df"]),
               "nan_in_data": bool(s["nan"]), "negative_base": bool(s["negative"]), "state": "fresh",
               "intervals_method": kw.get("intervals_method", "normality"), "level": kw.get("level")}
        return json.loads(json.dumps(out, sort_keys=True, default=str))
