"""A table of bad inputs per ``fcast`` command: each row is refused with a non-zero exit and one clear line (what,
where, how to fix), no traceback unless ``--debug``, no password printed, nothing executed or written outside
FCAST_HOME. Hostile rows: path traversal (plan names, game codes, save / load paths, data files), code injection
(``__import__``, ``os.system``, ``library: os``, an ``__obj__`` outside the closed table). Valid look-alikes of the
rows must succeed. With ``FCAST_RELIABILITY_LOG=FILE`` every row appends
``{"suite": "bad_input", "command", "case", "answered_clearly"}`` to FILE (the README's figures)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from fcast_assets.cli import main

REPO = Path(__file__).resolve().parents[1]
PG_SECRET = "postgresql+psycopg://fcast:s3cret@127.0.0.1:1/forecast_meta"
MLP = "{model: MLP, params: {h: 2, input_size: 8, max_steps: 1}}"
INIT = "{method: NeuralForecast.__init__, params: {freq: D}}"
FIT = "{method: NeuralForecast.fit}"


@contextmanager
def reliability_row(command: str, case: str):
    """Log the row's outcome (answered clearly = every assertion passed) when FCAST_RELIABILITY_LOG is set."""
    ok = False
    try:
        yield
        ok = True
    finally:
        log = os.environ.get("FCAST_RELIABILITY_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"suite": "bad_input", "command": command, "case": case,
                                    "answered_clearly": ok}) + "\n")


def check_refused(res, code: int | None, fragments: tuple[str, ...], absent: tuple[str, ...] = (),
                  one_line: bool = True) -> str:
    """Non-zero exit (``code`` when given), every fragment in the output, no traceback, one message line on
    stderr; returns the output."""
    out = res.stdout + res.stderr
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code != 0, out
    if code is not None:
        assert res.exit_code == code, out
    assert "Traceback" not in out, out
    for f in fragments:
        assert f in out, (f, out)
    for a in absent:
        assert a not in out, (a, out)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    if one_line:
        assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    else:
        assert len(lines) <= 1, res.stderr
    return out


def _write(folder: Path, name: str, body: str | bytes) -> str:
    p = folder / name
    if isinstance(body, bytes):
        p.write_bytes(body)
    else:
        p.write_text(body, encoding="utf-8")
    return str(p)


# --------------------------------------------------------------------------------------- plain database rows
@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """FCAST_HOME with a SQLite database (games seeded, no registry) and the plan files of the rows."""
    from fcast_assets.db.engine import make_engine, init_db
    from fcast_assets.lake import games

    home = tmp_path_factory.mktemp("bad_inputs")
    url = f"sqlite:///{home / 'forecast_meta.db'}"
    eng = make_engine(url)
    init_db(eng)
    games.seed_games(eng)
    eng.dispose()
    f = home / "files"
    f.mkdir()
    files = {
        "yaml_syntax": _write(f, "syntax.yaml", "plans:\n  - name: a\n    steps: [\n"),
        "no_name": _write(f, "noname.yaml", f"plans:\n  - steps: [{MLP}]\n"),
        "trav_name": _write(f, "trav.yaml", f"plans:\n  - name: ../../etc/passwd\n    steps: [{MLP}]\n"),
        "lib_os": _write(f, "os.yaml", "plans:\n  - name: evil\n    library: os\n    steps: "
                                       "[{method: os.system, params: {command: 'touch PWNED'}}]\n"),
        "obj_os": _write(f, "obj.yaml", "plans:\n  - name: obj\n    steps: [{model: MLP, params: {h: 2, "
                                        "loss: {__obj__: os.system, command: 'touch PWNED'}}}]\n"),
        "marker": _write(f, "marker.yaml", "plans:\n  - name: mk\n    steps: [{model: MLP, params: "
                                           "{h: {__import__: os}}}]\n"),
        "params_list": _write(f, "params.yaml", "plans:\n  - name: prm\n    steps: [{model: MLP, params: [1, 2]}]\n"),
        "steps_str": _write(f, "steps.yaml", "plans:\n  - name: st\n    steps: MLP\n"),
        "not_list": _write(f, "notlist.yaml", "plans: 5\n"),
        "scalar": _write(f, "scalar.yaml", "hello\n"),
        "binary": _write(f, "binary.yaml", b"\xff\xfe\x00garbage"),
        "csv_json": _write(f, "badjson.csv", 'plan,ord,method,params\np1,0,MLP,"{""h"": 2}"\n'
                                             "p1,1,NeuralForecast.fit,{not json\n"),
        "csv_ord": _write(f, "badord.csv", "plan,ord,method,params\np1,0,MLP,{}\np1,x,NeuralForecast.fit,{}\n"),
        "csv_col": _write(f, "nomethod.csv", "plan,ord,params\np1,0,{}\n"),
        "hist_passwd": _write(f, "passwd", "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/bin:/sbin/nologin\n"),
        "hist_rule": _write(f, "hist_rule.csv", "draw_no,draw_date,n1,n2,n3,n4,n5,n6,b1\n"
                                                "1,2000-10-05,2,8,10,13,27,30,39\n2,2000-10-12,1,9,16,20,21,44,5\n"),
        "hist_binary": _write(f, "hist.bin", b"\x7fELF\x02\x01\x01\x00garbage"),
        "hist_good": _write(f, "hist_good.csv", "draw_no,draw_date,n1,n2,n3,n4,n5,n6,b1\n"
                                                "1,2000-10-05,2,8,10,13,27,30,39\n2,2000-10-12,1,9,16,20,21,43,5\n"),
        "dir": str(f),
        "good": _write(f, "good.yaml", f"plans:\n  - name: mlp-basic_v2.1\n    steps: [{MLP}, {INIT}, {FIT}]\n"),
        "good_csv": _write(f, "good.csv", 'plan,ord,method,params\nmlp_csv,0,MLP,"{""h"": 2, ""input_size"": 8}"\n'
                                          "mlp_csv,1,NeuralForecast.__init__,\"{\"\"freq\"\": \"\"D\"\"}\"\n"
                                          "mlp_csv,2,NeuralForecast.fit,{}\n"),
    }
    env = {"FCAST_HOME": str(home), "FCAST_DB_URL": url, "FCAST_LAKE": str(home / "lake"), "FCAST_DEBUG": None,
           "FCAST_ARTIFACTS": None}
    return {"home": home, "url": url, "files": files, "env": env}


F = "{files[%s]}"  # an argument filled from base["files"]

# (command, case, args, extra env, exit code, fragments that must appear, fragments that must not)
ROWS = [
    ("fcast", "unknown option", ["--bogus"], {}, 2, ("No such option '--bogus'", "--help"), ()),
    ("fcast", "unknown command", ["bogus"], {}, 2, ("No such command 'bogus'",), ()),
    ("scan", "unknown library", ["scan", "nosuchlib"], {}, 1, ("unknown library 'nosuchlib'", "libraries.yaml"), ()),
    ("scan", "path as library", ["scan", "../../etc/passwd"], {}, 1, ("unknown library '../../etc/passwd'",), ()),
    ("scan", "code as library", ["scan", "__import__('os').system('touch PWNED')"], {}, 1, ("unknown library",), ()),
    ("scan", "no library", ["scan"], {}, 2, ("name a library", "--all", "--help"), ()),
    ("search", "empty query", ["search", ""], {}, 2, ("empty search query",), ()),
    ("search", "unknown kind", ["search", "x", "--kind", "bogus"], {}, 2, ("'bogus' is not one of",), ()),
    ("search", "negative limit", ["search", "x", "--limit", "-1"], {}, 2, ("--limit", "range"), ()),
    ("search", "limit not a number", ["search", "x", "--limit", "abc"], {}, 2, ("--limit",), ()),
    ("db", "unknown subcommand", ["db", "bogus"], {}, 2, ("No such command 'bogus'",), ()),
    ("db init", "nonsense URL", ["db", "init"], {"FCAST_DB_URL": "nonsense://"}, 2,
     ("FCAST_DB_URL 'nonsense://' is not a database URL", "sqlite:///"), ()),
    ("db init", "unreachable PostgreSQL with a password", ["db", "init"], {"FCAST_DB_URL": PG_SECRET}, 1,
     ("cannot connect to the metadata database", "fcast:***@127.0.0.1:1", "FCAST_DB_URL"), ("s3cret",)),
    ("game list", "unreachable PostgreSQL with a password", ["game", "list"], {"FCAST_DB_URL": PG_SECRET}, 1,
     ("cannot connect",), ("s3cret",)),
    ("plan list", "nonsense URL", ["plan", "list"], {"FCAST_DB_URL": "nonsense://"}, 2, ("not a database URL",), ()),
    ("db ddl", "extra argument", ["db", "ddl", "extra"], {}, 2, ("unexpected extra argument",), ()),
    ("compat", "no action", ["compat"], {}, 2, ("give --run",), ()),
    ("compat", "unknown result id", ["compat", "--rerun", "99999"], {}, 2, ("no compat_result row", "99999"), ()),
    ("compat", "workers not a number", ["compat", "--run", "--workers", "abc"], {}, 2, ("--workers",), ()),
    ("game list", "unknown option", ["game", "list", "--bogus"], {}, 2, ("No such option '--bogus'",), ()),
    ("game add", "path as game code", ["game", "add", "../../etc/passwd", "--n-main", "6", "--min", "1", "--max",
                                       "43"], {}, 1, ("game code must be 1-32 lower-case",), ()),
    ("game add", "code as game code", ["game", "add", "__import__('os')", "--n-main", "6", "--min", "1", "--max",
                                       "43"], {}, 1, ("game code must be 1-32 lower-case",), ()),
    ("game add", "non-ASCII game code", ["game", "add", "ロト6", "--n-main", "6", "--min", "1", "--max", "43"], {}, 1,
     ("game code must be 1-32 lower-case ASCII",), ()),
    ("game add", "path code, options missing", ["game", "add", "../x", "--n-main", "6"], {}, 1,
     ("game code must be",), ()),  # the code is checked first, not after the missing --min / --max
    ("game add", "n_main out of bounds", ["game", "add", "huge", "--n-main", "100000", "--min", "1", "--max", "43"],
     {}, 1, ("n_main must be 1..50",), ()),
    ("game add", "number beyond int32", ["game", "add", "wide", "--n-main", "6", "--min", "1", "--max",
                                         "99999999999"], {}, 1, ("32-bit",), ()),
    ("game add", "missing range", ["game", "add", "norange", "--n-main", "6"], {}, 1, ("needs --min, --max",), ()),
    ("game add", "n-main not a number", ["game", "add", "x", "--n-main", "abc"], {}, 2, ("'abc' is not a valid",), ()),
    ("game add", "unknown weekday", ["game", "add", "wk", "--n-main", "6", "--min", "1", "--max", "43",
                                     "--weekdays", "funday"], {}, 1, ("unknown day",), ()),
    ("game add", "existing game without --update", ["game", "add", "loto6", "--n-main", "6", "--min", "1", "--max",
                                                    "43"], {}, 1, ("add --update",), ()),
    ("game add", "missing history file", ["game", "add", "h1", "--n-main", "6", "--min", "1", "--max", "43",
                                          "--history", "/nonexistent/dir/h1.csv"], {}, 2, ("does not exist",), ()),
    ("game add", "system file as history", ["game", "add", "h2", "--n-main", "6", "--n-bonus", "1", "--min", "1",
                                            "--max", "43", "--history", F % "hist_passwd"], {}, 1,
     ("passwd: line 1 (header)", "lacks columns", "nothing was stored"), ()),
    ("game add", "history breaking a rule", ["game", "add", "h2", "--n-main", "6", "--n-bonus", "1", "--min", "1",
                                             "--max", "43", "--history", F % "hist_rule"], {}, 1,
     ("hist_rule.csv: line 3 (draw 2): breaks number_out_of_range", "nothing was stored"), ()),
    ("game add", "binary history", ["game", "add", "h2", "--n-main", "6", "--n-bonus", "1", "--min", "1", "--max",
                                    "43", "--history", F % "hist_binary"], {}, 1, ("hist.bin is a binary file",), ()),
    ("game add", "directory as history", ["game", "add", "h2", "--n-main", "6", "--min", "1", "--max", "43",
                                          "--history", F % "dir"], {}, 2, ("is a directory",), ()),
    ("game add", "bad history for an existing game", ["game", "add", "loto6", "--update", "--history",
                                                      F % "hist_rule"], {}, 1,
     ("line 3 (draw 2)", "nothing was changed", "fcast game add loto6 --update --history FILE"), ()),
    ("game deactivate", "unknown game", ["game", "deactivate", "nosuch"], {}, 1, ("unknown game 'nosuch'",), ()),
    ("game activate", "path as game code", ["game", "activate", "../x"], {}, 1, ("unknown game '../x'",), ()),
    ("game ingest", "unknown game", ["game", "ingest", "nosuch", F % "good_csv"], {}, 1, ("unknown game",), ()),
    ("game ingest", "path as game code", ["game", "ingest", "../../etc/passwd", F % "good_csv"], {}, 1,
     ("unknown game '../../etc/passwd'",), ()),
    ("game ingest", "missing file", ["game", "ingest", "loto6", "/nonexistent/A1022141.csv"], {}, 2,
     ("does not exist",), ()),
    ("game ingest", "not a result file", ["game", "ingest", "loto6", F % "good_csv"], {}, 1,
     ("good.csv: not a loto6 result file", "nothing ingested"), ()),
    ("plan load", "YAML syntax error", ["plan", "load", F % "yaml_syntax"], {}, 2,
     ("syntax.yaml:4:1:", "not valid YAML", "nothing was loaded"), ()),
    ("plan load", "plan without a name", ["plan", "load", F % "no_name"], {}, 2,
     ("noname.yaml:2: plan #1: a plan needs a name",), ()),
    ("plan load", "path as plan name", ["plan", "load", F % "trav_name"], {}, 2,
     ("trav.yaml:2:", "'../../etc/passwd' is not a plain label"), ()),
    ("plan load", "library: os", ["plan", "load", F % "lib_os"], {}, 2,
     ("os.yaml: plan 'evil': library 'os' is not one plans can run",), ()),
    ("plan load", "__obj__ outside the closed table", ["plan", "load", F % "obj_os"], {}, 2,
     ("plan 'obj'", "os.system", "not an allowed object"), ()),
    ("plan load", "unknown __marker__", ["plan", "load", F % "marker"], {}, 2, ("plan 'mk'", "__import__"), ()),
    ("plan load", "params a list", ["plan", "load", F % "params_list"], {}, 2,
     ("plan 'prm': step 0: params must be a mapping",), ()),
    ("plan load", "steps not a list", ["plan", "load", F % "steps_str"], {}, 2,
     ("steps.yaml:2: plan 'st': steps: must be a list",), ()),
    ("plan load", "plans not a list", ["plan", "load", F % "not_list"], {}, 2,
     ("notlist.yaml: expected a list of plans", "found int"), ()),
    ("plan load", "a scalar document", ["plan", "load", F % "scalar"], {}, 2, ("expected a list of plans",), ()),
    ("plan load", "not UTF-8", ["plan", "load", F % "binary"], {}, 2, ("binary.yaml: not UTF-8 text",), ()),
    ("plan load", "CSV row with broken JSON", ["plan", "load", F % "csv_json"], {}, 2,
     ("badjson.csv:3: plan 'p1', column params: '{not json' is not JSON", "fix that row"), ()),
    ("plan load", "CSV ord not an integer", ["plan", "load", F % "csv_ord"], {}, 2,
     ("badord.csv:3: plan 'p1', column ord: 'x' is not an integer",), ()),
    ("plan load", "CSV without a method column", ["plan", "load", F % "csv_col"], {}, 2,
     ("nomethod.csv:1: the header lacks column(s) ['method']",), ()),
    ("plan load", "missing file", ["plan", "load", "/nonexistent/plans.yaml"], {}, 2, ("does not exist",), ()),
    ("plan validate", "no registry", ["plan", "validate", "--plan", "x"], {}, 2,
     ("no registry release of 'neuralforecast'", "fcast scan neuralforecast"), ()),
    ("plan run", "no registry", ["plan", "run", "x"], {}, 2, ("no registry release",), ()),
    ("plan delete", "unknown plan", ["plan", "delete", "nosuch"], {}, 1, ("no plan 'nosuch'", "fcast plan list"), ()),
    ("plan delete", "path as plan name", ["plan", "delete", "../../etc/passwd"], {}, 1, ("no plan",), ()),
    ("plan list", "extra argument", ["plan", "list", "extra"], {}, 2, ("unexpected extra argument",), ()),
    ("model selectors", "unknown game", ["model", "selectors", "--game", "nosuch"], {}, 2,
     ("unknown game 'nosuch'", "fcast game list"), ()),
    ("model train", "unknown game", ["model", "train", "--game", "../../etc"], {}, 2, ("unknown game",), ()),
    ("model train", "unknown selector", ["model", "train", "--game", "loto6", "--selector", "N99"], {}, 2,
     ("unknown selector(s) ['N99']", "N1, N2"), ()),
    ("model train", "max-steps zero", ["model", "train", "--game", "loto6", "--max-steps", "0"], {}, 2,
     ("--max-steps",), ()),
    ("model retrain", "unknown model id", ["model", "retrain", "987654"], {}, 2,
     ("no model with id 987654", "fcast model list"), ()),
    ("model retrain", "id not a number", ["model", "retrain", "__import__('os')"], {}, 2, ("MODEL_ID",), ()),
    ("model predict", "unknown model id", ["model", "predict", "987654"], {}, 2, ("no model with id 987654",), ()),
    ("model explain", "unknown model id", ["model", "explain", "0"], {}, 2, ("no model with id 0",), ()),
    ("model list", "unknown game", ["model", "list", "--game", "nosuch"], {}, 2, ("unknown game 'nosuch'",), ()),
]


def _fill(args: list[str], base) -> list[str]:  # noqa: ANN001
    return [a.format(files=base["files"]) for a in args]


@pytest.mark.parametrize("command, case, args, env, code, fragments, absent", ROWS,
                         ids=[f"{r[0]}: {r[1]}" for r in ROWS])
def test_bad_input_is_one_clear_line(base, command, case, args, env, code, fragments, absent):
    with reliability_row(command, case):
        res = CliRunner().invoke(main, _fill(args, base), env={**base["env"], **env})
        check_refused(res, code, fragments, absent)
        assert not (Path.cwd() / "PWNED").exists() and not (base["home"] / "PWNED").exists()
        if "--history" in args:  # a refused history file is not copied
            assert not any((base["home"] / "lottery" / f"{c}.csv").exists() for c in ("h2", "loto6"))


# (command, case, args): valid look-alikes of the rows above, in this order (state carries from one to the next)
GOOD = [
    ("scan", ["scan", "utilsforecast"]),
    ("search", ["search", "x' OR 1=1; DROP TABLE registry_symbol; --"]),
    ("search", ["search", "fill_gaps", "--kind", "function", "--limit", "3"]),
    ("db init", ["db", "init"]),
    ("game add", ["game", "add", "my_game2", "--n-main", "6", "--min", "1", "--max", "43", "--weekdays", "mon,thu"]),
    ("game add", ["game", "add", "my_game2", "--update", "--name", "My game"]),
    ("game add", ["game", "add", "my_game3", "--n-main", "6", "--n-bonus", "1", "--min", "1", "--max", "43",
                  "--history", F % "hist_good"]),
    ("game add", ["game", "add", "my_game3", "--update", "--history", F % "hist_good"]),
    ("game deactivate", ["game", "deactivate", "my_game2"]),
    ("game activate", ["game", "activate", "my_game2"]),
    ("game list", ["game", "list", "--all"]),
    ("plan load", ["plan", "load", F % "good"]),
    ("plan load", ["plan", "load", F % "good_csv"]),
    ("plan list", ["plan", "list"]),
    ("plan delete", ["plan", "delete", "mlp-basic_v2.1", "mlp_csv"]),
    ("model selectors", ["model", "selectors", "--game", "loto6"]),
    ("model list", ["model", "list", "--game", "loto6"]),
]


def test_valid_look_alikes_succeed(base):
    from fcast_assets.db.engine import make_engine
    from fcast_assets.plans import loader

    runner = CliRunner()
    for command, args in GOOD:
        res = runner.invoke(main, _fill(args, base), env=base["env"])
        assert res.exit_code == 0, (command, args, res.output, res.exception)
        assert "Traceback" not in res.output and not res.stderr.strip(), (args, res.stderr)
        if args[:2] == ["plan", "load"]:
            assert "loaded 1 plan(s)" in res.stdout
    eng = make_engine(base["url"])
    assert loader.plan_names(eng) == []  # loaded, then deleted
    assert (base["home"] / "lottery" / "my_game3.csv").read_bytes() == Path(base["files"]["hist_good"]).read_bytes()
    from sqlalchemy import text

    with eng.connect() as conn:  # the hostile query was data, not SQL
        assert conn.execute(text("SELECT COUNT(*) FROM registry_symbol")).scalar() > 100
    eng.dispose()


def test_debug_shows_the_traceback(base):
    with reliability_row("--debug db init", "nonsense URL: traceback only with --debug"):
        env = {**base["env"], "FCAST_DB_URL": "nonsense://"}
        res = CliRunner().invoke(main, ["--debug", "db", "init"], env=env)
        assert res.exception is not None and not isinstance(res.exception, SystemExit)
        assert "nonsense" in str(res.exception)
        res = CliRunner().invoke(main, ["db", "init"], env={**env, "FCAST_DEBUG": "1"})
        assert res.exception is not None and not isinstance(res.exception, SystemExit)


# ------------------------------------------------------------------------------------ end to end (processes)
def _proc_env(base, **over: str) -> dict[str, str]:  # noqa: ANN001
    env = {k: v for k, v in os.environ.items() if not k.startswith("FCAST_") or k == "FCAST_RELIABILITY_LOG"}
    env.update({k: v for k, v in base["env"].items() if v is not None}, **over)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.parametrize("args, over, code, fragment, debug", [
    (["db", "init"], {"FCAST_DB_URL": PG_SECRET}, 1, "cannot connect", False),
    (["--debug", "db", "init"], {"FCAST_DB_URL": "nonsense://"}, 1, "NoSuchModuleError", True),
    (["plan", "load", F % "csv_json"], {}, 2, "badjson.csv:3:", False),
    (["model", "retrain", "987654"], {}, 2, "no model with id 987654", False),
], ids=["unreachable pg", "debug traceback", "broken csv row", "unknown model"])
def test_exit_codes_end_to_end(base, args, over, code, fragment, debug):
    with reliability_row(f"fcast {' '.join(a for a in args if not a.startswith('/'))[:40]}", "subprocess exit code"):
        r = subprocess.run([sys.executable, "-m", "fcast_assets.cli", *_fill(args, base)], env=_proc_env(base, **over),
                           cwd=base["home"], capture_output=True, text=True, encoding="utf-8", timeout=120)
        assert r.returncode == code, r.stderr
        assert fragment in r.stderr and "s3cret" not in r.stdout + r.stderr
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        if debug:
            assert "Traceback" in r.stderr
        else:
            assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr


# ----------------------------------------------------------------------- rows that need the registry / a model
def _plan_file(folder: Path, name: str, steps: str, data: str = "synthetic") -> str:
    return _write(folder, f"{name}.yaml", f"plans:\n  - name: {name}\n    data: {data}\n    steps: [{steps}]\n")


@pytest.fixture
def trained(loto6_trained, tmp_path):
    files = tmp_path / "plans"
    files.mkdir()
    return {**loto6_trained, "files": files, "envx": {**loto6_trained["env"], "FCAST_DEBUG": None}}


def test_hostile_plans_on_the_real_registry(trained):
    """Save / load paths and data files that climb out, code as an argument value: reported by validation with
    the rule, and never executed by `plan run`; the same plan saving inside FCAST_HOME is valid."""
    home, f, env = Path(trained["env"]["FCAST_HOME"]), trained["files"], trained["envx"]
    pwned = f / "PWNED"
    rows = [
        ("plan validate", "save path climbing out", _plan_file(f, "save_up", f"{MLP}, {INIT}, {FIT}, "
         "{method: NeuralForecast.save, params: {path: ../../../../tmp/fcast_escape}}"),
         ("path_outside_root", "climbs out of")),
        ("plan validate", "absolute save path outside the roots", _plan_file(f, "save_abs", f"{MLP}, {INIT}, {FIT}, "
         "{method: NeuralForecast.save, params: {path: /etc/fcast_escape}}"),
         ("path_outside_root", "'/etc/fcast_escape' is outside the allowed roots")),
        ("plan validate", "load path outside the roots", _plan_file(f, "load_abs",
         "{method: NeuralForecast.load, params: {path: /etc}}"), ("path_outside_root", "'/etc' is outside the")),
        ("plan validate", "data file climbing out", _plan_file(f, "data_up", f"{MLP}, {INIT}, {FIT}",
         data="{files: {df: ../../../../../../etc/passwd}}"), ("unknown_data", "is outside the")),
        ("plan validate", "code as an argument value", _plan_file(f, "code_arg",
         "{model: MLP, params: {h: \"__import__('os').system('touch " + str(pwned) + "')\", input_size: 8}}, "
         f"{INIT}, {FIT}"), ("type_mismatch", "the registry says int")),
    ]
    for command, case, file, fragments in rows:
        with reliability_row(command, case):
            res = CliRunner().invoke(main, ["plan", "validate", file, "--no-miniature"], env=env)
            check_refused(res, 1, fragments, one_line=False)
            assert "1 with violations" in res.stdout and not pwned.exists()
    with reliability_row("plan run", "code as an argument value"):
        res = CliRunner().invoke(main, ["plan", "run", "code_arg", "--no-miniature"], env=env)
        check_refused(res, 1, ("code_arg", "invalid"), one_line=False)
        assert not pwned.exists() and not Path("/tmp/fcast_escape").exists()
    with reliability_row("plan validate", "unknown plan name"):
        res = CliRunner().invoke(main, ["plan", "validate", "--plan", "nosuch", "--no-miniature"], env=env)
        check_refused(res, 2, ("no plan 'nosuch'", "fcast plan list"))
    with reliability_row("plan run", "unknown plan name"):
        check_refused(CliRunner().invoke(main, ["plan", "run", "nosuch"], env=env), 2, ("no plan 'nosuch'",))
    with reliability_row("compat", "unknown model"):
        res = CliRunner().invoke(main, ["compat", "--run", "--model", "NoSuchModel"], env=env)
        check_refused(res, 2, ("NoSuchModel",))
    # the look-alike: the same plan saving inside FCAST_HOME is valid
    ok = _plan_file(f, "save_home", f"{MLP}, {INIT}, {FIT}, "
                    f"{{method: NeuralForecast.save, params: {{path: {home / 'saved' / 'mlp1'}, overwrite: true}}}}")
    res = CliRunner().invoke(main, ["plan", "validate", ok, "--no-miniature"], env=env)
    assert res.exit_code == 0 and "1 valid" in res.stdout, res.output
    CliRunner().invoke(main, ["plan", "delete", "save_up", "save_abs", "load_abs", "data_up", "code_arg",
                              "save_home"], env=env)


def test_corrupt_model_artifact_is_one_line(trained):
    """The current version's folder damaged (its files overwritten with junk): predict and explain say which
    model, which folder and to retrain, in one line; the folder is restored afterwards for other tests."""
    row = trained["first"]
    folder, env = Path(row["artifact_uri"]), trained["envx"]
    keep = folder.with_name(folder.name + ".keep")
    shutil.copytree(folder, keep)
    try:
        for p in folder.rglob("*"):
            if p.is_file():
                p.write_bytes(b"not a model")
        for cmd in ("predict", "explain"):
            with reliability_row(f"model {cmd}", "corrupt model artifact"):
                res = CliRunner().invoke(main, ["model", cmd, str(row["model_id"])], env=env)
                check_refused(res, 1, (f"model {row['model_id']} version {row['version']}", str(folder),
                                       "cannot be loaded", f"fcast model retrain {row['model_id']}"))
        shutil.rmtree(folder)
        with reliability_row("model predict", "missing model folder"):
            res = CliRunner().invoke(main, ["model", "predict", str(row["model_id"])], env=env)
            check_refused(res, 1, ("is missing", f"fcast model retrain {row['model_id']}"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(keep, folder)
    res = CliRunner().invoke(main, ["model", "predict", str(row["model_id"])], env=env)  # the look-alike
    assert res.exit_code == 0 and "y_hat" in res.stdout, res.output
