"""Importers: turn real kernel output (boot logs, ftrace text, /proc files) into buddysim inputs.

Each importer is a module named after what it reads (``dmesg``, later ``ftrace``, ``procfs``);
it parses with line numbers, reports what it recognised but could not parse as
``file:line: what was expected``, and raises :class:`~buddysim.errors.BadInput` only when
nothing usable was found.
"""
