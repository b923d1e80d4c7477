"""Machine configs (buddysim/config.py): sizes, the e820 arithmetic, presets, validation errors.

Expected values are worked out by hand from the inputs (the e820 maps written in the presets and
in the tests), never by calling the code under test.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from buddysim.config import (
    Config,
    e820__range_remove,
    e820__range_update,
    e820__update_table,
    format_size,
    list_presets,
    load_config,
    load_preset,
    memparse,
    parse_core,
    resolve_config,
    trim_bios_range,
)
from buddysim.errors import BadInput

REPO = Path(__file__).resolve().parents[1]
M = 1 << 20
G = 1 << 30

# ---------------------------------------------------------------------------------------------
# sizes


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("4096", 4096),
        ("0x100000", 0x100000),
        ("0X1f", 31),
        ("640K", 640 * 1024),
        ("4G", 4 * G),
        ("4g", 4 * G),
        ("1T", 1 << 40),
        ("16MiB", 16 * M),
        ("2MB", 2 * M),
        ("010", 8),  # simple_strtoull base 0: octal
        (" 3M ", 3 * M),
    ],
)
def test_memparse(text: str, value: int) -> None:
    assert memparse(text) == value


@pytest.mark.parametrize("text", ["", "4X", "G", "-1", "1.5G", "0x", "4 G B"])
def test_memparse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a byte count"):
        memparse(text)


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0"), (4 * G, "4G"), (640 * 1024, "640K"), (0x9FC00, "639K"), (0x9FC01, "0x9fc01")]
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


def test_parse_core() -> None:
    assert parse_core("2G").pages == (2 * G) >> 12
    assert parse_core("25%").percent == 25
    assert parse_core("25%").pages == 0
    with pytest.raises(ValueError, match="mirror"):
        parse_core("mirror")
    with pytest.raises(ValueError, match="at most 100%"):
        parse_core("101%")
    with pytest.raises(ValueError, match="size such as"):
        parse_core("lots")


# ---------------------------------------------------------------------------------------------
# e820 (arch/x86/kernel/e820.c)


def test_trim_bios_range() -> None:
    # QEMU's map: page 0 becomes reserved, 640K-1M stops being RAM (it was not usable anyway)
    table = [(0, 0x9FC00, "usable"), (0x9FC00, 0xA0000, "reserved"), (0x100000, 0x8000000, "usable")]
    assert trim_bios_range(table) == [
        (0, 0x1000, "reserved"),
        (0x1000, 0x9FC00, "usable"),
        (0x9FC00, 0xA0000, "reserved"),
        (0x100000, 0x8000000, "usable"),
    ]
    # a BIOS claiming 640K-1M as RAM loses it
    assert trim_bios_range([(0, 0x200000, "usable")]) == [
        (0, 0x1000, "reserved"),
        (0x1000, 0xA0000, "usable"),
        (0x100000, 0x200000, "usable"),
    ]


def test_e820_update_table_resolves_overlaps_and_merges() -> None:
    table = [
        (0x100000, 0x300000, "usable"),
        (0x200000, 0x201000, "reserved"),  # inside: the greater type wins
        (0x300000, 0x400000, "usable"),  # touching, same type: merged
        (0x500000, 0x500000, "usable"),  # empty: dropped
    ]
    assert e820__update_table(table) == [
        (0x100000, 0x200000, "usable"),
        (0x200000, 0x201000, "reserved"),
        (0x201000, 0x400000, "usable"),
    ]


def test_e820_range_update_and_remove() -> None:
    table = [(0, 0x100000, "usable"), (0x100000, 0x200000, "reserved")]
    assert e820__range_update(table, 0x1000, 0x1000, "usable", "reserved") == [
        (0, 0x1000, "usable"),
        (0x1000, 0x2000, "reserved"),
        (0x2000, 0x100000, "usable"),
        (0x100000, 0x200000, "reserved"),
    ]
    # only entries of the old type change
    assert e820__range_update(table, 0x100000, 0x1000, "usable", "unusable") == table
    assert e820__range_remove(table, 0x80000, 0x100000, "usable") == [
        (0, 0x80000, "usable"),
        (0x100000, 0x200000, "reserved"),
    ]
    assert e820__range_remove(table, 0x80000, 0x100000) == [
        (0, 0x80000, "usable"),
        (0x180000, 0x200000, "reserved"),
    ]


# ---------------------------------------------------------------------------------------------
# presets

PRESETS = {"tiny", "x86_64-1g", "x86_64-4g", "x86_64-64g", "x86_64-1t", "numa-2node"}


def test_list_presets() -> None:
    assert set(list_presets()) == PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_load_and_configs_copies_match(name: str) -> None:
    cfg = load_preset(name)
    assert cfg.name == name
    assert cfg.max_page_order == 10 and cfg.pageblock_order == 9
    assert cfg.refcount == "baseline" and cfg.min_free_kbytes is None
    assert not cfg.deferred_struct_page_init
    # the user-facing copy in configs/ is the same file
    shipped = (REPO / "buddysim" / "presets" / f"{name}.toml").read_text()
    assert (REPO / "configs" / f"{name}.toml").read_text() == shipped
    assert load_config(REPO / "configs" / f"{name}.toml") == cfg


def test_tiny_memory() -> None:
    cfg = load_preset("tiny")
    # e820 usable [0, 0x9fc00) -> page 0 reserved, trimmed to whole pages -> [0x1000, 0x9f000);
    # usable [1M, 16M) unchanged; one node
    assert cfg.memory_ranges == ((0x1000, 0x9F000, 0), (0x100000, 0x1000000, 0))
    assert cfg.nodes == (0,)
    assert cfg.max_pfn == 0x1000
    assert (cfg.zones.dma, cfg.zones.dma32) == (4 * M, 8 * M)
    assert cfg.nr_cpus == 2


def test_numa_2node_memory() -> None:
    cfg = load_preset("numa-2node")
    # node 0 spans [0, 2G); node 1 [2G, 3G) and [4G, 5G); QEMU RAM ends at 3G - 128K below the hole
    assert cfg.memory_ranges == (
        (0x1000, 0x9F000, 0),
        (0x100000, 0x80000000, 0),
        (0x80000000, 0xBFFE0000, 1),
        (0x100000000, 0x140000000, 1),
    )
    assert cfg.nodes == (0, 1)


def test_1t_preset_is_a_terabyte_with_16g_of_memmap() -> None:
    cfg = load_preset("x86_64-1t")
    assert cfg.nodes == (0, 1)
    pages = sum(e - s for s, e, _ in cfg.memory_ranges) >> 12
    # [0x1000, 0x9f000) + [1M, 0x6f6b0000) + [4G, 1T + 2G)
    assert pages == 0x9E + (0x6F6B0 - 0x100) + (0x10080000 - 0x100000) == 268367438
    memmap = sum(r.limit - r.start for r in cfg.reserved if r.name.startswith("memmap"))
    # 2 MiB per present 128 MiB section: node 0 has 14 low + 4080 high sections, node 1 4096
    assert memmap == (14 + 4080 + 4096) * 2 * M == 16380 * M


def test_1t_preset_loads_fast() -> None:
    load_preset("tiny")  # warm the pydantic validators
    t = time.perf_counter()
    cfg = load_preset("x86_64-1t")
    _ = cfg.memory_ranges
    assert time.perf_counter() - t < 1.0


def test_resolve_config(tmp_path: Path) -> None:
    assert resolve_config("tiny").name == "tiny"
    assert resolve_config(REPO / "configs" / "example.toml").name == "example"
    with pytest.raises(BadInput, match=r"no config file and no preset named 'tinyy'.*x86_64-4g"):
        resolve_config("tinyy")
    with pytest.raises(BadInput, match="no such config file"):
        resolve_config(tmp_path / "missing.toml")
    with pytest.raises(BadInput, match="unknown preset 'nope'"):
        load_preset("nope")


def test_example_config() -> None:
    cfg = load_config(REPO / "configs" / "example.toml")
    assert cfg.memory_ranges == ((0x1000, 0x9F000, 0), (0x100000, 0x80000000, 0))
    assert cfg.zones.movablecore_spec is not None
    assert cfg.zones.movablecore_spec.pages == (512 * M) >> 12
    assert [r.name for r in cfg.reserved] == ["low 1M", "kernel", "memmap"]
    assert (cfg.reserved[1].start, cfg.reserved[1].limit) == (16 * M, 50 * M)


def test_config_is_frozen() -> None:
    cfg = load_preset("tiny")
    with pytest.raises(Exception, match="frozen"):
        cfg.nr_cpus = 4  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# validation errors: file, line, key path and what was expected

BASE = """name = "t"

[[memory]]
start = "0x1000"
end = "0x9f000"

[[memory]]
start = "1M"
size = "63M"
"""


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "machine.toml"
    path.write_text(text)
    with pytest.raises(BadInput) as e:
        load_config(path)
    return str(e.value).replace(str(path), "machine.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "foo = 1\n" + BASE,
            "machine.toml:1: foo: unknown key 'foo'; expected one of: name, description, nr_cpus",
        ),
        (
            BASE + '\n[[memory]]\nstart = "64M"\nsize = 4096\nbogus = 1\n',
            "machine.toml:14: memory[2].bogus: unknown key 'bogus'; expected one of: start, end, size, nid",
        ),
        (
            BASE + '\n[[memory]]\nstart = "32M"\nsize = "64M"\n',
            "machine.toml:11: memory[2]: [0x2000000-0x6000000) overlaps memory[1] [0x100000-0x4000000)",
        ),
        (
            BASE + '\n[[reserved]]\nname = "bios"\nstart = "0xa0000"\nsize = "64K"\n',
            "machine.toml:11: reserved[0]: 'bios' [0xa0000-0xb0000) lies outside memory",
        ),
        (
            BASE + '\n[[reserved]]\nname = "x"\nstart = "60M"\nsize = "8M"\n',
            "machine.toml:14: reserved[0].size: 'x' [0x3c00000-0x4400000) ends beyond the end of memory",
        ),
        (
            BASE + '\n[zones]\ndma = "3M"\n',
            "machine.toml:12: zones.dma: 0x300000 is not aligned to MAX_ORDER_NR_PAGES (1024 pages = 4M)",
        ),
        (
            BASE + '\n[zones]\ndma = "8M"\ndma32 = "4M"\n',
            "machine.toml:12: zones.dma: ZONE_DMA limit 0x800000 is above the ZONE_DMA32 limit 0x400000",
        ),
        ("pageblock_order = 11\n" + BASE, "machine.toml:1: pageblock_order: 11 is above max_page_order (10)"),
        (
            'name = "t"\n[[memory]]\nstart = 0\nsize = "4X"\n',
            "machine.toml:4: memory[0].size: '4X': expected a byte count: an integer, a hex string like \"0x100000\"",
        ),
        (
            'name = "t"\n[[memory]]\nstart = 0\nsize = "4M"\nend = "4M"\n',
            "machine.toml:2: memory[0]: give exactly one of end",
        ),
        (
            'name = "t"\n[[memory]]\nstart = "8M"\nend = "4M"\n',
            "machine.toml:2: memory[0]: empty range [0x800000-0x400000)",
        ),
        (
            BASE + '\n[zones]\nkernelcore = "mirror"\n',
            "machine.toml:12: zones.kernelcore: kernelcore=mirror (mirrored memory) is not modelled",
        ),
        (
            'refcount = "nope"\n' + BASE,
            "machine.toml:1: refcount: unknown refcount model 'nope'; expected one of baseline",
        ),
        ('sites = "nope"\n' + BASE, "machine.toml:1: sites: unknown site table 'nope'"),
        ('[[memory]]\nstart = 0\nsize = "4M"\n', "machine.toml: name: missing required key"),
        (
            'name = "t"\n[[memory]]\nstart = "0x1800"\nsize = "4M"\n',
            "machine.toml:3: memory[0].start: [0x1800-0x401800) is not page aligned",
        ),
        ('name = "t"\n[[memory]\nstart = 0\n', "machine.toml:2: invalid TOML"),
        (
            'name = "t"\n[[e820]]\nstart = 0\nend = "128M"\n[[numa]]\nnid = 0\nstart = 0\nend = "64M"\n',
            "machine.toml:2: e820[0]: usable RAM at 0x4000000 is not inside any [[numa]] node span",
        ),
        (
            BASE + '\n[[e820]]\nstart = 0\nend = "128M"\n',
            "machine.toml:3: memory: give the memory either as [[memory]]",
        ),
        (
            'name = "t"\n[[memory]]\nstart = 0\nsize = "4M"\n[[numa]]\nnid = 0\nstart = 0\nend = "4M"\n',
            "numa: [[numa]] node spans only apply to an [[e820]] map",
        ),
        ('name = "t"\n', "machine.toml: memory: no memory: expected [[memory]] or [[e820]] ranges"),
        (
            'name = "t"\n[[e820]]\nstart = 0\nend = "128M"\ntype = "ram"\n',
            "machine.toml:5: e820[0].type: unknown e820 type 'ram'; expected one of usable, reserved",
        ),
        (
            'name = "t"\n[[e820]]\nstart = 0\nend = "0x800"\n',
            "machine.toml:2: e820: no usable RAM: after trim_bios_range",
        ),
        (
            'name = "t"\nnr_cpus = 0\n[[memory]]\nstart = 0\nsize = "4M"\n',
            "machine.toml:2: nr_cpus: Input should be greater than or equal to 1",
        ),
        (
            'name = "t"\nmemory = 5\n',
            "machine.toml:2: memory: expected an array of tables ([[memory]]), got int",
        ),
        (
            'name = "t"\nzones = 5\n[[memory]]\nstart = 0\nsize = "4M"\n',
            "machine.toml:2: zones: expected a table, got int",
        ),
        (
            'name = "t"\n[[memory]]\nstart = 0\nsize = "4M"\nnid = 1024\n',
            "machine.toml:5: memory[0].nid: Input should be less than 1024",
        ),
    ],
)
def test_validation_errors(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _error(tmp_path, text)


def test_several_errors_are_summarised(tmp_path: Path) -> None:
    msg = _error(
        tmp_path, 'name = "t"\nnr_cpus = 0\nmax_page_order = 0\n[[memory]]\nstart = 0\nsize = "4M"\n'
    )
    assert msg.startswith(
        "machine.toml:2: nr_cpus: Input should be greater than or equal to 1; also max_page_order:"
    )


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="is a directory"):
        load_config(tmp_path)
    p = tmp_path / "bin.toml"
    p.write_bytes(b'name = "\xff\xfe"\n')
    with pytest.raises(BadInput, match="not UTF-8"):
        load_config(p)


def test_model_validate_without_file_raises_badinput_with_key() -> None:
    with pytest.raises(BadInput, match=r"^<config>: pageblock_order: 11 is above"):
        from buddysim.config import config_from_dict

        config_from_dict({"name": "x", "pageblock_order": 11, "memory": [{"start": 0, "size": 4096}]})
    # a direct model_validate still names the key (ConfigError is a BadInput)
    with pytest.raises(BadInput) as e:
        Config.model_validate(
            {"name": "x", "memory": [{"start": 0, "size": 4096}, {"start": 0, "size": 4096}]}
        )
    assert e.value.field == "memory[1]"
