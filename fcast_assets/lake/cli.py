"""``fcast game``: list, add, deactivate and activate lottery games (rows of ``dataset_game``).

The Dagster sensor ``game_partitions_sensor`` turns these row changes into ``game`` partitions.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from tabulate import tabulate

from fcast_assets import config


def _resources():
    """The ``fcast`` group's resources (``MetadataDB()``, ``Lake()``: fcast_assets.cli.CliResources, the same typed
    resources as the Dagster assets); None when this group runs on its own."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj if "meta_db" in getattr(obj, "KEYS", ()) else None


def _engine():
    from fcast_assets.db.engine import get_engine

    res = _resources()
    return res["meta_db"].engine() if res is not None else get_engine(config.db_url())


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


def _fail(msg: str) -> None:
    """One clear line on stderr and a non-zero exit (no traceback)."""
    click.echo(f"error: {msg}", err=True)
    sys.exit(1)


@game.command("add")
@click.argument("code")
@click.option("--name", default=None, help="display name (default: CODE)")
@click.option("--n-main", type=int, default=None, help="number of main numbers per draw (required for a new game)")
@click.option("--n-bonus", type=int, default=None, help="number of bonus numbers per draw (new game: 0)")
@click.option("--min", "number_min", type=int, default=None, help="smallest number (required for a new game)")
@click.option("--max", "number_max", type=int, default=None, help="largest number (required for a new game)")
@click.option("--allow-repeat/--no-repeat", default=None, help="new game: --no-repeat")
@click.option("--order-matters/--sorted", default=None,
              help="numbers kept in drawn order (like Numbers) or stored ascending (like Loto); new game: --sorted")
@click.option("--weekdays", default=None, help="comma-separated mon,tue,... (documentation)")
@click.option("--history", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="draw history CSV (draw_no,draw_date,n1..,b1..), checked like an ingest (parser and blocking rules) "
                   "and copied to $FCAST_HOME/lottery/CODE.csv; a bad file stores nothing")
@click.option("--source-url", default=None, help="result-file URL template with {draw_no} for the scraper")
@click.option("--update", is_flag=True, help="change only the given fields of an existing game")
def add_cmd(code: str, name: str | None, n_main: int | None, n_bonus: int | None, number_min: int | None,
            number_max: int | None, allow_repeat: bool | None, order_matters: bool | None, weekdays: str | None,
            history: Path | None, source_url: str | None, update: bool) -> None:
    """Add a game CODE (a new `game` partition once the sensor runs), or with --update change some of its fields."""
    from dataclasses import replace

    from .games import (WEEKDAYS, GameSpec, HistoryFileError, UnknownGameError, check_code, check_history_file,
                        get_game, seed_games, upsert_game, validate_spec)
    from .sources import user_dir

    try:
        check_code(code)  # before anything else: the code names folders and partitions
    except ValueError as e:
        _fail(str(e))
    eng = _engine()
    seed_games(eng)
    try:
        old: GameSpec | None = get_game(eng, code)
    except UnknownGameError:
        old = None
    if old is not None and not update:
        _fail(f"game {code!r} exists; add --update to change only the fields you give")
    if old is None and update:
        _fail(f"game {code!r} does not exist; drop --update to add it (with --n-main, --min and --max)")
    days = None
    if weekdays is not None:
        days = tuple(w.strip().lower() for w in weekdays.split(",") if w.strip())
        bad = [d for d in days if d not in WEEKDAYS]
        if bad:
            _fail(f"--weekdays {weekdays!r}: unknown day(s) {bad}; use a comma-separated list of {','.join(WEEKDAYS)}")
    if source_url is not None and "{draw_no" not in source_url:
        _fail(f"--source-url {source_url!r} has no {{draw_no}} field (e.g. .../A102{{draw_no:04d}}.CSV)")
    if old is None:
        missing = [o for o, v in (("--n-main", n_main), ("--min", number_min), ("--max", number_max)) if v is None]
        if missing:
            _fail(f"new game {code!r} needs {', '.join(missing)}")
        ar, om = bool(allow_repeat), bool(order_matters)
        spec = GameSpec(code=code, name=name or code, n_main=n_main, n_bonus=n_bonus or 0,  # type: ignore[arg-type]
                        number_min=number_min, number_max=number_max,  # type: ignore[arg-type]
                        allow_repeat=ar, order_matters=om, draw_weekdays=days or (),
                        rules={"main_sorted": not om and not ar})
    else:
        given = {k: v for k, v in dict(name=name, n_main=n_main, n_bonus=n_bonus, number_min=number_min,
                                       number_max=number_max, allow_repeat=allow_repeat,
                                       order_matters=order_matters, draw_weekdays=days).items() if v is not None}
        rules = dict(old.rules)
        if allow_repeat is not None or order_matters is not None:
            ar = old.allow_repeat if allow_repeat is None else allow_repeat
            om = old.order_matters if order_matters is None else order_matters
            rules["main_sorted"] = not om and not ar
        ranges = rules.get("slot_ranges")
        if ranges and (len(ranges) != given.get("n_main", old.n_main)
                       or any(k in given for k in ("number_min", "number_max"))):
            rules.pop("slot_ranges")  # per-slot ranges of the old layout no longer apply
            click.echo(f"note: the per-slot ranges of {code} were dropped (the game's numbers changed)")
        spec = replace(old, rules=rules, **given)
    try:
        validate_spec(spec)  # the code is a safe file name and the rules are bounded before the file is read
    except ValueError as e:
        _fail(f"game {code!r}: {e}")
    data = None
    if history is not None:
        try:  # same decoding, parser and blocking rules as ingest, before anything is stored
            data = check_history_file(spec, history)
        except HistoryFileError as e:
            redo = f"fcast game add {code} --update --history FILE" if old is not None else \
                f"fcast game add {code} ... --history FILE"
            kept = "nothing was changed (game row and stored history kept)" if old is not None else \
                "nothing was stored (no game row, no file)"
            _fail(f"game {code!r}: history file {e}; {kept}: fix the file and run `{redo}` again")
    dest = user_dir() / f"{code}.csv"
    tmp = dest.with_name(f".{code}.csv.{os.getpid()}.tmp")
    if data is not None:  # written beside its place, renamed once the game row is saved: never half a file
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
    try:
        gid = upsert_game(eng, spec, source={"url": source_url, "format": "mizuho_csv"} if source_url else None)
    except ValueError as e:
        tmp.unlink(missing_ok=True)
        _fail(f"game {code!r}: {e}")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if data is not None:
        os.replace(tmp, dest)
        click.echo(f"history checked ({history}) and copied to {dest}")
    click.echo(f"game {code} saved (game_id {gid}); the game_partitions sensor adds its partition")


@game.command("ingest")
@click.argument("code")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace-changed", is_flag=True,
              help="accept the given version of a draw that bronze already holds with other numbers "
                   "(default: keep the stored draw and report a DQ error)")
def ingest_cmd(code: str, files: tuple[Path, ...], replace_changed: bool) -> None:
    """Ingest official result files of game CODE downloaded in a browser (when the site refuses the scraper).

    Same parser and checks as the scraper: each file is parsed, the draws are merged into bronze with the
    game's history and checked by its rules (issues in dataset_dq_issue). Nothing is written if a file is bad.
    A file whose draw differs from the stored one is refused (exit 1, stored draw kept) unless --replace-changed;
    a stored draw that breaks a rule is replaced by a file version that passes every rule without the flag.
    """
    from .games import UnknownGameError, get_game, seed_games
    from .pipeline import ingest_bronze
    from .sources import FileSource, ParseError, parse_result_bytes

    eng = _engine()
    seed_games(eng)
    try:
        spec = get_game(eng, code)
    except UnknownGameError:
        _fail(f"unknown game {code!r}; see `fcast game list --all`")
    records = []
    for f in files:
        try:
            records.append(parse_result_bytes(f.read_bytes(), spec, source=f"manual:{f.name}"))
        except (ParseError, ValueError) as e:
            _fail(f"{f}: not a {code} result file ({e}); nothing ingested; download the draw's CSV again")
    try:
        history = FileSource().read(spec)
    except FileNotFoundError:
        history = []
    lake = _resources()
    res = ingest_bronze(eng, spec, root=lake["lake"].root_uri() if lake is not None else None,
                        records=[*history, *records], overwrite_changed=replace_changed)
    dup = [i for i in res["issues"] if i["rule"] == "duplicate_draw_no" and i["severity"] == "error"]
    fixed = f", corrected {res['corrected']}" if res["corrected"] else ""
    fixed += f", replaced {res['replaced']}" if res["replaced"] else ""
    click.echo(f"{code}: {len(records)} file(s), {res['inserted']} new draw(s), {res['changed']} disagreeing with "
               f"bronze{fixed}, {res['errors']} rule error(s), {res['warnings']} warning(s); bronze has "
               f"{res['row_count']} draws (dataset_version {res['dataset_version_id']})")
    if dup:
        _fail(f"{code}: draw(s) {sorted({i['draw_no'] for i in dup})} given twice with different numbers; "
              "kept the first, marked dq_ok=false; ingest one file per draw")
    errors = [i for i in res["issues"] if i["severity"] == "error"]
    if errors:
        conflicts = [i for i in errors if i["rule"] == "source_disagreement"]
        top = (conflicts or errors)[0]
        first = top["detail"].get("message") or f"{top['rule']} at draw {top['draw_no']}"
        more = (f" (+{len(errors) - 1} more error(s) in dataset_dq_issue, dataset_version "
                f"{res['dataset_version_id']})") if len(errors) > 1 else ""
        _fail(f"{first}{more}")


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
