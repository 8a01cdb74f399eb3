"""What is done to a guest: the libguestfs session and the editors of the guest's files.

``session`` is the one owner of the libguestfs handle: every other module and
every step (hooks/) calls its verbs (files, modes, units, disks, mkfs, UUIDs).
The editors are pure where they can be (``fstab``, ``osparams``, ``units``,
``hostnames``, ``grubdefaults``, ``network/`` renderers, ``cloudinit``) and
take the session where they must read the guest (``bootloader``, ``distro``,
``hostkeys``, ``rename``, ``mkfs``).  Nothing here knows about
plans or steps: that is osdef.create, one floor above.
"""
