"""Empty /etc/machine-id so every instance gets its own on first boot (systemd regenerates it)."""

NAME = "machine-id"
EXCLUDABLE = True  # a variant may skip it


def run(ctx):
    g = ctx.guest
    if g.exists("/etc/machine-id"):
        g.write_text("/etc/machine-id", "", mode=0o444)
    # Debian links /var/lib/dbus/machine-id to /etc/machine-id; a real file would keep the old id
    if g.is_file("/var/lib/dbus/machine-id") and not g.is_symlink("/var/lib/dbus/machine-id"):
        g.remove("/var/lib/dbus/machine-id")
    g.remove("/var/lib/systemd/random-seed")
