"""The boot-log importer (buddysim/trace/importers/dmesg.py) and ``buddysim import dmesg``.

The logs in tests/data/dmesg are hand-written (one per variant: timestamps or not, log levels,
journalctl and syslog prefixes, dmesg -T, one or two nodes, deferred page init, memblock=debug,
pre-5.11 and 2.6-era formats, kernelcore=, mem=, malformed lines); their expected figures are
worked out by hand in the comments. When ../shared/data/real exists, the real captures are
imported too and checked against figures read off the files by hand.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from buddysim.cli import main
from buddysim.config import load_config, load_preset
from buddysim.errors import BadInput
from buddysim.mm.memblock import Memblock, memblock_from_config
from buddysim.mm.zone_geometry import zone_geometry
from buddysim.trace.importers.dmesg import import_dmesg, parse_boot_figures, strip_prefix

DATA = Path(__file__).resolve().parent / "data" / "dmesg"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="no ../shared/data/real captures")

QEMU_2G = [
    "qemu_2g_plain.log",
    "qemu_2g_nots.log",
    "qemu_2g_levels.log",
    "qemu_2g_journal.log",
    "qemu_2g_syslog.log",
]


def log_messages(path: Path) -> list[str]:
    return [strip_prefix(line) for line in path.read_text().splitlines()]


def is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(h == n for h in it) for n in needle)


# ---------------------------------------------------------------------------------------------
# prefixes


@pytest.mark.parametrize(
    "line",
    [
        "Zone ranges:",
        "[    0.006310] Zone ranges:",
        "<6>[    0.006310] Zone ranges:",
        "<6>Zone ranges:",
        "Mar  3 10:00:00 vm kernel: [    0.006310] Zone ranges:",
        "Mar 03 10:00:00 vm kernel: Zone ranges:",
        "2025-03-03T10:00:00.123456+01:00 vm kernel: Zone ranges:",
        "kern  :info  : [    0.006310] Zone ranges:",
        "[Mon Mar  3 10:00:00 2025] Zone ranges:",
        "[    0.006310][    T0] Zone ranges:",
        "[    0.006310] vm kernel: Zone ranges:",
        "<4>[ 6207.637595]  [3:  Binder:9343_3:22875] Zone ranges:",
        "[    0.006310] Zone ranges:\r\n",
    ],
)
def test_strip_prefix(line: str) -> None:
    assert strip_prefix(line).strip() == "Zone ranges:"


def test_strip_prefix_keeps_message_colons() -> None:
    assert (
        strip_prefix("[    0.0] ACPI: SRAT: Node 0 PXM 0 [mem 0x0-0x9ffff]")
        == "ACPI: SRAT: Node 0 PXM 0 [mem 0x0-0x9ffff]"
    )
    assert strip_prefix("[    0.0]   DMA      [mem 0x1000-0xffffff]") == "  DMA      [mem 0x1000-0xffffff]"


# ---------------------------------------------------------------------------------------------
# one node, 6.x kernel, every prefix variant


@pytest.mark.parametrize("name", QEMU_2G)
def test_qemu_2g_variants(name: str) -> None:
    r = import_dmesg(DATA / name)
    cfg = r.config
    assert r.problems == ()
    # Early memory node ranges: [0x1000, 0x9efff] and [0x100000, 0x7ffdffff]
    assert cfg.memory_ranges == ((0x1000, 0x9F000, 0), (0x100000, 0x7FFE0000, 0))
    # RAMDISK [0x7d9c2000, 0x7ffcffff] and NODE_DATA(0) [0x7d997000, 0x7d9c1fff]
    assert [(x.name, x.start, x.limit) for x in cfg.reserved] == [
        ("initrd", 0x7D9C2000, 0x7FFD0000),
        ("NODE_DATA(0)", 0x7D997000, 0x7D9C2000),
    ]
    assert cfg.nr_cpus == 2 and not cfg.deferred_struct_page_init
    assert cfg.zones.dma == 16 << 20 and cfg.zones.kernelcore is None  # the x86-64 defaults
    f = r.figures
    assert f.kernel_version == "6.6.30-buddysim-test"
    # DMA: [1, 0x9f) + [0x100, 0x1000) = 158 + 3840; DMA32: [0x1000, 0x7ffe0)
    assert [
        (z.nid, z.zone, z.start_pfn, z.spanned, z.present, z.present_source, z.unavailable) for z in f.zones
    ] == [
        (0, "DMA", 1, 4095, 3998, "ranges", 1 + 97),
        (0, "DMA32", 0x1000, 0x7EFE0, 0x7EFE0, "ranges", 32),
    ]
    assert f.total_present_pages == 3998 + 520160 == 2096632 // 4  # "Memory: .../2096632K"
    assert (f.total_pages, f.nr_zonelists, f.mobility_grouping) == (515806, 1, True)
    assert (f.available_kib, f.physpages_kib, f.reserved_kib, f.cma_reserved_kib) == (
        1985880,
        2096632,
        110492,
        0,
    )
    assert f.memory_breakdown_kib["kernel code"] == 16384
    assert f.unavailable_pages == 130 and f.deferred_page_init is False and f.max_pfn == 0x7FFE0


def test_qemu_2g_variants_give_the_same_config() -> None:
    docs = []
    for name in QEMU_2G:
        doc = tomllib.loads(import_dmesg(DATA / name).toml)
        doc.pop("name")
        doc["description"] = doc["description"].split(":", 1)[1]
        docs.append(doc)
    assert all(d == docs[0] for d in docs)


def test_qemu_2g_round_trip(tmp_path: Path) -> None:
    r = import_dmesg(DATA / "qemu_2g_plain.log")
    out = tmp_path / "m.toml"
    out.write_text(r.toml)
    cfg = load_config(out)
    assert cfg == r.config
    # the machine prints what the log printed: zone ranges, node ranges, holes
    lines = zone_geometry(cfg).dmesg_lines()
    assert len(lines) == 13
    assert is_subsequence(lines, log_messages(DATA / "qemu_2g_plain.log"))


# ---------------------------------------------------------------------------------------------
# two nodes, deferred struct page init


def test_two_node_deferred() -> None:
    r = import_dmesg(DATA / "two_node_deferred.log")
    cfg = r.config
    assert cfg.memory_ranges == (
        (0x1000, 0x9F000, 0),
        (0x100000, 0xC0000000, 0),
        (0x100000000, 0x240000000, 0),
        (0x240000000, 0x440000000, 1),
    )
    assert cfg.nodes == (0, 1) and cfg.nr_cpus == 8
    assert cfg.deferred_struct_page_init
    assert [(x.name, x.start, x.limit) for x in cfg.reserved] == [
        ("initrd", 0x3F2D1000, 0x40000000),
        ("NODE_DATA(0)", 0x23FFD5000, 0x240000000),
        ("NODE_DATA(1)", 0x43FFD4000, 0x43FFFF000),
    ]
    f = r.figures
    # node 0: DMA 3998, DMA32 [0x1000, 0xc0000), Normal [0x100000, 0x240000); node 1: Normal [0x240000, 0x440000)
    assert [(z.nid, z.zone, z.present) for z in f.zones] == [
        (0, "DMA", 3998),
        (0, "DMA32", 0xBF000),
        (0, "Normal", 0x140000),
        (1, "Normal", 0x200000),
    ]
    assert f.node_present_pages == {0: 3998 + 0xBF000 + 0x140000, 1: 0x200000}
    assert f.total_present_pages == 16776824 // 4
    # deferred: the two "deferred pages initialised" lines, and available << present - reserved
    assert f.deferred_page_init is True
    assert f.available_kib == 1852112 < (16776824 - 452112) // 2
    assert "deferred struct page init: yes" in r.toml
    assert is_subsequence(zone_geometry(cfg).dmesg_lines(), log_messages(DATA / "two_node_deferred.log"))


def test_two_node_log_cut_before_free_area_init_uses_srat(tmp_path: Path) -> None:
    # only the e820 map and the SRAT lines: memory comes from e820, nodes from [[numa]]
    lines = (DATA / "two_node_deferred.log").read_text().splitlines()
    cut = tmp_path / "early.log"
    cut.write_text("\n".join(lines[: lines.index(next(x for x in lines if "Zone ranges:" in x))]) + "\n")
    r = import_dmesg(cut)
    doc = tomllib.loads(r.toml)
    assert "memory" not in doc and len(doc["e820"]) == 9
    assert doc["numa"] == [
        {"nid": 0, "start": "0x0", "end": "0xa0000"},
        {"nid": 0, "start": "0x100000", "end": "0xc0000000"},
        {"nid": 0, "start": "0x100000000", "end": "0x240000000"},
        {"nid": 1, "start": "0x240000000", "end": "0x440000000"},
    ]
    assert r.config.memory_ranges == import_dmesg(DATA / "two_node_deferred.log").config.memory_ranges
    assert r.figures.zones == ()


# ---------------------------------------------------------------------------------------------
# memblock=debug


def test_memblock_debug_log() -> None:
    r = import_dmesg(DATA / "memblock_debug_early.log")
    cfg = r.config
    assert r.figures.memblock_debug and r.problems == ()
    # the dump's memory, then memblock_remove [0x3f00000, 0x3f10000)
    assert cfg.memory_ranges == ((0x1000, 0x9F000, 0), (0x100000, 0x3F00000, 0), (0x3F10000, 0x3FE0000, 0))
    # dump: [0, 64K) + [16M, 32M); then [0x98000, 0x9f000), [0, 1M) (absorbs both low ones),
    # [0x3e00000, 0x3fe0000) and [0x3c00000, 0x3e00000) (merged), then [0x3c00000, 0x3d00000) freed
    assert [(x.start, x.limit) for x in cfg.reserved] == [
        (0, 0x100000),
        (0x1000000, 0x2000000),
        (0x3D00000, 0x3FE0000),
    ]
    assert [x.name for x in cfg.reserved] == ["setup_arch", "setup_arch", "memblock.reserved[2]"]
    assert "memory: memblock.memory as memblock=debug shows it" in r.toml


def test_memblock_model_prints_what_the_kernel_printed() -> None:
    """Replaying the log's operations on the model emits the log's lines (callers aside)."""
    lines: list[str] = []
    mb = Memblock(debug=lines.append)
    mb.memblock_reserve(0x1000000, 0x1000000, caller="setup_arch")
    mb.memblock_reserve(0, 0x10000, caller="setup_arch")
    mb.memblock_add(0x1000, 0x9EC00, caller="e820__memblock_setup")
    mb.memblock_add(0x100000, 0x3EE0000, caller="e820__memblock_setup")
    mb.memblock_trim_memory(0x1000)
    mb.memblock_dump_all()
    # the trampoline lands where the kernel put it
    assert mb.memblock_phys_alloc_range(28672, 0x1000, 0, 0x100000, caller="reserve_real_mode") == 0x98000

    def uncalled(line: str) -> str:  # drop "+0x2c4/0xcc0" offsets
        return " ".join(w.split("+0x")[0] for w in line.split(" ")) if "memblock" in line else line

    logged = [uncalled(m) for m in log_messages(DATA / "memblock_debug_early.log")[11:25]]
    assert [uncalled(x) for x in lines] == logged


def test_preset_round_trip_through_a_memblock_debug_log(tmp_path: Path) -> None:
    """Emit a boot log from a preset (memblock=debug + free_area_init lines), import it back."""
    for name in ("tiny", "numa-2node"):
        cfg = load_preset(name)
        lines: list[str] = []
        mb = memblock_from_config(cfg, debug=lines.append)
        lines += zone_geometry(cfg, mb).dmesg_lines()
        log = tmp_path / f"{name}.log"
        log.write_text("".join(f"[    0.{i:06d}] {line}\n" for i, line in enumerate(lines)))
        back = import_dmesg(log).config
        assert back.memory_ranges == cfg.memory_ranges
        assert [(x.start, x.limit) for x in back.reserved] == [(r.base, r.end) for r in mb.reserved]
        assert (back.zones.dma, back.zones.dma32) == (cfg.zones.dma, cfg.zones.dma32)
        assert zone_geometry(back).dmesg_lines() == zone_geometry(cfg).dmesg_lines()


# ---------------------------------------------------------------------------------------------
# older kernels


def test_pre_5_11_log() -> None:
    r = import_dmesg(DATA / "pre511_dmesg_T.log")
    f = r.figures
    assert r.config.memory_ranges == ((0x1000, 0x9F000, 0), (0x100000, 0x3FFE0000, 0))
    assert [(z.zone, z.present, z.present_source, z.memmap_pages, z.reserved_pages) for z in f.zones] == [
        ("DMA", 3998, "printed", 64, 21),
        ("DMA32", 258016, "printed", 4032, None),
    ]
    assert f.node_totalpages_printed == {0: 262014}
    assert f.total_pages == 257897 == 262014 - 64 - 21 - 4032
    assert f.unavailable_pages == 130  # "Zeroed struct page in unavailable ranges: 130 pages"
    assert sum(h.pages for h in zone_geometry(r.config).unavailable) == 130
    assert f.deferred_page_init is False  # 1048056 - 77064 == 970992
    assert [(x.name, x.start, x.limit) for x in r.config.reserved] == [
        ("initrd", 0x3CD45000, 0x3E69F000),
        ("NODE_DATA(0)", 0x3FFB5000, 0x3FFE0000),
    ]


def test_legacy_2_6_log() -> None:
    r = import_dmesg(DATA / "legacy_2.6.log")
    f = r.figures
    assert r.problems == ()
    # early_node_map pfns [0x10, 0x9f) and [0x100, 0x3fff0) (the first 64K were reserved)
    assert r.config.memory_ranges == ((0x10000, 0x9F000, 0), (0x100000, 0x3FFF0000, 0))
    assert r.config.nr_cpus == 2  # "SMP: Allowing 2 CPUs"
    # before 3.8 the LIFO-batch line printed present minus memmap minus dma_reserve:
    # DMA 3824 + 64 + 95 = 3983 = (0x9f - 0x10) + (0x1000 - 0x100); DMA32 254000 + 4032 = 0x3fff0 - 0x1000
    assert [(z.zone, z.present, z.present_source) for z in f.zones] == [
        ("DMA", 3983, "printed+memmap"),
        ("DMA32", 258032, "printed+memmap"),
    ]
    assert f.node_totalpages_printed == {0: 3983 + 258032}
    assert (f.total_pages, f.available_kib, f.physpages_kib) == (257824, 1016728, 1048512)
    assert f.memory_breakdown_kib["absent"] == 452
    # old RAMDISK format "start - end" (end exclusive), page aligned up
    assert [(x.name, x.start, x.limit) for x in r.config.reserved] == [("initrd", 0x37A4D000, 0x37FF0000)]
    # DMA starts at the first memory pfn, as the defaults say: no explicit [zones]
    assert "[zones]" not in r.toml


def test_kernelcore_log() -> None:
    r = import_dmesg(DATA / "kernelcore.log")
    assert r.config.zones.kernelcore == "3584M"
    assert r.figures.movable_zone_start == {0: 0x120400}
    layout = zone_geometry(r.config)
    assert layout.zone_movable_pfn == ((0, 0x120400),)
    assert [(z.zone, z.present) for z in r.figures.zones] == [
        ("DMA", 3998),
        ("DMA32", 0xBFFE0 - 0x1000),
        ("Normal", 0x20400),
        ("Movable", 0x1FC00),
    ]
    assert is_subsequence(layout.dmesg_lines(), log_messages(DATA / "kernelcore.log"))


def test_mem_limit_uses_the_user_map() -> None:
    r = import_dmesg(DATA / "mem_limit.log")
    assert r.config.memory_ranges == ((0x1000, 0x9F000, 0), (0x100000, 0x20000000, 0))
    assert "memory: the e820 map" in r.toml


# ---------------------------------------------------------------------------------------------
# the command


def test_cli_import_writes_a_loadable_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "machine.toml"
    assert main(["import", "dmesg", str(DATA / "qemu_2g_plain.log"), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1 node(s), 524158 pages" in err and str(out) in err
    cfg = load_config(out)
    assert cfg.name == "qemu_2g_plain" and cfg.memory_ranges[-1] == (0x100000, 0x7FFE0000, 0)
    # no overwrite without --force
    assert main(["import", "dmesg", str(DATA / "two_node_deferred.log"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"buddysim import: error: {out}: exists; use --force to overwrite it"
    assert (
        main(["import", "dmesg", str(DATA / "two_node_deferred.log"), "-o", str(out), "--force", "-q"]) == 0
    )
    assert capsys.readouterr().err == ""
    assert load_config(out).nodes == (0, 1)


def test_cli_import_to_stdout_and_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "dmesg", str(DATA / "qemu_2g_levels.log"), "--name", "box", "-q"]) == 0
    doc = tomllib.loads(capsys.readouterr().out)
    assert doc["name"] == "box" and doc["nr_cpus"] == 2
    assert doc["memory"] == [
        {"start": "0x1000", "end": "0x9f000", "nid": 0},
        {"start": "0x100000", "end": "0x7ffe0000", "nid": 0},
    ]


def test_cli_figures_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "dmesg", str(DATA / "two_node_deferred.log"), "--figures", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema_version"] == 1
    fig = doc["figures"]
    assert fig["total_pages"] == 4128540 and fig["deferred_page_init"] is True
    assert fig["node_present_pages"] == {"0": 3998 + 0xBF000 + 0x140000, "1": 0x200000}


def test_cli_malformed_lines_are_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "malformed.log"
    assert main(["import", "dmesg", str(path), "-q"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("buddysim import: warning:")]
    assert [w.split(f"{path}:")[1].split(":")[0] for w in warnings] == ["3", "5", "8", "13", "14", "15", "16"]
    assert f"{path}:3: expected 'BIOS-e820: [mem 0xSTART-0xEND] TYPE'" in captured.err
    assert f"{path}:16: expected 'Memory: NK/NK available (… NK reserved …)'" in captured.err
    doc = tomllib.loads(captured.out)
    # the two good node lines; the damaged Zone ranges block is not used for zone limits
    assert doc["memory"] == [
        {"start": "0x1000", "end": "0x9f000", "nid": 0},
        {"start": "0x100000", "end": "0x8000000", "nid": 0},
    ]
    assert "zones" not in doc


def test_cli_nothing_usable_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.log"
    junk.write_text("[    0.000000] Hello\n[    0.1] BIOS-e820: nonsense\n")
    assert main(["import", "dmesg", str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"buddysim import: error: {junk}: no memory map found")
    assert f"first: {junk}:2: expected 'BIOS-e820" in err
    assert main(["import", "dmesg", str(tmp_path / "missing.log")]) == 2
    assert "missing.log: no such file" in capsys.readouterr().err
    assert main(["import"]) == 2
    assert "FORMAT" in capsys.readouterr().err
    with pytest.raises(BadInput, match="no memory map found"):
        parse_boot_figures(junk)


def test_cli_invalid_machine_names_log_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # node ranges that overlap make an invalid machine: the error names the log and the key
    bad = tmp_path / "bad.log"
    bad.write_text(
        "Early memory node ranges\n"
        "  node   0: [mem 0x0000000000001000-0x0000000000ffffff]\n"
        "  node   1: [mem 0x0000000000800000-0x0000000001ffffff]\n"
    )
    assert main(["import", "dmesg", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"buddysim import: error: {bad}: memory[1]: the imported machine is not valid: "
        "[0x800000-0x2000000) overlaps memory[0] [0x1000-0x1000000)"
    )


# ---------------------------------------------------------------------------------------------
# real captures (../shared/data/real): figures read off the files by hand


@needs_real
def test_real_ubuntu_5_4_boot() -> None:
    path = REAL / "dmesg_x86_5.4_fips_boot_mem.txt"
    r = import_dmesg(path)
    assert r.problems == ()
    cfg, f = r.config, r.figures
    # "Early memory node ranges"
    assert cfg.memory_ranges == ((0x1000, 0x9E000, 0), (0x100000, 0x66959000, 0), (0x66B09000, 0x66F00000, 0))
    assert cfg.nr_cpus == 2  # nr_cpu_ids:2
    assert [(x.name, x.start, x.limit) for x in cfg.reserved] == [
        ("initrd", 0x2DC45000, 0x32E1A000),  # RAMDISK: [mem 0x2dc45000-0x32e19fff]
        ("NODE_DATA(0)", 0x66ED5000, 0x66F00000),
    ]
    assert [(z.zone, z.present, z.memmap_pages, z.reserved_pages) for z in f.zones] == [
        ("DMA", 3997, 64, 21),
        ("DMA32", 417104, 6524, None),
    ]
    assert f.node_totalpages_printed == {0: 421101} and f.total_present_pages == 421101
    assert f.total_pages == 414492 == 421101 - 64 - 21 - 6524
    assert (f.available_kib, f.physpages_kib, f.reserved_kib) == (1533204, 1684404, 151200)
    assert f.physpages_kib == 421101 * 4 and f.available_kib == 1684404 - 151200
    assert f.deferred_page_init is False
    assert f.unavailable_pages == 4883 and f.max_pfn == 0x66F00
    # the imported machine prints the log's own lines back
    layout = zone_geometry(cfg)
    logged = log_messages(path)
    start = logged.index("Zone ranges:")
    assert layout.dmesg_lines(zone_device=True)[:10] == logged[start : start + 10]
    assert sum(h.pages for h in layout.unavailable) == 4883
    assert [(z.name, z.present) for z in layout.zones if z.present] == [("DMA", 3997), ("DMA32", 417104)]


@needs_real
def test_real_rocky_5_14_1_5tib_e820() -> None:
    path = REAL / "dmesg_x86_5.14_2node_1.5TiB_boot_mem.txt"
    r = import_dmesg(path)
    assert r.problems == ()
    # the excerpt stops before free_area_init: memory comes from the e820 map. Usable pfn ranges
    # after "e820: update [mem 0x0-0xfff]" and the EFI/MTRR lines (the ESRT page update comes
    # after e820__memblock_setup, so that page stays memory and is reserved instead):
    usable = [
        (0x1, 0xA0),
        (0x100, 0x75D00),
        (0x75DA8, 0x75E00),
        (0x76000, 0x9E1FB),
        (0xA5BFF, 0xA7FFD),
        (0x100000, 0xFC50000),
        (0x10000000, 0x183FD0C0),
    ]
    pages = sum(e - s for s, e in usable)
    # the full log's "Memory: 2007276K/1610305216K available" (README): 1610305216K / 4
    assert pages == 402576304 == 1610305216 // 4
    assert [(s >> 12, e >> 12) for s, e, _ in r.config.memory_ranges] == usable
    assert r.figures.max_pfn == 0x183FD0C0
    assert [(x.name, x.start, x.limit) for x in r.config.reserved] == [
        ("initrd", 0x8CE90000, 0x90647000),
        ("e820 update after memblock setup (efi_mem_reserve)", 0x99D6F000, 0x99D70000),
    ]
    layout = zone_geometry(r.config)
    assert layout.totalpages == 402576304
    assert layout.zone(0, "Normal").start_pfn == 0x100000
    assert parse_boot_figures(path).zones == ()  # no zone lines in the excerpt
