"""datasetsforecast in the compatibility matrix: its dataset loaders and its pure functions.

- **Loaders**: every class the registry lists with a public ``load`` method (M3, M4, M5, LongHorizon,
  LongHorizon2, HierarchicalData, PHM2008, FavoritaData) gets one cell per group of its module's ``Info`` (the
  library's own group list). A loader downloads what is missing from its folder; the matrix never waits on a
  network: the cell first looks for the files the loader reads (``layout`` in ``datasetsforecast_cells.yaml``,
  under ``FCAST_DATASETS_DIR``, default ``$FCAST_HOME/datasets``). Present: the real loader runs on them and its
  frames are checked (``check_loaded``). Absent: the download host is tried once per loader with a 3 s limit
  (name resolution included) and the cell is recorded ``skipped`` (:class:`NetworkUnreachable` /
  :class:`DataNotLocal`) with the host, why, and the files to put where; ``FCAST_DATASETS_DOWNLOAD=1`` lets a cell
  whose host answers download for real.
- **Functions** (favorita's array / frame helpers, M5Evaluation.aggregate_levels, the .tsf reader, archive
  extraction): through the function adapter's families (op ``dsf``), each output checked against an independent
  reference (pandas' ffill, the product of the inputs, the sums of the bottom rows, ...).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import os
import socket
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from .. import config
from .candidates import label
from .function_adapter import OPS, FunctionAdapter
from .runner import Cell, CellSkipped, Group

CONNECT_TIMEOUT_S = 3.0  # reaching a download host, name resolution included
LOADER_METHOD = "Loader.load"


class NetworkUnreachable(CellSkipped):
    """The loader's files are not local and its download host cannot be reached."""


class DataNotLocal(CellSkipped):
    """The loader's files are not local; the host answers but downloads are off (FCAST_DATASETS_DOWNLOAD)."""


def datasets_dir() -> Path:
    """Where loader cells look for dataset files: ``FCAST_DATASETS_DIR`` or ``$FCAST_HOME/datasets``."""
    return Path(os.environ.get("FCAST_DATASETS_DIR") or config.data_home() / "datasets").resolve()


def downloads_on() -> bool:
    return os.environ.get("FCAST_DATASETS_DOWNLOAD", "").strip().lower() in ("1", "true", "yes", "on")


def _resolve(qualname: str) -> Any:
    """The object a dotted name names (a module attribute, or a class attribute: ``m5.M5Evaluation.aggregate_levels``)."""
    parts = qualname.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for p in parts[i:]:
            obj = getattr(obj, p)
        return obj
    raise ImportError(qualname)


def reachable(host: str, port: int = 443, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when a TCP connection to ``host:port`` opens within ``timeout`` seconds, else why not. Name resolution
    runs in a daemon thread so that a resolver that hangs cannot hold the cell past ``timeout``."""
    out: dict[str, Any] = {}

    def resolve() -> None:
        try:
            out["addr"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            out["err"] = e

    t = threading.Thread(target=resolve, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        return f"name resolution did not answer within {timeout:g}s"
    if "err" in out:
        return f"{type(out['err']).__name__}: {out['err']}"
    last: OSError | None = None
    for family, kind, proto, _, addr in out["addr"][:2]:
        try:
            with socket.socket(family, kind, proto) as s:
                s.settimeout(timeout)
                s.connect(addr)
            return None
        except OSError as e:
            last = e
    return f"{type(last).__name__}: {last}" if last else "no address"


# ------------------------------------------------------------------------------------------------ loader layout
def _group_fields(group_cls: Any) -> dict[str, Any]:
    """The defaults of a group dataclass (freq, horizon, n_ts, file names, ...); plain class attributes otherwise."""
    if group_cls is None:
        return {}
    if dataclasses.is_dataclass(group_cls):
        return {f.name: f.default for f in dataclasses.fields(group_cls)
                if f.default is not dataclasses.MISSING}
    return {k: v for k, v in vars(group_cls).items() if not k.startswith("_") and not callable(v)}


def _info_of(loader_qualname: str) -> Any:
    """The module's ``Info`` (its group list), or None for a loader without groups (M5)."""
    from datasetsforecast.utils import Info

    mod = importlib.import_module(loader_qualname.rsplit(".", 1)[0])
    infos = [v for k, v in vars(mod).items() if isinstance(v, Info) and not k.startswith("_")]
    return infos[0] if len(infos) == 1 else None


def _fmt(template: str, fields: dict[str, Any]) -> str:
    """``{name}`` from fields; ``{attr@qualname}`` from another class of the library (Favorita's raw data URL)."""
    if "@" in template:
        attr, _, q = template.strip("{}").partition("@")
        return str(getattr(_resolve(q), attr))
    return template.format(**fields)


def layout_fields(layout: dict[str, Any], loader_qualname: str, group: str | None) -> dict[str, Any]:
    info = _info_of(loader_qualname) if group is not None else None
    gcls = info.get_group(group) if info is not None else None
    loader = _resolve(loader_qualname)
    fields = {k: v for k, v in vars(loader).items() if isinstance(v, str) and not k.startswith("_")}
    fields.update(_group_fields(gcls))
    fields["group"] = group
    for name, by_group in (layout.get("fields") or {}).items():
        fields[name] = by_group.get(group, by_group.get("default"))
    return fields


def needed_files(layout: dict[str, Any], fields: dict[str, Any]) -> list[list[str]]:
    """The alternatives (lists of relative paths) any one of which lets the loader run without a download."""
    each = fields.get(layout["each"]) if layout.get("each") else None
    gs = list(each) if each else [fields.get("group")]
    return [[_fmt(p, {**fields, "g": g}) for g in gs for p in alt] if any("{g}" in p for p in alt)
            else [_fmt(p, fields) for p in alt] for alt in layout["needs"]]


def hosts_of(layout: dict[str, Any], fields: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(urlparse(_fmt(u, fields)).hostname or "" for u in layout.get("hosts", [])))


# ------------------------------------------------------------------------------------------------ post-conditions
def check_loaded(out: Any, layout: dict[str, Any], fields: dict[str, Any]) -> list[str]:
    """The frames a loader returns: long frames with the id columns, ds and y, rows, no NaN in y, no duplicated
    (id, ds), every series longer than the group's horizon; a hierarchy's S_df rows are the ids of Y_df and its
    tags cover S_df exactly once."""
    ids = list(layout.get("ids") or ["unique_id"])
    b: list[str] = []
    for i in layout.get("frames", [0]):
        df = out if i is None else (out[i] if isinstance(out, tuple) and len(out) > i else None)
        name = "the result" if i is None else f"frame {i}"
        if not isinstance(df, pd.DataFrame):
            b.append(f"{name} is not a DataFrame ({type(df).__name__})")
            continue
        missing = [c for c in ids + ["ds", "y"] if c not in df.columns]
        if missing:
            b.append(f"{name} lacks columns {missing}: {list(df.columns)[:8]}")
            continue
        if df.empty:
            b.append(f"{name} has no rows")
            continue
        if df["y"].isna().any():
            b.append(f"{name}: {int(df['y'].isna().sum())} NaN in y")
        if df.duplicated(ids + ["ds"]).any():
            b.append(f"{name}: duplicated ({', '.join(ids)}, ds) rows")
        h = fields.get("horizon")
        if isinstance(h, int) and h > 0 and i in (0, None):
            short = df.groupby(ids, observed=True).size()
            short = short[short <= h]
            if len(short):
                b.append(f"{name}: {len(short)} series have no more points than the horizon {h}")
    if layout.get("hier") and isinstance(out, tuple) and len(out) == 3:
        y, s_df, tags = out
        if isinstance(y, pd.DataFrame) and isinstance(s_df, pd.DataFrame) and "unique_id" in y.columns:
            if set(map(str, y["unique_id"].unique())) != set(map(str, s_df.index)):
                b.append("the ids of Y_df are not the rows of S_df")
            covered = [str(x) for v in dict(tags).values() for x in v]
            if sorted(covered) != sorted(map(str, s_df.index)):
                b.append(f"tags cover {len(covered)} ids, S_df has {len(s_df)} rows (each exactly once expected)")
    return b


# ------------------------------------------------------------------------------------------------ adapter
class DatasetsForecastAdapter(FunctionAdapter):
    """Loader cells (model: the loader class, method ``Loader.load``, param ``group``) and the function
    families of ``datasetsforecast_cells.yaml`` (op ``dsf``)."""

    spec_name = "datasetsforecast"

    def __init__(self, engine: Engine, release_id: int, work_dir: str):
        super().__init__(engine, release_id, work_dir)
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT qualname FROM registry_symbol WHERE release_id = :r AND is_public AND kind = 'method' "
                "AND name = 'load' ORDER BY symbol_id"), {"r": release_id}).scalars().all()
        self.loaders = {q.rsplit(".", 1)[0]: self.spec.get("loaders", {}).get(q.rsplit(".", 1)[0])
                        for q in rows if q.count(".") >= 3}
        for q in self.loaders:
            self.models[q] = {"qualname": q, "name": q.rsplit(".", 1)[-1]}

    # planning ----------------------------------------------------------------------------------------
    def plan(self, models: list[str], calibrated: dict[str, Any], families: set[str] | None = None) -> list[Group]:
        groups = super().plan([q for q in models if q not in self.loaders], calibrated, families)
        if families and not families & {"loaders", "load", LOADER_METHOD, "group"} and \
                not families & {self.models[q]["name"] for q in self.loaders}:
            return groups
        directory = str(datasets_dir())
        for q in [q for q in models if q in self.loaders]:
            info = _info_of(q)
            values: list[Any] = list(info.groups) if info is not None else [None]
            cells = []
            for g in values:
                spec = {"op": "load", "target": q, "group": g, "directory": directory, "download": downloads_on()}
                cell = Cell(q, LOADER_METHOD, "group", g, label(g, "no group parameter") if g is None else g,
                            "baseline", spec)
                cell.facts = self.cell_facts(cell)
                cells.append(cell)
            groups.append(Group(f"{q}:load", q, {"kind": "loader", "directory": directory}, cells))
        return groups

    def cell_facts(self, cell: Cell) -> dict[str, Any]:
        spec = cell.spec
        if spec.get("op") == "load":
            layout = self.loaders.get(spec["target"]) or {}
            out: dict[str, Any] = {"loader": _resolve(spec["target"]).__name__, "group": spec["group"],
                                   "state": "fresh", "download_allowed": bool(spec.get("download"))}
            if layout:
                fields = layout_fields(layout, spec["target"], spec["group"])
                for k in ("freq", "horizon", "seasonality", "n_ts"):
                    if k in fields:
                        out[k] = fields[k]
                root = Path(spec["directory"]) / layout.get("subdir", "")
                out["files_local"] = any(all((root / p).exists() for p in alt)
                                         for alt in needed_files(layout, fields))
                out["hosts"] = hosts_of(layout, fields)
            return json.loads(json.dumps(out, sort_keys=True, default=str))
        kw = spec.get("kwargs", {})
        return json.loads(json.dumps({"state": "fresh", "input": {k: label(v) if isinstance(v, dict) else v
                                                                  for k, v in kw.items()}},
                                     sort_keys=True, default=str))

    # execution ---------------------------------------------------------------------------------------
    def setup(self, group: Group) -> dict[str, Any]:
        """Loader groups: the download hosts that cells without local files would need, tried once here (each
        at most ``CONNECT_TIMEOUT_S``) and shared by the group's cells; never raises (a cell records it)."""
        state: dict[str, Any] = {"group": group.key, "network": {}}
        if group.setup.get("kind") != "loader":
            return state
        for cell in group.cells:
            try:
                layout = self.loaders.get(cell.spec["target"])
                if not layout or self._local(cell.spec, layout):
                    continue
                for h in hosts_of(layout, layout_fields(layout, cell.spec["target"], cell.spec["group"])):
                    if h not in state["network"]:
                        state["network"][h] = reachable(h)
            except Exception:  # noqa: BLE001 - the cell itself meets the failure and records it
                continue
        return state

    @staticmethod
    def _local(spec: dict[str, Any], layout: dict[str, Any]) -> list[str] | None:
        fields = layout_fields(layout, spec["target"], spec["group"])
        root = Path(spec["directory"]) / layout.get("subdir", "")
        for alt in needed_files(layout, fields):
            if all((root / p).exists() for p in alt):
                return alt
        return None

    def run(self, state: Any, cell: Cell) -> list[str]:
        spec = cell.spec
        if spec.get("op") == "load":
            return self._run_loader(state, spec)
        if spec.get("op") == "dsf":
            with tempfile.TemporaryDirectory(prefix="fcast-dsf-") as tmp:
                self._tmp = tmp
                try:
                    return super().run(state, cell)
                finally:
                    self._tmp = None
        return super().run(state, cell)

    def _run_loader(self, state: Any, spec: dict[str, Any]) -> list[str]:
        q = spec.get("target")
        if q not in self.loaders:  # a re-run from a stored row names only loaders of this registry
            raise ValueError(f"cell spec names loader {q!r}: not a loader of the {self.library} adapter")
        layout = self.loaders[q]
        root = Path(spec["directory"]) / (layout or {}).get("subdir", "")
        if not layout:
            raise DataNotLocal(f"no file layout declared for {q} in datasetsforecast_cells.yaml: the cell cannot "
                               "tell whether loading would download; declare its layout to run it")
        fields = layout_fields(layout, q, spec["group"])
        if self._local(spec, layout) is None:
            first = needed_files(layout, fields)[-1]
            where = f"put {', '.join(first[:4])}{' …' if len(first) > 4 else ''} under {root}"
            hosts = hosts_of(layout, fields)
            network = (state or {}).get("network", {}) if isinstance(state, dict) else {}
            down = {h: network[h] if h in network else reachable(h) for h in hosts}
            bad = {h: why for h, why in down.items() if why}
            if bad:
                h, why = next(iter(bad.items()))
                raise NetworkUnreachable(f"network unreachable: {h} ({why}; offline run); {where} to run this cell")
            if not spec.get("download"):
                raise DataNotLocal(f"data not local and downloads are off: {where}, or set FCAST_DATASETS_DOWNLOAD=1 "
                                   f"to let this cell download from {', '.join(hosts)}")
        loader = _resolve(q)
        kwargs = {"directory": str(root)}
        if spec["group"] is not None:
            kwargs["group"] = spec["group"]
        before = socket.getdefaulttimeout()
        socket.setdefaulttimeout(30.0)  # a download that stalls fails instead of holding the cell to its timeout
        try:
            out = loader.load(**kwargs)
        except Exception as e:
            import requests

            if isinstance(e, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, socket.gaierror)):
                raise NetworkUnreachable(f"network unreachable while loading: {type(e).__name__}: "
                                         f"{str(e).splitlines()[0][:200] if str(e) else ''}") from e
            raise
        finally:
            socket.setdefaulttimeout(before)
        return check_loaded(out, layout, fields)

    def decode(self, value: Any, data: dict[str, Any]) -> Any:
        if isinstance(value, dict):
            if "__frame__" in value:
                df = pd.DataFrame(copy.deepcopy(value["__frame__"]), index=value.get("index"))
                for c in value.get("dates", []):
                    df[c] = pd.to_datetime(df[c])
                return df
            if "__dates__" in value:
                return pd.DatetimeIndex(pd.to_datetime(value["__dates__"]))
            if "__list__" in value:
                return [self.decode(v, data) for v in value["__list__"]]
            if "__tsf__" in value:
                path = Path(self._tmp) / f"series{len(os.listdir(self._tmp))}.tsf"
                path.write_text(value["__tsf__"], encoding="cp1252")
                return str(path)
            if "__dir__" in value:
                path = Path(self._tmp) / value["__dir__"]
                path.mkdir(exist_ok=True)
                return str(path)
            if "__zip__" in value:
                path = Path(self._tmp) / "archive.zip"
                with zipfile.ZipFile(path, "w") as z:
                    for name, body in value["__zip__"].items():
                        z.writestr(name, body)
                return str(path)
        return super().decode(value, data)

    _tmp: str | None = None


# ------------------------------------------------------------------------------------------------ function checks
def _check_fill(out: Any, kw: dict[str, Any], fn: str) -> list[str]:
    arr = np.asarray(kw["arr"], dtype="float64")
    ref = pd.DataFrame(arr).ffill(axis=1) if fn == "numpy_ffill" else pd.DataFrame(arr).bfill(axis=1)
    out = np.asarray(out)
    if out.shape != arr.shape:
        return [f"returned shape {out.shape}, input {arr.shape}"]
    if not np.allclose(out.astype("float64"), ref.to_numpy(), equal_nan=True):
        return [f"differs from pandas' {'ffill' if fn == 'numpy_ffill' else 'bfill'}(axis=1) "
                f"at {int((~np.isclose(out.astype('float64'), ref.to_numpy(), equal_nan=True)).sum())} positions"]
    return []


def _check_balance(out: Any, kw: dict[str, Any], fn: str) -> list[str]:
    arrs = [np.asarray(a) for a in kw["arrs"]]
    out = np.asarray(out)
    n = int(np.prod([len(a) for a in arrs]))
    b = []
    if out.shape != (n, len(arrs)):
        return [f"returned shape {out.shape}, expected ({n}, {len(arrs)}): every combination of the inputs"]
    want = set(pd.MultiIndex.from_product([a.tolist() for a in arrs]).map(lambda t: tuple(map(str, t)))) \
        if n else set()
    got = {tuple(map(str, r)) for r in out.tolist()}
    if got != want:
        b.append(f"{len(want - got)} combinations missing, {len(got - want)} not from the inputs")
    return b


def _check_one_hot(out: Any, kw: dict[str, Any], fn: str, before: pd.DataFrame) -> list[str]:
    df, idx = kw["df"], kw["index_col"]
    b = []
    if not df.equals(before):
        b.append(f"the caller's df was changed: columns {list(before.columns)} -> {list(df.columns)}")
    if not isinstance(out, pd.DataFrame):
        return b + [f"no DataFrame returned ({type(out).__name__})"]
    cats = [c for c in before.columns if c != idx]
    if len(out) != len(before):
        b.append(f"{len(out)} rows, input {len(before)}")
    want = sum(before[c].nunique(dropna=False) for c in cats)
    enc = out.drop(columns=[idx]) if idx in out.columns else out
    if enc.shape[1] != want:
        b.append(f"{enc.shape[1]} encoded columns, expected {want} (one per category of {cats})")
    elif len(enc) and cats:
        sums = enc.to_numpy(dtype="float64").sum(axis=1)
        if not np.allclose(sums, len(cats)):
            b.append(f"a row's indicators sum to {sorted(set(sums.tolist()))[:3]}, expected {len(cats)} "
                     "(one per encoded column)")
    keys = out[idx].tolist() if idx in out.columns else out.index.tolist()
    if keys != before[idx].tolist():
        b.append("the index column's values are not kept in order")
    return b


def _check_levels(out: Any, kw: dict[str, Any], fn: str) -> list[str]:
    s_df = kw["S_df"]
    flat = [x for lv in out for x in lv]
    b = []
    if flat != list(s_df.index):
        b.append(f"levels {[list(lv) for lv in out]} are not the rows of S_df in order")
    for lv in out:
        cover = s_df.loc[list(lv)].sum(axis=0).to_numpy()
        if not (cover == 1).all():
            b.append(f"level {list(lv)[:3]} does not cover every bottom series exactly once")
            break
    return b


def _check_holiday_distance(out: Any, kw: dict[str, Any], fn: str) -> list[str]:
    dates = pd.DatetimeIndex(kw["dates"])
    out = np.asarray(out, dtype="float64")
    b = []
    if out.shape != (len(dates),):
        return [f"returned shape {out.shape}, expected one value per date ({len(dates)})"]
    if len(out) and (np.isnan(out).any() or (out < -0.5 - 1e-9).any() or (out > 0.5 + 1e-9).any()):
        b.append(f"values outside [-0.5, 0.5] or NaN: {out.round(3).tolist()[:5]}")
    hol = set(pd.DatetimeIndex(kw["holiday_dates"]).normalize())
    on = [i for i, d in enumerate(dates.normalize()) if d in hol]
    if on and not np.allclose(out[on], -0.5):
        b.append(f"a holiday's own date gives {out[on].round(3).tolist()}, expected -0.5 (distance 0)")
    return b


def _check_holidays_df(out: Any, kw: dict[str, Any], fn: str) -> list[str]:
    if not isinstance(out, pd.DataFrame):
        return [f"no DataFrame returned ({type(out).__name__})"]
    want = ["date"] + [f"dist2_[{h}]" for h in kw["holidays_df"]["description"].unique()]
    b = []
    if list(out.columns) != want:
        b.append(f"columns {list(out.columns)}, expected {want}")
    if len(out) != len(kw["dates"]):
        b.append(f"{len(out)} rows, expected one per date ({len(kw['dates'])})")
    return b


M5_LEVELS = 12


def _check_m5_levels(out: Any, kw: dict[str, Any], fn: str) -> list[str]:
    y = kw["y_hat"]
    if not isinstance(out, pd.DataFrame):
        return [f"no DataFrame returned ({type(out).__name__})"]
    b = []
    values = y.select_dtypes("number")
    if list(out.index.names) != ["Level_id", "Agg_Level_1", "Agg_Level_2"]:
        b.append(f"index {list(out.index.names)}, expected Level_id / Agg_Level_1 / Agg_Level_2")
    if list(out.columns) != [f"d_{i + 1}" for i in range(values.shape[1])]:
        b.append(f"columns {list(out.columns)[:4]}, expected d_1 … d_{values.shape[1]}")
    levels = out.index.get_level_values(0).unique() if "Level_id" in out.index.names else []
    if len(levels) != M5_LEVELS:
        b.append(f"{len(levels)} levels, expected {M5_LEVELS}")
    elif not np.allclose(out.xs("Level1", level=0).to_numpy(dtype="float64").ravel(),
                         values.sum(axis=0, skipna=True).to_numpy(dtype="float64")):
        b.append("Level1 (total) is not the sum of every series")
    elif len(out.xs("Level12", level=0)) != len(y.drop_duplicates(["item_id", "store_id"])):
        b.append(f"Level12 has {len(out.xs('Level12', level=0))} rows, expected one per item x store")
    return b


def _check_tsf(out: Any, kw: dict[str, Any], fn: str) -> list[str]:
    if not isinstance(out, tuple) or not isinstance(out[0], pd.DataFrame):
        return [f"expected (DataFrame, frequency, horizon, missing, equal length), got {type(out).__name__}"]
    df = out[0]
    text_ = Path(kw["full_file_path_and_name"]).read_text(encoding="cp1252")
    body = text_.split("@data", 1)[1].strip().splitlines() if "@data" in text_ else []
    b = []
    if len(df) != len(body):
        b.append(f"{len(df)} series, the file has {len(body)}")
    col = kw.get("value_column_name", "series_value")
    for i, line in enumerate(body[:len(df)]):
        vals = line.rsplit(":", 1)[-1].split(",")
        got = np.asarray(df[col].iloc[i], dtype="float64")
        if len(got) != len(vals):
            b.append(f"series {i}: {len(got)} values, the file has {len(vals)}")
            break
        fill = kw.get("replace_missing_vals_with", "NaN")
        for v, g in zip(vals, got):
            want = float("nan") if v == "?" and (fill in ("NaN", None)) else (float(fill) if v == "?" else float(v))
            if not (np.isnan(want) and np.isnan(g)) and not np.isclose(want, g):
                b.append(f"series {i}: value {g} for {v!r} in the file")
                break
    return b


def _check_extract(out: Any, kw: dict[str, Any], fn: str) -> list[str]:
    """Members land under the directory; nothing is written beside it (a zip-slip member refused)."""
    archive = Path(kw["filepath"])
    target = Path(kw["directory"])
    tmp = target.parent
    b = []
    outside = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*")
                     if p != archive and p != target and target not in p.parents)
    if outside:
        b.append(f"written outside the target directory: {outside[:3]}")
    with zipfile.ZipFile(archive) as z:
        names = [n for n in z.namelist() if not n.endswith("/")]
    missing = [n for n in names if not (target / n).is_file()]
    if missing:
        b.append(f"members not extracted: {missing[:3]}")
    return b


CHECKS = {"fill": _check_fill, "balance": _check_balance, "levels": _check_levels,
          "holiday_distance": _check_holiday_distance, "holidays_df": _check_holidays_df,
          "m5_levels": _check_m5_levels, "tsf": _check_tsf, "extract": _check_extract}


def _op_dsf(ad: FunctionAdapter, spec: dict[str, Any], data: dict[str, Any], kwargs: dict[str, Any],
            init: dict[str, Any]) -> list[str]:
    """A datasetsforecast function called with ``kwargs`` (a ``*args`` parameter gets its list spread), its output
    checked by ``CHECKS[spec['check']]`` (the one-hot check also compares the caller's frame before and after)."""
    fn = _resolve(spec["target"])
    name = spec["target"].rsplit(".", 1)[-1]
    var = [p for p, row in ad.params.get(spec["target"], {}).items() if row["kind"] == "var_positional"]
    args = list(kwargs.pop(var[0], [])) if var else []
    if spec.get("check") == "one_hot":
        before = kwargs["df"].copy()
        out = fn(*args, **kwargs)
        return _check_one_hot(out, kwargs, name, before)
    out = fn(*args, **kwargs)
    if var:
        kwargs[var[0]] = args
    return CHECKS[spec["check"]](out, kwargs, name)


OPS["dsf"] = _op_dsf
