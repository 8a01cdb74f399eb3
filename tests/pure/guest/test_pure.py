"""The guest layer's pure parts and host-side I/O, without an appliance."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from osdef.disk.copy import copy_sparse
from osdef.create.context import StepContext
from osdef.create.steps import BUILTIN_HOOKS_DIR, builtin_hook_names, load_steps
from osdef.create.runner import run_steps
from osdef.errors import GuestError
from osdef.create import partitioning as partition
from osdef.guest.bootloader import SERIAL_MARK_BEGIN, grub_defaults_with_serial
from osdef.guest.distro import facts_from, parse_os_release
from osdef.guest.fstab import render_fstab
from osdef.guest.hostnames import render_hosts, validate_fqdn
from osdef.create.undoable import Step, StepRunner
from osdef.create.target import open_target

MiB = 1 << 20


# -- hostnames -------------------------------------------------------------------

def test_hosts_replaces_the_127_0_1_1_line_and_keeps_the_rest():
    text = "127.0.0.1\tlocalhost\n127.0.1.1\told.example.net old\n::1 localhost # v6\n"
    assert render_hosts(text, "web1.example.org") == (
        "127.0.0.1\tlocalhost\n127.0.1.1\tweb1.example.org web1\n::1 localhost # v6\n")


def test_hosts_gets_a_line_after_localhost_when_missing():
    assert render_hosts("# hosts\n127.0.0.1 localhost\n::1 ip6-localhost\n", "a.b.c") == (
        "# hosts\n127.0.0.1 localhost\n127.0.1.1\ta.b.c a\n::1 ip6-localhost\n")


def test_hosts_rename_replaces_old_names_on_other_lines_too():
    text = "127.0.1.1 old.example.net old\n192.0.2.7 old.example.net old # static\n"
    out = render_hosts(text, "new.example.net", old_fqdn="old.example.net")
    assert out == "127.0.1.1\tnew.example.net new\n192.0.2.7\tnew.example.net new # static\n"


@pytest.mark.parametrize("bad", ["", "-x.example", "a..b", "under_score.example", "x" * 64 + ".org"])
def test_invalid_hostnames_are_refused(bad):
    with pytest.raises(GuestError, match="invalid hostname"):
        validate_fqdn(bad)


def test_valid_hostname_is_lowercased():
    assert validate_fqdn("Web-1.Example.ORG.") == "web-1.example.org"


# -- fstab, grub, distro ------------------------------------------------------------

def test_fstab_root_by_uuid_keeps_options_and_other_lines():
    text = "# comment\nLABEL=cloudimg-rootfs / ext4 discard,errors=remount-ro 0 1\n/dev/vdb /srv xfs defaults 0 2\n"
    out = render_fstab(text, "1234", "ext4", esp_uuid="AB-CD")
    assert out == ("# comment\nUUID=1234\t/\text4\tdiscard,errors=remount-ro\t0\t1\n"
                   "UUID=AB-CD\t/boot/efi\tvfat\tumask=0077\t0\t1\n/dev/vdb /srv xfs defaults 0 2\n")


def test_fstab_from_nothing():
    assert render_fstab("", "u", "ext4") == "UUID=u\t/\text4\terrors=remount-ro\t0\t1\n"


def test_grub_serial_block_is_idempotent():
    once = grub_defaults_with_serial('GRUB_CMDLINE_LINUX=""\n')
    assert grub_defaults_with_serial(once) == once
    assert once.count(SERIAL_MARK_BEGIN) == 1
    assert "console=ttyS0,115200" in once and once.startswith('GRUB_CMDLINE_LINUX=""\n')


def test_os_release_and_facts():
    rel = 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n# c\nPRETTY_NAME=\'Debian 12\'\n'
    assert parse_os_release(rel)["VERSION_ID"] == "12"
    facts = facts_from(rel, {"/sbin/ifup", "/usr/lib/systemd/systemd",
                             "/lib/systemd/systemd-networkd", "/usr/sbin/sshd"})
    assert (facts.os_id, facts.version_id, facts.pretty_name) == ("debian", "12", "Debian 12")
    assert facts.network_backends == {"ifupdown", "networkd"}
    assert facts.has_systemd and facts.has_sshd and not facts.has_cloud_init and not facts.has_grub
    assert facts_from(None, set()).os_id == ""


# -- partition plans ---------------------------------------------------------------------

def test_gpt_plan_has_bios_boot_first_and_root_last():
    plan = partition.plan("gpt", "efi")
    assert [(p.role, p.start // MiB) for p in plan.partitions] == [("bios", 1), ("esp", 2), ("root", 258)]
    script = partition.sfdisk_script(plan)
    assert "label: gpt" in script and partition.GPT_TYPES["bios"] in script
    assert script.splitlines()[-1] == f"start={258 * 2048}, type={partition.GPT_TYPES['root']}, name=\"root\""


def test_msdos_plan_root_is_bootable_at_1mib():
    plan = partition.plan("msdos", "bios")
    assert [(p.role, p.start) for p in plan.partitions] == [("root", MiB)]
    assert partition.sfdisk_script(plan).endswith("start=2048, type=83, bootable\n")


def test_unknown_table_or_boot_mode_is_refused_at_the_edge():
    # partition.plan trusts osdef.vocab's words: the variant that names them is checked
    from osdef.errors import VariantError
    from osdef.variants import parse

    with pytest.raises(VariantError, match="partition_table: 'bsd' is not one of gpt, msdos"):
        parse({"description": "d", "image": "i", "partition_table": "bsd"}, Path("v.yaml"))
    with pytest.raises(VariantError, match="boot: 'uefi' is not one of bios, efi, none"):
        parse({"description": "d", "image": "i", "boot": "uefi"}, Path("v.yaml"))


def test_write_table_on_a_sparse_file(tmp_path):
    disk = tmp_path / "d.img"
    disk.write_bytes(b"")
    os.truncate(disk, 100 * MiB)
    extents = partition.write_table(disk, partition.plan("gpt", "bios"))
    assert extents[1] == partition.Extent(MiB, MiB)
    assert extents[2].start == 2 * MiB and extents[2].start + extents[2].size <= 100 * MiB - 33 * 512


# -- host-side copy -----------------------------------------------------------------------

def test_copy_skips_zero_blocks_and_punches_old_data(tmp_path):
    disk = tmp_path / "d.img"
    disk.write_bytes(b"\xee" * (8 * MiB))  # a reused file full of old data
    data = b"A" * MiB + bytes(3 * MiB) + b"B" * 100
    with open_target(disk) as target:
        stats = copy_sparse(io.BytesIO(data), target, MiB, 6 * MiB, defined=6 * MiB)
    assert (stats.bytes_read, stats.bytes_written) == (len(data), MiB + 100)
    content = disk.read_bytes()
    assert content[:MiB] == b"\xee" * MiB
    assert content[MiB:MiB + len(data)] == data
    assert content[MiB + len(data):7 * MiB] == bytes(7 * MiB - MiB - len(data))
    assert content[7 * MiB:] == b"\xee" * MiB
    assert os.stat(disk).st_blocks * 512 <= 4 * MiB  # holes punched where zeros are


def test_copy_refuses_a_stream_longer_than_announced(tmp_path):
    disk = tmp_path / "d.img"
    disk.write_bytes(b"")
    os.truncate(disk, 4 * MiB)
    with open_target(disk) as target, pytest.raises(GuestError, match="larger than the 2 MiB"):
        copy_sparse(io.BytesIO(b"x" * (3 * MiB)), target, 0, 2 * MiB, defined=2 * MiB)


# -- steps and hooks --------------------------------------------------------------------------

def test_step_runner_undoes_completed_steps_in_reverse():
    events: list[str] = []

    def fail() -> None:
        raise GuestError("boom")

    runner = StepRunner(log=lambda m: None)
    with pytest.raises(GuestError):
        runner.run([Step("a", lambda: events.append("a"), lambda: events.append("undo a")),
                    Step("b", lambda: events.append("b")),
                    Step("c", fail, lambda: events.append("undo c"))])
    runner.rollback()
    assert events == ["a", "b", "undo c", "undo a"]


MY_STEPS = ["fstab", "hostname", "machine-id", "ssh-host-keys", "serial-console", "bootloader"]


def in_order(names, wanted):
    """`wanted` appear in `names` in this order (other issues add steps in between)."""
    positions = [names.index(w) for w in wanted]
    return positions == sorted(positions)


def test_builtin_hooks_are_ordered_and_named():
    names = builtin_hook_names()
    assert in_order(names, MY_STEPS)
    assert names[0] == "fstab" and names[-1] == "bootloader"  # grub.cfg after every edit
    assert (BUILTIN_HOOKS_DIR / "10-fstab.py").is_file()


def test_skipping_an_unknown_step_names_the_known_ones():
    with pytest.raises(GuestError, match="unknown customization step.*nope.*known: fstab, hostname"):
        load_steps(skip={"nope"})


def test_a_step_that_may_not_be_skipped_is_refused_when_the_steps_load():
    with pytest.raises(GuestError, match=r"customization step\(s\) fstab may not be skipped \(EXCLUDABLE = False in .*10-fstab.py\)"):
        load_steps(skip={"fstab", "hostname"})
    assert "hostname" in load_steps(skip={"hostname"}).skip


def _run(logs, **load):
    from osdef.create.plan import CreatePlan

    plan = CreatePlan(layout="fs-image", hostname="x.example", steps=load_steps(**load))
    return run_steps(StepContext.of(plan, None, log=logs.append))  # type: ignore[arg-type]


def test_hook_runner_order_skip_and_site_hooks(tmp_path):
    builtin = tmp_path / "builtin"
    builtin.mkdir()
    for name in ("20-two", "10-one", "100-late"):
        (builtin / f"{name}.py").write_text(
            f"NAME = {name.split('-')[1]!r}\nEXCLUDABLE = True\ndef run(ctx):\n    ctx.log('ran ' + NAME)\n")
    site = tmp_path / "site"
    site.mkdir()
    (site / "50-mine.py").write_text("def run(ctx):\n    ctx.log('ran mine ' + ctx.plan.hostname)\n")
    (site / "README").write_text("not a hook\n")
    (site / ".hidden.py").write_text("raise SystemExit\n")
    logs: list[str] = []
    ran = _run(logs, skip={"two"}, builtin_dir=builtin, site_dir=site, log=logs.append)
    assert [line for line in logs if line.startswith("ran ")] == ["ran one", "ran late", "ran mine x.example"]
    assert ran == ["one", "late", "site:50-mine.py"]
    assert any("README" in line and "ignored" in line for line in logs)
    assert _run([], builtin_dir=builtin, site_dir=tmp_path / "missing") == ["one", "two", "late"]


def test_a_broken_hook_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "10-bad.py").write_text("NAME = 'bad'\nEXCLUDABLE = True\ndef run(ctx):\n    raise KeyError('x')\n")
    with pytest.raises(GuestError, match=r"step bad \(.*10-bad.py\) failed: KeyError") as info:
        _run([], builtin_dir=tmp_path)
    assert "\n" not in str(info.value)
    (tmp_path / "10-bad.py").write_text("def run(ctx):\n    pass\n")
    with pytest.raises(GuestError, match="must define NAME"):
        load_steps(builtin_dir=tmp_path)
    (tmp_path / "10-bad.py").write_text("NAME = 'bad'\ndef run(ctx):\n    pass\n")
    with pytest.raises(GuestError, match="must say EXCLUDABLE"):
        load_steps(builtin_dir=tmp_path)


# -- grub.cfg without update-grub -----------------------------------------------------------

def test_newest_kernel_by_version():
    from osdef.guest.bootloader import newest_kernel

    entries = ["vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-56-amd64", "initrd.img-6.1.0-56-amd64",
               "vmlinuz-6.1.0-10-amd64.old", "config-6.1.0-56-amd64", "grub"]
    assert newest_kernel(entries) == ("vmlinuz-6.1.0-56-amd64", "initrd.img-6.1.0-56-amd64")
    assert newest_kernel(["vmlinuz-5.10.0-1-amd64"]) == ("vmlinuz-5.10.0-1-amd64", None)
    assert newest_kernel(["grub"]) is None


def test_grub_cfg_from_the_defaults_with_serial_console():
    from osdef.guest.bootloader import render_grub_cfg
    from osdef.guest.grubdefaults import parse_defaults_query

    defaults = parse_defaults_query(
        " console=tty0 console=ttyS0,115200\nquiet\n5\nconsole serial\n"
        "serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1\nDebian\n")
    cfg = render_grub_cfg(defaults, "u-u-i-d", "vmlinuz-6.1", "initrd.img-6.1", "Debian GNU/Linux")
    assert "search --no-floppy --fs-uuid --set=root u-u-i-d\n" in cfg
    assert "\tlinux /boot/vmlinuz-6.1 root=UUID=u-u-i-d ro console=tty0 console=ttyS0,115200 quiet\n" in cfg
    assert "\tinitrd /boot/initrd.img-6.1\n" in cfg
    assert "serial --speed=115200 --unit=0" in cfg and "terminal_output console serial\n" in cfg
    assert "menuentry 'Debian GNU/Linux'" in cfg and "set timeout=5\n" in cfg
    plain = render_grub_cfg(parse_defaults_query("\n\nnot-a-number\n\n\n\n"), "u", "vmlinuz-1", None)
    assert "serial" not in plain and "initrd" not in plain and "set timeout=5\n" in plain


# -- grub-install target: the appliance kernel's device name ----------------------------

def test_bios_install_script_checks_the_probed_disk_size_before_grub_install():
    from osdef.guest.bootloader import bios_install_script
    script = bios_install_script(2 << 30)
    assert script.index("grub-probe --target=disk /boot/grub") < script.index('!= "2147483648"') \
        < script.index('grub-install --target=i386-pc "$dev"')


def test_grub_install_ran_on_the_kernel_name_of_disk_0():
    from osdef.guest.bootloader import check_bios_install
    out = "__osdef_grub target /dev/sdb\nInstalling for i386-pc platform.\nInstallation finished.\n"
    assert check_bios_install(out, "/dev/sda", 2 << 30) == "/dev/sdb"


def test_grub_install_refuses_a_probed_disk_of_another_size():
    from osdef.guest.bootloader import check_bios_install
    with pytest.raises(GuestError, match=r"on /dev/sdb \(4294967296 bytes\), not on the instance's disk /dev/sda"):
        check_bios_install("__osdef_grub wrong-disk /dev/sdb 4294967296\n", "/dev/sda", 2 << 30)


def test_grub_install_needs_an_answer_from_grub_probe():
    from osdef.guest.bootloader import check_bios_install
    with pytest.raises(GuestError, match="grub-probe did not name .*cannot find a device"):
        check_bios_install("__osdef_grub no-disk grub-probe: error: cannot find a device\n", "/dev/sda", 1)
    with pytest.raises(GuestError, match="gave no answer"):
        check_bios_install("sh: 1: grub-probe: not found\n", "/dev/sda", 1)


def test_device_and_partition_names_follow_libguestfs_naming_without_calls():
    from osdef.config import LibguestfsSettings
    from osdef.guest.session import GuestSession, drive_letters

    assert [drive_letters(i) for i in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == \
        ["a", "b", "z", "aa", "ab", "az", "ba", "zz", "aaa"]

    class Handle:  # any call would fail: names come from the drive order alone
        pass

    session = GuestSession([Path(f"d{i}") for i in range(28)], LibguestfsSettings())
    session._g = Handle()
    assert session.device(0) == "/dev/sda" and session.device(27) == "/dev/sdab"
    assert session.partition(0, 2) == "/dev/sda2" and session.partition(26, 1) == "/dev/sdaa1"
    with pytest.raises(GuestError, match="no disk number 28: 28 attached"):
        session.device(28)


class _Resolv:
    """Just enough of a GuestSession for guest_domain: one file."""

    def __init__(self, text):
        self.text = text

    def read_text_or_none(self, path):
        assert path == "/etc/resolv.conf"
        return self.text


def test_short_instance_names_are_qualified():
    from osdef.ganeti.params import OsParams
    from osdef.guest.hostnames import guest_domain, name_domain, qualify

    assert qualify("web1", "example.org") == "web1.example.org"
    assert qualify("web1.example.net", "example.org") == "web1.example.net"  # Ganeti 3.0: an FQDN
    assert qualify("web1", "") == "web1"
    assert name_domain(OsParams.of(domain="example.org", dns_search=("x.test",))) == "example.org"
    assert name_domain(OsParams.of(dns_search=("x.test", "y.test"))) == "x.test"
    assert name_domain(OsParams.defaults()) == ""
    assert guest_domain(_Resolv("search corp.example lab.example\ndomain example.com\n")) == "example.com"
    assert guest_domain(_Resolv("# x\nsearch corp.example lab.example\n")) == "corp.example"
    assert guest_domain(_Resolv("nameserver 10.0.0.1\n")) is None
    assert guest_domain(_Resolv("domain bad_name!\n")) is None  # guest data: only a host name counts
    assert guest_domain(_Resolv(None)) is None
    assert render_hosts("127.0.0.1\tlocalhost\n", qualify("web1", "example.org")).splitlines()[1] == \
        "127.0.1.1\tweb1.example.org web1"


def test_the_domain_parameter_is_checked():
    from osdef.ganeti.params import PARAMETERS

    domain = next(p for p in PARAMETERS if p.name == "domain")
    assert domain.parse("Example.ORG.") == "example.org"
    with pytest.raises(Exception, match="is not a domain name"):
        domain.parse("not a domain")
