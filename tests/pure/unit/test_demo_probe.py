"""The demo's KVM probe: a bounded subprocess, killed when the time is up (nested KVM can hang)."""

from __future__ import annotations

import time

from osdef import demo


def test_probe_success_and_failure(monkeypatch):
    monkeypatch.setattr(demo, "KVM_PROBE", "pass")
    assert demo.kvm_works()
    monkeypatch.setattr(demo, "KVM_PROBE", "raise SystemExit(1)")
    assert not demo.kvm_works()


def test_a_hanging_probe_is_killed(monkeypatch, tmp_path):
    marker = tmp_path / "child.pid"
    monkeypatch.setattr(demo, "KVM_PROBE", f"import os, subprocess, time\n"
                                           f"child = subprocess.Popen(['sleep', '60'])\n"
                                           f"open({str(marker)!r}, 'w').write(str(child.pid))\n"
                                           f"time.sleep(60)\n")
    monkeypatch.setattr(demo, "KVM_PROBE_SECONDS", 2)
    started = time.monotonic()
    assert not demo.kvm_works()
    assert time.monotonic() - started < 30  # killed at 2 s, not left to run its 60 s
    pid = int(marker.read_text())
    # the probe's own children (qemu, in real life) went with it
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split()[2] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"child {pid} of the probe survived")
