"""The one edge where Ganeti's five OS scripts start and errors become output.

The launchers that ``osdef install`` writes into the OS dir call ``main``.
It parses the (tiny) command line, runs the script, and turns every typed
``OsdefError`` into one line on stderr and exit code 1.  Unexpected errors
also give one line; the traceback follows only with DEBUG_LEVEL >= 1.
Values of secret OS parameters are scrubbed from anything printed.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import TextIO

from osdef.errors import OsdefError
from osdef.ganeti import params as osparams

USAGE = {
    "create": "create\n\nInstall the variant in OS_VARIANT onto the instance's disks (run by Ganeti on "
              "gnt-instance add/reinstall).",
    "rename": "rename\n\nChange the guest's host name from OLD_INSTANCE_NAME to INSTANCE_NAME.",
    "export": "export\n\nWrite disk EXPORT_DEVICE as a stream to stdout; its byte count goes to fd EXP_SIZE_FD.",
    "import": "import\n\nRead a stream (osdef stream, zstd-compressed or raw dump) from stdin onto IMPORT_DEVICE.",
    "verify": "verify parameters\n\nCheck the OSP_* values (run by Ganeti before add, reinstall, import, modify).",
}
ENV_NOTE = ("Everything else comes from the environment Ganeti sets (OS_API_VERSION, INSTANCE_NAME, "
            "DISK_N_*, NIC_N_*, OSP_*, …); see README.md. Try it without a cluster: osdef try --help")


class UsageError(Exception):
    pass


def usage(script: str) -> str:
    return f"usage: {USAGE[script]}\n{ENV_NOTE}\n"


def parse_args(script: str, argv: Sequence[str]) -> list[str]:
    """The scripts take no arguments, except `verify parameters`."""
    if any(a in ("-h", "--help") for a in argv):
        raise SystemExit(_print_usage(script, sys.stdout, 0))
    if script == "verify":
        if not argv:
            raise UsageError("verify needs what to verify: parameters")
        bad = [a for a in argv if a != "parameters"]
        if bad:
            raise UsageError(f"verify cannot check {bad[0]!r}; it knows: parameters")
        return list(argv)
    if argv:
        raise UsageError(f"{script} takes no arguments (got {argv[0]!r})")
    return []


def _print_usage(script: str, stream: TextIO, code: int) -> int:
    stream.write(usage(script))
    stream.flush()
    return code


def secrets_of(environ: Mapping[str, str]) -> list[str]:
    """Values that must never be printed: the secret OS parameters'."""
    out = []
    for param in osparams.PARAMETERS:
        if param.secret:
            value = environ.get("OSP_" + param.name.upper(), "")
            if len(value) >= 4:
                out.append(value)
    return out


def redact(text: str, secrets: Sequence[str]) -> str:
    for s in secrets:
        text = text.replace(s, "***")
    return text


def main(script: str, argv: Sequence[str] | None = None, *, os_dir: str | Path | None = None,
         environ: Mapping[str, str] | None = None) -> int:
    """Run one OS script; return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = dict(os.environ if environ is None else environ)
    os_dir = Path(os_dir) if os_dir is not None else Path.cwd()
    prog = f"osdef {script}"
    secrets = secrets_of(environ)
    try:
        args = parse_args(script, argv)
    except UsageError as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        return _print_usage(script, sys.stderr, 2)
    debug = environ.get("DEBUG_LEVEL", "0").strip() not in ("", "0")
    try:
        from osdef.scripts import actions  # late: keep `--help` instant

        return actions.run(script, args, os_dir=os_dir, environ=environ)
    except OsdefError as exc:
        sys.stderr.write(redact(f"{prog}: error: {exc}\n", secrets))
        return exc.exit_code
    except KeyboardInterrupt as exc:  # ^C, or a stop signal the script turned into one (actions.ExportStopped)
        sys.stderr.write(f"{prog}: interrupted" + (f" by {exc}" if str(exc) else "") + "\n")
        return int(getattr(exc, "exit_code", 130))
    except BrokenPipeError:
        sys.stderr.write(f"{prog}: error: the reading side of the pipe went away\n")
        return 1
    except Exception as exc:  # the last line of defence: one line, no traceback by default
        sys.stderr.write(redact(
            f"{prog}: internal error: {type(exc).__name__}: {exc} "
            "(set DEBUG_LEVEL=1 for a traceback; please report it)\n", secrets))
        if debug:
            sys.stderr.write(redact(traceback.format_exc(), secrets))
        return 1
    finally:
        try:
            sys.stderr.flush()
        except Exception:
            pass


def launcher_main(script: str, launcher_file: str) -> None:
    """Called by a generated launcher; the OS dir is where the launcher lives."""
    os_dir = os.path.dirname(os.path.realpath(launcher_file))
    sys.exit(main(script, os_dir=os_dir))
