"""systemd units osdef puts into a guest, as text (pure): the first-boot oneshot service the steps share.

Installing one (write it, enable it for its targets) is the session's
``install_unit``; here is only what the file says.
"""

from __future__ import annotations

from collections.abc import Sequence


def oneshot(description: str, exec_start: str, *, unit: Sequence[str] = (), exec_start_post: str = "",
            wanted_by: Sequence[str] = ("multi-user.target",)) -> str:
    """A oneshot service that runs on boot and stays "active" (its output on the console too).

    ``unit``: more [Unit] lines (Before=, After=, Condition…=).
    """
    post = [f"ExecStartPost={exec_start_post}"] if exec_start_post else []
    lines = ["[Unit]", f"Description={description}", *unit, "",
             "[Service]", "Type=oneshot", f"ExecStart={exec_start}", *post, "StandardOutput=journal+console",
             "RemainAfterExit=yes", "",
             "[Install]", f"WantedBy={' '.join(wanted_by)}", ""]
    return "\n".join(lines)
