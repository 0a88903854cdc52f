"""The documentation site built from a small real matrix (statsforecast's Naive and mlforecast's LinearRegression,
every cell family, run for real):
the Dagster asset and the CLI generate the pages and run ``mkdocs build --strict``; the pages hold every
(method, param) table of the matrix with every latest cell, a known ✓ and a known ✗ with its message; text from
the database stays text (escaped, never markup, script or a snippet directive); and headless Chromium filters
for a parameter, opens its table and finds the ✓ and the ✗ with its message.

The browser part needs Debian's chromium and chromium-driver (.ci/run installs them); skipped without them unless
FCAST_REQUIRE_BROWSER=1 (set by CI), as in test_ui_e2e.
"""

from __future__ import annotations

import functools
import html
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from fcast_assets.cli import main
from fcast_assets.compat.probe import _LATEST_RESULTS, run_matrix
from fcast_assets.defs.resources import MetadataDB
from fcast_assets.defs.site.assets import site_pages
from fcast_assets.site import hooks
from fcast_assets.site.build import MATRIX, esc, short, slug, write_pages

from .conftest import scanned_db

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
HOSTILE = ('<script>window.__fcast_pwned = 1</script><img src=x onerror="window.__fcast_pwned = 2"> & "quotes"\n'
           '--8<-- "README.md"')
HOSTILE_LABEL = "hostile <b>label</b>"


def latest(engine, where: str = "1 = 1", **params):
    with engine.connect() as conn:
        return conn.execute(text(f"""SELECT c.result_id, l.name AS library, c.method, c.param, c.value_label, c.status,
                   c.exception_type, c.message
            FROM compat_result c JOIN registry_release r ON r.release_id = c.release_id
            JOIN registry_library l ON l.library_id = r.library_id
            WHERE c.result_id IN {_LATEST_RESULTS} AND {where} ORDER BY c.result_id"""), params).all()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """statsforecast and mlforecast scanned, their matrices run for Naive and LinearRegression, one extra cell
    whose message and value label are hostile markup, and the site built through the Dagster asset into ``out``."""
    folder = tmp_path_factory.mktemp("site")
    engine, url = scanned_db(folder, "statsforecast", "mlforecast")
    summary = run_matrix(engine, "statsforecast", models=["Naive"], workers=2)
    run_matrix(engine, "mlforecast", models=["LinearRegression"], workers=2)
    with engine.begin() as conn:  # a copy of a real error cell under a new label, with a message that is markup
        conn.execute(text("""INSERT INTO compat_result (compat_run_id, release_id, model, method, param, value,
                value_label, scenario, scenario_facts, status, exception_type, message, seconds, context)
            SELECT compat_run_id, release_id, model, method, param, value, :lab, scenario, scenario_facts, status,
                   exception_type, :msg, seconds, context FROM compat_result
            WHERE method = 'StatsForecast.predict' AND param = 'h' AND status = 'error' LIMIT 1"""),
                     {"lab": HOSTILE_LABEL, "msg": HOSTILE})
    out = folder / "out"
    result = dg.materialize([site_pages], resources={"meta_db": MetadataDB(url=url)},
                            run_config={"ops": {"site_pages": {"config": {"out": str(out)}}}},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    yield {"engine": engine, "url": url, "summary": summary, "out": out, "folder": folder,
           "meta": result.asset_materializations_for_node("site_pages")[0].metadata}
    engine.dispose()


def table_page(out: Path, method: str, param: str, library: str = "statsforecast") -> str:
    return (out / "html" / MATRIX / library / slug(f"{method}.{param}") / "index.html").read_text(encoding="utf-8")


def cell_tag(page: str, result_id: int) -> str:
    m = re.search(rf'<td class="fc-cell[^"]*"[^>]*data-result="{result_id}"[^>]*>.*?</td>', page)
    assert m, f"no cell for result {result_id}"
    return m.group(0)


def test_every_table_and_cell_of_the_matrix_is_on_the_site(site):
    engine, out = site["engine"], site["out"]
    rows = latest(engine)
    tables = {(r.library, r.method, r.param) for r in rows}
    assert {lib for lib, _, _ in tables} == {"statsforecast", "mlforecast"}
    assert len(tables) >= 15 and site["summary"]["cells"] > 20
    assert site["meta"]["tables"].value == len(tables) and site["meta"]["cells"].value == len(rows)
    for lib, method, param in tables:
        index = (out / "html" / MATRIX / lib / "index.html").read_text(encoding="utf-8")
        page = table_page(out, method, param, lib)
        assert f'href="{slug(f"{method}.{param}")}/"' in index, (method, param)
        for r in (x for x in rows if (x.library, x.method, x.param) == (lib, method, param)):
            tag = cell_tag(page, r.result_id)
            assert f'data-status="{r.status}"' in tag
            if r.status == "error":
                assert f'<code class="fc-exc">{r.exception_type}</code>' in tag
                assert esc(short(r.message)) in tag
    # the look-alike that must not pass: a result id that is not in the matrix has no cell
    with pytest.raises(AssertionError, match="no cell"):
        cell_tag(table_page(out, "StatsForecast.forecast", "level"), max(r.result_id for r in rows) + 1000)


def test_known_ok_and_error_cells(site):
    engine, out = site["engine"], site["out"]
    page = table_page(out, "StatsForecast.forecast", "level")
    ok = latest(engine, "method = 'StatsForecast.forecast' AND param = 'level' AND value_label = '[80]'")
    err = latest(engine, "method = 'StatsForecast.forecast' AND param = 'level' AND value_label = '[120]'")
    assert len(ok) == len(err) == 1 and ok[0].status == "ok" and err[0].status == "error"
    ok_tag, err_tag = cell_tag(page, ok[0].result_id), cell_tag(page, err[0].result_id)
    assert ">✓</td>" in ok_tag and "scenario baseline" in ok_tag
    assert "✗" in err_tag and "ValueError" in err_tag
    assert "between 0 and 100 (exclusive)" in html.unescape(err_tag)
    # mlforecast's level without conformal intervals runs but returns no interval columns: ⚠ with the breach
    sus = latest(engine, "method = 'MLForecast.predict' AND param = 'level' AND value_label = '[80]' "
                         "AND scenario = 'baseline'")
    assert len(sus) == 1 and sus[0].status == "suspect"
    sus_tag = cell_tag(table_page(out, "MLForecast.predict", "level", "mlforecast"), sus[0].result_id)
    assert "⚠" in sus_tag and "lo-80" in sus_tag
    # the scenario of each cell is on the page, and the column of the value
    assert '<td class="fc-scenario">baseline</td>' in page and '<th class="fc-value">[120]</th>' in page


def test_text_from_the_database_stays_text(site):
    out = site["out"]
    page = table_page(out, "StatsForecast.predict", "h")
    assert "<script>window.__fcast_pwned" not in page and "<img src=x" not in page and "<b>label</b>" not in page
    assert "&lt;script&gt;window.__fcast_pwned" in page and esc(HOSTILE_LABEL) in page
    # the snippet line inside the message was not expanded: the README is not pasted into the page
    assert "--8&lt;-- &quot;README.md&quot;" in page
    assert "scans time-series forecasting libraries" in (hooks.REPO / "README.md").read_text(encoding="utf-8")
    assert "scans time-series forecasting libraries" not in page


def test_site_has_readme_design_api_registry_and_notebooks(site):
    out = site["out"] / "html"
    assert "fcast" in (out / "index.html").read_text(encoding="utf-8")
    design = (out / "design" / "index.html").read_text(encoding="utf-8")
    assert '<pre class="mermaid"><code>erDiagram' in design and "compat_result" in design
    api = (out / "api" / "index.html").read_text(encoding="utf-8")
    assert "run_matrix" in api and "build_site" in api
    reg = out / "registry" / "statsforecast"
    core = next(p for p in reg.iterdir() if p.name.startswith("statsforecast.core"))
    text_ = (core / "index.html").read_text(encoding="utf-8")
    assert "StatsForecast" in text_ and "fallback_model" in text_ and "<th>allowed values</th>" in text_
    for nb in (hooks.REPO / "notebooks").glob("*.ipynb"):
        assert (out / "notebooks" / nb.stem / "index.html").exists(), nb.name


def test_notebook_rendered_with_outputs_only_when_its_run_matches(tmp_path):
    """The hook renders the executed copy when its code is the committed notebook's, else the committed one with
    a note (an executed copy of older code is not shown as this code's output)."""
    import json

    src = hooks.REPO / "notebooks" / "00_setup_check.ipynb"
    nb = json.loads(src.read_text(encoding="utf-8"))
    executed = tmp_path / "executed"
    executed.mkdir()
    (executed / src.name).write_text(json.dumps(nb), encoding="utf-8")
    path, ran = hooks.notebook_to_render(src, executed, tmp_path / "scratch")
    assert ran and path == executed / src.name
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["source"] = ["print('changed since the run')\n"]
    (executed / src.name).write_text(json.dumps(nb), encoding="utf-8")
    path, ran = hooks.notebook_to_render(src, executed, tmp_path / "scratch")
    assert not ran and "Shown without outputs" in path.read_text(encoding="utf-8")


def test_cli_builds_the_site_and_bad_database_is_one_line(site, tmp_path, monkeypatch):
    monkeypatch.setenv("FCAST_DB_URL", site["url"])
    res = CliRunner().invoke(main, ["site", "build", "--out", str(tmp_path / "cli")])
    assert res.exit_code == 0, res.output
    assert "statsforecast" in res.output and (tmp_path / "cli" / "html" / "index.html").exists()
    # regenerating replaces the generated pages, nothing else under pages/
    (tmp_path / "cli" / "pages" / "keep.txt").write_text("mine", encoding="utf-8")
    write_pages(site["engine"], tmp_path / "cli" / "pages")
    assert (tmp_path / "cli" / "pages" / "keep.txt").exists()
    monkeypatch.setenv("FCAST_DB_URL", "nonsense://nowhere")
    bad = CliRunner().invoke(main, ["site", "build", "--out", str(tmp_path / "bad")])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert len([ln for ln in bad.output.splitlines() if ln.strip()]) == 1, bad.output


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("FCAST_REQUIRE_BROWSER"):
            pytest.fail("FCAST_REQUIRE_BROWSER is set but chromium / chromedriver are not installed")
        pytest.skip("chromium and chromedriver not installed (apt-get install chromium chromium-driver)")
    from .conftest import headless_chromium

    driver = headless_chromium(tmp_path / "chrome")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(site):
    handler = functools.partial(_QuietHandler, directory=str(site["out"] / "html"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


@pytest.mark.slow
def test_browser_filters_a_parameter_and_finds_ok_and_error(site, served, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get(f"{served}/matrix/statsforecast/")
    box = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "input.fc-filter"))
    rows = driver.find_elements(By.CSS_SELECTOR, "#t-tables tbody tr")
    box.send_keys("level")
    WebDriverWait(driver, 10).until(lambda d: any(not r.is_displayed() for r in rows))
    shown = [r for r in rows if r.is_displayed()]
    assert shown and all("level" in r.text for r in shown) and len(shown) < len(rows)
    link = next(r for r in shown if "StatsForecast.forecast" in r.text and "StatsForecast.forecast_" not in r.text)
    link.find_element(By.TAG_NAME, "a").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.fc-matrix"))
    assert "StatsForecast.forecast" in driver.title and "level" in driver.title
    heads = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "table.fc-matrix thead th")]
    naive = driver.find_element(By.XPATH, "//table[contains(@class,'fc-matrix')]//tr[th[normalize-space()='Naive']]")
    cells = naive.find_elements(By.XPATH, "./td")
    ok, err = cells[heads.index("[80]") - 1], cells[heads.index("[120]") - 1]
    assert ok.text.strip() == "✓" and ok.get_attribute("data-status") == "ok"
    assert err.text.startswith("✗ ValueError") and "between 0 and 100 (exclusive)" in err.text
    assert "between 0 and 100 (exclusive)" in err.get_attribute("title")
    # the table's own filter: a value keeps its column, a status keeps the rows holding it
    table_box = driver.find_element(By.CSS_SELECTOR, "input.fc-filter")
    table_box.send_keys("[120]")
    WebDriverWait(driver, 10).until(lambda d: not ok.is_displayed())
    assert err.is_displayed()
    table_box.send_keys(Keys.CONTROL, "a")
    table_box.send_keys("error")
    WebDriverWait(driver, 10).until(lambda d: ok.is_displayed())
    assert naive.is_displayed()
    # Material's search finds the parameter's table page too
    driver.get(f"{served}/matrix/statsforecast/")
    search = WebDriverWait(driver, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, "input.md-search__input"))
    search.click()
    search.send_keys("prediction_intervals")

    def hit(d):
        links = d.find_elements(By.CSS_SELECTOR, ".md-search-result a.md-search-result__link")
        return next((a for a in links if ".prediction_intervals/" in (a.get_attribute("href") or "")), None)

    WebDriverWait(driver, 30).until(hit).click()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.fc-matrix"))
    assert "prediction_intervals" in driver.title
    # hostile text from the database did not run as script
    driver.get(f"{served}/matrix/statsforecast/{slug('StatsForecast.predict.h')}/")
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.fc-matrix"))
    assert driver.execute_script("return window.__fcast_pwned === undefined")
    assert "<script>window.__fcast_pwned" in driver.find_element(By.CSS_SELECTOR, "table.fc-matrix").text


def test_readme_links_fit_the_site():
    """The README is the home page: its docs/ links and images point at the site's pages; a link to a file of the
    checkout that the site does not hold becomes text (else `mkdocs build --strict` fails on it); web links stay."""
    page = hooks.readme_page("[lake](docs/lake.md#assets) ![g](docs/ui.png) [ci](.ci/run) "
                             "[uv](https://docs.astral.sh/uv/)")
    assert page == "[lake](lake.md#assets) ![g](ui.png) ci (`.ci/run`) [uv](https://docs.astral.sh/uv/)"
    readme = hooks.readme_page((hooks.REPO / "README.md").read_text(encoding="utf-8"))
    for target in re.findall(r"\]\(([^)\s]+)\)", readme):
        assert target.startswith(("http", "#")) or (hooks.REPO / "docs" / target.split("#")[0]).exists(), target
