"""The launchers osdef installs for Ganeti: one small Python file per script, bound to the
interpreter osdef is installed in (``#!python -I``), so that it works with Ganeti's clean
environment and cwd.  It imports ``launcher_main`` from an entry module and passes its own
name and path; the directory it lives in is what the entry module reads its files from.

``check`` is the other half: it runs a launcher's own interpreter the way Ganeti would
(``-I``, clean environment, cwd = its directory) and imports the launcher's entry module
through it, so a launcher whose interpreter cannot import osdef is caught before Ganeti
runs it (``osdef diagnose``)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from collections.abc import Iterable

from osdef import __version__
from osdef.fileutil import tool_said, write_text_atomic

TEMPLATE = """\
#!{python} -I
{header}
from {module} import launcher_main
launcher_main({script!r}, __file__)
"""
_SHEBANG = re.compile(r"#!(/\S+) -I\n")
_IMPORT = re.compile(r"^from ([\w.]+) import launcher_main$", re.MULTILINE)
#: what the interpreter runs to prove the launcher's imports work: prints osdef's version
_PROBE = "import importlib, sys, osdef; importlib.import_module(sys.argv[1]); print(osdef.__version__)"
CLEAN_ENV = {"PATH": "/sbin:/bin:/usr/sbin:/usr/bin"}  # what Ganeti gives create/rename/verify


def render(script: str, *, python: str, module: str, header: str) -> str:
    """One launcher's text; `header` is its comment lines, "{script}" in it the script's name."""
    return TEMPLATE.format(python=python, script=script, module=module,
                           header=header.replace("{script}", script))


def write_launchers(directory: Path, scripts: Iterable[str], *, python: str, module: str,
                    header: str) -> None:
    """Make directory (mode 0755) and (re)place one executable launcher per script in it."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    for script in scripts:
        write_text_atomic(directory / script,
                          render(script, python=python, module=module, header=header), 0o755)


def check(path: Path) -> str | None:
    """None when the launcher's interpreter imports its entry module as Ganeti would run it
    and finds this osdef version; else the problem, in one line naming the launcher."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"{path}: unreadable ({exc.strerror})"
    shebang, entry = _SHEBANG.match(text), _IMPORT.search(text)
    if not shebang or not entry:
        return f"{path}: not an osdef launcher (re-run the install)"
    python, module = shebang.group(1), entry.group(1)
    try:
        proc = subprocess.run([python, "-I", "-c", _PROBE, module], cwd=Path(path).parent,
                              env=CLEAN_ENV, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=60, check=False)
    except OSError as exc:
        return f"{path}: its interpreter {python} cannot run ({exc.strerror})"
    except subprocess.TimeoutExpired:
        return f"{path}: its interpreter {python} did not import {module} within 60 s"
    if proc.returncode != 0:
        return f"{path}: its interpreter {python} cannot import {module}: {tool_said(proc)}"
    found = proc.stdout.strip()
    if found != __version__:
        return (f"{path}: its interpreter {python} imports osdef {found}, this is {__version__}: "
                "re-run the install")
    return None
