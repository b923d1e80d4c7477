"""The boot trace of a machine: its memblock state as trace events, then memblock_free_all."""

from __future__ import annotations

from typing import Any

from buddysim.config import Config, list_presets
from buddysim.machine import Machine
from buddysim.mm.memblock import memblock_from_config
from buddysim.trace.recorder import make_header, write_trace

__all__ = ["boot_events", "write_boot_trace"]


def boot_events(config: Config) -> list[dict[str, Any]]:
    """memblock_add per memory region (with its node), memblock_reserve per reserved region,
    then memblock_free_all: what setup_arch leaves and mm_core_init hands over."""
    mb = memblock_from_config(config)
    events: list[dict[str, Any]] = [
        {"op": "memblock_add", "base": r.base, "size": r.size, "nid": r.nid} for r in mb.memory
    ]
    events += [{"op": "memblock_reserve", "base": r.base, "size": r.size} for r in mb.reserved]
    events.append({"op": "memblock_free_all"})
    return events


def write_boot_trace(path: str, config: Config, spec: str, mm: Machine) -> int:
    """Write the boot trace; the header names the preset, or carries the config inline."""
    machine: str | dict[str, Any] = spec if spec in list_presets() else config.model_dump(mode="json")
    header = make_header(
        machine, refcount=mm.refs.name, sites=mm.sites.name, source=f"buddysim boot {spec}"
    )
    return write_trace(path, header, boot_events(config))
