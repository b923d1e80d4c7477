"""Report series: an engine sampled over event time, aggregated once into plain numbers.

A :class:`Sampler` subscribes to an :class:`~buddysim.engine.Engine` and reads its view
(:meth:`Engine.view`, the same counts ``buddysim replay`` prints) every ``every`` events: per zone,
free blocks per order, free pages per migratetype, pcp pages per CPU, managed and free pages and
the watermarks; at every ``mark`` event and at the end it also takes a pageblock map
(:mod:`buddysim.report.pageblock_map`). The trace length is not known while streaming, so the
interval adapts: it starts at ``every`` (default 1) and, whenever more than ``max_points`` samples
are held, doubles and drops every other sample. The samples kept are always exactly the events
whose index is a multiple of the final interval (plus event 0, before the first event, and the
final state), so memory stays flat whatever the trace length: a 10M-event trace ends with
between ``max_points / 2`` and ``max_points`` points.

:func:`report_data` turns the samplers into one JSON-able dict (column-oriented series, the
fragmentation indices of every order computed with mm/vmstat.c's own formulas, findings,
marks, pageblock maps, the first divergence between models); :func:`csv_tables` and
:func:`write_data_dir` give the same numbers as CSV and JSON files, so every plot of the HTML
report (:mod:`buddysim.report.html`) can be redrawn from them. Nothing here produces HTML.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from buddysim.engine import Engine, EngineView
from buddysim.errors import BadInput
from buddysim.mm import vmstat
from buddysim.mm.mmzone import MIGRATE_TYPES, PAGE_ALLOC_COSTLY_ORDER, migratetype_names
from buddysim.report.pageblock_map import DEFAULT_MAX_CELLS, pageblock_snapshot

__all__ = [
    "DATA_FILES",
    "DEFAULT_MAX_MAPS",
    "DEFAULT_MAX_POINTS",
    "MAX_FINDING_EVENTS",
    "MAX_TABLE_FINDINGS",
    "SCHEMA_VERSION",
    "Sampler",
    "check_data_dir",
    "csv_tables",
    "default_index_orders",
    "dumps_json",
    "report_data",
    "write_data_dir",
]

SCHEMA_VERSION = 1
#: samples held before the interval doubles (a 10M-event trace keeps 2000..4000 points)
DEFAULT_MAX_POINTS = 4000
#: pageblock maps taken at ``mark`` events (later marks are listed, not mapped)
DEFAULT_MAX_MAPS = 16
#: findings listed one by one in report.json (findings.csv has every finding the machine kept)
MAX_TABLE_FINDINGS = 1000
#: distinct finding events kept for the time-axis markers
MAX_FINDING_EVENTS = 5000

# the kernel names start with "__": looked up once here, so no method body mangles them
_frag_index = getattr(vmstat, "__fragmentation_index")
_unusable_index = getattr(vmstat, "__unusable_free_index")


def default_index_orders(pageblock_order: int) -> list[int]:
    """PAGE_ALLOC_COSTLY_ORDER and pageblock_order (the THP order on x86-64)."""
    return sorted({PAGE_ALLOC_COSTLY_ORDER, pageblock_order})


@dataclass(frozen=True, slots=True)
class _ZoneSample:
    managed: int
    nr_free: int
    free_per_order: tuple[int, ...]
    free_pages_per_mt: tuple[int, ...]
    pcp: tuple[int, ...]
    wmarks: tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class _Row:
    event: int
    nr_findings: int
    zones: tuple[tuple[tuple[int, str], _ZoneSample], ...]


def _row(view: EngineView) -> _Row:
    zones = []
    for z in view.zones:
        mt_pages = tuple(sum(n << o for o, n in enumerate(per_order)) for per_order in z.free_per_mt)
        zones.append(
            (
                (z.nid, z.name),
                _ZoneSample(
                    z.managed,
                    z.nr_free_pages,
                    z.free_per_order,
                    mt_pages,
                    z.pcp_count,
                    (z.watermarks[0], z.watermarks[1], z.watermarks[2]),
                ),
            )
        )
    return _Row(view.event_index, view.nr_findings, tuple(zones))


class Sampler:
    """Samples one engine every ``every`` events (doubling past ``max_points``); see the module.

    Attach before the first step: ``s = Sampler(engine)``; step the engine; then ``s.finish()``
    after :meth:`Engine.finish` to add the final state and the end-of-trace pageblock map.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        every: int = 1,
        max_points: int = DEFAULT_MAX_POINTS,
        max_maps: int = DEFAULT_MAX_MAPS,
        max_cells: int = DEFAULT_MAX_CELLS,
    ) -> None:
        if every < 1 or max_points < 4:
            raise ValueError("every must be >= 1 and max_points >= 4")
        self.engine = engine
        self.every = every
        self.max_points = max_points
        self.max_maps = max_maps
        self.max_cells = max_cells
        self.rows: list[_Row] = [_row(engine.view(findings_tail=0))]
        self.marks: list[tuple[str, int]] = []
        self.maps: list[dict[str, Any]] = []
        self.nr_decimations = 0
        self._next = engine.index + every
        self._finished = False
        engine.subscribe(self._on_event)

    def _on_event(self, engine: Engine, event: dict[str, Any]) -> None:
        if event["op"] == "mark":
            self._mark(engine, event)
        if engine.index >= self._next:
            self._sample(engine)

    def _mark(self, engine: Engine, event: dict[str, Any]) -> None:
        label = str(event["label"])
        self.marks.append((label, engine.index))
        if len(self.maps) < self.max_maps and engine.mm.handoff_done:
            self.maps.append(pageblock_snapshot(engine.mm, label, engine.index, self.max_cells))

    def _sample(self, engine: Engine) -> None:
        self.rows.append(_row(engine.view(findings_tail=0)))
        if len(self.rows) > self.max_points:
            # keep the multiples of the doubled interval: rows are 0, N, 2N, ... so every other one
            self.rows = self.rows[::2]
            self.every *= 2
            self.nr_decimations += 1
        self._next = (engine.index // self.every + 1) * self.every

    def finish(self) -> None:
        """The final state (replacing a sample of the same event) and the end pageblock map."""
        if self._finished:
            return
        self._finished = True
        e = self.engine
        final = _row(e.view(findings_tail=0))
        if self.rows and self.rows[-1].event == final.event:
            self.rows[-1] = final
        else:
            self.rows.append(final)
        self.maps.append(pageblock_snapshot(e.mm, "end", e.index, self.max_cells))

    @property
    def events(self) -> list[int]:
        return [r.event for r in self.rows]


# ---------------------------------------------------------------------------- aggregation


def _indices(free_per_order: Sequence[int], max_order: int) -> tuple[list[int], list[int]]:
    """(unusable free space index, fragmentation index) ×1000 at every order, from nr_free per
    order, with mm/vmstat.c's own functions on what ``fill_contig_page_info()`` would gather
    (``free_blocks_suitable(j) = n_j + 2·free_blocks_suitable(j+1)``, computed top-down)."""
    free_pages = sum(n << o for o, n in enumerate(free_per_order))
    blocks_total = sum(free_per_order)
    unusable = [0] * len(free_per_order)
    extfrag = [0] * len(free_per_order)
    suitable = 0
    for order in range(len(free_per_order) - 1, -1, -1):
        suitable = free_per_order[order] + 2 * suitable
        info = vmstat.contig_page_info(free_pages, blocks_total, suitable)
        unusable[order] = _unusable_index(order, info)
        extfrag[order] = _frag_index(order, info, max_order)
    return unusable, extfrag


def _run_data(s: Sampler, index_orders: Sequence[int]) -> dict[str, Any]:
    mm = s.engine.mm
    nr_orders = mm.NR_PAGE_ORDERS
    max_order = nr_orders - 1
    rows = s.rows
    keys: list[tuple[int, str]] = []
    meta: dict[tuple[int, str], Any] = {}
    for r in rows:
        for k, _zs in r.zones:
            if k not in meta:
                keys.append(k)
                meta[k] = None
    by_key = {(z.node, z.name): z for z in mm.zones}
    zones = []
    nr_cpus = mm.nr_cpus
    empty = _ZoneSample(0, 0, (0,) * nr_orders, (0,) * MIGRATE_TYPES, (0,) * nr_cpus, (0, 0, 0))
    for key in keys:
        samples = [dict(r.zones).get(key, empty) for r in rows]
        blocks = [[zs.free_per_order[o] for zs in samples] for o in range(nr_orders)]
        per_sample = [_indices(zs.free_per_order, max_order) for zs in samples]
        unusable_all = [[u[o] for u, _f in per_sample] for o in range(nr_orders)]
        extfrag_all = [[f[o] for _u, f in per_sample] for o in range(nr_orders)]
        z = by_key.get(key)
        zones.append(
            {
                "node": key[0],
                "zone": key[1],
                "start_pfn": z.zone_start_pfn if z is not None else None,
                "spanned": z.spanned_pages if z is not None else None,
                "present": z.present_pages if z is not None else None,
                "managed": [zs.managed for zs in samples],
                "nr_free_pages": [zs.nr_free for zs in samples],
                "watermarks": {
                    name: [zs.wmarks[i] for zs in samples] for i, name in enumerate(("min", "low", "high"))
                },
                "free_blocks_per_order": blocks,
                "free_pages_per_order": [[n << o for n in blocks[o]] for o in range(nr_orders)],
                "free_pages_per_migratetype": {
                    migratetype_names[mt]: [zs.free_pages_per_mt[mt] for zs in samples]
                    for mt in range(MIGRATE_TYPES)
                },
                "pcp_pages_per_cpu": [[zs.pcp[c] for zs in samples] for c in range(nr_cpus)],
                "unusable_index": {str(o): unusable_all[o] for o in index_orders},
                "extfrag_index": {str(o): extfrag_all[o] for o in index_orders},
                "unusable_index_per_order": unusable_all,
                "extfrag_index_per_order": extfrag_all,
            }
        )
    events = Counter(f.event for f in mm.findings if f.event is not None)
    finding_events = sorted(events.items())
    return {
        "model": mm.refs.name,
        "kernel": mm.refs.kernel,
        "sites": mm.sites.name,
        "events": s.engine.index,
        "every": s.every,
        "decimations": s.nr_decimations,
        "sample_events": [r.event for r in rows],
        "nr_findings": [r.nr_findings for r in rows],
        "nr_findings_total": mm.nr_findings,
        "findings_kept": len(mm.findings),
        "findings": [f.as_dict() for f in mm.findings[:MAX_TABLE_FINDINGS]],
        "finding_events": [list(x) for x in finding_events[:MAX_FINDING_EVENTS]],
        "finding_events_truncated": len(finding_events) > MAX_FINDING_EVENTS,
        "marks": [list(m) for m in s.marks],
        "pageblock_maps": s.maps,
        "zones": zones,
        "verdict": "findings" if mm.nr_findings else "clean",
    }


def report_data(
    samplers: Sequence[Sampler],
    *,
    trace: str,
    header: dict[str, Any],
    index_orders: Sequence[int],
    divergence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the report shows, as plain JSON-able data (no timing: stable for golden files)."""
    mm = samplers[0].engine.mm
    runs = [_run_data(s, index_orders) for s in samplers]
    return {
        "schema_version": SCHEMA_VERSION,
        "trace": trace,
        "seed": header.get("seed"),
        "source": header.get("source"),
        "machine": mm.layout.name,
        "nr_cpus": mm.nr_cpus,
        "max_page_order": mm.NR_PAGE_ORDERS - 1,
        "pageblock_order": mm.pageblock_order,
        "migratetypes": list(migratetype_names),
        "index_orders": list(index_orders),
        "models": [r["model"] for r in runs],
        "events": samplers[0].engine.index,
        "every": samplers[0].every,
        "max_points": samplers[0].max_points,
        "divergence": divergence,
        "verdict": "findings" if any(r["nr_findings_total"] for r in runs) else "clean",
        "runs": runs,
    }


# ---------------------------------------------------------------------------- files


def dumps_json(data: Any) -> str:
    """Sorted, compact JSON (stable for golden files)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def _zone_rows(data: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any], int, int]]:
    """(model, run, zone, sample position, event) for every sample of every zone."""
    out = []
    for run in data["runs"]:
        for z in run["zones"]:
            for i, ev in enumerate(run["sample_events"]):
                out.append((run["model"], run, z, i, ev))
    return out


def csv_tables(data: dict[str, Any]) -> dict[str, list[list[Any]]]:
    """The numbers behind each plot as tables (header row first), keyed by file name."""
    orders = range(data["max_page_order"] + 1)
    mts = data["migratetypes"]
    ncpu = data["nr_cpus"]
    key = ["model", "node", "zone", "event"]
    t: dict[str, list[list[Any]]] = {
        "free_per_order.csv": [key + [f"blocks_o{o}" for o in orders] + [f"pages_o{o}" for o in orders]],
        "free_per_migratetype.csv": [key + list(mts)],
        "fragmentation.csv": [key + [f"unusable_o{o}" for o in orders] + [f"extfrag_o{o}" for o in orders]],
        "pcp.csv": [key + [f"cpu{c}" for c in range(ncpu)]],
        "managed_free.csv": [[*key, "managed", "nr_free_pages", "wmark_min", "wmark_low", "wmark_high"]],
        "findings_over_time.csv": [["model", "event", "nr_findings"]],
        "findings.csv": [
            [
                "model",
                "event",
                "kind",
                "function",
                "check",
                "pfn",
                "order",
                "raw_before",
                "raw_after",
                "count",
                "chain",
                "message",
            ]
        ],
        "marks.csv": [["model", "label", "event"]],
        "pageblocks.csv": [
            [
                "model",
                "label",
                "event",
                "node",
                "zone",
                "cell",
                "first_pfn",
                "pageblocks",
                "migratetype",
                "free_fraction",
                "reserved_fraction",
                "majority_share",
            ]
        ],
    }
    for model, _run, z, i, ev in _zone_rows(data):
        k = [model, z["node"], z["zone"], ev]
        t["free_per_order.csv"].append(
            k
            + [z["free_blocks_per_order"][o][i] for o in orders]
            + [z["free_pages_per_order"][o][i] for o in orders]
        )
        t["free_per_migratetype.csv"].append(k + [z["free_pages_per_migratetype"][m][i] for m in mts])
        t["fragmentation.csv"].append(
            k
            + [z["unusable_index_per_order"][o][i] for o in orders]
            + [z["extfrag_index_per_order"][o][i] for o in orders]
        )
        t["pcp.csv"].append(k + [z["pcp_pages_per_cpu"][c][i] for c in range(ncpu)])
        w = z["watermarks"]
        t["managed_free.csv"].append(
            [*k, z["managed"][i], z["nr_free_pages"][i], w["min"][i], w["low"][i], w["high"][i]]
        )
    for run in data["runs"]:
        model = run["model"]
        for ev, n in zip(run["sample_events"], run["nr_findings"], strict=True):
            t["findings_over_time.csv"].append([model, ev, n])
        for f in run["findings"]:
            t["findings.csv"].append(
                [
                    model,
                    f["event"],
                    f["kind"],
                    f["function"],
                    f["check"],
                    f["pfn"],
                    f["order"],
                    f["raw_before"],
                    f["raw_after"],
                    f["count"],
                    " > ".join(f["chain"]),
                    f["message"],
                ]
            )
        for label, ev in run["marks"]:
            t["marks.csv"].append([model, label, ev])
        for m in run["pageblock_maps"]:
            for z in m["zones"]:
                per = z["pageblocks_per_cell"]
                for c, mt in enumerate(z["migratetype"]):
                    t["pageblocks.csv"].append(
                        [
                            model,
                            m["label"],
                            m["event"],
                            z["node"],
                            z["zone"],
                            c,
                            z["first_pfn"] + c * per * (1 << data["pageblock_order"]),
                            per,
                            mts[mt],
                            z["free_fraction"][c],
                            z["reserved_fraction"][c],
                            z["majority_share"][c],
                        ]
                    )
    return t


#: the files :func:`write_data_dir` writes
DATA_FILES = (
    "report.json",
    "free_per_order.csv",
    "free_per_migratetype.csv",
    "fragmentation.csv",
    "pcp.csv",
    "managed_free.csv",
    "findings_over_time.csv",
    "findings.csv",
    "marks.csv",
    "pageblocks.csv",
)


def _csv_text(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return buf.getvalue()


def check_data_dir(path: str, force: bool) -> None:
    """Refuse to overwrite data files without ``force`` (BadInput, exit 2)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise BadInput("exists and is not a directory", where=path)
    clash = [f for f in DATA_FILES if os.path.exists(os.path.join(path, f))]
    if clash and not force:
        raise BadInput(f"holds {clash[0]} already; pass --force to overwrite", where=path)


def write_data_dir(data: dict[str, Any], path: str) -> list[str]:
    """Write report.json and the CSV tables into ``path`` (created); returns the files written."""
    try:
        os.makedirs(path, exist_ok=True)
        written = []
        target = os.path.join(path, "report.json")
        with open(target, "w", encoding="utf-8") as f:
            f.write(dumps_json(data) + "\n")
        written.append(target)
        for name, rows in csv_tables(data).items():
            target = os.path.join(path, name)
            with open(target, "w", encoding="utf-8", newline="") as f:
                f.write(_csv_text(rows))
            written.append(target)
    except OSError as e:
        raise BadInput(f"cannot write the data files: {e.strerror or e}", where=path) from None
    return written
