"""Debian 13's libblkid (util-linux 2.41.5) as the oracle for the partition tables osdef calls two readings.

docs/stream.md A6/A7: where util-linux's libblkid reads an MBR otherwise than
Linux, the whole disk goes at block level.  libblkid's walk of extended
partitions changed in 2.41.5 (util-linux e9d544d: logical partitions and
links must stay inside the extended partition), so each layout of
tests/support/tables.OTHER_READINGS names the versions that read it
otherwise; tests/pure checks Debian 12's 2.38 (the host's partx), this
checks 2.41.5 with the partx of the Debian 13 root.
"""

from __future__ import annotations

import shutil

from tests.support.kernelview import PARTX
from tests.support.tables import ONE_READING, OTHER_READINGS, libblkid_reading, linux_reading
from tests.trixie.debian.conftest import INSIDE

DISK = 64 << 20


def test_libblkid_2_41_reads_otherwise_exactly_where_it_is_said_to(trixie):
    version = trixie.run("dpkg-query", "-W", "-f=${Version}", "libblkid1").stdout
    assert version.startswith("2.41.5"), version  # the version OTHER_READINGS speaks of
    work = trixie.state / "libblkid"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    layouts = {name: (write, "2.41.5" in versions) for name, (write, versions) in OTHER_READINGS.items()}
    layouts.update({name: (write, False) for name, write in ONE_READING.items()})
    wrong = []
    try:
        for i, (name, (write, differs)) in enumerate(sorted(layouts.items())):
            disk = work / f"{i}.img"
            with open(disk, "wb") as f:
                f.truncate(DISK)
            write(disk)
            out = trixie.run(*PARTX, f"{INSIDE}/libblkid/{i}.img", check=False)
            seen, linux = libblkid_reading(out.returncode, out.stdout, DISK), linux_reading(disk)
            if (seen != linux) != differs:
                wrong.append(f"{name}: libblkid 2.41.5 reads {sorted(seen)}, Linux {sorted(linux)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert not wrong, "\n".join(wrong)
