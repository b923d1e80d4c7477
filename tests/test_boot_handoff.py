"""Boot handoff beyond memblock_free_all: deferred struct page init, hotplug onlining, --compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buddysim.cli import main
from buddysim.config import load_preset
from buddysim.machine import Machine
from buddysim.mm.debug import validate_all
from buddysim.mm.memory_hotplug import online_pages
from buddysim.mm.mmzone import MIGRATE_ISOLATE, MIGRATE_MOVABLE

DATA = Path(__file__).resolve().parent / "data" / "dmesg"


def _orders(mm: Machine) -> list[tuple[int, str, list[int]]]:
    return [(z.node, z.name, [a.nr_free for a in z.free_area]) for z in mm.zones]


def test_first_deferred_pfn_follows_defer_init():
    cfg = load_preset("x86_64-4g").model_copy(update={"deferred_struct_page_init": True})
    mm = Machine.from_config(cfg)
    # Normal is node 0's highest zone and starts at 4 GiB = pfn 0x100000; one section
    # (32768 pfns) is initialised, the next section boundary is 0x100000 + 0x8000
    assert mm.first_deferred_pfn == {0: 0x108000}
    assert not mm.early_page_initialised(0x108000)
    assert mm.early_page_initialised(0x107FFF)


@pytest.mark.parametrize("preset", ["x86_64-4g", "numa-2node"])
def test_deferred_init_hands_over_the_same_memory(preset):
    plain = Machine.from_config(load_preset(preset))
    plain.boot()
    cfg = load_preset(preset).model_copy(update={"deferred_struct_page_init": True})
    deferred = Machine.from_config(cfg)
    deferred.boot()
    assert deferred.first_deferred_pfn == {}  # page_alloc_init_late ran every node
    assert _orders(deferred) == _orders(plain)
    assert [z.managed_pages for z in deferred.zones] == [z.managed_pages for z in plain.zones]
    assert deferred.totalram_pages == plain.totalram_pages
    # what mem_init prints as available is smaller: the deferred part was not free yet
    assert deferred.available_at_mem_init < plain.available_at_mem_init
    assert validate_all(deferred) == []


@pytest.mark.parametrize(("model", "unfrozen"), [("baseline", False), ("final", False), ("v2", True)])
def test_online_pages_hotplug(model, unfrozen):
    mm = Machine.simple(1 << 17, refcount=model)
    mm.boot()
    before = mm.nr_free_pages()
    n = 1 << 16
    assert online_pages(mm, 1 << 17, n, 0) == 0
    normal = next(z for z in mm.zones if z.name == "Normal")
    assert (normal.zone_start_pfn, normal.spanned_pages, normal.present_pages, normal.managed_pages) == (
        1 << 17,
        n,
        n,
        n,
    )
    # the isolation is undone: every block on the MOVABLE lists, none on ISOLATE, all counted
    assert normal.nr_isolate_pageblock == 0
    assert len(normal.free_area[10].free_list[MIGRATE_MOVABLE]) == n >> 10
    assert not any(len(a.free_list[MIGRATE_ISOLATE]) for a in normal.free_area)
    assert mm.nr_free_pages() == before + n
    assert mm.totalram_pages == (1 << 17) + n
    found = [f for f in mm.findings if f.kind == "unfrozen-free-entry" and "generic_online_page" in f.chain]
    if unfrozen:
        # every onlined page entered an (isolated) free list unfrozen, at __free_pages_core
        assert sum(f.count for f in found) == n
        assert "online_pages_range" in found[0].chain and "__free_pages_core" in found[0].chain
    else:
        assert mm.findings == []
        assert validate_all(mm) == []


def test_online_pages_misaligned_is_refused():
    mm = Machine.simple(1 << 17)
    mm.boot()
    assert online_pages(mm, (1 << 17) + 1, 1 << 15, 0) == -22
    assert mm.findings[0].function == "online_pages"
    assert mm.nr_free_pages() == 1 << 17


def test_online_pages_through_a_trace(tmp_path, capsys):
    from buddysim.trace.recorder import make_header, write_trace

    t = tmp_path / "t.jsonl"
    write_trace(
        str(t),
        make_header("tiny"),
        [
            {"op": "online_pages", "start_pfn": 1 << 15, "nr_pages": 1 << 15},
            {"op": "check", "zone": "Normal", "nr_free": 981 + (1 << 15)},
        ],
    )
    code = main(["replay", str(t), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0, data["findings"]
    assert data["totalram_pages"] == 2261 + (1 << 15)


@pytest.mark.parametrize("log", ["qemu_2g_plain.log", "kernelcore.log", "two_node_deferred.log"])
def test_boot_compare_with_an_imported_log(tmp_path, capsys, log):
    cfg = tmp_path / "m.toml"
    assert main(["import", "dmesg", str(DATA / log), "-o", str(cfg), "-q"]) == 0
    capsys.readouterr()
    assert main(["boot", str(cfg), "--compare", str(DATA / log), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["figure"]: r for r in data["compare"]["rows"]}
    present = [r for name, r in rows.items() if name.endswith(" present")]
    assert present and all(r["verdict"] == "match" for r in present)
    assert rows["total present pages"]["verdict"] == "match"


def test_boot_compare_flags_a_different_machine(capsys):
    assert main(["boot", "x86_64-1g", "--compare", str(DATA / "qemu_2g_plain.log"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    verdicts = [r["verdict"] for r in data["compare"]["rows"]]
    assert "differs" in verdicts
    assert main(["boot", "tiny", "--compare", str(DATA / "no-such.log")]) == 2
