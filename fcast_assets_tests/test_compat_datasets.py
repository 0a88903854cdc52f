"""datasetsforecast in the compatibility matrix: loaders run for real on local files (the exact layout they read)
and are recorded ``skipped`` with the network reason where the data would have to be downloaded; its pure
functions run on tiny inputs with post-conditions. Real library, real SQLite, real files; no network needed."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from sqlalchemy import text

from fcast_assets.compat.probe import run_matrix
from fcast_assets.compat.tables import rerun_cell

from .conftest import compat_cells_of_runs as cells, one_compat_cell as one, scanned_db

MODELS = ["M3", "PHM2008", "numpy_ffill", "nested_one_hot_encoding", "one_hot_encoding", "get_levels_from_S_df",
          "safe_extract", "distance_to_holiday"]


def _tsf(values: list[str]) -> str:
    """A .tsf file as the M3 archive ships it (series name, start timestamp, comma-separated values)."""
    head = ("@relation M3\n@attribute series_name string\n@attribute start_timestamp date\n@frequency yearly\n"
            "@horizon 6\n@missing false\n@equallength false\n@data\n")
    return head + "".join(f"T{i + 1}:19{80 + i}-01-01 00-00-00:{v}\n" for i, v in enumerate(values))


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compatdsf")
    data = folder / "datasets"
    m3 = data / "m3" / "datasets"
    m3.mkdir(parents=True)
    # Yearly: two series of 10 points (horizon 6); Quarterly: one value missing ('?'), which the loader keeps as NaN
    (m3 / "m3_yearly_dataset.tsf").write_text(_tsf(["1,2,3,4,5,6,7,8,9,10", "5,4,6,5,7,6,8,7,9,8"]),
                                              encoding="cp1252")
    (m3 / "m3_quarterly_dataset.tsf").write_text(_tsf(["1,2,?,4,5,6,7,8,9,10,11,12"]), encoding="cp1252")
    engine, _ = scanned_db(folder, "datasetsforecast")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FCAST_DATASETS_DIR", str(data))
        mp.delenv("FCAST_DATASETS_DOWNLOAD", raising=False)
        t0 = time.perf_counter()
        summary = run_matrix(engine, "datasetsforecast", models=MODELS, workers=2, cell_timeout=60)
        wall = time.perf_counter() - t0
    yield engine, summary, data, wall
    engine.dispose()


def test_local_loader_runs_for_real(matrix):
    engine, summary, data, _ = matrix
    from datasetsforecast.m3 import M3

    ok = one(engine, "model = 'datasetsforecast.m3.M3' AND param = 'group' AND value_label = 'Yearly'")
    assert ok.status == "ok", (ok.exception_type, ok.message)
    assert ok.method == "Loader.load" and ok.context["cell"]["spec"]["directory"] == str(data)
    f = ok.scenario_facts
    assert f["files_local"] is True and f["group"] == "Yearly" and f["horizon"] == 6 and f["freq"] == "YE"
    # the same call outside the matrix: what the cell checked is what the loader returns from these files
    df, *_ = M3.load(str(data), "Yearly")
    assert sorted(df["unique_id"].unique()) == ["Y1", "Y2"] and len(df) == 20 and not df["y"].isna().any()
    # the look-alike: the same layout with a missing value; the loader keeps it as NaN in y -> suspect
    nan = one(engine, "model = 'datasetsforecast.m3.M3' AND param = 'group' AND value_label = 'Quarterly'")
    assert nan.status == "suspect" and "1 NaN in y" in nan.message
    # a re-run from the stored row reads the same recorded folder and reproduces
    again = rerun_cell(engine, ok.result_id)
    assert again["reproduced"], again


def test_offline_loaders_are_skipped_with_the_network_reason(matrix):
    engine, summary, data, wall = matrix
    from datasetsforecast.phm2008 import PHM2008Info

    from fcast_assets.compat.datasets_adapter import reachable

    phm = cells(engine, "model = 'datasetsforecast.phm2008.PHM2008'")
    assert sorted(r.value_label for r in phm) == sorted(PHM2008Info.groups)  # one cell per group of the library
    monthly = one(engine, "model = 'datasetsforecast.m3.M3' AND value_label = 'Monthly'")
    offline = reachable("zenodo.org") is not None
    for r in [*phm, monthly]:
        assert r.status == "skipped" and r.scenario_facts["files_local"] is False, (r.value_label, r.message)
        if offline:  # CI: only package registries answer
            assert r.exception_type == "NetworkUnreachable" and r.message.startswith("network unreachable: ")
        else:
            assert r.exception_type == "DataNotLocal" and "FCAST_DATASETS_DOWNLOAD=1" in r.message
        assert str(data) in r.message
    assert "zenodo.org" in monthly.message and "m3/datasets/m3_monthly_dataset.tsf" in monthly.message
    assert "nixtla-public.s3.amazonaws.com" in phm[0].message and "phm2008/CMAPSSData/" in phm[0].message
    assert not (data / "phm2008").exists()  # nothing was downloaded or half-created
    assert summary["counts"]["skipped"] == len(phm) + 2  # PHM2008 x 4, M3 Monthly and Other
    with engine.connect() as conn:  # decided within the 3 s connect limit, never a download's wait
        slowest = conn.execute(text("SELECT MAX(seconds) FROM compat_result WHERE status = 'skipped'")).scalar()
    assert slowest < 4 and wall < 45


def test_reachable_is_bounded():
    import socket

    from fcast_assets.compat.datasets_adapter import reachable

    t0 = time.perf_counter()
    why = reachable("fcast-no-such-host.invalid", timeout=2.0)  # .invalid never resolves (RFC 2606)
    assert why and time.perf_counter() - t0 < 3.0
    with socket.socket() as srv:  # the look-alike: a host that answers
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        assert reachable("127.0.0.1", srv.getsockname()[1], timeout=2.0) is None


def test_functions_and_their_postconditions(matrix):
    engine, summary, _, _ = matrix
    q = "model = :m AND param = :p AND value_label = :v"
    fav = "datasetsforecast.favorita."
    assert one(engine, q, m=fav + "numpy_ffill", p="arr", v="NaN inside and at the ends").status == "ok"
    flat = one(engine, q, m=fav + "numpy_ffill", p="arr", v="1-d array")
    assert flat.status == "error" and flat.exception_type == "IndexError"
    # one_hot_encoding leaves the caller's frame alone; nested_one_hot_encoding deletes its index column
    assert one(engine, q, m=fav + "one_hot_encoding", p="index_col", v="'store'").status == "ok"
    nested = one(engine, q, m=fav + "nested_one_hot_encoding", p="index_col", v="'store'")
    assert nested.status == "suspect" and "the caller's df was changed" in nested.message
    assert one(engine, q, m=fav + "get_levels_from_S_df", p="S_df", v="strict 3 levels (1, 2, 4)").status == "ok"
    rep = one(engine, q, m=fav + "get_levels_from_S_df", p="S_df", v="a level repeats one bottom series")
    assert rep.status == "suspect" and "exactly once" in rep.message
    far = one(engine, q, m=fav + "distance_to_holiday", p="dates", v='["2030-01-01"]')
    assert far.status == "suspect" and "outside [-0.5, 0.5]" in far.message
    slip = one(engine, q, m="datasetsforecast.utils.safe_extract", p="filepath", v="member ../evil.txt (zip slip)")
    assert slip.status == "error" and "Unsafe path" in slip.message
    assert one(engine, q, m="datasetsforecast.utils.safe_extract", p="filepath", v="two members").status == "ok"


def test_views_and_partition_keys(matrix):
    engine, summary, _, _ = matrix
    from fcast_assets.defs.compat.cells import model_keys

    with engine.connect() as conn:
        n = conn.execute(text("SELECT COUNT(*) FROM compat_cells")).scalar()
        view = conn.execute(text("SELECT model, \"Yearly\", \"Monthly\" FROM compat_loader_load_group "
                                 "WHERE model = 'datasetsforecast.m3.M3'")).one()
    assert n == summary["cells"]
    assert view[1] == "ok" and view[2].startswith("skipped")
    keys = model_keys(engine, "datasetsforecast")
    assert {"M3", "M4", "M5", "LongHorizon", "HierarchicalData", "FavoritaData", "numpy_ffill"} <= set(keys)


def test_check_loaded_catches_wrong_frames():
    from fcast_assets.compat.datasets_adapter import check_loaded

    good = pd.DataFrame({"unique_id": ["a"] * 4 + ["b"] * 4, "ds": list(range(4)) * 2, "y": range(8)})
    layout, fields = {"frames": [0]}, {"horizon": 2}
    assert check_loaded((good, None, None), layout, fields) == []
    assert any("NaN" in b for b in check_loaded((good.assign(y=[None] + list(range(7))),), layout, fields))
    assert any("duplicated" in b for b in check_loaded((pd.concat([good, good.head(1)]),), layout, fields))
    assert any("lacks columns" in b for b in check_loaded((good.drop(columns="ds"),), layout, fields))
    assert any("horizon" in b for b in check_loaded((good,), layout, {"horizon": 4}))
    assert any("not a DataFrame" in b for b in check_loaded(good, layout, fields))  # a frame, not a tuple


def test_spawn_workers_give_the_same_cells(matrix):
    """The spawn path (Windows' only one): the adapter pickles, a worker registers the op, the loader reads the
    same files and the offline cell is skipped the same way."""
    engine, first, data, _ = matrix
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FCAST_PROCESS_MODEL", "spawn")
        mp.setenv("FCAST_DATASETS_DIR", str(data))
        s = run_matrix(engine, "datasetsforecast", models=["M3", "numpy_balance"], workers=2, cell_timeout=60)
    rows = cells(engine, "compat_run_id = :r", r=s["compat_run_id"])
    by = {(r.model.rsplit(".", 1)[-1], r.value_label): (r.status, r.exception_type) for r in rows}
    assert by[("M3", "Yearly")] == ("ok", None) and by[("M3", "Quarterly")][0] == "suspect"
    assert by[("M3", "Monthly")][0] == "skipped"
    assert by[("numpy_balance", "2 ids x 3 dates")] == ("ok", None)
