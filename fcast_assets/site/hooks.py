"""MkDocs hook (named in ``mkdocs.yml``): puts into the site what is not a hand-written page under ``docs/``:

- ``index.md``: the README (its ``docs/...`` links made relative to the site);
- ``matrix/`` and ``registry/``: the pages :mod:`fcast_assets.site.build` generated from the database
  (``$FCAST_SITE_PAGES``, default ``build/site/pages``); a placeholder saying how to generate them when absent;
- ``notebooks/*.ipynb``: the copy the test run executed (``build/notebooks/``, written by ``notebooks/conftest.py``)
  when its code cells are those of the committed notebook, else the committed notebook (code without outputs)
  with a note on top.

Nothing here writes into the checkout: a committed notebook shown without outputs is copied (with its note)
under the pages folder (``build/`` is ignored by git); mkdocs-jupyter keeps its cache in ``.cache/`` (ignored)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[2]
PAGES_ENV = "FCAST_SITE_PAGES"
NOTEBOOKS_ENV = "FCAST_SITE_NOTEBOOKS"
GENERATED = ("matrix", "registry", "releases")


def executed_notebooks_dir() -> Path:
    return Path(os.environ.get(NOTEBOOKS_ENV) or REPO / "build" / "notebooks")


def pages_dir() -> Path:
    return Path(os.environ.get(PAGES_ENV) or REPO / "build" / "site" / "pages")


_LINK = re.compile(r"(!?)\[([^\]\n]*)\]\((?!https?:|mailto:|#)([^)\s]+)\)")


def readme_page(readme: str) -> str:
    """The README as the site's home page: links into ``docs/`` point at the site's own pages; a link to another
    file of the checkout (not part of the site) becomes its text and path, so the strict build never breaks on it."""
    def fix(m: re.Match) -> str:
        bang, label, target = m.groups()
        if target.startswith("docs/"):
            return f"{bang}[{label}]({target[len('docs/'):]})"
        return f"{label} (`{target}`)" if label else f"`{target}`"

    return _LINK.sub(fix, readme)


def _code_sources(nb: dict) -> list[str]:
    return ["".join(c.get("source", "")) for c in nb.get("cells", []) if c.get("cell_type") == "code"]


def notebook_to_render(source: Path, executed_dir: Path, scratch: Path) -> tuple[Path, bool]:
    """(the notebook file to render, whether it holds the outputs of a run of the committed code). A committed
    notebook without a matching executed copy is rendered from a copy in ``scratch`` with a note on top."""
    committed = json.loads(source.read_text(encoding="utf-8"))
    run = executed_dir / source.name
    if run.exists():
        try:
            executed = json.loads(run.read_text(encoding="utf-8"))
        except ValueError:  # a copy cut off by a killed run: fall back to the committed notebook
            executed = None
        if executed is not None and _code_sources(executed) == _code_sources(committed):
            return run, True
    note = {"cell_type": "markdown", "metadata": {}, "source": [
        "!!! note \"Shown without outputs\"\n",
        "    This notebook has not been executed by a test run of this checkout (`uv run pytest notebooks` writes "
        "the executed copies to `build/notebooks/`, which the site then renders with their outputs)."]}
    committed["cells"] = [note, *committed.get("cells", [])]
    scratch.mkdir(parents=True, exist_ok=True)
    out = scratch / source.name
    out.write_text(json.dumps(committed, ensure_ascii=False, indent=1), encoding="utf-8")
    return out, False


def _add(files: Files, config, uri: str, content: str) -> None:
    old = files.get_file_from_path(uri)
    if old is not None:
        files.remove(old)
    files.append(File.generated(config, uri, content=content))


def _add_file(files: Files, config, uri: str, path: Path) -> None:
    """A file on disk as the site's ``uri``: a File whose src_dir + uri is ``path`` (mkdocs-jupyter reads the
    source path through the File's src_dir, which a ``File.generated`` file does not have)."""
    path = Path(path).resolve()
    if path.as_posix().endswith("/" + uri):
        src_dir = Path(path.as_posix()[: -len(uri) - 1])
    else:
        src_dir = pages_dir() / "staged"
        (src_dir / uri).parent.mkdir(parents=True, exist_ok=True)
        (src_dir / uri).write_bytes(path.read_bytes())
    old = files.get_file_from_path(uri)
    if old is not None:
        files.remove(old)
    files.append(File(uri, src_dir=str(src_dir), dest_dir=config.site_dir,
                      use_directory_urls=config.use_directory_urls))


@event_priority(100)  # before mkdocs-jupyter turns the .ipynb files into pages
def on_files(files: Files, config) -> Files:
    readme = REPO / "README.md"
    if readme.exists():
        _add(files, config, "index.md", readme_page(readme.read_text(encoding="utf-8")))
    pages = pages_dir()
    for part in GENERATED:
        folder = pages / part
        if (folder / "index.md").exists():
            for path in sorted(folder.rglob("*.md")):
                _add_file(files, config, path.relative_to(pages).as_posix(), path)
        else:
            title = {"matrix": "Correspondence tables", "registry": "Registry", "releases": "Releases"}[part]
            _add(files, config, f"{part}/index.md",
                 f"# {title}\n\nNot generated in this build: run `uv run fcast site build` (or materialize the "
                 "`site_pages` asset), which reads the metadata database, writes these pages and builds the site.\n")
    executed = executed_notebooks_dir()
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        path, _ = notebook_to_render(nb, executed, pages_dir() / "unexecuted" / "notebooks")
        _add_file(files, config, f"notebooks/{nb.name}", path)
    return files
