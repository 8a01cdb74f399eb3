"""`rbd`: a Ganeti ExtStorage provider for Ceph RBD images, userspace access only.

Each volume is an RBD image named after VOL_NAME in one pool; ``attach``
maps nothing (no kernel ``rbd map``): it prints an empty first line (no block
device) and ``kvm:rbd:<pool>/<image>[:id=<user>][:conf=<ceph.conf>]``, so
Ganeti gives the instance (and osdef's OS scripts) the URI.  Modules:
``config`` (the pool, user and ceph.conf from EXTP_* parameters and the
provider dir's extstorage.yaml; parameters.list; verify), ``images`` (the
pool through librbd: create, remove, resize, metadata, snapshots),
``actions`` (one function per script), ``entry`` (the launchers' edge) and
``install`` (the provider dir).  The Ceph connection is osdef.disk.ceph's.
"""

PROVIDER_NAME = "rbd"
