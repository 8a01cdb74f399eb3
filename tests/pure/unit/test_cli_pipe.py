"""`osdef … | head` ends quietly: a reader that went away is not an error worth a line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("argv", [["params"], ["params", "--markdown"], ["variants"]])
def test_a_closed_reader_ends_the_command_quietly(argv):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte (as `| head -0`)
    try:
        proc = subprocess.run([sys.executable, "-m", "osdef.cli", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (141, "")


def test_head_of_a_long_listing_in_a_shell_pipeline():
    proc = subprocess.run(["bash", "-o", "pipefail", "-c",
                           f"{sys.executable} -m osdef.cli params | head -1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith("root_password_hash") and proc.stderr == ""
