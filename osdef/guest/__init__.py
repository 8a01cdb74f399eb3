"""The guest layer: one libguestfs appliance per run, disk layouts, customization, bootloader.

The create plan is osdef.create.plan; its entry points are in osdef.create.pipeline:
`install_root` (create) and `rename`.  The customization runner
(osdef.create.steps) and the step context (osdef.create.context) live here
too, so nothing in this package imports upward.
"""
