"""Steps declare their order (AFTER/BEFORE), checked when they load; the plan checks itself when built."""

from __future__ import annotations

import re

import pytest

from osdef.errors import GuestError
from osdef.ganeti.params import OsParams
from osdef.create.steps import BUILTIN_HOOKS_DIR, builtin_hook_names, load_builtin_hooks, load_steps
from osdef.create.plan import CreatePlan


def _numbered():
    files = [p for p in BUILTIN_HOOKS_DIR.glob("*.py") if re.match(r"\d+-", p.name)]
    return sorted(files, key=lambda p: (int(p.name.split("-")[0]), p.name))


def test_the_declarations_keep_todays_numbered_order():
    hooks = load_builtin_hooks()
    assert [h.path for h in hooks] == _numbered()
    by_name = {h.name: h for h in hooks}
    assert by_name["bootloader"].after == ("*",) and builtin_hook_names()[-1] == "bootloader"
    assert by_name["ssh-host-keys-restore"].after == ("ssh-host-keys",)
    assert by_name["serial-console"].before == ("bootloader",)


def _builtin(tmp_path, **files):
    d = tmp_path / "builtin"
    d.mkdir()
    for stem, extra in files.items():
        name = stem.split("_", 1)[1]
        (d / f"{stem.replace('_', '-')}.py").write_text(f"NAME = {name!r}\nEXCLUDABLE = True\n{extra}\ndef run(ctx):\n    pass\n")
    return d


def test_declarations_move_a_step_only_as_far_as_needed(tmp_path):
    d = _builtin(tmp_path, **{"10_a": "", "20_b": "AFTER = ('c',)", "30_c": "", "40_d": "BEFORE = ('a',)",
                              "50_z": "AFTER = ('*',)", "60_e": ""})
    site = tmp_path / "site"
    site.mkdir()
    (site / "10-early.py").write_text("BEFORE = ('z',)\ndef run(ctx):\n    pass\n")
    (site / "20-plain.py").write_text("def run(ctx):\n    pass\n")
    names = [h.name for h in load_steps(builtin_dir=d, site_dir=site).hooks]
    assert names == ["d", "a", "c", "b", "e", "10-early.py", "z", "20-plain.py"]


@pytest.mark.parametrize("files, message", [
    ({"10_a": "AFTER = ('nope',)"}, r"step a \(.*10-a.py\): AFTER names unknown step 'nope' \(known: a\)"),
    ({"10_a": "BEFORE = ('b',)", "20_b": "BEFORE = ('a',)"}, "form a cycle: a → b → a|form a cycle: b → a → b"),
    ({"10_a": "AFTER = ('a',)"}, "form a cycle: a → a"),
    ({"10_a": "AFTER = 'b'", "20_b": ""}, r"10-a.py: AFTER must be a tuple of step names"),
])
def test_bad_declarations_are_one_line_when_the_steps_load(tmp_path, files, message):
    with pytest.raises(GuestError, match=message) as info:
        load_steps(builtin_dir=_builtin(tmp_path, **files))
    assert "\n" not in str(info.value)


def test_a_site_hook_naming_an_unknown_step_fails_at_load(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "50-late.py").write_text("AFTER = ('no-such-step',)\ndef run(ctx):\n    pass\n")
    with pytest.raises(GuestError, match="step 50-late.py .*AFTER names unknown step 'no-such-step'"):
        load_steps(site_dir=site)


def test_the_plan_checks_itself_when_built():
    plan = CreatePlan(layout="tar", hostname="Web1.Example.org.", params=OsParams.of(swap_size=1 << 20))
    assert plan.hostname == "web1.example.org" and plan.bootloader_runs and plan.network is None
    assert not CreatePlan(layout="disk-raw", hostname="a.example",
                          steps=load_steps(skip={"bootloader"})).bootloader_runs
    for bad, message in ((dict(layout="iso"), "unknown image format 'iso'"),
                         (dict(table="bsd"), "unknown partition table 'bsd'"),
                         (dict(boot="uefi"), "unknown boot mode 'uefi'"),
                         (dict(grub_config="x"), "unknown grub_config 'x'"),
                         (dict(hostname="bad_name"), "invalid hostname")):
        with pytest.raises(GuestError, match=message):
            CreatePlan(**{"layout": "fs-image", "hostname": "a.example", **bad})
