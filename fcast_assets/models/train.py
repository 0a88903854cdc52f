"""Training, retraining and prediction of the models per game — always through run plans.

``train(engine, game, selector)`` registers the selector's model on first use (model choice from the registry and
the compat matrix, :mod:`.choose`) and trains it; afterwards it retrains from the ``model_registry`` row alone:
class, hyperparameters and exogenous lists come from the row, never from the caller or the config file. A training
plan is ``model -> NeuralForecast(freq=1) -> cross_validation -> evaluate (vs baselines) -> fit -> save -> predict``;
it is stored in run_plan / run_step, validated, executed by the plan runner (metrics, errors, artifacts, resources
in the run_ tables), and each success adds a ``model_version`` row with its own artifact folder: the previous
version's folder and row are kept.

A retrain (or a prediction) reads the gold tables once: the frames :func:`check_features` loads are handed to the
plan runner (``run_plan(..., frames=...)``), which validates and executes the plan on them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd
from sqlalchemy import Engine, text, update
from sqlmodel import Session, select

from .. import config
from ..locks import locked
from ..registry.view import latest_release
from ..db.feature_models import FeatureMaterialization
from ..db.model_models import ModelRegistry, ModelVersion
from ..db.models import utcnow
from ..db.run_models import RunArtifact, RunPlan, RunResource
from ..lake import games as G
from ..lake import versions as V
from ..plans import loader, runner
from .config import game_config
from ..plans.gold_data import load_gold, plan_inputs
from ..plans.model import GoldRef
from ..vocab import Exog
from .selectors import Selector, get_selector, seed_selectors, selector_by_id

log = logging.getLogger(__name__)
EXOG_PARAM = {e.value: e.list_param for e in Exog}
GOLD_TABLE = {"hist": "features", "futr": "futr", "stat": "static"}


class MissingFeatureError(ValueError):
    """The current gold tables lack a column the model was trained with: retraining refuses."""

    def __init__(self, model: str, missing: dict[str, list[str]]):
        cols = [c for v in missing.values() for c in v]
        super().__init__(
            f"model {model} was trained with exogenous columns that the current gold tables lack: "
            + "; ".join(f"{grp} {cols} (gold_{GOLD_TABLE[grp]})" for grp, cols in missing.items() if cols)
            + ". Restore the feature (features/generators.yaml) and re-materialize the gold tables, or register a "
            "new model configuration; nothing was changed.")
        self.missing = cols


class TrainingError(RuntimeError):
    pass


class TrainingPlanInvalidError(runner.PlanNotValidError, TrainingError):
    """The training plan failed validation: the message names each violation's message and fix (for a save path
    that exists, the folder and what to do), not only the rule."""

    def __init__(self, what: str, plan: str, violations: list[Any]):
        super().__init__(plan, violations)
        self.args = (f"{what}: plan {plan!r} failed validation: " + "; ".join(
            f"step {v.step} {v.param}: {v.rule}: {v.message}" + (f" (fix: {v.fix})" if v.fix else "")
            for v in violations),)


def artifact_path(game: str, selector: str, version: int) -> str:
    return str(config.artifact_root() / "models" / game / selector / f"v{version}")


PARTIAL = re.compile(r"^v\d+\.partial-(\d+)-[0-9a-f]+$")


def partial_path(final: str) -> str:
    """The temporary sibling a training plan saves into (``v<n>.partial-<pid>-<token>``); renamed to ``v<n>``
    only when the plan succeeded, so a killed run never leaves a ``v<n>`` that blocks the next one."""
    return f"{final}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _process_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def clear_leftovers(engine: Engine, final: str) -> list[str]:
    """Before saving to ``final`` (``.../v<n>``): remove the partial siblings left by dead processes, and move a
    ``v<n>`` folder that no model_version row points at (a run killed between its rename and its commit, or a
    crash before partial saves existed) aside to ``v<n>.orphan-<token>``. Returns what was touched."""
    folder, touched = Path(final).parent, []
    if folder.is_dir():
        for p in folder.iterdir():
            m = PARTIAL.match(p.name)
            if m and p.is_dir() and not _process_alive(int(m.group(1))):
                shutil.rmtree(p, ignore_errors=True)
                touched.append(str(p))
    if os.path.exists(final):
        with Session(engine) as s:
            known = s.exec(select(ModelVersion.version_id).where(ModelVersion.artifact_uri == final)).first()
        if known is None:
            aside = f"{final}.orphan-{uuid.uuid4().hex[:8]}"
            os.replace(final, aside)
            with engine.begin() as conn:  # the killed run's artifact row follows its folder (not the next v<n>)
                conn.execute(update(RunArtifact).where(RunArtifact.uri == final).values(uri=aside))
            log.warning("moved %s (no model_version row points at it: left by a killed run) to %s", final, aside)
            touched.append(aside)
    return touched


def exog_of(row: ModelRegistry) -> dict[str, list[str]]:
    return {"hist": list(row.hist_exog or []), "futr": list(row.futr_exog or []), "stat": list(row.stat_exog or [])}


def _model_name(row: ModelRegistry) -> str:
    return str(row.model_class).rsplit(".", 1)[-1]


def training_plan(name: str, data: str | GoldRef, row: ModelRegistry, artifact: str) -> dict[str, Any]:
    exog = exog_of(row)
    static = {"static_df": {"__data__": "static_df"}} if exog["stat"] else {}
    futr = {"futr_df": {"__data__": "futr_df"}} if exog["futr"] else {}
    cv = dict(row.cv or {})
    metrics = dict(row.metrics or {})
    model_params = {**(row.hyperparams or {}), **{EXOG_PARAM[g]: cols for g, cols in exog.items() if cols}}
    data = str(data)
    return {
        "name": name, "data": data, "metrics": metrics.get("metrics"), "enabled": True, "expect": "valid",
        "description": f"train {data} with {_model_name(row)} (series mode {row.series_mode})",
        "steps": [
            {"model": _model_name(row), "params": model_params},
            {"method": "NeuralForecast.__init__", "params": {"freq": row.freq}},
            {"method": "NeuralForecast.cross_validation", "params": {**cv, **static}},
            {"method": "evaluate", "params": {"metrics": metrics.get("metrics"), "on": "cross_validation",
                                              "baselines": metrics.get("baselines") or []}},
            {"method": "NeuralForecast.fit", "params": {"use_init_models": True, **static}},
            {"method": "NeuralForecast.save", "params": {"path": artifact}},
            {"method": "NeuralForecast.predict", "params": {**futr, **static}},
        ],
    }


def prediction_plan(name: str, data: str | GoldRef, row: ModelRegistry) -> dict[str, Any]:
    exog, data = exog_of(row), str(data)
    kw: dict[str, Any] = {"df": {"__data__": "df"}}
    if exog["futr"]:
        kw["futr_df"] = {"__data__": "futr_df"}
    if exog["stat"]:
        kw["static_df"] = {"__data__": "static_df"}
    return {"name": name, "data": data, "enabled": True, "expect": "valid",
            "description": f"predict {data} with version {row.version} ({row.artifact_uri})",
            "steps": [{"method": "NeuralForecast.load", "params": {"path": row.artifact_uri}},
                      {"method": "NeuralForecast.predict", "params": kw}]}


def _store(engine: Engine, plan: dict[str, Any], model_id: int, selector_id: int) -> None:
    loader.store_plans(engine, [dict(loader._plan(plan, "fcast_assets.models"))])
    with engine.begin() as conn:
        conn.execute(update(RunPlan).where(RunPlan.name == plan["name"])
                     .values(model_id=model_id, selector_id=selector_id))


def _errors(engine: Engine, execution_id: int) -> str:
    """The exceptions of the failed steps and the post-condition breaches of the suspect ones."""
    from ..db.models import JSONType

    with engine.connect() as conn:
        rows = conn.execute(text("""SELECT s.name, e.exception_type, e.message FROM run_error e
                                    JOIN run_step s ON s.step_id = e.step_id WHERE e.execution_id = :e"""),
                            {"e": execution_id}).all()
        suspect = conn.execute(text("""SELECT s.name, r.summary FROM run_result r JOIN run_step s
                                       ON s.step_id = r.step_id WHERE r.execution_id = :e AND r.status = 'suspect'""")
                               .columns(summary=JSONType), {"e": execution_id}).all()
    out = [f"{r.name}: {r.exception_type}: {(r.message or '')[:300]}" for r in rows]
    out += [f"{r.name}: suspect output: {'; '.join((r.summary or {}).get('breaches') or [])}" for r in suspect]
    return "; ".join(out) or "a step failed"


def cv_metrics(engine: Engine, execution_id: int) -> dict[str, dict[str, float]]:
    """{forecast column: {metric: value}} over all CV windows and series (the overall rows of run_metric)."""
    with engine.connect() as conn:
        rows = conn.execute(text("""SELECT model, metric, value FROM run_metric WHERE execution_id = :e
                                    AND split = 'cv' AND unique_id IS NULL AND "window" IS NULL"""),
                            {"e": execution_id}).all()
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        out.setdefault(r.model, {})[r.metric] = r.value
    return out


def beats_baselines(metrics: dict[str, dict[str, float]], model: str, baselines: list[str]) -> Optional[bool]:
    if model not in metrics or not any(b in metrics for b in baselines):
        return None
    for metric, v in metrics[model].items():
        others = [metrics[b][metric] for b in baselines if b in metrics and metrics[b].get(metric) is not None]
        if v is None or (others and v >= min(others)):
            return False
    return True


def _artifact(engine: Engine, execution_id: int, kind: str) -> Optional[str]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT uri FROM run_artifact WHERE execution_id = :e AND kind = :k "
                                 "ORDER BY artifact_id DESC"), {"e": execution_id, "k": kind}).scalar()


def _latest_features(engine: Engine, game_id: int) -> Optional[int]:
    with Session(engine) as s:
        return s.exec(select(FeatureMaterialization.materialization_id)
                      .where(FeatureMaterialization.game_id == game_id,
                             FeatureMaterialization.table_name == "gold_features")
                      .order_by(FeatureMaterialization.materialization_id.desc())).first()  # type: ignore[union-attr]


def get_model(engine: Engine, model_id: int) -> ModelRegistry:
    with Session(engine) as s:
        row = s.get(ModelRegistry, model_id)
        if row is None:
            raise LookupError(f"no model with id {model_id}")
        s.expunge(row)
        return row


def find_model(engine: Engine, game: str, selector: str) -> Optional[ModelRegistry]:
    sel = get_selector(engine, game, selector)
    with Session(engine) as s:
        row = s.exec(select(ModelRegistry).where(ModelRegistry.selector_id == sel.selector_id)).first()
        if row is not None:
            s.expunge(row)
        return row


def register(engine: Engine, game: str, selector: str, overrides: Optional[dict[str, Any]] = None,
             reconfigure: bool = False, root: Optional[str] = None) -> ModelRegistry:
    """The selector's model_registry row: created from the config (model choice checked against the registry and
    the compat matrix) when there is none, or when ``reconfigure``; otherwise the stored row, unchanged. The
    game's selectors must exist (``seed_selectors``; ``train`` does it)."""
    from .choose import choose

    sel = get_selector(engine, game, selector)
    existing = find_model(engine, game, selector)
    if existing is not None and not reconfigure:
        return existing
    cfg = game_config(game, overrides)
    probe = load_gold(sel.ref, engine, root=root)
    ch = choose(engine, sel, cfg, gold_columns=probe["gold_columns"])
    values = dict(
        game_id=sel.game_id, selector_id=sel.selector_id, library=ch.library, model_class=ch.qualname,
        release_id=ch.release_id, series_mode=ch.series_mode, n_series=ch.n_series, freq=cfg["freq"],
        hyperparams=ch.hyperparams, hist_exog=ch.exog["hist"], futr_exog=ch.exog["futr"], stat_exog=ch.exog["stat"],
        cv=cfg["cv"], metrics={"metrics": cfg["metrics"], "baselines": cfg["baselines"], "xai": cfg.get("xai")},
        notes=ch.notes, updated_at=utcnow())
    with Session(engine) as s:
        row = s.get(ModelRegistry, existing.model_id) if existing is not None else ModelRegistry(**values)
        for k, v in values.items():
            setattr(row, k, v)
        s.add(row)
        s.commit()
        s.refresh(row)
        s.expunge(row)
        return row


def check_features(engine: Engine, row: ModelRegistry, sel: Selector, plan: Optional[dict[str, Any]] = None,
                   root: Optional[str] = None) -> dict[str, Any]:
    """The model's data from the current gold tables (one read); MissingFeatureError when a stored column is gone.
    With ``plan``, the frames are those the plan's steps ask for (their exogenous columns and h), ready to be
    injected into ``run_plan``."""
    exog = exog_of(row)
    h = None
    if plan is not None:
        exog, h = plan_inputs({**plan, "model_id": row.model_id}, engine)
    data = load_gold(sel.ref, engine, exog, h=h, root=root)
    missing = {g: [c for c in cols if c not in data["gold_columns"][GOLD_TABLE[g]]] for g, cols in exog.items()}
    if any(missing.values()):
        raise MissingFeatureError(f"{row.model_id} ({sel.key})", missing)
    return data


def _train_lock(engine: Engine, model_id: int) -> str:
    """``train:<game>/<selector>`` of a registered model (fcast_assets.locks)."""
    return selector_by_id(engine, get_model(engine, model_id).selector_id).ref.lock


@locked(lambda engine, model_id, *a, **k: _train_lock(engine, model_id))  # one training of a selector at a time
def retrain(engine: Engine, model_id: int, reason: str = "manual", work_root: Optional[str] = None,
            progress: Optional[Callable[[int, int, str], None]] = None, root: Optional[str] = None
            ) -> dict[str, Any]:
    """Train a new version of a registered model from its registry row alone; the old version is kept. ``root``:
    the lake (default: the configured one, FCAST_LAKE)."""
    row = get_model(engine, model_id)
    sel = selector_by_id(engine, row.selector_id)
    spec = G.get_game(engine, sel.game)
    version = int(row.version or 0) + 1
    artifact = artifact_path(sel.game, sel.name, version)
    partial = partial_path(artifact)  # the save step writes here; renamed to `artifact` on success only
    name = f"train.{sel.key}.v{version}"
    plan = training_plan(name, sel.ref, row, partial)
    data = check_features(engine, row, sel, plan, root=root)  # the one read of gold (refuses before any change)
    clear_leftovers(engine, artifact)
    _store(engine, plan, row.model_id, sel.selector_id)  # type: ignore[arg-type]
    try:
        try:
            res = runner.run_plan(engine, name, work_root=work_root, progress=progress, frames=data)
        except runner.PlanNotValidError as e:
            raise TrainingPlanInvalidError(f"training {sel.key} v{version}", name, e.violations) from e
        if res["status"] == "success":
            os.replace(partial, artifact)
    finally:
        shutil.rmtree(partial, ignore_errors=True)  # a failed (or interrupted) run leaves no partial folder
    eid = res["execution_id"]
    with engine.begin() as conn:
        conn.execute(update(RunResource).where(RunResource.execution_id == eid).values(model_id=row.model_id))
        conn.execute(update(RunArtifact).where(RunArtifact.execution_id == eid, RunArtifact.uri == partial)
                     .values(uri=artifact))
    if res["status"] != "success":
        with engine.begin() as conn:
            conn.execute(update(ModelRegistry).where(ModelRegistry.model_id == row.model_id)
                         .values(status="failed" if not row.version else row.status, updated_at=utcnow()))
        raise TrainingError(f"training {sel.key} v{version} failed (plan {name}, execution {eid}): "
                            f"{_errors(engine, eid)}")
    metrics = cv_metrics(engine, eid)
    baselines = list((row.metrics or {}).get("baselines") or [])
    model_col = _model_name(row)
    beats = beats_baselines(metrics, model_col, baselines)
    s_ver = V.latest_version(engine, spec, "silver")
    release_id, release_version = latest_release(engine, row.library)
    now = utcnow()
    with Session(engine) as s:
        plan_id = s.exec(select(RunPlan.plan_id).where(RunPlan.name == name)).one()
        mv = ModelVersion(model_id=row.model_id, version=version, artifact_uri=artifact, release_id=release_id,
                          library_version=release_version,
                          dataset_version_id=s_ver.dataset_version_id if s_ver else None,
                          feature_materialization_id=_latest_features(engine, sel.game_id), plan_id=plan_id,
                          execution_id=eid, hyperparams=row.hyperparams, hist_exog=row.hist_exog,
                          stat_exog=row.stat_exog, futr_exog=row.futr_exog, train_rows=int(len(data["df"])),
                          last_draw_no=int(data["df"]["ds"].max()), cv_metrics=metrics, beats_baselines=beats,
                          reason=reason, created_at=now)
        s.add(mv)
        reg = s.get(ModelRegistry, row.model_id)
        reg.version, reg.artifact_uri, reg.status, reg.updated_at = version, artifact, "trained", now
        reg.release_id = release_id
        reg.dataset_version_id = mv.dataset_version_id
        s.add(reg)
        s.commit()
    return {"model_id": row.model_id, "key": sel.key, "version": version, "artifact_uri": artifact,
            "execution_id": eid, "plan": name, "metrics": metrics, "beats_baselines": beats,
            "model": model_col, "train_rows": int(len(data["df"])),
            "forecasts": _artifact(engine, eid, "forecasts_with_baselines"),
            "predictions": _artifact(engine, eid, "predictions")}


@locked(lambda engine, game, selector, *a, **k: GoldRef(game=game, selector=selector).lock)  # one at a time
def train(engine: Engine, game: str, selector: str, overrides: Optional[dict[str, Any]] = None,
          reconfigure: bool = False, reason: Optional[str] = None, work_root: Optional[str] = None,
          progress: Optional[Callable[[int, int, str], None]] = None, root: Optional[str] = None) -> dict[str, Any]:
    """Register (first time) and train the selector's model; later calls retrain from the registry row."""
    seed_selectors(engine, G.get_game(engine, game))
    existing = find_model(engine, game, selector)
    row = register(engine, game, selector, overrides, reconfigure=reconfigure, root=root)
    why = reason or ("initial" if existing is None or not existing.version else
                     "reconfigured" if reconfigure else "retrain")
    return retrain(engine, row.model_id, reason=why, work_root=work_root, progress=progress,  # type: ignore[arg-type]
                   root=root)


# ------------------------------------------------------------------------------------------------- predict
def predictions_uri(game: str, root: Optional[str] = None) -> str:
    from ..lake import deltaio

    return deltaio.table_uri("gold", "predictions", game, root)


def replace_model_rows(uri: str, frame: pd.DataFrame, model_id: int) -> int:
    """Overwrite the per-game Delta table at ``uri`` with its rows of other models plus ``frame`` (this model's
    new rows); returns the new table version."""
    from ..features.gold import _to_arrow
    from ..lake import deltaio

    old = deltaio.read(uri)
    if not old.empty:
        old = old[old["model_id"] != model_id]
    both = pd.concat([old, frame], ignore_index=True) if not old.empty else frame
    return deltaio.overwrite(uri, _to_arrow(both))


def predict(engine: Engine, model_id: int, work_root: Optional[str] = None, root: Optional[str] = None
            ) -> dict[str, Any]:
    """Forecast the next h draws with the current version (a load + predict plan on the current gold tables) and
    write them to the game's gold/predictions Delta table (this model's earlier rows replaced)."""
    row = get_model(engine, model_id)
    if not row.version or not row.artifact_uri:
        raise TrainingError(f"model {model_id} has no trained version: materialize trained_models first")
    sel = selector_by_id(engine, row.selector_id)
    name = f"predict.{sel.key}.v{row.version}"
    plan = prediction_plan(name, sel.ref, row)
    data = check_features(engine, row, sel, plan, root=root)  # read once, handed to the run
    _store(engine, plan, row.model_id, sel.selector_id)
    res = runner.run_plan(engine, name, work_root=work_root, frames=data)
    eid = res["execution_id"]
    with engine.begin() as conn:
        conn.execute(update(RunResource).where(RunResource.execution_id == eid).values(model_id=row.model_id))
    if res["status"] != "success":
        raise TrainingError(f"prediction {sel.key} v{row.version} failed: {_errors(engine, eid)}")
    fc = pd.read_parquet(_artifact(engine, eid, "predictions"))
    col = _model_name(row)
    fc = fc.rename(columns={"ds": "draw_no", col: "y_hat"})
    fc["step"] = fc.groupby("unique_id").cumcount() + 1
    out = fc[["unique_id", "draw_no", "step", "y_hat"]].assign(
        model_id=int(row.model_id), version=int(row.version), selector=sel.name, model_class=col,  # type: ignore[arg-type]
        execution_id=int(eid), created_at=pd.Timestamp(utcnow()).tz_localize(None))
    uri = predictions_uri(sel.game, root)
    version = replace_model_rows(uri, out, int(row.model_id))  # type: ignore[arg-type]
    return {"model_id": row.model_id, "key": sel.key, "version": row.version, "execution_id": eid, "uri": uri,
            "delta_version": version, "frame": out, "rows": len(out)}


def model_table(engine: Engine, game: Optional[str] = None) -> pd.DataFrame:
    """model_registry joined with the selector and game: one row per model."""
    sql = """SELECT g.code AS game, s.name AS selector, m.model_id, m.model_class, m.series_mode, m.n_series,
                    m.version, m.status, m.hist_exog, m.futr_exog, m.stat_exog, m.artifact_uri, m.created_at,
                    m.updated_at
             FROM model_registry m JOIN model_series_selector s ON s.selector_id = m.selector_id
             JOIN dataset_game g ON g.game_id = m.game_id""" + (" WHERE g.code = :g" if game else "") + \
        " ORDER BY m.model_id"
    with engine.connect() as conn:
        df = pd.read_sql(text(sql), conn, params={"g": game} if game else None)
    for c in ("hist_exog", "futr_exog", "stat_exog"):
        df[c] = df[c].map(lambda v: v if isinstance(v, list) else json.loads(v) if isinstance(v, str) else v)
    return df
