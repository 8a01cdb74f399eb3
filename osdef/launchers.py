"""The launchers osdef installs for Ganeti: one small Python file per script, bound to the
interpreter osdef is installed in (``#!python -I``), so that it works with Ganeti's clean
environment and cwd.  It imports ``launcher_main`` from an entry module and passes its own
name and path; the directory it lives in is what the entry module reads its files from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from osdef.fileutil import write_text_atomic

TEMPLATE = """\
#!{python} -I
{header}
from {module} import launcher_main
launcher_main({script!r}, __file__)
"""


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
