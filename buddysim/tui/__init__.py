"""The interactive zone inspector (``buddysim inspect``), built on Textual.

Textual is an optional dependency (``pip install buddysim[tui]``): this package's ``app`` and
``widgets`` modules import it, ``session`` does not. Import :mod:`buddysim.tui.app` only when the
inspector actually runs.
"""
