"""`make install` puts only what a node needs on it: no test packages, no test Python deps."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO


def make_vars(*names: str) -> dict[str, list[str]]:
    script = "".join(f"\t@echo '{n}='$({n})\n" for n in names)
    out = subprocess.run(["make", "-s", "-f", "Makefile", "-f", "-", "print-vars"], cwd=REPO,
                         input=f"print-vars:\n{script}", capture_output=True, text=True, check=True).stdout
    return {k: v.split() for k, v in (line.split("=", 1) for line in out.splitlines())}


def test_install_needs_only_the_node_packages():
    v = make_vars("APT_NODE", "APT_TEST", "APT_RUNTIME", "NODE_EXTRAS")
    assert not set(v["APT_NODE"]) & set(v["APT_TEST"])
    assert {"qemu-system-x86", "ovmf", "dnsmasq-base"} <= set(v["APT_TEST"])
    assert set(v["APT_RUNTIME"]) <= set(v["APT_NODE"])
    assert v["NODE_EXTRAS"] == ["build,fast"]  # pyproject extras: no `test`
    text = (REPO / "Makefile").read_text()
    assert re.search(r"^install: \.stamps/venv-node$", text, re.M)
    assert re.search(r"^\.stamps/venv-node: pyproject\.toml \.stamps/apt-node$", text, re.M)


def test_debian_control_depends_on_the_runtime_packages():
    control = (REPO / "debian" / "control").read_text().split("Package: osdef", 1)[1]
    depends = control.split("Depends:", 1)[1].split("Recommends:", 1)[0]
    runtime = set(make_vars("APT_RUNTIME")["APT_RUNTIME"]) - {"python3-venv", "linux-image-amd64", "util-linux"}
    missing = [p for p in runtime if p not in depends]
    assert not missing, f"debian/control Depends lacks {missing}"
    for test_only in ("qemu-system-x86", "ovmf", "dnsmasq-base", "pytest", "hypothesis"):
        assert test_only not in depends


def test_make_test_lints_first_with_pinned_tools():
    text = (REPO / "Makefile").read_text()
    assert re.search(r"^test: lint$", text, re.M)
    lint = text.split("\nlint: venv\n", 1)[1].split("\n\n", 1)[0]
    assert "ruff check osdef hooks tests bench" in lint and "mypy" in lint
    extras = (REPO / "pyproject.toml").read_text().split("test = [", 1)[1].split("]", 1)[0]
    assert re.search(r'"ruff==[\d.]+"', extras) and re.search(r'"mypy==[\d.]+"', extras)
