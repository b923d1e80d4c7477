"""buddysim: the Linux buddy page allocator on a pluggable page-refcount model."""

__version__ = "0.1.0"
__all__ = ["__version__"]
