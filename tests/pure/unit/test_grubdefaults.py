"""/etc/default/grub read without a shell: plain assignment files only, else None (shell fallback)."""

from __future__ import annotations

from osdef.guest.bootloader import grub_defaults_with_serial
from osdef.guest.grubdefaults import GrubDefaults, evaluate

DEBIAN_STOCK = """\
# If you change this file, run 'update-grub' afterwards to update
GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX=""
#GRUB_TERMINAL=console
"""
OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nID=debian\n'


def test_debian_stock_file_with_osdefs_serial_block():
    text = grub_defaults_with_serial(DEBIAN_STOCK)
    assert evaluate([text], lambda: OS_RELEASE) == GrubDefaults(
        cmdline="console=tty0 console=ttyS0,115200", cmdline_default="quiet", timeout="5",
        terminal="console serial",
        serial_command="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1",
        distributor="Debian")


def test_distributor_command_without_os_release_is_debian():
    assert evaluate(["GRUB_DISTRIBUTOR=$(. /etc/os-release; echo $NAME)"]).distributor == "Debian"
    ubuntu = evaluate(["GRUB_DISTRIBUTOR=`lsb_release -i -s`"], lambda: "NAME=Ubuntu\n")
    assert ubuntu.distributor == "Ubuntu"


def test_grub_d_files_are_sourced_after_the_main_file():
    got = evaluate(['GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="a"', "GRUB_TIMEOUT=1\n",
                    'export GRUB_CMDLINE_LINUX="${GRUB_CMDLINE_LINUX} b"  # more'])
    assert got is not None and got.timeout == "1" and got.cmdline == "a b"


def test_quoting_forms():
    got = evaluate(["GRUB_CMDLINE_LINUX='x $y'\"\"z", "GRUB_CMDLINE_LINUX_DEFAULT=\"say \\\"hi\\\"\"",
                    "GRUB_TERMINAL=serial", "GRUB_TIMEOUT=soon"])
    assert got == GrubDefaults(cmdline="x $yz", cmdline_default='say "hi"', timeout="5",
                               terminal="serial")


def test_anything_needing_a_shell_gives_none():
    for text in ['GRUB_CMDLINE_LINUX="$(cat /proc/cmdline)"', "GRUB_TIMEOUT=`echo 3`",
                 'if [ -e /x ]; then GRUB_TIMEOUT=1; fi', ". /etc/default/other",
                 "GRUB_TIMEOUT=1 foo", 'GRUB_CMDLINE_LINUX="${X:-y}"', "GRUB_CMDLINE_LINUX=a;b",
                 'GRUB_CMDLINE_LINUX="unterminated', "GRUB_CMDLINE_LINUX=\"a \\$b\""]:
        assert evaluate([text]) is None, text


def test_empty_or_missing_file_gives_grubs_defaults():
    assert evaluate([""]) == GrubDefaults()
