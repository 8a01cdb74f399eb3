"""The `osdef` command: argument handling only, errors become one stderr line.

    osdef install [--os-dir DIR] [--config FILE]   write the Ganeti OS dir
    osdef diagnose [--os-dir DIR]                   check an installed OS dir
    osdef params [--markdown]                       the OS parameters
    osdef variants                                  the variants
    osdef steps [--markdown]                        the customization steps (hooks/)
    osdef image build|list|add|sync …               images (diskimage-builder, cache, cluster sync)
    osdef try create|rename|export|import|verify …  run the installed scripts as Ganeti would
    osdef export-plan DISK [--no-count]             what an export of DISK would send, and why
"""

from __future__ import annotations

import argparse
import os
import select
import sys
from collections.abc import Callable
from pathlib import Path

from osdef import config as siteconfig
from osdef.errors import OsdefError
from osdef.ganeti import params as osparams
from osdef.paths import active_os_dir
from osdef.scripts import osdir, trial as trialmod

#: the handlers' second argument: siteconfig.load, the site config of an OS dir
ConfigLoader = Callable[[Path], siteconfig.SiteConfig]


def _cmd_install(args: argparse.Namespace, cfg_loader: ConfigLoader) -> int:
    from osdef.paths import data_root

    report = osdir.install(Path(args.os_dir), source=data_root(), python=args.python,
                           config_file=Path(args.config) if args.config else None)
    print(f"installed the image OS definition into {report.os_dir}")
    print(f"  variants: {', '.join(report.variants)}")
    print(f"  parameters: {len(report.parameters)} (see `osdef params`)")
    if report.config:
        print(f"  site config: {report.os_dir / siteconfig.OS_DIR_CONFIG_NAME} (from {report.config})")
    return 0


def _cmd_diagnose(args: argparse.Namespace, cfg_loader: ConfigLoader) -> int:
    problems = osdir.diagnose(Path(args.os_dir))
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"{args.os_dir}: OK")
    return 1 if problems else 0


def _cmd_params(args: argparse.Namespace, cfg_loader: ConfigLoader) -> int:
    if args.markdown:
        sys.stdout.write(osparams.markdown_table())
        return 0
    width = max(len(p.name) for p in osparams.PARAMETERS)
    for p in osparams.PARAMETERS:
        print(f"{p.name:<{width}}  [{p.type.allowed()}] default={p.default or '(empty)'}")
        print(f"{'':<{width}}  {p.description}")
    return 0


def _cmd_steps(args: argparse.Namespace, cfg_loader: ConfigLoader) -> int:
    from osdef.create import steps

    if args.markdown:
        sys.stdout.write(steps.markdown_table())
        return 0
    for hook in steps.load_builtin_hooks():
        skip = "may be skipped" if hook.excludable else "always runs"
        print(f"{hook.name:<22} {skip:<14} {hook.summary}")
    return 0


def _cmd_variants(args: argparse.Namespace, cfg_loader: ConfigLoader) -> int:
    from osdef import variants
    from osdef.paths import data_dir

    site = cfg_loader(active_os_dir()).variants_dir
    catalog = variants.load_dir(Path(args.dir) if args.dir else data_dir("variants"), site)
    default = catalog.default().name
    for v in catalog.variants:
        mark = " (default)" if v.name == default else ""
        print(f"{v.name:<12} image={v.image} fs={v.filesystem} table={v.partition_table} "
              f"boot={v.boot}{mark}  {v.description}")
    return 0


def _trial_from(args: argparse.Namespace) -> trialmod.Trial:
    hv: dict[str, str] = {}
    if getattr(args, "serial_console", False):
        hv["serial_console"] = "True"
    return trialmod.Trial(
        os_dir=Path(args.os_dir).absolute(),
        variant=args.variant,
        name=args.name,
        disks=[trialmod.DiskSpec.parse(d) for d in (args.disk or [])],
        nics=[trialmod.parse_nic(n) for n in (getattr(args, "nic", None) or [])],
        os_params=trialmod.parse_osp(args.os_param or []),
        hv_params=hv,
        reinstall=getattr(args, "reinstall", False),
        old_name=getattr(args, "old_name", None),
        debug=1 if args.debug else 0,
        config=Path(args.config).absolute() if args.config else None,
        index=getattr(args, "index", 0),
    )


def _cmd_try(args: argparse.Namespace, cfg_loader: ConfigLoader) -> int:
    t = _trial_from(args)
    if args.action != "verify":
        if not t.disks:
            raise trialmod.TrialError("give at least one --disk PATH[:SIZE]")
        trialmod.prepare_disks(t)
    if args.action == "create":
        return trialmod.try_create(t)
    if args.action == "rename":
        return trialmod.try_rename(t)
    if args.action == "verify":
        return trialmod.run_script(t, "verify", args=("parameters",)).returncode
    if args.action == "export" and args.plan:
        if not 0 <= t.index < len(t.disks):
            raise trialmod.TrialError(f"disk index {t.index}: only {len(t.disks)} disk(s) given")
        return _print_plan(t.disks[t.index].location, count=True)
    if args.action == "export":
        return trialmod.try_export(t, Path(args.output) if args.output else None)
    if args.action == "import":
        return trialmod.try_import(t, Path(args.input) if args.input else None)
    raise AssertionError(args.action)


def _print_plan(disk: str | Path, count: bool) -> int:
    from osdef.stream.planreport import plan_lines

    for line in plan_lines(disk, count=count):
        print(line)
    return 0


def _cmd_export_plan(args: argparse.Namespace, cfg_loader: ConfigLoader) -> int:
    return _print_plan(args.disk, count=not args.no_count)


def _add_try_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`osdef try ACTION`: an installed OS script run as Ganeti would run it."""
    p = sub.add_parser("try", help="run an installed OS script with a Ganeti-built environment",
                       description="Run an installed OS script exactly as Ganeti would (clean environment, "
                                   "cwd = OS dir, EXP_SIZE_FD=11), on plain files: no cluster needed.")
    p.add_argument("action", choices=("create", "rename", "export", "import", "verify"))
    p.add_argument("--os-dir", default=str(active_os_dir()))
    p.add_argument("--variant", "-o", help="OS_VARIANT (default: the OS dir's default variant)")
    p.add_argument("--name", "-n", default="try.example.org", help="INSTANCE_NAME (FQDN)")
    p.add_argument("--disk", action="append", metavar="PATH[:SIZE]|rbd:POOL/IMAGE",
                   help="an instance disk; a missing file is created sparse with SIZE (10G); an rbd: URI "
                        "(an existing image) is passed as DISK_N_URI; repeat for more")
    p.add_argument("--nic", action="append", metavar="mac=..,ip=..,mode=..,link=..,subnet=..,gateway=..",
                   help="a NIC (NIC_N_*); repeat for more")
    p.add_argument("-O", "--os-param", action="append", metavar="NAME=VALUE", help="an OS parameter (OSP_NAME)")
    p.add_argument("--serial-console", action="store_true", help="INSTANCE_HV_serial_console=True")
    p.add_argument("--reinstall", action="store_true", help="INSTANCE_REINSTALL=1")
    p.add_argument("--old-name", help="OLD_INSTANCE_NAME (rename)")
    p.add_argument("--index", type=int, default=0, help="EXPORT_INDEX/IMPORT_INDEX: which --disk (default 0)")
    p.add_argument("--output", help="export: write the stream here instead of stdout")
    p.add_argument("--plan", action="store_true",
                   help="export: print what the export would send (osdef export-plan) instead of exporting")
    p.add_argument("--input", help="import: read the stream from here instead of stdin")
    p.add_argument("--config", help="site config for the run (passed as OSDEF_CONFIG)")
    p.add_argument("--debug", action="store_true", help="DEBUG_LEVEL=1 (tracebacks on internal errors)")
    p.set_defaults(func=_cmd_try)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="osdef", description="The `image` guest OS definition for Ganeti.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("install", help="write the Ganeti OS directory")
    p.add_argument("--os-dir", default=str(osdir.DEFAULT_OS_DIR),
                   help=f"OS dir to write (default {osdir.DEFAULT_OS_DIR})")
    p.add_argument("--config", help="site config (YAML) to validate and install as <os-dir>/osdef.yaml")
    p.add_argument("--python", metavar="PATH",
                   help="the interpreter the launchers run (default: this one, "
                        f"{sys.executable}); it must import osdef")
    p.set_defaults(func=_cmd_install)

    p = sub.add_parser("diagnose", help="check an installed OS directory (runs each launcher's interpreter)")
    p.add_argument("--os-dir", default=str(active_os_dir()),
                   help=f"default: the one Ganeti uses here ({active_os_dir()})")
    p.set_defaults(func=_cmd_diagnose)

    p = sub.add_parser("params", help="list the OS parameters")
    p.add_argument("--markdown", action="store_true", help="as the README's markdown table")
    p.set_defaults(func=_cmd_params)

    p = sub.add_parser("steps", help="list the customization steps of create, in run order")
    p.add_argument("--markdown", action="store_true", help="as hooks/README.md's markdown table")
    p.set_defaults(func=_cmd_steps)

    p = sub.add_parser("variants", help="list the variants")
    p.add_argument("--dir", help="variants directory (default: the checkout's or the package's, "
                                  "plus the site's variants_dir)")
    p.set_defaults(func=_cmd_variants)

    try:
        from osdef.images import command as image_command
    except ImportError:
        pass
    else:
        image_command.register(sub)
    from osdef.extstorage import command as extstorage_command
    extstorage_command.register(sub)

    _add_try_command(sub)

    p = sub.add_parser("export-plan", help="what an export of a disk would send, and why",
                       description="Read a disk (file or block device, read-only) as an export would: its "
                                   "partition table as the guest's kernel reads it, each filesystem's map, what "
                                   "goes at block level and why. Nothing is streamed.")
    p.add_argument("disk", help="the disk: a file or a block device")
    p.add_argument("--no-count", action="store_true",
                   help="do not read the block-level parts to count their non-zero bytes")
    p.set_defaults(func=_cmd_export_plan)
    return parser


SIGPIPE_EXIT = 141  # what a shell reports for a tool ended by SIGPIPE (128 + 13)


def _stdout_broken() -> bool:
    """stdout is a pipe whose reader has gone (poll reports an error on its write end)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return False


def _reader_gone() -> int:
    """stdout's reader went away (`osdef … | head`): stop quietly, as a tool ended by SIGPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
    os.close(devnull)
    return SIGPIPE_EXIT


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args, siteconfig.load)
        sys.stdout.flush()
        return code
    except BrokenPipeError as exc:
        if _stdout_broken():
            return _reader_gone()
        print(f"osdef {args.command}: error: {exc.strerror}", file=sys.stderr)  # another pipe's
        return 1
    except OsdefError as exc:
        print(f"osdef {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"osdef {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a file named on the command line: say which, no traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"osdef {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
