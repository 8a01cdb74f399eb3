"""`loopfile`: a Ganeti ExtStorage provider shipped with osdef.

Volumes are sparse files in a data directory, attached as loop devices
(through osdef.disk.loop, osdef's one losetup helper).
Modules: ``volume`` (the request Ganeti passes in the environment),
``settings`` (the provider's config file), ``actions``
(one function per ExtStorage script), ``entry`` (the edge that turns errors
into one stderr line), ``install`` (writes the provider dir) and ``command``
(``osdef install-extstorage``).
"""

PROVIDER_NAME = "loopfile"
