"""osdef: the `image` guest OS definition for Ganeti."""

__version__ = "0.1.0"
