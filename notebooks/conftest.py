"""The notebooks the test run executes (nbmake) are kept with their outputs in ``build/notebooks/`` (ignored by
git; ``FCAST_SITE_NOTEBOOKS`` moves it), where the documentation site renders them from (fcast_assets/site/hooks.py).
The committed notebooks stay as they are (no ``--overwrite``); a notebook that failed is not kept."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbmake import nb_run

OUT = Path(os.environ.get("FCAST_SITE_NOTEBOOKS") or Path(__file__).resolve().parents[1] / "build" / "notebooks")

if not getattr(nb_run.NotebookRun.execute, "_fcast_keeps_outputs", False):
    _execute = nb_run.NotebookRun.execute

    def _execute_and_keep(self):  # noqa: ANN001, ANN202
        res = _execute(self)
        if res.error is None:
            OUT.mkdir(parents=True, exist_ok=True)
            name = Path(self.filename).name
            tmp = OUT / f"{name}.{os.getpid()}.tmp"
            nbformat.write(res.nb, str(tmp))
            os.replace(tmp, OUT / name)  # whole or not at all: a killed run leaves no half notebook to render
        return res

    _execute_and_keep._fcast_keeps_outputs = True  # type: ignore[attr-defined]
    nb_run.NotebookRun.execute = _execute_and_keep
