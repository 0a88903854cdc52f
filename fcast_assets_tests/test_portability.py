"""The package runs on Windows too: no POSIX-only calls outside the fork path (which is chosen only where the
platform has fork), no /tmp-style path literals, text files opened with an explicit encoding, no shell scripts
on the main path. The test reads the package's source (AST), so a new call of that kind fails here on Linux."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "fcast_assets"

POSIX_ATTRS = {("os", a) for a in ("fork", "kill", "killpg", "setsid", "getuid", "getgid", "geteuid", "WIFSIGNALED",
                                   "WTERMSIG", "WEXITSTATUS", "WIFEXITED", "getpgid", "setpgrp", "pipe2")}
POSIX_ATTRS |= {("signal", a) for a in ("SIGKILL", "SIGTERM", "SIGALRM", "alarm", "SIGHUP", "SIGCHLD")}
POSIX_MODULES = {"fcntl", "resource", "pwd", "grp", "termios"}
# the fork path: used only where hasattr(os, "fork") (compat.process chooses spawn elsewhere)
FORK_PATH = {"compat/runner.py", "compat/process.py"}
PATH_PREFIXES = ("/tmp", "/dev/", "/var/", "/etc/", "/proc/", "/usr/")
# reading /proc/cpuinfo for the device name is guarded (OSError -> platform.processor())
PATH_ALLOWED = {("plans/resources.py", "/proc/cpuinfo")}
TEXT_CALLS = {"read_text", "write_text"}


def _sources():
    for path in sorted(PKG.rglob("*.py")):
        yield path.relative_to(PKG).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _is_text_open(node: ast.Call) -> bool:
    mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
    if mode is None:
        return True
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and "b" not in mode.value


def test_no_posix_only_calls_outside_the_fork_path():
    found = []
    for rel, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                    (node.value.id, node.attr) in POSIX_ATTRS and rel not in FORK_PATH:
                found.append(f"{rel}:{node.lineno} {node.value.id}.{node.attr}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                found += [f"{rel}:{node.lineno} import {n}" for n in names if n.split(".")[0] in POSIX_MODULES]
    assert not found, found


def test_no_posix_path_literals():
    found = []
    for rel, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    node.value.startswith(PATH_PREFIXES) and (rel, node.value) not in PATH_ALLOWED:
                found.append(f"{rel}:{node.lineno} {node.value!r}")
    assert not found, found
    # the data files of the package (cell catalogues, rules) hold no such paths either
    for path in PKG.rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        assert not any(f" {p}" in text or f":{p}" in text for p in ("/tmp",)), path


def test_text_files_are_opened_with_an_explicit_encoding():
    found = []
    for rel, tree in _sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            has_enc = any(k.arg == "encoding" for k in node.keywords)
            if isinstance(f, ast.Name) and f.id == "open" and _is_text_open(node) and not has_enc:
                found.append(f"{rel}:{node.lineno} open()")
            if isinstance(f, ast.Attribute) and f.attr in TEXT_CALLS and not has_enc:
                found.append(f"{rel}:{node.lineno} .{f.attr}()")
    assert not found, found


def test_no_shell_scripts_in_the_package():
    assert not [p for p in PKG.rglob("*") if p.suffix in (".sh", ".bash")]


def test_a_locked_sqlite_database_ends_the_command_in_one_line(tmp_path, monkeypatch):
    """SQLite has one writer at a time (and Windows locks the file): a command that cannot write gets one clear
    line and exit code 3, not a traceback; nothing is half-written."""
    import sqlite3

    from click.testing import CliRunner

    from fcast_assets.cli import main
    from fcast_assets.db.engine import init_db, make_engine

    db = tmp_path / "forecast_meta.db"
    init_db(make_engine(f"sqlite:///{db}"))
    monkeypatch.setenv("FCAST_DB_URL", f"sqlite:///{db}")
    monkeypatch.setenv("FCAST_HOME", str(tmp_path))
    monkeypatch.setenv("FCAST_SQLITE_BUSY_MS", "300")
    plans = tmp_path / "p.yaml"
    plans.write_text("plans:\n  - name: p1\n    steps: [{model: MLP, params: {h: 2, input_size: 8}}]\n",
                     encoding="utf-8")
    other = sqlite3.connect(db)
    other.execute("BEGIN EXCLUSIVE")  # another process is writing
    try:
        out = CliRunner().invoke(main, ["plan", "load", str(plans)])
    finally:
        other.rollback()
        other.close()
    assert out.exit_code == 3, out.output
    assert "being written by another process" in out.output and "Traceback" not in out.output
    out = CliRunner().invoke(main, ["plan", "load", str(plans)])  # once it is free, the same command works
    assert out.exit_code == 0 and "p1" in out.output
