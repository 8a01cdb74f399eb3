"""The edge where a provider's scripts start: errors become one stderr line.

The launchers written by ``osdef install-extstorage`` call ``launcher_main``
of their provider's entry module (this one for ``loopfile``,
osdef.extstorage.rbd.entry for ``rbd``); the provider dir is where the
launcher lives (Ganeti also runs the scripts with it as cwd).  ``run`` is the
part every provider shares: the request parsed, the action run, every error
one line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, TextIO
from collections.abc import Callable, Mapping, Sequence

from osdef.errors import OsdefError
from osdef.extstorage import PROVIDER_NAME, settings, volume
from osdef.extstorage.actions import ACTIONS
from osdef.extstorage.store import Store


def run(provider: str, actions: Mapping[str, Callable[..., None]], backend: Callable[[volume.Request], Any],
        action: str, argv: Sequence[str], *, environ: Mapping[str, str] | None = None,
        out: TextIO | None = None, log: TextIO | None = None) -> int:
    """Run one action of ``provider``: ``actions[action](request, backend(request), out, log)``."""
    environ = os.environ if environ is None else environ
    out = sys.stdout if out is None else out
    log = sys.stderr if log is None else log
    prog = f"{provider} {action}"
    if any(a in ("-h", "--help") for a in argv):
        out.write(f"usage: {action}\nGaneti ExtStorage script; the request comes from VOL_* and "
                  "EXTP_* variables (see docs/extstorage.md).\n")
        return 0
    try:
        request = volume.parse(environ)
        actions[action](request, backend(request), out, log)
        out.flush()
        return 0
    except OsdefError as exc:
        log.write(f"{prog}: error: {exc}\n")
        return exc.exit_code
    except OSError as exc:
        log.write(f"{prog}: error: {exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}\n")
        return 1
    except Exception as exc:  # the last line of defence: one line, no traceback
        log.write(f"{prog}: internal error: {type(exc).__name__}: {exc} (please report it)\n")
        return 1
    finally:
        try:
            log.flush()
        except Exception:
            pass


def main(action: str, argv: Sequence[str] = (), *, provider_dir: Path,
         environ: Mapping[str, str] | None = None,
         out: TextIO | None = None, log: TextIO | None = None) -> int:
    """Run one action of the ``loopfile`` provider; returns its exit code."""
    return run(PROVIDER_NAME, ACTIONS, lambda _request: Store(settings.load(provider_dir).data_dir),
               action, argv, environ=environ, out=out, log=log)


def launcher_main(action: str, launcher_file: str) -> None:
    provider_dir = Path(os.path.realpath(launcher_file)).parent
    sys.exit(main(action, sys.argv[1:], provider_dir=provider_dir))
