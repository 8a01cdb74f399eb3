"""The comment every rendered network file starts with."""

HEADER = "# Written by osdef from the instance's Ganeti NIC settings; reinstall rewrites it.\n"
