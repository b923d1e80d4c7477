"""Refcount model plug-ins: ``module:Class``, entry points, bad specs, the CLI, docs/plugins.md.

The plug-in under test is ``tests/plugin_fixture/optimistic_cmpxchg.py`` (Linus's
optimistic-cmpxchg try-get, refcount.md §2.4), which must be the same code as the example
in docs/plugins.md.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from buddysim.cli import main
from buddysim.refcount.baseline import Baseline
from buddysim.refcount.page_ref import ListStorage, PageRefModel, PageRefTrace
from buddysim.refcount.registry import (
    BUILTIN_MODELS,
    ENTRY_POINT_GROUP,
    ModelLookupError,
    available_models,
    broken_plugins,
    get_model,
    get_site_table,
)
from buddysim.refcount.sites import SITE_TABLES, SITES

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIR = Path(__file__).resolve().parent / "plugin_fixture"
FIXTURE = FIXTURE_DIR / "optimistic_cmpxchg.py"
DOC = ROOT / "docs" / "plugins.md"
MODULE = "optimistic_cmpxchg"
SPEC = "optimistic_cmpxchg:OptimisticCmpxchg"
BUILTINS = ["baseline", "rfc", "v1", "v2", "v3", "final", "inverted"]


@pytest.fixture(autouse=True)
def _forget_plugin_modules() -> Iterator[None]:
    """Each test imports the plug-in modules afresh and leaves no trace in sys.modules."""
    names = (MODULE, "not_a_model", "broken_sites")
    for n in names:
        sys.modules.pop(n, None)
    yield
    for n in names:
        sys.modules.pop(n, None)


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURE_DIR))


def _write_dist(tmp_path: Path, entry_points: str, name: str = "buddysim_optimistic_cmpxchg") -> None:
    """A real installed-distribution layout: ``NAME-VERSION.dist-info`` with METADATA and
    entry_points.txt, next to the module it names."""
    dist = tmp_path / f"{name}-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_points}\n")


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The plug-in "pip installed": module + dist-info in a directory on sys.path."""
    (tmp_path / FIXTURE.name).write_text(FIXTURE.read_text())
    _write_dist(tmp_path, f"optimistic-cmpxchg = {SPEC}")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


# ------------------------------------------------------------------------------ the plug-in itself
def _check_optimistic_cmpxchg(cls: type[PageRefModel]) -> None:
    """The plug-in's semantics (refcount.md §2.4): baseline results, optimistic CAS sequence."""
    assert issubclass(cls, Baseline)
    assert cls.name == "optimistic-cmpxchg"
    assert cls.speculative_get == "page_ref_add_unless_zero"
    cas: list[tuple[int, int]] = []
    events: list[PageRefTrace] = []
    m = cls(ListStorage(3, 5), debug_vm="bug", trace=events.append)
    m.set_page_count(1, 1)
    m.set_page_count(2, 0)
    real_cmpxchg = m.atomic_cmpxchg

    def spy(page: int, old: int, new: int) -> int:
        cas.append((old, new))
        return real_cmpxchg(page, old, new)

    m.atomic_cmpxchg = spy  # type: ignore[method-assign]
    events.clear()
    assert m.folio_try_get(0) is True  # count 5: the guess 1 fails, the retry with 5 succeeds
    assert cas == [(1, 2), (5, 6)] and m.page_ref_count(0) == 6
    cas.clear()
    assert m.get_page_unless_zero(1) is True  # count 1: the guess is right, one CAS
    assert cas == [(1, 2)] and m.page_ref_count(1) == 2
    cas.clear()
    assert m.folio_ref_try_add(2, 1024) is False  # count 0: the CAS reports 0, fail
    assert cas == [(1, 1025)] and m.atomic_read(2) == 0
    assert events == [
        PageRefTrace("page_ref_mod_unless", 0, 1, 1, 6),
        PageRefTrace("page_ref_mod_unless", 1, 1, 1, 2),
        PageRefTrace("page_ref_mod_unless", 2, 1024, 0, 0),
    ]
    assert m.findings == []
    table = cls.SITE_TABLE  # type: ignore[attr-defined]
    assert table.name == "optimistic-cmpxchg"
    assert {s: a.describe() for s, a in table.actions.items()} == {
        s: a.describe() for s, a in SITE_TABLES["baseline"].actions.items()
    }


def test_doc_example_is_the_fixture_module() -> None:
    """docs/plugins.md's example is the fixture, byte for byte, so the doc cannot rot."""
    doc = DOC.read_text()
    m = re.search(r"<!-- plugin-example: (\S+) -->\n```python\n(.*?)```\n", doc, re.S)
    assert m, "docs/plugins.md lost its plugin-example marker or code block"
    assert ROOT / m.group(1) == FIXTURE
    assert m.group(2) == FIXTURE.read_text()


def test_doc_example_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exec every python block of the doc in order: the module, then the usage snippet."""
    blocks = re.findall(r"```python\n(.*?)```\n", DOC.read_text(), re.S)
    assert len(blocks) == 2
    (tmp_path / FIXTURE.name).write_text(blocks[0])
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "docs/plugins.md[0]", "exec"), namespace)
    cls = namespace["OptimisticCmpxchg"]
    assert isinstance(cls, type)
    _check_optimistic_cmpxchg(cls)
    exec(compile(blocks[1], "docs/plugins.md[1]", "exec"), {})


def test_doc_pyproject_declares_the_entry_point() -> None:
    import tomllib

    (toml,) = re.findall(r"```toml\n(.*?)```\n", DOC.read_text(), re.S)
    eps = tomllib.loads(toml)["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert eps == {"optimistic-cmpxchg": SPEC}


# ------------------------------------------------------------------------------ (a) module:Class
def test_module_class_spec(on_path: None) -> None:
    cls = get_model(SPEC)
    assert cls.__module__ == MODULE
    _check_optimistic_cmpxchg(cls)
    # its own site table, found through the same spec
    assert get_site_table(SPEC).name == "optimistic-cmpxchg"


def test_module_class_spec_of_a_builtin() -> None:
    from buddysim.refcount.final import Final

    assert get_model("buddysim.refcount.final:Final") is Final


def test_module_class_needs_no_registration(on_path: None) -> None:
    assert "optimistic-cmpxchg" not in available_models()
    with pytest.raises(ModelLookupError, match="unknown refcount model 'optimistic-cmpxchg'"):
        get_model("optimistic-cmpxchg")


# ------------------------------------------------------------------------------ (b) entry points
def test_builtins_come_first() -> None:
    assert list(BUILTIN_MODELS) == BUILTINS
    assert list(available_models())[: len(BUILTINS)] == BUILTINS
    for name in BUILTINS:
        assert get_model(name).name == name


def test_entry_point_plugin_is_found(installed: Path) -> None:
    models = available_models()
    assert list(models)[: len(BUILTINS)] == BUILTINS
    assert "optimistic-cmpxchg" in models
    cls = get_model("optimistic-cmpxchg")
    assert cls is models["optimistic-cmpxchg"]
    _check_optimistic_cmpxchg(cls)
    assert get_site_table("optimistic-cmpxchg") is cls.SITE_TABLE  # type: ignore[attr-defined]


def test_entry_point_cannot_shadow_a_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / FIXTURE.name).write_text(FIXTURE.read_text())
    _write_dist(tmp_path, f"final = {SPEC}")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert get_model("final").__module__ == "buddysim.refcount.final"


def test_plugin_without_site_table_uses_default_sites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "not_a_model.py").write_text(
        "from buddysim.refcount.final import Final\n\n\nclass Renamed(Final):\n    name = 'renamed'\n"
    )
    _write_dist(tmp_path, "renamed = not_a_model:Renamed")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert get_site_table("renamed") is SITE_TABLES["final"]


# ------------------------------------------------------------------------------ (c) bad specs
def test_unknown_name() -> None:
    with pytest.raises(ModelLookupError) as e:
        get_model("nosuch")
    assert str(e.value) == (
        "unknown refcount model 'nosuch'; expected one of baseline, rfc, v1, v2, v3, final, "
        "inverted or module:Class"
    )


def test_missing_module() -> None:
    with pytest.raises(ModelLookupError, match="cannot import refcount model module 'nosuch_module_xyz'"):
        get_model("nosuch_module_xyz:Model")


def test_missing_attribute(on_path: None) -> None:
    with pytest.raises(ModelLookupError, match="module 'optimistic_cmpxchg' has no attribute 'Nope'"):
        get_model("optimistic_cmpxchg:Nope")


@pytest.mark.parametrize("spec", ["collections:OrderedDict", "optimistic_cmpxchg:__all__", "json:dumps"])
def test_not_a_page_ref_model(spec: str, on_path: None) -> None:
    with pytest.raises(ModelLookupError, match=re.escape(f"{spec} is not a PageRefModel subclass")):
        get_model(spec)


def test_entry_point_not_a_subclass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "not_a_model.py").write_text("class NotAModel:\n    pass\n")
    _write_dist(tmp_path, "bad = not_a_model:NotAModel", name="bad_plugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    # a broken plug-in does not take the others down: it is left out and named when asked for
    assert "bad" not in available_models()
    assert "baseline" in available_models()
    assert "is not a PageRefModel subclass" in broken_plugins()["bad"]
    with pytest.raises(ModelLookupError, match="entry point 'bad' is not a PageRefModel subclass"):
        get_model("bad")


def test_entry_point_that_fails_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_dist(tmp_path, "ghost = no_such_module_qq:Ghost", name="ghost_plugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        ModelLookupError, match=r"refcount plug-in 'ghost' \(no_such_module_qq:Ghost\) failed to load"
    ):
        get_model("ghost")


def test_site_table_of_a_model_naming_a_missing_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_sites.py").write_text(
        "from buddysim.refcount.final import Final\n\n\nclass B(Final):\n    default_sites = 'nosuch'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelLookupError, match="names site table 'nosuch', which does not exist"):
        get_site_table("broken_sites:B")


@pytest.mark.parametrize(
    ("spec", "table"),
    [
        ("baseline", "baseline"),
        ("rfc", "v1"),
        ("v1", "v1"),
        ("v2", "v2"),
        ("v3", "v2"),
        ("final", "final"),
        ("inverted", "inverted"),
        ("frag-unfreeze", "frag-unfreeze"),
    ],
)
def test_site_table_by_model_or_table_name(spec: str, table: str) -> None:
    assert get_site_table(spec) is SITE_TABLES[table]
    assert set(SITE_TABLES[table].actions) == set(SITES)


# ------------------------------------------------------------------------------ the CLI
def test_cli_models_json_lists_the_plugin(installed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema_version"] == 1
    assert set(out["models"]) == {*BUILTINS, "optimistic-cmpxchg"}  # keys are sorted
    assert out["models"]["optimistic-cmpxchg"] == {
        "kernel": "Linus Torvalds, 1 Mar 2026 (tested alternative on top of upstream, not merged)",
        "description": "upstream: frozen means 0; try-get is a cmpxchg loop that starts from a guess of 1",
        "sites": "optimistic-cmpxchg",
    }
    assert out["models"]["rfc"]["sites"] == "v1"


def test_cli_matrix_of_a_plugin(installed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json", "--matrix", f"optimistic-cmpxchg,{SPEC}"]) == 0
    matrix = json.loads(capsys.readouterr().out)["matrix"]
    for name in ("optimistic-cmpxchg", SPEC):
        row = matrix[name]["get_page_unless_zero"]
        assert row["0"] == {"result": False, "raw_after": 0, "checks": [], "bug": False}
        assert row["live 2"] == {"result": True, "raw_after": 3, "checks": [], "bug": False}


def test_cli_unknown_model_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--matrix", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "unknown refcount model 'nosuch'" in err
    assert "Traceback" not in err


def test_cli_broken_entry_point_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    _write_dist(tmp_path, "ghost = no_such_module_qq:Ghost", name="ghost_plugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert "failed to load" in listed["broken_plugins"]["ghost"]
    assert "baseline" in listed["models"]
    assert main(["models", "--matrix", "ghost"]) == 2
    assert "failed to load" in capsys.readouterr().err


def test_machine_runs_a_plugin_model_by_module_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """A third-party model drives the allocator: boot, allocate, free, with its own site table."""
    from buddysim.machine import Machine
    from buddysim.mm.gfp import GFP_KERNEL

    monkeypatch.syspath_prepend(str(FIXTURE_DIR))
    mm = Machine.simple(1 << 13, refcount="optimistic_cmpxchg:OptimisticCmpxchg")
    assert mm.refs.name == "optimistic-cmpxchg"
    assert mm.sites.name == "optimistic-cmpxchg"
    mm.boot()
    page = mm.alloc(GFP_KERNEL, 0, cpu=0)
    assert page is not None and mm.refs.page_ref_count(page) == 1
    mm.free(page, 0, cpu=0)
    assert mm.findings == []
