"""``fcast game``: list, add, deactivate and activate lottery games (rows of ``dataset_game``).

The Dagster sensor ``game_partitions_sensor`` turns these row changes into ``game`` partitions.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click
from tabulate import tabulate

from fcast_assets import config


def _engine():
    from fcast_assets.db.engine import get_engine

    return get_engine(config.db_url())


@click.group()
def game() -> None:
    """Lottery games as data: list, add, deactivate, activate."""


@game.command("list")
@click.option("--all", "all_", is_flag=True, help="include deactivated games")
def list_cmd(all_: bool) -> None:
    """List the games (seeds the six default games on first use)."""
    from .games import list_games, seed_games

    eng = _engine()
    seed_games(eng)
    rows = [[g.code, g.name, g.n_main, g.n_bonus, f"{g.number_min}-{g.number_max}", g.allow_repeat, g.order_matters,
             ",".join(g.draw_weekdays), g.active] for g in list_games(eng, active_only=not all_)]
    click.echo(tabulate(rows, headers=["code", "name", "main", "bonus", "range", "repeat", "order", "weekdays",
                                       "active"]))


@game.command("add")
@click.argument("code")
@click.option("--name", default=None, help="display name (default: CODE)")
@click.option("--n-main", type=int, required=True, help="number of main numbers per draw")
@click.option("--n-bonus", type=int, default=0, show_default=True)
@click.option("--min", "number_min", type=int, required=True)
@click.option("--max", "number_max", type=int, required=True)
@click.option("--allow-repeat/--no-repeat", default=False, show_default=True)
@click.option("--order-matters/--sorted", default=False, show_default=True,
              help="numbers kept in drawn order (like Numbers) or stored ascending (like Loto)")
@click.option("--weekdays", default="", help="comma-separated mon,tue,... (documentation)")
@click.option("--history", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="draw history CSV (draw_no,draw_date,n1..,b1..) copied to $FCAST_HOME/lottery/CODE.csv")
@click.option("--source-url", default=None, help="result-file URL template with {draw_no} for the scraper")
@click.option("--update", is_flag=True, help="update the rules of an existing game")
def add_cmd(code: str, name: str | None, n_main: int, n_bonus: int, number_min: int, number_max: int,
            allow_repeat: bool, order_matters: bool, weekdays: str, history: Path | None, source_url: str | None,
            update: bool) -> None:
    """Add a game CODE (a new `game` partition once the sensor runs)."""
    from .games import GameSpec, get_game, seed_games, upsert_game, UnknownGameError
    from .sources import user_dir

    eng = _engine()
    seed_games(eng)
    try:
        get_game(eng, code)
        if not update:
            click.echo(f"error: game {code!r} exists (use --update to change its rules)", err=True)
            sys.exit(1)
    except UnknownGameError:
        pass
    spec = GameSpec(code=code, name=name or code, n_main=n_main, n_bonus=n_bonus, number_min=number_min,
                    number_max=number_max, allow_repeat=allow_repeat, order_matters=order_matters,
                    draw_weekdays=tuple(w.strip().lower() for w in weekdays.split(",") if w.strip()),
                    rules={"main_sorted": not order_matters and not allow_repeat})
    try:
        gid = upsert_game(eng, spec, source={"url": source_url, "format": "mizuho_csv"} if source_url else None)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    if history is not None:
        dest = user_dir() / f"{code}.csv"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(history, dest)
        click.echo(f"history copied to {dest}")
    click.echo(f"game {code} saved (game_id {gid}); the game_partitions sensor adds its partition")


def _set_active(code: str, active: bool) -> None:
    from .games import UnknownGameError, set_active

    try:
        set_active(_engine(), code, active)
    except UnknownGameError:
        click.echo(f"error: unknown game {code!r}", err=True)
        sys.exit(1)
    click.echo(f"game {code} {'activated' if active else 'deactivated'}")


@game.command("deactivate")
@click.argument("code")
def deactivate_cmd(code: str) -> None:
    """Deactivate game CODE (its partition is removed by the sensor; its data stays)."""
    _set_active(code, False)


@game.command("activate")
@click.argument("code")
def activate_cmd(code: str) -> None:
    """Re-activate game CODE."""
    _set_active(code, True)
