"""Releases side by side (#20): a uv environment per release, the same scan and matrix run inside it, diff-driven
re-probing, version ranges and upgrade reports. Real environments built by uv from the package registry, real
library releases executed, real SQLite / PostgreSQL.

The environments are built once per session under a shared folder (statsforecast 2.0.3 and neuralforecast 3.2.2,
at small scale: two or one model classes and one family of cells); the installed releases (statsforecast 2.1.1,
neuralforecast 3.3.0) run in this interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text

from fcast_assets.db.engine import init_db, make_engine

from .conftest import _fresh_pg_database

SF_OLD, SF_NEW = "2.0.3", "2.1.1"
NF_OLD, NF_NEW = "3.2.2", "3.3.0"
NF_OLDEST = "3.1.9"  # caps pytorch-lightning below the project's 2.6
ML_OLD, ML_NEW = "1.0.31", "1.1.0"
UF_OLD = "0.2.16"  # one release below the installed 0.2.17 (from 0.2.10, every function reaches a changed helper)


@pytest.fixture(scope="module")
def rel(tmp_path_factory):
    """A fresh SQLite DB and home; release environments in a folder shared by the session."""
    from importlib.metadata import version

    assert version("statsforecast") == SF_NEW and version("neuralforecast") == NF_NEW, "the lock moved: update"
    home = tmp_path_factory.mktemp("relhome")
    envs = Path(os.environ.get("FCAST_TEST_ENVS_DIR") or tmp_path_factory.getbasetemp() / "release-envs")
    mp = pytest.MonkeyPatch()
    url = f"sqlite:///{home / 'meta.db'}"
    mp.setenv("FCAST_HOME", str(home))
    mp.setenv("FCAST_DB_URL", url)
    mp.setenv("FCAST_ENVS_DIR", str(envs))
    eng = make_engine(url)
    init_db(eng)
    yield {"engine": eng, "url": url, "home": home, "envs": envs}
    eng.dispose()
    mp.undo()


# ---------------------------------------------------------------------------------------------- specs
def test_release_specs_are_a_closed_table():
    from fcast_assets.registry.envs import ReleaseSpecError, parse_spec
    from fcast_assets.registry.libraries import UnknownLibraryError

    assert str(parse_spec("neuralforecast==3.2.2")) == "neuralforecast==3.2.2"
    assert parse_spec(" statsforecast == 2.0.3 ").version == "2.0.3"
    assert parse_spec("statsforecast").version is None
    assert parse_spec("statsforecast==2.1.0rc1").version == "2.1.0rc1"
    for bad in ("statsforecast>=2", "statsforecast==2.0; rm -rf /", "statsforecast==../../x", "statsforecast==",
                "statsforecast==2 .0"):
        with pytest.raises(ReleaseSpecError):
            parse_spec(bad)
    with pytest.raises(UnknownLibraryError):
        parse_spec("requests==2.31.0")  # a real distribution, but not one of libraries.yaml


def test_release_config_is_checked(monkeypatch):
    from fcast_assets.compat.releases import previous_listed, release_config
    from fcast_assets.registry.envs import ReleaseSpecError, parse_spec

    cfg = release_config()
    names = [str(s) for s in cfg["releases"]]
    assert "neuralforecast==3.3.0" in names and "statsforecast==2.0.3" in names
    assert str(previous_listed(parse_spec("neuralforecast==3.3.0"), cfg["releases"])) == "neuralforecast==3.2.2"
    monkeypatch.setenv("FCAST_RELEASES", "statsforecast==2.1.1, statsforecast==2.0.3")
    specs = release_config()["releases"]
    assert [str(s) for s in specs] == ["statsforecast==2.1.1", "statsforecast==2.0.3"]
    assert str(previous_listed(specs[0], specs)) == "statsforecast==2.0.3"  # version order, not list order
    monkeypatch.setenv("FCAST_RELEASES", "statsforecast==2.0.3,statsforecast")
    with pytest.raises(ReleaseSpecError, match="FCAST_RELEASES.*names no release"):
        release_config()


# ---------------------------------------------------------------------------------------------- environments
def _build_in_child(spec: str, envs: Path) -> subprocess.Popen:
    code = ("import sys; from fcast_assets.registry.envs import ensure_env, parse_spec; "
            f"ensure_env(parse_spec({spec!r}), rebuild=True)")
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "FCAST_ENVS_DIR": str(envs)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_env_build_killed_midway_leaves_nothing_that_blocks(rel):  # runs first: later tests use this environment
    """Kill a build while uv installs: no half-built environment looks usable, the next build completes and
    removes the leftover, and a second call reuses the environment (cached)."""
    from fcast_assets.registry.envs import MARKER, ensure_env, env_dir, parse_spec

    import shutil

    spec = parse_spec(f"utilsforecast=={UF_OLD}")
    folder = env_dir(spec)
    shutil.rmtree(folder, ignore_errors=True)  # from nothing (the shared folder may hold one from an earlier run)
    child = _build_in_child(str(spec), rel["envs"])
    deadline = time.time() + 60
    while time.time() < deadline and not list(folder.parent.glob(folder.name + ".tmp-*")):
        time.sleep(0.05)
    time.sleep(1.0)  # inside uv's install
    for p in [psutil.Process(child.pid), *psutil.Process(child.pid).children(recursive=True)]:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    child.wait(30)
    assert not (folder / MARKER).exists(), "a killed build must not leave an environment that looks complete"
    env = ensure_env(spec)
    assert not env.cached and (folder / MARKER).exists() and env.packages["utilsforecast"] == UF_OLD
    assert not list(folder.parent.glob(folder.name + ".tmp-*")), "the leftover of the killed build is removed"
    again = ensure_env(spec)
    assert again.cached and again.seconds < 5
    # an environment built by an earlier build scheme (no "scheme" in its marker) is rebuilt, not reused
    marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    marker.pop("scheme")
    (folder / MARKER).write_text(json.dumps(marker), encoding="utf-8")
    assert not ensure_env(spec).cached and ensure_env(spec).cached
    # the interpreter runs that release, not the project's
    out = subprocess.run([str(env.python), "-c", "import utilsforecast; print(utilsforecast.__version__)"],
                         capture_output=True, text=True, encoding="utf-8")
    assert out.stdout.strip() == UF_OLD


def test_unknown_release_is_one_line(rel):
    from fcast_assets.registry.envs import EnvBuildError, ensure_env, env_dir, parse_spec

    spec = parse_spec("statsforecast==99.0.0")
    with pytest.raises(EnvBuildError, match="statsforecast==99.0.0") as e:
        ensure_env(spec)
    assert "\n" not in str(e.value)
    assert not env_dir(spec).exists() and not list(env_dir(spec).parent.glob(env_dir(spec).name + ".tmp-*"))


# ---------------------------------------------------------------------------------------------- statsforecast
@pytest.fixture(scope="module")
def sf(rel):
    """statsforecast 2.1.1 (installed) scanned first, then 2.0.3 in its own environment; both probed on the same
    small subset (AutoARIMA, Naive × the sf_edges family), then 2.1.1 again, diff-driven from 2.0.3."""
    from fcast_assets.compat.releases import probe_release, scan_release

    eng = rel["engine"]
    new_scan = scan_release(eng, "statsforecast")
    old_scan = scan_release(eng, f"statsforecast=={SF_OLD}")
    kw = dict(models=["AutoARIMA", "Naive"], families=["sf_edges"])
    old = probe_release(eng, f"statsforecast=={SF_OLD}", **kw)
    new = probe_release(eng, f"statsforecast=={SF_NEW}", **kw)
    carried = probe_release(eng, f"statsforecast=={SF_NEW}", carry_from=SF_OLD, **kw)
    return {"new_scan": new_scan, "old_scan": old_scan, "old": old, "new": new, "carried": carried}


def test_scan_in_release_env_writes_that_release(rel, sf):
    assert sf["old_scan"]["version"] == SF_OLD and sf["old_scan"]["env"].endswith(f"statsforecast-{SF_OLD}-py"
                                                                                   f"{sys.version_info[0]}"
                                                                                   f"{sys.version_info[1]}")
    assert sf["new_scan"]["env"] == "this interpreter"
    with rel["engine"].connect() as c:
        rels = dict(c.execute(text("SELECT version, release_id FROM registry_release")).all())
        env_json = c.execute(text("SELECT environment FROM registry_release WHERE version = :v"),
                             {"v": SF_OLD}).scalar()
        # scanned newer-first: the diff still runs from the older release to the newer one (version order)
        pairs = set(c.execute(text("SELECT DISTINCT from_release_id, to_release_id FROM registry_release_diff")).all())
        n_old = c.execute(text("SELECT COUNT(*) FROM registry_symbol WHERE release_id = :r"),
                          {"r": rels[SF_OLD]}).scalar()
    assert {SF_OLD, SF_NEW} <= set(rels) and n_old > 100
    assert pairs == {(rels[SF_OLD], rels[SF_NEW])}
    env = json.loads(env_json) if isinstance(env_json, str) else env_json
    assert env, "the release row records the environment it was scanned in"


def test_side_by_side_matrices_and_flips(rel, sf):
    from fcast_assets.compat.releases import flipped_cells, version_ranges

    assert sf["old"]["version"] == SF_OLD and sf["new"]["version"] == SF_NEW
    assert sf["old"]["cells"] == sf["new"]["cells"] > 10
    flips = flipped_cells(rel["engine"], "statsforecast", SF_OLD, SF_NEW)
    # 2.1.1 validates `level` (0 < level < 100); 2.0.3 ran level=[0] / [100]: observed, not written down
    lv = flips[(flips["param"] == "level") & (flips["value_label"] == "[0]")]
    assert len(lv) >= 2 and set(lv["status_from"]) == {"ok"} and set(lv["status_to"]) == {"error"}
    assert lv["message_to"].str.contains("between 0 and 100").all()
    # a look-alike that must not flip: level=80 (a scalar) errors in both
    same = flips[(flips["param"] == "level") & (flips["value_label"] == "80")]
    assert same.empty
    ranges = version_ranges(rel["engine"], "statsforecast")
    row = ranges[(ranges["model"] == "Naive") & (ranges["method"] == "StatsForecast.forecast")
                 & (ranges["param"] == "level") & (ranges["value_label"] == "[0]")].iloc[0]
    assert (row[SF_OLD], row[SF_NEW], row["runs_in"], row["errors_in"]) == ("ok", "error", SF_OLD, SF_NEW)
    _assert_sql_ranges_agree(rel["engine"], "statsforecast", ranges)


def _assert_sql_ranges_agree(eng, library: str, ranges) -> None:
    """The SQL views (compat_version_status / compat_version_ranges) give the same status per release and cell as
    the Python view, and the [0] level cell of Naive ran in the older release and errors in the newer."""
    import pandas as pd

    st = pd.read_sql(text("SELECT * FROM compat_version_status WHERE library = :l"), eng, params={"l": library})
    st["model"] = st["model"].str.rsplit(".", n=1).str[-1]
    wide = st.pivot_table(index=["model", "method", "param", "value_label", "scenario"], columns="version",
                          values="status", aggfunc="last").reset_index()
    both = ranges.merge(wide, on=["model", "method", "param", "value_label", "scenario"], suffixes=("_py", "_sql"))
    assert len(both) == len(ranges) == len(wide)
    for v in (SF_OLD, SF_NEW):
        assert (both[f"{v}_py"] == both[f"{v}_sql"]).all()
    rows = pd.read_sql(text("SELECT * FROM compat_version_ranges WHERE library = :l AND method = "
                            "'StatsForecast.forecast' AND param = 'level' AND value_label = '[0]'"),
                       eng, params={"l": library})
    naive = rows[rows["model"].str.endswith(".Naive")].iloc[0]
    assert (naive["ran_in"], naive["errored_in"], naive["absent_in"]) == (SF_OLD, SF_NEW, None)


def test_version_ranges_list_releases_in_release_order(db_url):
    """The SQL views list releases in PEP 440 order, not text order (0.2.9 before 0.2.10, a release candidate before
    its release), on both databases, for rows written before ``version_order`` existed (filled when the views are
    made) as for new ones; the text key sorts like packaging's Version."""
    import random

    from packaging.version import Version

    from fcast_assets.compat.probe import create_release_views
    from fcast_assets.registry.store import version_order

    vs = ["0.2.9", "0.2.10", "0.2.10rc1", "0.2.10.post1", "0.2.10.dev3", "0.2.10a1.dev1", "1!0.1", "0.10",
          "0.2.10.post1.dev1"]
    shuffled = random.Random(7).sample(vs, len(vs))
    assert sorted(shuffled, key=version_order) == sorted(vs, key=Version)
    assert version_order("not-a-version") > version_order("1!0.1")
    eng = make_engine(db_url)
    init_db(eng)
    ran = ["0.2.10rc1", "0.2.9", "0.2.10"]  # written in this order; ran in all three; absent from 0.2.10.post1
    with eng.begin() as conn:
        for v in [*ran, "0.2.10.post1"]:
            _release_rows(conn, v, [("f" if v in ran else "g", "ok", None)])
    create_release_views(eng)
    with eng.connect() as conn:
        row = conn.execute(text("SELECT ran_in, absent_in FROM compat_version_ranges WHERE model = 'f'")).one()
        orders = conn.execute(text("SELECT version FROM registry_release ORDER BY version_order")).scalars().all()
    eng.dispose()
    assert row.ran_in == "0.2.9, 0.2.10rc1, 0.2.10" and row.absent_in == "0.2.10.post1"
    assert orders == ["0.2.9", "0.2.10rc1", "0.2.10", "0.2.10.post1"]


def _release_rows(conn, version: str, *runs: list[tuple[str, str, str | None]]) -> int:
    """A utilsforecast release row written as an older fcast wrote it (no version_order), and per run of ``runs``
    one compat run with one result per (model, status, carried from version or None), cell f(h=1) of that model;
    returns the release_id."""
    from fcast_assets.db import models as m

    lib = conn.execute(text("SELECT library_id FROM registry_library WHERE name = 'utilsforecast'")).scalar()
    if lib is None:
        lib = conn.execute(m.RegistryLibrary.__table__.insert().values(
            name="utilsforecast", import_name="utilsforecast", dist_name="utilsforecast")).inserted_primary_key[0]
    rid = conn.execute(m.RegistryRelease.__table__.insert().values(
        library_id=lib, version=version, python_version="3.11")).inserted_primary_key[0]
    for outcomes in runs:
        run = conn.execute(m.CompatRun.__table__.insert().values(release_id=rid, library="utilsforecast")
                           ).inserted_primary_key[0]
        for model, status, carried in outcomes:
            conn.execute(m.CompatResult.__table__.insert().values(
                compat_run_id=run, release_id=rid, model=model, method="f", param="h", value_label="1",
                status=status, exception_type="ValueError" if status == "error" else None,
                message=f"{model} says {status}", context={"carried_from": {"version": carried}} if carried else {}))
    return rid


def test_upgrade_report_keeps_timeouts_and_unstable_cells_apart(db_url, tmp_path):
    """A cell that errors in the newer release is a flip; one that timed out in a release, or whose outcome varied
    between two runs of one release, is listed apart and not counted as flipped; a carried row that disagrees is
    not a second run."""
    from fcast_assets.compat.releases import carry_misses, unstable_cells, upgrade_report

    eng = make_engine(db_url)
    init_db(eng)
    with eng.begin() as conn:
        _release_rows(conn, "0.1.0", [("flips", "ok", None), ("slow", "ok", None), ("varies", "ok", None),
                                      ("same", "ok", None)])
        _release_rows(conn, "0.2.0", [("flips", "error", None), ("slow", "timeout", None), ("varies", "ok", None),
                                      ("same", "ok", None)],
                      [("varies", "error", None), ("same", "error", "0.1.0")],
                      [("flips", "ok", "0.1.0"), ("slow", "ok", "0.1.0")])  # a diff-driven run carrying 0.1.0's
    assert unstable_cells(eng, "utilsforecast", "0.2.0") == {("varies", "f", "h", "1", "baseline")}
    # its misses: the carried ✓ of a cell that errors when run; a timeout in the full run is no answer to compare
    assert list(carry_misses(eng, "utilsforecast", "0.2.0")["model"]) == ["flips"]
    md = upgrade_report(eng, "utilsforecast", "0.1.0", "0.2.0")
    from fcast_assets.site.build import write_release_pages  # the site's page counts the same way

    write_release_pages(eng, tmp_path / "releases")
    page = (tmp_path / "releases" / "utilsforecast.md").read_text(encoding="utf-8")
    eng.dispose()
    assert "0.1.0 → 0.2.0: 1 cells flipped (1 timed out in one release, 1 varied between runs: not counted" in page
    flipped = md.split("## Cells that flipped", 1)[1].split("## ", 1)[0]
    timed = md.split("## Cells that timed out in one release", 1)[1].split("## ", 1)[0]
    varied = md.split("## Cells whose outcome varies between runs", 1)[1].split("## ", 1)[0]
    assert "| flips |" in flipped and "| slow |" not in flipped and "| varies |" not in flipped
    assert "| slow |" in timed and "| varies |" in varied and "| same |" not in md
    assert "| matrix cells that flipped | 1 |" in md


def test_reprobe_carries_what_ran_not_what_was_carried(db_url):
    """A release fully run (f(h=1) ok) and then re-probed diff-driven, whose carried row disagrees (error: the kind
    of miss the bench measures): a re-probe of the next release carries the outcome that ran, not the newer carried
    one. The look-alike: a cell that only ran carries its own row."""
    from fcast_assets.compat.probe import split_by_diff
    from fcast_assets.compat.runner import Cell, Group

    eng = make_engine(db_url)
    init_db(eng)
    with eng.begin() as conn:
        _release_rows(conn, "0.1.0")
        _release_rows(conn, "0.2.0", [("f", "ok", None), ("f", "error", "0.1.0"), ("g", "error", None)])
        new_id = _release_rows(conn, "0.3.0")
        ran_ids = dict(conn.execute(text("SELECT model, MIN(result_id) FROM compat_result GROUP BY model")).all())
    groups = [Group("k", model, {}, [Cell(model, "f", "h", 1, "1")]) for model in ("f", "g")]
    run, carry = split_by_diff(eng, "utilsforecast", "0.2.0", new_id, groups)
    eng.dispose()
    assert run == [] and len(carry) == 2
    got = {g.model: out for g, _, out in carry}
    assert got["f"]["status"] == "ok" and got["f"]["carried_from"]["result_id"] == ran_ids["f"]
    assert got["g"]["status"] == "error" and got["g"]["carried_from"]["result_id"] == ran_ids["g"]


def test_body_change_behind_same_signature_is_reprobed(rel, sf):
    """statsforecast 2.1.1 validates `level` inside StatsForecast.forecast / predict, whose signatures did not
    change: their body digests did, so the diff-driven run re-runs those cells instead of carrying 2.0.3's ✓."""
    from fcast_assets.compat.releases import carry_misses, flipped_cells

    c = sf["carried"]
    assert c["carried"] + c["ran"] == c["cells"] == sf["new"]["cells"]
    with rel["engine"].connect() as conn:
        rows = conn.execute(text("SELECT model, param, value_label, context FROM compat_result "
                                 "WHERE compat_run_id = :r"), {"r": c["compat_run_id"]}).all()
    ctx = {(r.model.rsplit(".", 1)[-1], r.param, r.value_label): (json.loads(r.context) if isinstance(r.context, str)
                                                                 else r.context) for r in rows}
    assert not ctx[("Naive", "level", "[0]")].get("carried_from"), "a changed body must be probed again"
    assert carry_misses(rel["engine"], "statsforecast", SF_NEW).empty
    with rel["engine"].connect() as conn:
        bodies = set(conn.execute(text("""SELECT d.qualname FROM registry_release_diff d
            JOIN registry_release r ON r.release_id = d.to_release_id WHERE r.version = :v
            AND d.param_name IS NULL AND d.change = 'changed'"""), {"v": SF_NEW}).scalars())
    assert "statsforecast.core.StatsForecast.forecast" in bodies
    # a really-run outcome wins over a carried one in the reports, whichever is newer
    flips = flipped_cells(rel["engine"], "statsforecast", SF_OLD, SF_NEW)
    assert len(flips[(flips["model"] == "Naive") & (flips["param"] == "level")]) >= 2


def test_diff_driven_reprobe_carries_untouched_cells(rel):
    """utilsforecast 0.2.16 (its own environment, built by the kill test) and 0.2.17 (here), the whole matrix:
    the diff-driven run of 0.2.17 carries the cells of functions whose signature and code (body and the helpers it
    calls) did not change, marks them, and a full run of the same release shows it missed nothing."""
    from fcast_assets.compat.releases import carry_misses, probe_release

    eng = rel["engine"]
    old = probe_release(eng, f"utilsforecast=={UF_OLD}")
    full = probe_release(eng, "utilsforecast")
    c = probe_release(eng, "utilsforecast", carry_from=UF_OLD)
    assert old["version"] == UF_OLD and full["version"] == c["version"] != UF_OLD
    assert c["carried"] > 50 and c["ran"] > 50 and c["carried"] + c["ran"] == c["cells"] == full["cells"]
    with eng.connect() as conn:
        rows = conn.execute(text("SELECT model, context FROM compat_result WHERE compat_run_id = :r"),
                            {"r": c["compat_run_id"]}).all()
        stats = dict(conn.execute(text("SELECT version, stats FROM registry_release r JOIN registry_library l "
                                       "USING (library_id) WHERE l.name = 'utilsforecast'")).all())
    ctx = [(model, json.loads(x) if isinstance(x, str) else x) for model, x in rows]
    marked = [(model, x["carried_from"]) for model, x in ctx if x.get("carried_from")]
    assert len(marked) == c["carried"] and {m["version"] for _, m in marked} == {UF_OLD}
    # what was carried runs the same code in both releases: its digest (helpers included) is unchanged
    hashes = {v: (json.loads(s) if isinstance(s, str) else s)["code_hashes"] for v, s in stats.items()}
    for model in {model for model, _ in marked}:
        assert hashes[UF_OLD].get(model) == hashes[c["version"]].get(model) is not None, model
    assert any(hashes[UF_OLD].get(q) != h for q, h in hashes[c["version"]].items()), "the releases differ"
    misses = carry_misses(eng, "utilsforecast", c["version"])
    assert misses.empty, misses[["model", "value_label"]].to_string()


def test_upgrade_report_and_rerun_in_its_own_env(rel, sf, tmp_path):
    from click.testing import CliRunner

    from fcast_assets.compat.cli import releases

    out = tmp_path / "report.md"
    r = CliRunner().invoke(releases, ["report", "statsforecast", SF_OLD, SF_NEW, "--out", str(out)])
    assert r.exit_code == 0, r.output
    md = out.read_text(encoding="utf-8")
    assert md.startswith(f"# Upgrading statsforecast {SF_OLD} → {SF_NEW}")
    for section in ("## Summary", "## Cells that flipped", "## Parameters added", "## Defaults changed"):
        assert section in md
    assert "between 0 and 100" in md
    # re-run a flipped cell of the older release from its row: it runs in 2.0.3's environment and reproduces
    with rel["engine"].connect() as conn:
        rid = conn.execute(text("""SELECT c.result_id FROM compat_result c JOIN registry_release r USING (release_id)
            WHERE r.version = :v AND c.param = 'level' AND c.value_label = '[0]' AND c.model LIKE '%Naive'
            ORDER BY c.result_id LIMIT 1"""), {"v": SF_OLD}).scalar()
    r = CliRunner().invoke(releases, ["rerun", str(rid)])
    assert r.exit_code == 0, r.output
    assert "before ok" in r.output and "now ok" in r.output and "reproduced" in r.output
    # bad input: one line, non-zero
    r = CliRunner().invoke(releases, ["report", "statsforecast", "1.0.0", SF_NEW])
    assert r.exit_code == 1 and "no registry release" in r.output and "Traceback" not in r.output


@pytest.mark.postgres
def test_scan_in_release_env_on_postgresql(rel, monkeypatch):
    """The child writes into PostgreSQL through the same URL (psycopg is installed in the environment)."""
    from fcast_assets.compat.releases import scan_release

    url = _fresh_pg_database()
    monkeypatch.setenv("FCAST_DB_URL", url)
    eng = make_engine(url)
    init_db(eng)
    s = scan_release(eng, f"statsforecast=={SF_OLD}")
    assert s["version"] == SF_OLD and s["status"] == "created"
    with eng.connect() as c:
        assert c.execute(text("SELECT version FROM registry_release")).scalars().all() == [SF_OLD]
    # both releases' matrices (one model) in PostgreSQL; the version-range views are the same SQL there
    from fcast_assets.compat.releases import probe_release, version_ranges

    kw = dict(models=["Naive"], families=["sf_edges"])
    probe_release(eng, f"statsforecast=={SF_OLD}", **kw)
    probe_release(eng, "statsforecast", **kw)
    _assert_sql_ranges_agree(eng, "statsforecast", version_ranges(eng, "statsforecast"))
    eng.dispose()


# ---------------------------------------------------------------------------------------------- neuralforecast
@pytest.fixture(scope="module")
def nf(rel):
    """neuralforecast 3.2.2 in its own environment and 3.3.0 here, MLP × the `h` family, probed once for the tests
    that read them (whichever runs first, or alone)."""
    from fcast_assets.compat.releases import probe_release

    eng = rel["engine"]
    old = probe_release(eng, f"neuralforecast=={NF_OLD}", models=["MLP"], families=["h"])
    new = probe_release(eng, "neuralforecast", models=["MLP"], families=["h"])
    return {"old": old, "new": new}


def test_neuralforecast_release_side_by_side(rel, nf):
    """neuralforecast 3.2.2 in its own environment (CPU torch, constrained to the project's), one model × the
    `h` family, and 3.3.0 here; the registry diff finds what 3.3.0 added (load's allow_pickle / trust_remote)."""
    from fcast_assets.compat.releases import version_ranges

    eng = rel["engine"]
    old, new = nf["old"], nf["new"]
    assert old["version"] == NF_OLD and old["cells"] > 0 and old["counts"].get("ok", 0) > 0
    assert new["version"] == NF_NEW and new["cells"] == old["cells"]
    with eng.connect() as c:
        added = set(c.execute(text("""SELECT d.param_name FROM registry_release_diff d
            JOIN registry_release r ON r.release_id = d.to_release_id
            WHERE r.version = :v AND d.qualname = 'neuralforecast.core.NeuralForecast.load'
            AND d.change = 'added'"""), {"v": NF_NEW}).scalars())
        torch_v = c.execute(text("SELECT environment FROM registry_release WHERE version = :v"), {"v": NF_OLD}).scalar()
    assert {"allow_pickle", "trust_remote"} <= added
    with eng.connect() as c:  # pyspark here, not in 3.2.2's environment: the same SparkDataFrame annotation
        spark = c.execute(text("SELECT COUNT(*) FROM registry_release_diff WHERE detail LIKE '%park%'")).scalar()
    assert spark == 0
    ranges = version_ranges(eng, "neuralforecast")
    assert {NF_OLD, NF_NEW} <= set(ranges.columns) and (ranges[NF_OLD] != "absent").all()
    env = json.loads(torch_v) if isinstance(torch_v, str) else torch_v
    assert "cpu" in str(env.get("torch", "cpu")), "the release environment must not pull the CUDA build of torch"
    # 3.2.2 caps pytorch-lightning below 2.6 too: that pin only is released, pandas stays the project's
    from importlib.metadata import version

    assert env["pandas"] == version("pandas") and env["pytorch-lightning"] < "2.6"


def _runs(proc: psutil.Process, what: str) -> bool:
    try:
        return what in " ".join(proc.cmdline())
    except psutil.Error:  # gone between the listing and the look
        return False


def test_parent_killed_takes_the_release_process_with_it(rel):
    """An fcast process killed (SIGKILL, no clean-up) while a release environment's process runs its matrix:
    that process and its probes end too instead of running cells for nobody, and the next run of the same release
    is not blocked (the unfinished compat run is recognised as abandoned)."""
    from fcast_assets.compat.releases import probe_release, scan_release

    scan_release(rel["engine"], f"neuralforecast=={NF_OLD}")  # unchanged when the earlier test scanned it
    code = ("import sys; from fcast_assets.registry.envs import ensure_env, parse_spec, run_in_env; "
            f"e = ensure_env(parse_spec('neuralforecast=={NF_OLD}')); "
            "run_in_env(e, 'fcast_assets.compat.inenv', ['compat', 'neuralforecast', '--model', 'NHITS', "
            "'--family', 'h', '--workers', '1'])")
    parent = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    try:
        deadline, kids = time.time() + 120, []
        while time.time() < deadline and not kids:
            time.sleep(0.5)
            kids = [k for k in psutil.Process(parent.pid).children(recursive=True) if _runs(k, "compat.inenv")]
        assert kids, "the release process did not start"
        deadline, probes = time.time() + 120, []
        while time.time() < deadline and not probes:  # let it reach its cells (probe processes)
            time.sleep(0.5)
            probes = kids[0].children(recursive=True)
        assert probes, "the release process runs its cells in probe processes"
        tree = [kids[0], *probes]
        parent.kill()
        parent.wait(10)
        gone, alive = psutil.wait_procs(tree, timeout=6)  # without the watch: alive until it next writes
        assert not alive, [p.cmdline()[:4] for p in alive]
    finally:
        if parent.poll() is None:
            parent.kill()
    r = probe_release(rel["engine"], f"neuralforecast=={NF_OLD}", models=["NHITS"], families=["h"])
    assert r["cells"] > 0 and r["version"] == NF_OLD


def test_conflicting_pins_are_the_ones_uv_names():
    """uv's resolver explanation names the pin that conflicts; that pin only is released (names compared the way
    PEP 503 normalises them), and a pin of the same package at another version, or a package merely mentioned
    without a version, is not."""
    from fcast_assets.registry.envs import conflicting_pins

    err = ("  × No solution found when resolving dependencies:\n  ╰─▶ Because neuralforecast==3.1.9 depends on "
           "pytorch-lightning>=2.0.0,<2.6.0 and pytorch-lightning==2.6.6, we can conclude that neuralforecast==3.1.9"
           " cannot be used.\n      And because you require neuralforecast==3.1.9, we can conclude that your "
           "requirements are unsatisfiable.")
    pins = ["pandas==2.3.3", "pytorch_lightning==2.6.6", "torch==2.13.0", "pytorch-lightning-bolts==0.3.0"]
    assert conflicting_pins(err, pins) == ["pytorch_lightning==2.6.6"]
    assert conflicting_pins(err.replace("2.6.6", "2.6.5"), pins) == []
    assert conflicting_pins("error: failed to fetch https://pypi.org/simple/pandas/", pins) == []


def test_neuralforecast_three_releases(rel, nf):
    """neuralforecast 3.1.9 caps pytorch-lightning below the project's 2.6: its environment releases that one pin
    only (pandas, numpy stay at the project's versions, so a flip comes from the library) and runs the same cells;
    the version ranges list the three releases in release order."""
    from importlib.metadata import version

    from fcast_assets.compat.releases import probe_release, version_ranges
    from fcast_assets.registry.envs import ensure_env, parse_spec

    eng = rel["engine"]
    env = ensure_env(parse_spec(f"neuralforecast=={NF_OLDEST}"))
    for dist in ("pandas", "numpy", "torch"):
        assert env.packages[dist] == version(dist), dist
    assert env.packages["pytorch-lightning"] < "2.6" <= version("pytorch-lightning")
    cons = (env.folder / "fcast-constraints.txt").read_text(encoding="utf-8")
    assert f"# released (the release needs another version): pytorch-lightning=={version('pytorch-lightning')}" in cons
    assert f"pandas=={version('pandas')}" in cons.splitlines()
    from click.testing import CliRunner

    from fcast_assets.compat.cli import releases

    said = CliRunner().invoke(releases, ["env", f"neuralforecast=={NF_OLDEST}"])
    assert said.exit_code == 0 and "cached" in said.output
    assert f"pytorch-lightning {env.packages['pytorch-lightning']} (the project has {version('pytorch-lightning')})" \
        in said.output
    r = probe_release(eng, f"neuralforecast=={NF_OLDEST}", models=["MLP"], families=["h"])
    assert r["version"] == NF_OLDEST and r["counts"].get("ok", 0) > 0
    ranges = version_ranges(eng, "neuralforecast")
    assert [c for c in ranges.columns if c[0].isdigit()] == [NF_OLDEST, NF_OLD, NF_NEW]
    h1 = ranges[(ranges["model"] == "MLP") & (ranges["param"] == "h") & (ranges["value_label"] == "2 (= h)")]
    assert not h1.empty and (h1["runs_in"] == f"{NF_OLDEST}–{NF_NEW}").all()
    with eng.connect() as c:  # the SQL view lists them in the same order
        ran_in = c.execute(text("SELECT ran_in FROM compat_version_ranges WHERE library = 'neuralforecast' AND "
                                "model LIKE '%.MLP' AND param = 'h' AND value_label = '2 (= h)'")).scalars().all()
    assert ran_in and set(ran_in) == {f"{NF_OLDEST}, {NF_OLD}, {NF_NEW}"}


def test_mlforecast_release_side_by_side(rel, tmp_path):
    """mlforecast 1.0.31 in its own environment and 1.1.0 here, the whole matrix: predict without X_df when the
    exogenous columns are in df raised KeyError in 1.0.31 and a ValueError that says so in 1.1.0; the diff-driven
    re-probe of 1.1.0 misses nothing."""
    from fcast_assets.compat.releases import carry_misses, flipped_cells, probe_release, upgrade_report

    eng = rel["engine"]
    old = probe_release(eng, f"mlforecast=={ML_OLD}")
    new = probe_release(eng, "mlforecast")
    assert (old["version"], new["version"]) == (ML_OLD, ML_NEW) and old["cells"] == new["cells"] > 50
    flips = flipped_cells(eng, "mlforecast", ML_OLD, ML_NEW)
    x = flips[(flips["method"] == "MLForecast.predict") & (flips["param"] == "X_df")]
    assert len(x) >= 1 and set(x["exception_type_from"]) == {"KeyError"} and set(x["exception_type_to"]) == {
        "ValueError"}
    assert x["message_to"].str.contains("X_df is required").all()
    # a look-alike that must not flip: h=1 runs in both
    assert flips[(flips["param"] == "h") & (flips["value_label"] == "1")].empty
    c = probe_release(eng, "mlforecast", carry_from=ML_OLD)
    assert c["carried"] + c["ran"] == c["cells"] and carry_misses(eng, "mlforecast", ML_NEW,
                                                                 compat_run_id=c["compat_run_id"]).empty
    md = upgrade_report(eng, "mlforecast", ML_OLD, ML_NEW)
    assert "X_df is required" in md and "## Cells that flipped" in md


def test_site_release_pages(rel, sf, tmp_path):
    """The site's releases pages come from the same rows: every cell with its status per release, the flips."""
    from fcast_assets.site.build import write_release_pages

    out = write_release_pages(rel["engine"], tmp_path / "releases")
    assert out["libraries"]["statsforecast"] == [SF_OLD, SF_NEW]
    page = (tmp_path / "releases" / "statsforecast.md").read_text(encoding="utf-8")
    assert f"{SF_OLD} → {SF_NEW}" in page and "between 0 and 100" in page
    assert page.count("<tr><td>") >= sf["new"]["cells"]  # every cell of the subset, plus the flips
    assert "[statsforecast](statsforecast.md)" in (tmp_path / "releases" / "index.md").read_text(encoding="utf-8")
    # the other pages show the release installed here, though 2.0.3 was scanned and probed after it
    from fcast_assets.site.build import _registry_release_ids, matrix_rows

    assert _registry_release_ids(rel["engine"])["statsforecast"][1] == SF_NEW
    assert {r["version"] for r in matrix_rows(rel["engine"]) if r["library"] == "statsforecast"} == {SF_NEW}


def test_report_text_from_the_database_stays_text(rel, sf):
    """A hostile message / value in a flipped cell is text in the Markdown report (no HTML, no broken table)."""
    from fcast_assets.compat.releases import upgrade_report

    eng = rel["engine"]
    with eng.begin() as conn:
        for version, status, msg in ((SF_OLD, "ok", None), (SF_NEW, "error", "<script>alert(1)</script> | a`b")):
            rid, run = conn.execute(text("""SELECT r.release_id, MAX(c.compat_run_id) FROM registry_release r
                JOIN compat_result c ON c.release_id = r.release_id WHERE r.version = :v GROUP BY r.release_id"""),
                {"v": version}).one()
            conn.execute(text("""INSERT INTO compat_result (compat_run_id, release_id, model, method, param, value,
                value_label, scenario, status, exception_type, message, seconds, context)
                VALUES (:run, :rid, 'statsforecast.models.Naive', 'StatsForecast.forecast', 'hostile', '1',
                        '`<img src=x>`', 'baseline', :st, :exc, :msg, 0.1, '{}')"""),
                         {"run": run, "rid": rid, "st": status, "exc": "Value<Error>" if msg else None, "msg": msg})
    md = upgrade_report(eng, "statsforecast", SF_OLD, SF_NEW)
    line = next(ln for ln in md.splitlines() if "hostile" in ln)
    assert "<script>" not in md and "&lt;script&gt;" in line and "Value&lt;Error&gt;" in line
    assert "`` `<img src=x>` ``" in line and line.count(" | ") + line.count("\\|") >= 9


def test_release_assets_through_dagster(rel, sf, tmp_path, monkeypatch):
    """The releases group: a listed release's scan and matrix subset as partitions, then the upgrade reports."""
    import dagster as dg

    from fcast_assets.defs.releases.assets import release_matrix, release_registry, upgrade_reports

    from .conftest import resources

    monkeypatch.setenv("FCAST_REPORTS", str(tmp_path / "reports"))
    res = dg.materialize([release_registry, release_matrix], partition_key=f"statsforecast=={SF_OLD}",
                         resources=resources(rel["url"]))
    assert res.success
    meta = res.asset_materializations_for_node("release_matrix")[0].metadata
    assert meta["cells"].value == sf["old"]["cells"] and meta["ran"].value == meta["cells"].value
    res = dg.materialize([upgrade_reports], resources=resources(rel["url"]))
    assert res.success
    report = tmp_path / "reports" / "upgrades" / f"statsforecast-{SF_OLD}-to-{SF_NEW}.md"
    assert report.exists() and "## Cells that flipped" in report.read_text(encoding="utf-8")
