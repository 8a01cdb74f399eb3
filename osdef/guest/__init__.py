"""The guest layer: one libguestfs appliance per run, disk layouts, customization, bootloader.

The create plan is osdef.guest.plan; its entry points are in osdef.guest.install:
`install_root` (create) and `rename`.  The customization runner
(osdef.guest.customize) and the step context (osdef.guest.context) live here
too, so nothing in this package imports upward.
"""
