"""The export plan for people: `osdef export-plan`, the plan recorded in a stream's header, read back on import.

Disks are random-filled files with real filesystems made in place
(tests/support/fsdisks.py); the report must name each partition, its
filesystem, where its map came from, what is sent and why a partition falls
back; the header's record must survive hostile edits as "malformed", never a
crash or an unprintable line.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings, strategies as st

from osdef.cli import main
from osdef.stream.content import BLOCK, USED, ContentPlan, PartitionPlan, describe_record, header_record
from osdef.stream.planreport import plan_lines
from tests.support.fsdisks import MiB, Part, fill_random, gpt, make_fs, make_tree
from tests.support.stream import export_to_file, import_from_file

DISK = 64 * MiB
PARTS = (Part(1 * MiB, 1 * MiB, "bios"), Part(2 * MiB, 16 * MiB, "vfat"), Part(18 * MiB, 40 * MiB, "ext4"),
         Part(58 * MiB, 5 * MiB, "swap"))


def _disk(tmp_path: Path) -> Path:
    tree = make_tree(tmp_path / "tree", files=12, max_size=100_000)
    disk = fill_random(tmp_path / "disk.img", DISK)
    gpt(disk, list(PARTS))
    for p in PARTS:
        make_fs(disk, p, tree if p.fs in ("ext4", "vfat") else None)
    return disk


def test_the_report_names_every_partition_its_map_and_what_is_sent(tmp_path):
    disk = _disk(tmp_path)
    lines = plan_lines(disk)
    assert lines[0] == f"{disk}: 64.0 MiB, partition table: gpt"
    assert lines[1].startswith("  partition 1 (1.0 MiB at 1.0 MiB): block level: BIOS boot partition; 1.0 MiB")
    assert lines[2].startswith("  partition 2 (FAT16 16.0 MiB at 2.0 MiB):") and "from the FAT" in lines[2]
    assert "partition 3 (ext4 40.0 MiB at 18.0 MiB)" in lines[3] and "checked by an inode walk" in lines[3]
    assert lines[4] == "  partition 4 (swap 5.0 MiB at 58.0 MiB): 4.0 KiB used, from its header page"
    assert lines[5].startswith("  outside the partitions: ")  # the tables, a random gap and the backup GPT
    assert lines[6].startswith("  to send: ")


def test_the_cli_prints_the_report_and_refuses_a_missing_disk(tmp_path, capsys):
    disk = _disk(tmp_path)
    assert main(["export-plan", str(disk), "--no-count"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("  to send: ") and "non-zero blocks of the rest" in out[-1]
    assert main(["export-plan", str(tmp_path / "none.img")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot open disk" in err


def test_a_stored_export_says_what_it_holds(tmp_path):
    disk = _disk(tmp_path)
    stream = tmp_path / "stream"
    export_to_file(disk, stream)
    result, _ = import_from_file(stream, fill_random(tmp_path / "target.img", DISK, seed=5))
    lines = describe_record(result.metadata["content_plan"])
    assert lines[0] == "partition table: gpt"
    assert [line.split(" (")[0] for line in lines[1:]] == [f"partition {i}" for i in range(1, 5)]
    assert lines[1:] == [line.strip() for line in plan_lines(disk, count=False)[1:5]]


def test_the_header_record_is_bounded():
    parts = [PartitionPlan(f"partition {i}", i * MiB, MiB, "", "", BLOCK, 0, "x" * 1000) for i in range(1, 200)]
    record = header_record(ContentPlan([], "mbr", parts))
    assert len(record["partitions"]) == 64 and record["more_partitions"] == 135
    assert len(json.dumps(record)) < 32 * 1024
    assert describe_record(record)[-1] == "… and 135 more partitions"


_values = st.one_of(st.none(), st.integers(-5, 1 << 70), st.text(max_size=40), st.booleans(),
                    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(["scheme", "whole_disk_reason", "partitions", "name", "start", "length", "fs", "source",
                              "mode", "used", "reason", "more_partitions"]), value=_values)
def test_a_hostile_record_is_refused_or_printed_cleanly(field, value):
    good = header_record(ContentPlan([], "gpt", [PartitionPlan("partition 1", MiB, MiB, "ext4", "the map", USED, 4096)]))
    if field in good:
        good[field] = value
    else:
        good["partitions"][0][field] = value
    lines = describe_record(good)
    for line in lines:
        assert line.isprintable() and len(line) < 1000
