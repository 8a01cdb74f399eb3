"""qemu-system-x86_64 under TCG for the boot checks: a serial log to wait on, QMP to power down."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path


class Qemu:
    """qemu-system-x86_64 under TCG with a serial log and a QMP socket; stopped by PID."""

    def __init__(self, disk: Path, workdir: Path, extra: list[str]):
        self.serial = workdir / "serial.log"
        self.qmp_path = workdir / "qmp.sock"
        self.proc = subprocess.Popen(
            ["qemu-system-x86_64", "-machine", "accel=tcg", "-cpu", "max", "-m", "1024",
             "-display", "none", "-nic", "none", "-serial", f"file:{self.serial}",
             "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
             "-drive", f"file={disk},format=raw,if=virtio", *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait_for(self, pattern: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.serial.exists() and pattern in self.serial.read_bytes():
                return True
            time.sleep(2)
        return False

    def powerdown(self, timeout: float = 60) -> None:
        """ACPI power button over QMP; the guest shuts down cleanly and qemu exits."""
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(10)
                sock.connect(str(self.qmp_path))
                reader = sock.makefile("rb")
                reader.readline()  # greeting
                for command in ("qmp_capabilities", "system_powerdown"):
                    sock.sendall(json.dumps({"execute": command}).encode() + b"\n")
                    reader.readline()
            self.proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self) -> str:
        text = self.serial.read_bytes().decode(errors="replace") if self.serial.exists() else ""
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)[-1500:]


_TIMESTAMPED = re.compile(r"\[\s*\d+\.\d+\] [^\n]*(?:\n|$)")


def getty_text(console: str) -> str:
    """The serial console without the kernel's and journald's timestamped lines.

    The report units print on the console that getty prompts on, and one of their lines can land
    inside the prompt ("net-x [   72.36] osdef-net-report[395]: ...\nlogin:", seen in CI): look
    for ``<host> login:`` here, not in the raw console."""
    return _TIMESTAMPED.sub("", console)


def report_unit(description: str, script: str) -> str:
    """A systemd unit that runs ``script`` once the network is up and prints its output on the
    serial console (journald forwards it), for a boot test to read the guest's state from."""
    return ("[Unit]\n"
            f"Description=osdef test: {description}\n"
            "After=network-online.target\nWants=network-online.target\n"
            "[Service]\nType=simple\n"
            f"ExecStart={script}\n"
            "StandardOutput=journal+console\n"
            "[Install]\nWantedBy=multi-user.target\n")
