"""Small file and host-tool helpers: atomic replacement of a text file; finding a tool in the
sbin dirs; the line a failed tool said."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def write_text_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write text to path so that readers see the old or the new file, never a part.

    The temporary file lives next to path (same filesystem, so os.replace is atomic)
    and is removed again if anything fails, including an interrupt.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def which_sbin(tool: str) -> str | None:
    """shutil.which over PATH plus /usr/sbin and /sbin (a non-login root shell may lack them)."""
    return shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def tool_said(proc: subprocess.CompletedProcess[str]) -> str:
    """For a one-line error: the last line a finished tool wrote on stderr, else on stdout,
    else its exit code."""
    for text in (proc.stderr, proc.stdout):
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return f"exit code {proc.returncode}, no message"
