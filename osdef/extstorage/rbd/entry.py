"""The `rbd` provider's launchers call ``launcher_main``: the request, its placement, one action, one line on error."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO
from collections.abc import Mapping, Sequence

from osdef.extstorage.entry import run
from osdef.extstorage.rbd import PROVIDER_NAME, config
from osdef.extstorage.rbd.actions import ACTIONS


def main(action: str, argv: Sequence[str] = (), *, provider_dir: Path,
         environ: Mapping[str, str] | None = None,
         out: TextIO | None = None, log: TextIO | None = None) -> int:
    """Run one action of the ``rbd`` provider; returns its exit code."""
    return run(PROVIDER_NAME, ACTIONS, lambda request: config.placement(request.params, config.defaults(provider_dir)),
               action, argv, environ=environ, out=out, log=log)


def launcher_main(action: str, launcher_file: str) -> None:
    provider_dir = Path(os.path.realpath(launcher_file)).parent
    sys.exit(main(action, sys.argv[1:], provider_dir=provider_dir))
