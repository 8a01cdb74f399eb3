"""Ganeti's own node tools, as `osdef image sync` and `image list --cluster` use them.

Only two Ganeti commands are run, both on the master, both over the SSH
setup Ganeti keeps for itself:

- `gnt-cluster copyfile [-n NODE]... [-g GROUP] FILE` copies FILE to the
  same path on the other nodes (scp; it says "Copy of file ... failed" on
  stderr and still exits 0, so success is checked on each node afterwards);
- `gnt-cluster command [-n NODE]... [-g GROUP] CMD` runs CMD on each node
  (master last) and prints, per node, a separator line, `node: NAME`, the
  output and `return code = N`.

The per-node tool (`osdef image node-report` / `node-receive`) prints one
line `OSDEF-NODE <json>`, so ssh or shell noise around it does not matter.
Parsing is pure (`parse_command_output`, `node_json`).
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from osdef.fileutil import tool_said
from osdef.errors import ImageError

SEPARATOR = "-" * 48
MARK = "OSDEF-NODE "
Runner = Callable[..., subprocess.CompletedProcess[str]]


@dataclass(frozen=True)
class NodeOutput:
    """What `gnt-cluster command` printed for one node."""

    node: str
    output: str
    return_code: int | None  # None: the block had no `return code =` line


def parse_command_output(text: str) -> list[NodeOutput]:
    """Split `gnt-cluster command` output into its per-node blocks (pure)."""
    results: list[NodeOutput] = []
    node: str | None = None
    lines: list[str] = []
    code: int | None = None

    def close() -> None:
        if node is not None:
            results.append(NodeOutput(node, "\n".join(lines), code))

    for line in text.splitlines():
        if line == SEPARATOR:
            close()
            node, lines, code = None, [], None
        elif node is None and line.startswith("node: "):
            node = line[len("node: "):].strip()
        elif node is not None and line.startswith("return code = "):
            try:
                code = int(line[len("return code = "):].strip())
            except ValueError:
                code = None
        elif node is not None:
            lines.append(line)
    close()
    return results


def node_json(output: str) -> dict[str, Any] | None:
    """The last `OSDEF-NODE {...}` object in a node's output, None when there is none."""
    found = None
    for line in output.splitlines():
        if line.startswith(MARK):
            try:
                value = json.loads(line[len(MARK):])
            except ValueError:
                continue
            if isinstance(value, dict):
                found = value
    return found


def emit(data: dict[str, Any]) -> str:
    """The line a per-node tool prints for the master to read."""
    return MARK + json.dumps(data, sort_keys=True)


class GanetiTools:
    """Runs gnt-cluster on the master; `runner` is subprocess.run (tests pass a fake)."""

    def __init__(self, *, gnt_cluster: str = "gnt-cluster", runner: Runner = subprocess.run,
                 timeout: float = 3600) -> None:
        self.gnt_cluster = gnt_cluster
        self.runner = runner
        self.timeout = timeout

    def _run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        argv = [self.gnt_cluster, *args]
        try:
            proc = self.runner(argv, capture_output=True, text=True, timeout=self.timeout)
        except FileNotFoundError:
            raise ImageError(f"{self.gnt_cluster} not found: run this on the Ganeti master "
                             "node") from None
        except subprocess.TimeoutExpired:
            raise ImageError(f"`{shlex.join(argv[:3])} …` did not finish within "
                             f"{self.timeout:.0f} s") from None
        if proc.returncode != 0:
            raise ImageError(f"`{shlex.join(argv[:3])} …` failed (rc {proc.returncode}): {tool_said(proc)}")
        return proc

    @staticmethod
    def _select(nodes: Sequence[str] | None, group: str | None) -> list[str]:
        args: list[str] = []
        for n in nodes or ():
            args += ["-n", n]
        if group:
            args += ["-g", group]
        return args

    def copyfile(self, path: str, *, nodes: Sequence[str] | None = None,
                 group: str | None = None) -> str:
        """Copy path to the same path on the (other) nodes; returns copyfile's stderr."""
        return self._run(["copyfile", *self._select(nodes, group), path]).stderr or ""

    def command(self, argv: Sequence[str], *, nodes: Sequence[str] | None = None,
                group: str | None = None) -> list[NodeOutput]:
        """Run argv on every selected node; the per-node outputs."""
        proc = self._run(["command", *self._select(nodes, group), shlex.join(argv)])
        results = parse_command_output(proc.stdout)
        if not results:
            raise ImageError("`gnt-cluster command` reported no node (is the node group empty?)")
        return results
