"""End to end through the web UI, as a person would: `dagster dev` on 127.0.0.1 with a temporary DAGSTER_HOME,
the asset graph over GraphQL, a materialization launched the way the Materialize button launches it, and the
asset graph and asset page opened in headless Chromium (screenshots under reports/ui/).

Needs Debian's chromium and chromium-driver (.ci/run installs them); skipped without them unless
FCAST_REQUIRE_BROWSER=1 (set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text

import fcast_assets
from fcast_assets.db.engine import make_engine

REPO = Path(fcast_assets.__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOTS = REPO / "reports" / "ui"
GROUP_PAGES = {"registry": ["library_registry", "library_release"], "compat": ["compat_matrix"],
               "runs": ["run_plans", "plan_executions"], "lake": ["bronze_draws", "silver_series", "dataset_profile"],
               "features": ["gold_features", "gold_futr"],
               "models": ["model_selectors", "trained_models", "predictions", "model_evaluation", "model_xai"]}

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UI:
    def __init__(self, base: str):
        self.base = base

    def gql(self, query: str, variables: dict | None = None) -> dict:
        req = urllib.request.Request(f"{self.base}/graphql", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"query": query, "variables": variables or {}}).encode())
        out = json.loads(urllib.request.urlopen(req, timeout=60).read())
        assert "errors" not in out, out["errors"]
        return out["data"]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("FCAST_REQUIRE_BROWSER"):
            pytest.fail("FCAST_REQUIRE_BROWSER is set but chromium / chromedriver are not installed")
        pytest.skip("chromium and chromedriver not installed (apt-get install chromium chromium-driver)")
    tmp = tmp_path_factory.mktemp("ui")
    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "FCAST_HOME": str(tmp / "fcast_home"),
           "FCAST_REPORTS": str(tmp / "reports")}
    env.pop("FCAST_DB_URL", None)
    dagster = Path(sys.executable).parent / "dagster"
    log = open(tmp / "dagster_dev.log", "w")
    # the README's command: `dagster dev` in the checkout, which reads workspace.yaml (location "fcast")
    proc = subprocess.Popen([str(dagster), "dev", "-h", "127.0.0.1",
                             "-p", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own process group: stopped together at the end
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 240
        while True:
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=5)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"dagster dev did not answer: {(tmp / 'dagster_dev.log').read_text()[-3000:]}")
                time.sleep(2)
        yield UI(base), tmp
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        log.close()


def test_every_asset_listed_with_group_and_partitions(ui):
    client, _ = ui
    defs = dg.load_from_defs_folder(path_within_project=Path(fcast_assets.__file__).parent)
    graph = defs.resolve_asset_graph()
    expected = {k.to_user_string(): graph.get(k) for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    nodes = {"/".join(n["assetKey"]["path"]): n for n in client.gql(
        "{ assetNodes { assetKey { path } groupName isPartitioned description } }")["assetNodes"]}
    assert set(expected) <= set(nodes)
    for key, node in expected.items():
        assert nodes[key]["groupName"] == node.group_name, key
        assert nodes[key]["isPartitioned"] == (node.partitions_def is not None), key
        assert nodes[key]["description"], f"{key} has no description"
    # the game partitions follow dataset_game (the sensor seeds the games on a fresh database)
    deadline = time.time() + 180
    while True:
        keys = client.gql('{ assetNodes(assetKeys: [{path: ["bronze_draws"]}]) { partitionKeys } }')[
            "assetNodes"][0]["partitionKeys"]
        if len(keys) >= 6 or time.time() > deadline:
            break
        time.sleep(5)
    assert {"numbers3", "numbers4", "miniloto", "loto6", "loto7", "bingo5"} <= set(keys)


def test_materialize_button_then_pages_in_chromium(ui):
    client, tmp = ui
    repo = client.gql("{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }")[
        "repositoriesOrError"]["nodes"][0]
    params = {"selector": {"repositoryLocationName": repo["location"]["name"], "repositoryName": repo["name"],
                           "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": ["library_registry"]}],
                           "assetCheckSelection": []},
              "mode": "default", "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "utilsforecast"}]}}
    launched = client.gql("""mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""", {"p": params})
    launched = launched["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline, status = time.time() + 400, None
    while time.time() < deadline:
        status = client.gql("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                            {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(3)
    assert status == "SUCCESS"
    version = md.version("utilsforecast")
    with make_engine(f"sqlite:///{tmp / 'fcast_home' / 'forecast_meta.db'}").connect() as conn:
        n = conn.execute(text("""SELECT COUNT(*) FROM registry_symbol s JOIN registry_release r USING (release_id)
                                 JOIN registry_library l USING (library_id)
                                 WHERE l.name = 'utilsforecast' AND r.version = :v"""), {"v": version}).scalar()
    assert n > 100

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from .conftest import headless_chromium

    driver = headless_chromium(tmp / "chrome")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        def dismiss_dialogs() -> None:
            for b in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip' or normalize-space()='Dismiss']"):
                try:
                    b.click()
                except Exception:  # noqa: BLE001 - a dialog that closed meanwhile
                    pass

        location = repo["location"]["name"]
        driver.get(f"{client.base}/locations/{location}/asset-groups/registry")
        WebDriverWait(driver, 90).until(lambda d: "Skip" in d.page_source or "library_registry" in d.page_source)
        time.sleep(2)
        dismiss_dialogs()  # the first-visit "join the community" dialog
        WebDriverWait(driver, 60).until(lambda d: "library_registry" in d.page_source
                                        and "library_release" in d.page_source)
        time.sleep(2)
        driver.save_screenshot(str(SCREENSHOTS / "asset_graph_registry.png"))

        # every group's lineage page draws its assets (the catalog list is virtualized: it renders only what fits)
        for group, names in GROUP_PAGES.items():
            driver.get(f"{client.base}/locations/{location}/asset-groups/{group}")
            WebDriverWait(driver, 60).until(lambda d: all(n in d.page_source for n in names))
            if group == "models":
                time.sleep(2)
                driver.save_screenshot(str(SCREENSHOTS / "asset_graph_models.png"))

        driver.get(f"{client.base}/assets/library_registry?partition=utilsforecast")
        WebDriverWait(driver, 90).until(lambda d: version in d.page_source and "symbols" in d.page_source)
        dismiss_dialogs()
        page = driver.page_source
        assert "library_registry" in page and "parameters" in page and "import_failures" in page
        driver.save_screenshot(str(SCREENSHOTS / "library_registry_utilsforecast.png"))
    finally:
        driver.quit()
    assert (SCREENSHOTS / "asset_graph_registry.png").stat().st_size > 10_000


def test_dev_log_has_no_location_name_warning(ui):
    """The code location is named the same in workspace.yaml and pyproject's [tool.dg.project]: Dagster's
    "code location name ... does not match" warning (logged on every definitions load) never appears."""
    client, tmp = ui
    repo = client.gql("{ repositoriesOrError { ... on RepositoryConnection { nodes { location { name } } } } }")[
        "repositoriesOrError"]["nodes"][0]
    assert repo["location"]["name"] == "fcast"
    text_ = (tmp / "dagster_dev.log").read_text(encoding="utf-8", errors="replace")
    assert "does not match the name" not in text_, [ln for ln in text_.splitlines() if "does not match" in ln][:2]
