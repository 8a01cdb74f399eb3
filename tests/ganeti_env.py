"""Load the environments a real Ganeti 3.0.2 passed to OS scripts (tests/fixtures/ganeti-env)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "ganeti-env"
SHELL_ADDED = {"PWD", "SHLVL", "_", "OLDPWD"}  # set by bash/env in the logging dummy, not by Ganeti


def parse_log(path: Path) -> tuple[str, list[str], dict[str, str]]:
    """(script name, args, environment) of one captured call."""
    script, args, env = "", [], {}
    in_env = False
    for line in path.read_text().splitlines():
        if line.startswith("== script:"):
            script = line.split(":", 1)[1].strip().rsplit("/", 1)[-1]
        elif line.startswith("== args"):
            args = line.split(":", 1)[1].split()
        elif line == "== env:":
            in_env = True
        elif line.startswith("=="):
            in_env = False
        elif in_env and "=" in line:
            key, _, value = line.partition("=")
            if key not in SHELL_ADDED:
                env[key] = value
    return script, args, env


def captured(script: str) -> list[tuple[str, dict[str, str]]]:
    """[(step name, env)] of every captured call of an OS script."""
    out = []
    for path in sorted(FIXTURES.glob("*/*-os-dummy-*.log")):
        name, _, env = parse_log(path)
        if name == script:
            out.append((path.parent.name, env))
    return out
