"""The five OS scripts: one call each, on a Request read and checked once (osdef.create.request).

Each function loads its Request first — environment, variant, OS parameters,
site config, every disk located and sized — and only then touches a disk.
The real work lives elsewhere: osdef.create.pipeline for create/rename
(libguestfs), osdef.stream for export/import (pure block I/O).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path
from collections.abc import Iterator, Mapping

from osdef.create import request as requests


def say(message: str) -> None:
    """One short line per step: Ganeti keeps the last 20 lines of create/rename output."""
    sys.stderr.write(f"osdef: {message}\n")
    sys.stderr.flush()


def verify(args: list[str], os_dir: Path, environ: Mapping[str, str]) -> int:
    """`verify parameters`: one line per bad parameter on stderr, exit 1 if any."""
    lines = requests.verify_problems(os_dir, environ)
    for line in lines:
        sys.stderr.write(line + "\n")
    return 1 if lines else 0


def create(os_dir: Path, environ: Mapping[str, str]) -> int:
    from osdef.create import pipeline

    pipeline.create(requests.load("create", os_dir, environ), say)
    return 0


def rename(os_dir: Path, environ: Mapping[str, str]) -> int:
    from osdef.create import pipeline

    pipeline.rename(requests.load("rename", os_dir, environ), say)
    return 0


class ExportStopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP during an export (Ganeti aborting the transfer, a lost terminal): raised as ^C is,
    so that no handler meant for disk errors (OsdefError) can take it for one and carry on."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signal.Signals(signum).name}")
        self.exit_code = 128 + signum  # as the shell reports a process ended by the signal


@contextlib.contextmanager
def _stop_signals_end_the_export() -> Iterator[None]:
    """SIGTERM and SIGHUP raise ExportStopped once, so that what the export set up is taken down on the
    way out (the read-only loop device partclone reads); later ones are ignored, so the cleanup
    and the one line are never cut short.  (SIGINT already raises KeyboardInterrupt.)"""
    def stop(signum: int, _frame: object) -> None:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        raise ExportStopped(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    yield


def export(os_dir: Path, environ: Mapping[str, str]) -> int:
    ctx = requests.load("export", os_dir, environ)
    target, where = requests.data_target(ctx)
    from osdef.stream import export_disk

    metadata = {
        "instance": ctx.instance.name,
        "instance_uuid": ctx.instance.uuid,
        "disk_index": target.index,
        "os": ctx.instance.os,
        "variant": ctx.instance.variant,
    }
    with _stop_signals_end_the_export():
        written = export_disk(where, sys.stdout.fileno(), size_fd=target.size_fd,
                              fmt=ctx.params.export_format,
                              compression=ctx.params.export_compression, metadata=metadata,
                              content=ctx.params.export_content, warn=say)
    say(f"exported disk {target.index}: {written} bytes written")
    return 0


def import_(os_dir: Path, environ: Mapping[str, str]) -> int:
    ctx = requests.load("import", os_dir, environ)
    target, where = requests.data_target(ctx)
    from osdef.stream import import_disk

    # a failure leaves the stop signals ignored: the target is wiped, nothing may keep its line from stderr
    r = import_disk(sys.stdin.fileno(), where, size_fd=target.size_fd, expect=ctx.params.import_format,
                    ignore_signals_after_failure=True)
    kind = "osdef stream" if r.kind == "stream" else "raw dump"
    if "content_plan" in r.metadata:
        from osdef.stream.content import describe_record

        for line in describe_record(r.metadata["content_plan"]) or ["its export plan record is malformed"]:
            say(f"imported disk {target.index}: as exported: {line}")
    say(f"imported disk {target.index}: {kind}{' (zstd)' if r.compressed else ''}, "
        f"{r.input_bytes} bytes read, {r.data_bytes >> 20} MiB of data written, "
        f"{r.zeroed_bytes >> 20} MiB zeroed without writing")
    say(f"imported disk {target.index}: {r.verified}")
    return 0


def run(script: str, args: list[str], *, os_dir: Path, environ: Mapping[str, str]) -> int:
    if script == "verify":
        return verify(args, os_dir, environ)
    if script == "create":
        return create(os_dir, environ)
    if script == "rename":
        return rename(os_dir, environ)
    if script == "export":
        return export(os_dir, environ)
    if script == "import":
        return import_(os_dir, environ)
    raise ValueError(f"unknown script {script!r}")
