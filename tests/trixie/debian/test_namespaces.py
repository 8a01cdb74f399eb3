"""harness.sh keeps its node namespaces also when it runs inside a mount namespace of its own.

The trixie tier runs the harness in the Debian 13 root's mount namespace.  Linux binds a mount
namespace's file only into a namespace with a lower id, and a kernel that hands out namespace
ids in per-CPU batches (6.18) gives a namespace made later on one CPU a lower id than one made
earlier on another: then `unshare --mount=FILE` fails with EINVAL, depending on the CPUs the
two ran on (`unshare: mount /proc/N/ns/mnt on …/mnt failed: Invalid argument`, the tier's
cluster then never starts).  The outer namespace is made here on the last CPU and the real
persist_namespaces of harness.sh runs pinned to each CPU in turn: it must keep the handles
every time, also on a CPU where a plain unshare is refused.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.trixie.debian.conftest import HARNESS

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("taskset") is None,
                                reason="needs root and taskset")


def harness_function(name: str) -> str:
    text = HARNESS.read_text()
    found = re.search(rf"^{name}\(\) {{\n.*?^}}\n", text, re.S | re.M)
    assert found, f"{name} not in {HARNESS}"
    return found.group(0)


INSIDE = """set -euo pipefail
log() { echo "log: $*" >&2; }
die() { echo "die: $*" >&2; exit 1; }
FUNCTION
dir=$1 cpu=$2
mount -t tmpfs osdef-nstest "$dir"
touch "$dir/plain"
if taskset -c "$cpu" unshare --mount="$dir/plain" true 2>/dev/null; then echo "plain: ok"; umount "$dir/plain"
else echo "plain: refused"; fi
mkdir "$dir/node"
taskset -c "$cpu" bash -c "$(declare -f log die persist_namespaces); persist_namespaces $dir/node"
for f in net uts mnt; do mountpoint -q "$dir/node/$f" && umount "$dir/node/$f"; done
umount "$dir"
echo kept
"""


def test_node_namespaces_are_kept_inside_a_namespace_made_on_another_cpu(tmp_path):
    cpus = os.cpu_count() or 1
    handles, inner = tmp_path / "handles", tmp_path / "inner"
    handles.mkdir()
    inner.mkdir()
    outer = handles / "outer"
    outer.touch()
    script = INSIDE.replace("FUNCTION", harness_function("persist_namespaces"))
    subprocess.run(["mount", "--bind", str(handles), str(handles)], check=True)
    try:
        subprocess.run(["mount", "--make-private", str(handles)], check=True)
        subprocess.run(["taskset", "-c", str(cpus - 1), "unshare", f"--mount={outer}", "--propagation",
                        "private", "true"], check=True)
        results = []
        for cpu in range(cpus):
            proc = subprocess.run(["nsenter", f"--mount={outer}", "bash", "-c", script, "_", str(inner),
                                   str(cpu)], capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0 and proc.stdout.endswith("kept\n"), (cpu, proc.stdout, proc.stderr)
            results.append(proc.stdout.splitlines()[0])
        print(f"a plain unshare per CPU inside a namespace made on CPU {cpus - 1}: {results}")
    finally:
        subprocess.run(["umount", str(outer)], check=False)
        subprocess.run(["umount", str(handles)], check=False)
