"""buddysim.trace.events: every op from a hand-written line, the cross-field rules, the schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from buddysim.trace import events as E
from buddysim.trace.events import (
    EVENT_ADAPTER,
    FORMAT_VERSION,
    HEADER_ADAPTER,
    OPS,
    REF_OPS,
    SUPPORTED_VERSIONS,
    event_json_schema,
    register_page_ref_function,
    trace_json_schema,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "trace-format.md"

# (line as a trace writes it, the dict the engine receives)
GOOD: list[tuple[str, dict[str, Any]]] = [
    # the recorded-only ops (buddysim import ftrace; directed replay)
    (
        '{"op":"mm_page_alloc_zone_locked","pfn":4096,"order":0,"migratetype":"Movable","percpu_refill":true,"cpu":1}',
        {
            "op": "mm_page_alloc_zone_locked",
            "pfn": 4096,
            "order": 0,
            "migratetype": "Movable",
            "percpu_refill": True,
            "cpu": 1,
        },
    ),
    (
        '{"op":"mm_page_pcpu_drain","pfn":4097,"order":0,"migratetype":"Unmovable"}',
        {"op": "mm_page_pcpu_drain", "pfn": 4097, "order": 0, "migratetype": "Unmovable"},
    ),
    (
        '{"op":"mm_page_alloc_extfrag","pfn":8192,"alloc_order":0,"fallback_order":9,'
        '"alloc_migratetype":"Unmovable","fallback_migratetype":"Movable","change_ownership":true}',
        {
            "op": "mm_page_alloc_extfrag",
            "pfn": 8192,
            "alloc_order": 0,
            "fallback_order": 9,
            "alloc_migratetype": "Unmovable",
            "fallback_migratetype": "Movable",
            "change_ownership": True,
        },
    ),
    (
        '{"op":"mm_page_free_batched","pfn":12345}',
        {"op": "mm_page_free_batched", "pfn": 12345},
    ),
    (
        '{"op":"memblock_add","base":0,"size":4294967296,"nid":1}',
        {"op": "memblock_add", "base": 0, "size": 4294967296, "nid": 1},
    ),
    (
        '{"op":"memblock_reserve","base":4096,"size":8192}',
        {"op": "memblock_reserve", "base": 4096, "size": 8192},
    ),
    (
        '{"op":"memblock_phys_free","base":16777216,"size":65536}',
        {"op": "memblock_phys_free", "base": 16777216, "size": 65536},
    ),
    (
        '{"op":"memblock_phys_alloc_range","size":65536,"align":4096,"start":0,"end":16777216}',
        {"op": "memblock_phys_alloc_range", "size": 65536, "align": 4096, "start": 0, "end": 16777216},
    ),
    ('{"op":"memblock_free_all"}', {"op": "memblock_free_all"}),
    (
        '{"op":"online_pages","start_pfn":1048576,"nr_pages":32768,"online_type":"online_movable"}',
        {"op": "online_pages", "start_pfn": 1048576, "nr_pages": 32768, "online_type": "online_movable"},
    ),
    (
        '{"op":"alloc_pages","order":3,"gfp":"GFP_KERNEL|__GFP_COMP","cpu":2,"handle":"a"}',
        {"op": "alloc_pages", "order": 3, "gfp": 0x40CC0, "cpu": 2, "handle": "a"},
    ),
    (
        '{"op":"alloc_pages","order":0,"gfp":"0x140cca","pfn":1193523}',
        {"op": "alloc_pages", "order": 0, "gfp": 0x140CCA, "pfn": 1193523},
    ),
    (
        '{"op":"alloc_pages","order":9,"gfp":1909962,"nid":1,"pfn":null}',
        {"op": "alloc_pages", "order": 9, "gfp": 0x1D24CA, "nid": 1, "pfn": None},
    ),
    (
        '{"op":"alloc_frozen_pages","order":10,"gfp":"GFP_KERNEL","handle":7}',
        {"op": "alloc_frozen_pages", "order": 10, "gfp": 0xCC0, "handle": 7},
    ),
    ('{"op":"__free_pages","handle":7,"order":2}', {"op": "__free_pages", "order": 2, "handle": 7}),
    (
        '{"op":"free_frozen_pages","pfn":4096,"order":0,"cpu":1}',
        {"op": "free_frozen_pages", "order": 0, "pfn": 4096, "cpu": 1},
    ),
    ('{"op":"put_page","handle":"a"}', {"op": "put_page", "handle": "a"}),
    ('{"op":"get_page","pfn":0}', {"op": "get_page", "pfn": 0}),
    (
        '{"op":"folio_try_get","pfn":4096,"ret":false}',
        {"op": "folio_try_get", "pfn": 4096, "ret": False},
    ),
    ('{"op":"folio_put","handle":9}', {"op": "folio_put", "handle": 9}),
    (
        '{"op":"page_ref","fn":"page_ref_add","handle":2,"nr":1024}',
        {"op": "page_ref", "fn": "page_ref_add", "handle": 2, "nr": 1024},
    ),
    (
        '{"op":"page_ref","fn":"page_ref_freeze","pfn":5,"count":1,"ret":true}',
        {"op": "page_ref", "fn": "page_ref_freeze", "pfn": 5, "count": 1, "ret": True},
    ),
    (
        '{"op":"page_ref","fn":"set_page_count","pfn":5,"v":-2147483648}',
        {"op": "page_ref", "fn": "set_page_count", "pfn": 5, "v": -2147483648},
    ),
    (
        '{"op":"page_ref","fn":"page_ref_dec_return","handle":1,"ret":3}',
        {"op": "page_ref", "fn": "page_ref_dec_return", "handle": 1, "ret": 3},
    ),
    (
        '{"op":"page_frag_alloc","cache":"cpu0","size":1536,"align":64,"gfp":"GFP_ATOMIC","handle":"f1"}',
        {"op": "page_frag_alloc", "cache": "cpu0", "size": 1536, "align": 64, "gfp": 0x820, "handle": "f1"},
    ),
    ('{"op":"page_frag_free","handle":"f1"}', {"op": "page_frag_free", "handle": "f1"}),
    ('{"op":"page_frag_cache_drain","cache":"cpu0"}', {"op": "page_frag_cache_drain", "cache": "cpu0"}),
    ('{"op":"drain_all_pages"}', {"op": "drain_all_pages"}),
    (
        '{"op":"drain_all_pages","cpu":3,"zone":"Normal"}',
        {"op": "drain_all_pages", "cpu": 3, "zone": "Normal"},
    ),
    (
        '{"op":"check","zone":"Normal","free_per_order":[3,1,0,2,1,1,0,1,1,0,254]}',
        {"op": "check", "zone": "Normal", "free_per_order": [3, 1, 0, 2, 1, 1, 0, 1, 1, 0, 254]},
    ),
    (
        '{"op":"check","nr_free":262042,"pcp_count":63,"cpu":0}',
        {"op": "check", "cpu": 0, "nr_free": 262042, "pcp_count": 63},
    ),
    (
        '{"op":"check","handle":2,"raw":4294967295,"count":0,"message":"frozen"}',
        {"op": "check", "handle": 2, "raw": 4294967295, "count": 0, "message": "frozen"},
    ),
    ('{"op":"mark","label":"after-boot"}', {"op": "mark", "label": "after-boot"}),
]


def test_op_list() -> None:
    assert tuple(OPS) == (
        "memblock_add",
        "memblock_reserve",
        "memblock_phys_free",
        "memblock_phys_alloc_range",
        "memblock_free_all",
        "online_pages",
        "alloc_pages",
        "alloc_frozen_pages",
        "__free_pages",
        "free_frozen_pages",
        "put_page",
        "get_page",
        "folio_try_get",
        "folio_put",
        "page_ref",
        "page_frag_alloc",
        "page_frag_free",
        "page_frag_cache_drain",
        "drain_all_pages",
        "mm_page_alloc_zone_locked",
        "mm_page_pcpu_drain",
        "mm_page_alloc_extfrag",
        "mm_page_free_batched",
        "check",
        "mark",
    )
    assert {op for op, _ in ((json.loads(line)["op"], d) for line, d in GOOD)} == set(OPS)
    assert FORMAT_VERSION == 1 and SUPPORTED_VERSIONS == (1,)


@pytest.mark.parametrize(("line", "expected"), GOOD, ids=[json.loads(line)["op"] for line, _ in GOOD])
def test_every_op_parses(line: str, expected: dict[str, Any]) -> None:
    assert EVENT_ADAPTER.validate_json(line) == expected
    assert EVENT_ADAPTER.validate_json(line.encode()) == expected


def _errors(line: str) -> list[tuple[str, tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        EVENT_ADAPTER.validate_json(line)
    return [(e["type"], e["loc"], e["msg"]) for e in info.value.errors(include_url=False)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '{"op":"__free_pages","handle":1,"pfn":2,"order":0}',
            ("page_both", ("__free_pages",), "give exactly one of 'handle' or 'pfn', not both"),
        ),
        ('{"op":"put_page"}', ("page_missing", ("put_page",), "the page is missing: give 'handle' or 'pfn'")),
        (
            '{"op":"page_frag_free","handle":"f","pfn":1}',
            ("page_both", ("page_frag_free",), "give exactly one of 'handle' or 'pfn', not both"),
        ),
        (
            '{"op":"check","handle":1}',
            ("check_page", ("check",), "'handle'/'pfn' only go with a 'raw' or 'count' assertion"),
        ),
        (
            '{"op":"check","zone":"Normal"}',
            (
                "check_empty",
                ("check",),
                "a check needs at least one of free_per_order, nr_free, pcp_count, raw, count",
            ),
        ),
        (
            '{"op":"check","raw":1}',
            ("page_missing", ("check",), "the page is missing: give 'handle' or 'pfn'"),
        ),
        (
            '{"op":"page_ref","fn":"page_ref_ad","pfn":1,"nr":1}',
            (
                "page_ref_fn",
                ("page_ref",),
                "unknown page_ref function 'page_ref_ad' (did you mean 'page_ref_add'?)",
            ),
        ),
        (
            '{"op":"page_ref","fn":"page_ref_add","pfn":1}',
            ("page_ref_args", ("page_ref",), "page_ref_add() takes one argument, 'nr'; got none"),
        ),
        (
            '{"op":"page_ref","fn":"page_ref_freeze","pfn":1,"nr":1}',
            ("page_ref_args", ("page_ref",), "page_ref_freeze() takes one argument, 'count'; got nr"),
        ),
        (
            '{"op":"page_ref","fn":"page_ref_inc","pfn":1,"v":1}',
            ("page_ref_args", ("page_ref",), "page_ref_inc() takes no argument, got v"),
        ),
        (
            '{"op":"alloc_pages","order":0,"gfp":"GFP_KERNL"}',
            (
                "gfp_flags",
                ("alloc_pages", "gfp"),
                "unknown gfp flag 'GFP_KERNL' (did you mean 'GFP_KERNEL'?)",
            ),
        ),
        (
            '{"op":"alloc_pages","order":0,"gfp":-1}',
            (
                "gfp_type",
                ("alloc_pages", "gfp"),
                "gfp must be flag names like 'GFP_KERNEL|__GFP_COMP', a hex string like '0x140cca', "
                "or an integer 0..2^32-1",
            ),
        ),
        (
            '{"op":"get_page","handle":""}',
            (
                "handle_type",
                ("get_page", "handle"),
                "handle must be an integer 0..2^63-1 or a string of 1 to 128 characters",
            ),
        ),
        (
            '{"op":"page_frag_alloc","cache":"c","size":8,"align":48,"gfp":0}',
            ("align_power_of_two", ("page_frag_alloc", "align"), "align must be a power of two, got 48"),
        ),
        (
            '{"op":"alloc_pages","order":11,"gfp":0}',
            ("less_than_equal", ("alloc_pages", "order"), "Input should be less than or equal to 10"),
        ),
        (
            '{"op":"alloc_pages","order":"3","gfp":0}',
            ("int_type", ("alloc_pages", "order"), "Input should be a valid integer"),
        ),
        (
            '{"op":"alloc_pages","order":3.0,"gfp":0}',
            ("int_type", ("alloc_pages", "order"), "Input should be a valid integer"),
        ),
        (
            '{"op":"alloc_pages","order":true,"gfp":0}',
            ("int_type", ("alloc_pages", "order"), "Input should be a valid integer"),
        ),
        (
            '{"op":"mark","label":"x","color":1}',
            ("extra_forbidden", ("mark", "color"), "Extra inputs are not permitted"),
        ),
        (
            '{"op":"drain_all_pages","zone":"normal"}',
            (
                "literal_error",
                ("drain_all_pages", "zone"),
                "Input should be 'DMA', 'DMA32', 'Normal' or 'Movable'",
            ),
        ),
        (
            '{"op":"check","free_per_order":[1,-1]}',
            (
                "greater_than_equal",
                ("check", "free_per_order", 1),
                "Input should be greater than or equal to 0",
            ),
        ),
        (
            '{"op":"get_page","pfn":1099511627776}',
            ("less_than", ("get_page", "pfn"), "Input should be less than 1099511627776"),
        ),
    ],
)
def test_field_errors(line: str, expected: tuple[str, tuple[Any, ...], str]) -> None:
    assert _errors(line) == [expected]


def test_ref_ops_need_exactly_one_page() -> None:
    assert REF_OPS == {
        "__free_pages",
        "free_frozen_pages",
        "put_page",
        "get_page",
        "folio_try_get",
        "folio_put",
        "page_ref",
        "page_frag_free",
    }
    for op in REF_OPS:
        extra = {"__free_pages": ',"order":0', "free_frozen_pages": ',"order":0'}.get(op, "")
        if op == "page_ref":
            extra = ',"fn":"get_page"'
        assert _errors(f'{{"op":"{op}"{extra}}}')[0][0] == "page_missing"
        assert _errors(f'{{"op":"{op}","handle":1,"pfn":1{extra}}}')[0][0] == "page_both"


def test_allocations_may_carry_handle_and_observed_pfn() -> None:
    line = '{"op":"alloc_pages","order":0,"gfp":"GFP_KERNEL","handle":1,"pfn":77}'
    assert EVENT_ADAPTER.validate_json(line) == {
        "op": "alloc_pages",
        "order": 0,
        "gfp": 0xCC0,
        "handle": 1,
        "pfn": 77,
    }
    assert EVENT_ADAPTER.validate_json('{"op":"alloc_pages","order":0,"gfp":0}')["gfp"] == 0


def test_unknown_and_missing_op() -> None:
    assert _errors('{"op":"frobnicate"}')[0][0] == "union_tag_invalid"
    assert _errors('{"order":1}')[0][0] == "union_tag_not_found"
    assert _errors('{"op":"header","version":1,"machine":"x"}')[0][0] == "union_tag_invalid"


def test_header() -> None:
    header = HEADER_ADAPTER.validate_json(
        '{"op":"header","version":1,"machine":{"nodes":[{"memory":"4G"}]},"refcount":"final",'
        '"sites":null,"seed":42,"source":"hand","meta":{"k":[1]}}'
    )
    assert header == {
        "op": "header",
        "version": 1,
        "machine": {"nodes": [{"memory": "4G"}]},
        "refcount": "final",
        "sites": None,
        "seed": 42,
        "source": "hand",
        "meta": {"k": [1]},
    }
    with pytest.raises(ValidationError) as info:
        HEADER_ADAPTER.validate_json('{"op":"header","version":1,"machine":5}')
    assert [(e["type"], e["loc"]) for e in info.value.errors()] == [("machine_type", ("machine",))]


def test_register_page_ref_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(E, "PAGE_REF_FUNCTIONS", dict(E.PAGE_REF_FUNCTIONS))
    line = '{"op":"page_ref","fn":"page_ref_pin","pfn":3,"nr":1}'
    assert _errors(line)[0][0] == "page_ref_fn"
    register_page_ref_function("page_ref_pin", "nr")
    assert EVENT_ADAPTER.validate_json(line)["fn"] == "page_ref_pin"
    with pytest.raises(ValueError, match="arg must be one of"):
        register_page_ref_function("x", "val")  # type: ignore[arg-type]


def test_gfp_strings_are_cached_not_reparsed() -> None:
    a = EVENT_ADAPTER.validate_json('{"op":"alloc_pages","order":0,"gfp":"GFP_NOWAIT|__GFP_COMP"}')
    b = EVENT_ADAPTER.validate_json('{"op":"alloc_pages","order":0,"gfp":"GFP_NOWAIT|__GFP_COMP"}')
    assert a["gfp"] == b["gfp"] == 0x42800
    assert E._gfp_cache["GFP_NOWAIT|__GFP_COMP"] == 0x42800


def test_json_schema() -> None:
    events = event_json_schema()
    assert events["discriminator"]["propertyName"] == "op"
    assert set(events["discriminator"]["mapping"]) == set(OPS)
    alloc = events["$defs"]["AllocPages"]
    assert alloc["additionalProperties"] is False
    assert alloc["required"] == ["op", "order", "gfp"]
    assert alloc["properties"]["order"]["maximum"] == 10
    full = trace_json_schema()
    assert full["title"] == "buddysim trace line (format version 1)"
    assert full["$defs"]["Header"]["required"] == ["op", "version", "machine"]
    json.dumps(full)  # serialisable


def test_doc_examples_parse() -> None:
    """Every example line in docs/trace-format.md is valid (the doc cannot drift from the code)."""
    text = DOC.read_text()
    blocks = re.findall(r"```\n(.*?)```", text, flags=re.S)
    lines = [ln for block in blocks for ln in block.splitlines() if ln.startswith('{"op"')]
    ops = set()
    for line in lines:
        op = json.loads(line)["op"]
        if op == "header":
            HEADER_ADAPTER.validate_json(line)
        else:
            ops.add(EVENT_ADAPTER.validate_json(line)["op"])
    assert ops == set(OPS), f"ops without an example in the doc: {set(OPS) - ops}"
    for op in OPS:
        assert f"`{op}`" in text
