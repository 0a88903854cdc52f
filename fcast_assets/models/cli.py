"""``fcast model``: selectors, training (register + train through run plans), retraining from the registry row,
predictions, attribution, the model table."""

from __future__ import annotations

import sys

import click
from tabulate import tabulate

from .. import config
from ..progress import terminal_progress


def _engine():
    from ..db.engine import get_engine

    return get_engine(config.db_url())


def _fail(msg: str, code: int = 2) -> None:
    """One clear line on stderr and a non-zero exit (no traceback)."""
    click.echo(f"error: {msg}", err=True)
    sys.exit(code)


def _game(eng, code: str):  # noqa: ANN001, ANN202
    from ..lake import games as G

    try:
        return G.get_game(eng, code)
    except G.UnknownGameError:
        _fail(f"unknown game {code!r}; `fcast game list --all` shows the games")


def _model(eng, model_id: int):  # noqa: ANN001, ANN202
    from .train import get_model

    try:
        return get_model(eng, model_id)
    except LookupError:
        _fail(f"no model with id {model_id}; `fcast model list` shows the model ids (train one with "
              "`fcast model train --game GAME`)")


def _artifact_problem(row) -> str | None:  # noqa: ANN001
    """Why the model's current version cannot be loaded (None when it loads): a missing or corrupt folder."""
    import os

    if not row.version or not row.artifact_uri:
        return f"model {row.model_id} has no trained version yet; run `fcast model retrain {row.model_id}`"
    if not os.path.isdir(row.artifact_uri):
        return (f"model {row.model_id} version {row.version}: its folder {row.artifact_uri} is missing; run "
                f"`fcast model retrain {row.model_id}` for a new version")
    try:
        from neuralforecast import NeuralForecast

        NeuralForecast.load(row.artifact_uri)
    except Exception as e:  # noqa: BLE001 - any load failure means the saved model is unusable
        return (f"model {row.model_id} version {row.version}: the saved model in {row.artifact_uri} cannot be "
                f"loaded ({type(e).__name__}: {' '.join(str(e).split())[:120]}); it is damaged: run "
                f"`fcast model retrain {row.model_id}` for a new version")
    return None


def _loaded(eng, model_id: int, fn):  # noqa: ANN001, ANN202
    """fn(eng, model_id) for a model that exists; a failure caused by an unloadable artifact is said as such."""
    row = _model(eng, model_id)
    try:
        return fn(eng, model_id)
    except Exception:
        problem = _artifact_problem(row)
        if problem:
            _fail(problem, 1)
        raise


@click.group()
def model() -> None:
    """Models per game: one per main slot (N1..Nk) plus ALL, trained through validated run plans."""


@model.command("selectors")
@click.option("--game", "game", default=None, help="one game (default: every active game)")
def model_selectors(game: str | None) -> None:
    """Create / list the selectors (model partitions <game>.<selector>)."""
    from ..lake import games as G
    from .selectors import seed_selectors

    eng = _engine()
    specs = [_game(eng, game)] if game else G.list_games(eng, active_only=True)
    rows = [(s.key, s.game, s.name, ", ".join(s.unique_ids)) for spec in specs for s in seed_selectors(eng, spec)]
    click.echo(tabulate(rows, headers=["partition", "game", "selector", "unique_ids"]))


@model.command("train")
@click.option("--game", "game", required=True)
@click.option("--selector", "selectors", multiple=True, help="N1..Nk or ALL (repeatable; default: all of the game)")
@click.option("--max-steps", type=click.IntRange(1, 1_000_000), default=None, help="training steps when the model is (re)registered")
@click.option("--reconfigure", is_flag=True, help="re-choose the model from models.yaml instead of retraining")
def model_train(game: str, selectors: tuple[str, ...], max_steps: int | None, reconfigure: bool) -> None:
    """Register (first time) and train; afterwards retrain from the registry row."""
    from ..locks import LockBusyError
    from .selectors import seed_selectors
    from .train import train

    eng = _engine()
    known = [s.name for s in seed_selectors(eng, _game(eng, game))]
    unknown = [n for n in selectors if n not in known]
    if unknown:
        _fail(f"unknown selector(s) {unknown} of game {game!r}; its selectors are {', '.join(known)} "
              f"(`fcast model selectors --game {game}`)")
    names = list(selectors) or known
    over = {"hyperparams": {"max_steps": max_steps}} if max_steps else None
    rows, failed = [], 0
    with terminal_progress(f"train {game}", unit="model") as bar:
        for i, n in enumerate(names):
            if bar:
                bar(i, len(names), f"{game}.{n}")
            try:
                r = train(eng, game, n, overrides=over, reconfigure=reconfigure)
                m = r["metrics"].get(r["model"], {})
                rows.append((r["key"], r["model_id"], r["version"], m.get("mae"), r["beats_baselines"],
                             r["artifact_uri"]))
            except LockBusyError as e:  # another process trains it: one line and exit 3, like every command
                if rows:  # the selectors trained before the refusal
                    click.echo(tabulate(rows, headers=["model", "model_id", "version", "cv mae", "beats baselines",
                                                       "artifact"]))
                _fail(config.mask(str(e)), 3)
            except Exception as e:  # noqa: BLE001 - reported, the other selectors go on
                failed += 1
                rows.append((f"{game}.{n}", "", "", "", f"{type(e).__name__}: {e}"[:200], ""))
        if bar:
            bar(len(names), len(names), "done")
    click.echo(tabulate(rows, headers=["model", "model_id", "version", "cv mae", "beats baselines", "artifact"]))
    sys.exit(1 if failed else 0)


@model.command("retrain")
@click.argument("model_id", type=int)
def model_retrain(model_id: int) -> None:
    """A new version from the registry row alone (exogenous lists and hyperparameters as stored)."""
    from .train import MissingFeatureError, retrain

    eng = _engine()
    _model(eng, model_id)
    try:
        r = retrain(eng, model_id, reason="manual")
    except MissingFeatureError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"{r['key']}: version {r['version']} -> {r['artifact_uri']} (beats baselines: {r['beats_baselines']})")


@model.command("predict")
@click.argument("model_id", type=int)
def model_predict(model_id: int) -> None:
    from .train import predict

    r = _loaded(_engine(), model_id, predict)
    click.echo(tabulate(r["frame"][["unique_id", "draw_no", "step", "y_hat"]], headers="keys", showindex=False))


@model.command("explain")
@click.argument("model_id", type=int)
def model_explain(model_id: int) -> None:
    from .xai import explain

    r = _loaded(_engine(), model_id, explain)
    click.echo(tabulate(r["importance"], headers="keys", showindex=False, floatfmt=".4f"))


@model.command("list")
@click.option("--game", "game", default=None)
def model_list(game: str | None) -> None:
    """The model registry with the current version's CV accuracy against the best baseline."""
    from .evaluation import overview

    eng = _engine()
    if game:
        _game(eng, game)
    df = overview(eng, game)
    click.echo(tabulate(df, headers="keys", showindex=False, floatfmt=".3f") if not df.empty else "no trained model")
