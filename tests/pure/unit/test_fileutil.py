"""osdef.fileutil: the small helpers every floor uses."""


def test_a_failed_tool_is_reported_by_its_last_line():
    import subprocess

    from osdef.fileutil import tool_said

    def done(out, err, rc=1):
        return subprocess.CompletedProcess(["x"], rc, out, err)

    assert tool_said(done("progress\n", "warning\nlosetup: /x: failed\n\n")) == "losetup: /x: failed"
    assert tool_said(done("e2fsck: 3 errors\n", "")) == "e2fsck: 3 errors"  # e2fsck talks on stdout
    assert tool_said(done(None, None, 7)) == "exit code 7, no message"
