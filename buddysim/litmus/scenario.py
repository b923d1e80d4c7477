"""Litmus scenario files: TOML in, validated frozen models out (docs/litmus.md is the reference).

A scenario is one page and a few threads. ``[initial]`` says what the page is (allocated to a
type, free in the buddy, or reserved, i.e. not yet handed to the allocator), what its raw
``_refcount`` word holds (an expression evaluated per model, so ``count(1)`` is ``0x80000001``
under the inverted encoding), whether the mapping a lookup goes through holds it, and an
optional ``setup`` program that runs alone before the threads start. Each ``[[thread]]`` has a
short program of kernel-level actions. ``[expect]`` names the verdict per model and
``[[witness]]`` names interleavings that must (not) be reachable. Everything is validated here:
unknown keys, unknown actions and bad values are :class:`~buddysim.errors.BadInput` naming the
file and the key; nothing about a particular refcount model is checked here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from buddysim.errors import BadInput
from buddysim.refcount.sites import SITES
from buddysim.toml_text import locate_key, toml_decode_error

__all__ = [
    "ACTIONS",
    "INVARIANTS",
    "ActionSpec",
    "Expectation",
    "InitialSpec",
    "RawExpr",
    "Scenario",
    "ThreadSpec",
    "WitnessSpec",
    "load_scenario",
    "parse_raw_expr",
    "parse_scenario",
    "scenario_error",
]

#: The oracle's invariants, in report order (docs/litmus.md, "Invariants").
INVARIANTS: tuple[str, ...] = (
    "one_free_per_epoch",
    "no_double_free",
    "no_stale_ref",
    "frozen_persists",
    "count_non_negative",
    "destructor_type",
    "no_leak",
    "no_vm_bug",
)

Verdict = Literal["pass", "violation"]
Reach = Literal["reachable", "unreachable"]
OnFail = Literal["stop", "continue", "put_stop"]
Await = Literal["free", "allocated"]
Destructor = Literal["page", "intent"]
PageState = Literal["allocated", "free", "reserved"]

_NUM = r"[-+]?(?:0[xX][0-9a-fA-F_]+|\d[\d_]*)"
_RAW_RE = re.compile(
    rf"^\s*(?P<base>F|frozen|count\(\s*(?P<n>{_NUM})\s*\)|{_NUM})"
    rf"\s*(?:(?P<op>[-+|])\s*(?P<off>0[xX][0-9a-fA-F_]+|\d[\d_]*))?\s*$"
)


class RawExpr(BaseModel):
    """A raw-word expression: ``base [+|-| offset]``, evaluated per model.

    ``base`` is a literal (decimal or hex, taken as 32-bit two's complement), ``F`` (bit 31,
    0x80000000), ``frozen`` (the word the model's successful final put leaves) or
    ``count(N)`` (what ``set_page_count(page, N)`` stores under the model). ``|`` is a plain add.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: Literal["lit", "F", "frozen", "count"]
    value: int = 0
    offset: int = 0
    text: str = ""

    def __str__(self) -> str:
        return self.text


def _int(s: str) -> int:
    return int(s.replace("_", ""), 0)


def parse_raw_expr(v: object) -> RawExpr:
    """Parse an int or a string like ``"F+1"``, ``"frozen"``, ``"count(1)"``, ``"0xBFFFFFFF"``."""
    if isinstance(v, RawExpr):
        return v
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise ValueError(f"expected an int or a raw-word expression string, got {v!r}")
    if isinstance(v, int):
        return RawExpr(base="lit", value=v, text=str(v))
    m = _RAW_RE.match(v)
    if m is None:
        raise ValueError(
            f"bad raw-word expression {v!r}: expected N, 0xHEX, F, frozen or count(N), "
            "optionally followed by +N, -N or |N"
        )
    off = _int(m["off"]) if m["off"] else 0
    if m["op"] == "-":
        off = -off
    b = m["base"]
    if b in ("F", "frozen"):
        return RawExpr(base=b, offset=off, text=v.strip())
    if m["n"] is not None:
        return RawExpr(base="count", value=_int(m["n"]), offset=off, text=v.strip())
    return RawExpr(base="lit", value=_int(b), offset=off, text=v.strip())


RawField = Annotated[RawExpr, Field()]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Action(_Model):
    """Fields every action has: what to do when it fails, and what it waits for."""

    on_fail: OnFail | None = Field(
        None, description="get/freeze default stop; revalidate default put_stop; others continue"
    )
    await_: Await | None = Field(None, alias="await")


class GetAction(_Action):
    action: Literal["get"]
    nr: Annotated[int, Field(ge=1, le=1 << 30)] = 1
    via: Literal["folio_try_get", "get_page_unless_zero", "folio_ref_try_add"] | None = None


class PutAction(_Action):
    action: Literal["put"]
    nr: Annotated[int, Field(ge=1, le=1 << 30)] = 1
    free: bool = True
    destructor: Destructor | None = None


class FreezeAction(_Action):
    action: Literal["freeze"]
    count: Annotated[int, Field(ge=1)] = 1


class UnfreezeAction(_Action):
    action: Literal["unfreeze"]
    count: Annotated[int, Field(ge=1)] = 1


class AllocateAction(_Action):
    action: Literal["allocate", "alloc_frozen"]
    type: str | None = None
    map: bool = False


class SiteAction(_Action):
    action: Literal["site"]
    site: str

    @field_validator("site")
    @classmethod
    def _known_site(cls, v: str) -> str:
        if v not in SITES:
            raise ValueError(f"unknown call site {v!r}; expected one of {', '.join(SITES)}")
        return v


class SetCountAction(_Action):
    action: Literal["set_count"]
    value: int


class PlainAction(_Action):
    action: Literal[
        "free_pages_core",
        "frag_reuse",
        "set_frozen",
        "memset",
        "page_ref_inc",
        "revalidate",
        "remove_from_mapping",
        "free_frozen",
        "stop",
    ]
    destructor: Destructor | None = None


ActionSpec = Annotated[
    GetAction
    | PutAction
    | FreezeAction
    | UnfreezeAction
    | AllocateAction
    | SiteAction
    | SetCountAction
    | PlainAction,
    Field(discriminator="action"),
]

#: Every action name a program may use.
ACTIONS: tuple[str, ...] = (
    "get",
    "put",
    "freeze",
    "unfreeze",
    "allocate",
    "alloc_frozen",
    "site",
    "set_count",
    "free_pages_core",
    "frag_reuse",
    "set_frozen",
    "memset",
    "page_ref_inc",
    "revalidate",
    "remove_from_mapping",
    "free_frozen",
    "stop",
)


def _actions(v: Any) -> Any:
    # "get" is shorthand for { action = "get" }
    if isinstance(v, list):
        return [{"action": a} if isinstance(a, str) else a for a in v]
    return v


class ThreadSpec(_Model):
    """One thread: a name, the references it holds at the start, what it believes, a program."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    refs: Annotated[int, Field(ge=0)] = 0
    type: str | None = None
    destructor: Destructor = "page"
    program: list[ActionSpec]

    _norm = field_validator("program", mode="before")(_actions)


class InitialSpec(_Model):
    """The page before the threads start."""

    page: PageState = "allocated"
    type: str = "X"
    raw: RawExpr | None = None
    count: Annotated[int, Field(ge=0)] | None = None
    mapped: bool = False
    external_refs: Annotated[int, Field(ge=0)] = 0
    setup: list[ActionSpec] = []

    _norm = field_validator("setup", mode="before")(_actions)

    @field_validator("raw", mode="before")
    @classmethod
    def _raw(cls, v: Any) -> Any:
        return None if v is None else parse_raw_expr(v)

    @model_validator(mode="after")
    def _one_of(self) -> InitialSpec:
        if self.raw is not None and self.count is not None:
            raise ValueError("give either raw or count, not both")
        return self


Expectation = Verdict | dict[str, Verdict]


class WitnessSpec(_Model):
    """An interleaving to look for: a thread's action completing with the given results.

    The match is on the *completing* step of the action: ``raw_before``/``count_before`` are
    the word (or ``page_ref_count``) just before that step, ``raw_after``/``count_after`` just
    after it, ``page_before`` / ``type_before`` the allocator state and type of the page (the oracle's)
    before it.
    ``expect`` maps model names to ``reachable`` / ``unreachable``.
    """

    name: str
    description: str = ""
    thread: str
    action: str
    result: bool | None = None
    raw_before: RawExpr | None = None
    raw_after: RawExpr | None = None
    count_before: int | None = None
    count_after: int | None = None
    page_before: PageState | None = None
    type_before: str | None = None
    expect: dict[str, Reach] = {}

    @field_validator("raw_before", "raw_after", mode="before")
    @classmethod
    def _raw(cls, v: Any) -> Any:
        return None if v is None else parse_raw_expr(v)

    @field_validator("action")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in ACTIONS:
            raise ValueError(f"unknown action {v!r}; expected one of {', '.join(ACTIONS)}")
        return v


class Scenario(_Model):
    """A whole litmus file."""

    name: str
    title: str = ""
    spec: str = ""
    description: str = ""
    debug_vm: Literal["off", "warn", "bug"] = "off"
    bound: Annotated[int, Field(ge=1, le=10_000)] = 32
    initial: InitialSpec = InitialSpec()
    thread: Annotated[list[ThreadSpec], Field(min_length=1, max_length=8)]
    expect: dict[str, Expectation] = {}
    witness: list[WitnessSpec] = []
    path: str = ""

    @field_validator("expect")
    @classmethod
    def _invariants(cls, v: dict[str, Expectation]) -> dict[str, Expectation]:
        for model, exp in v.items():
            if isinstance(exp, dict):
                bad = sorted(set(exp) - set(INVARIANTS) - {"overall"})
                if bad:
                    raise ValueError(
                        f"{model}: unknown invariant(s) {', '.join(bad)}; expected "
                        f"{', '.join(INVARIANTS)} or overall"
                    )
        return v

    @model_validator(mode="after")
    def _threads(self) -> Scenario:
        names = [t.name for t in self.thread]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"thread names must be unique: {', '.join(dup)}")
        if "init" in names:
            raise ValueError("thread name 'init' is reserved for the setup program")
        for w in self.witness:
            if w.thread not in names:
                raise ValueError(f"witness {w.name!r} names unknown thread {w.thread!r}")
        held = sum(t.refs for t in self.thread) + self.initial.external_refs
        if self.initial.page != "allocated" and held:
            raise ValueError(f"initial.page is {self.initial.page} but threads hold {held} reference(s)")
        if self.initial.page == "allocated" and self.initial.count is not None and self.initial.count != held:
            raise ValueError(
                f"initial.count is {self.initial.count} but the threads' refs and external_refs "
                f"add up to {held}"
            )
        return self


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    prev: int | str = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (isinstance(prev, int) and part in ACTIONS) or part.startswith("function-"):
            pass  # the union tag pydantic puts after a list index: the action is already named
        else:
            out += f".{part}" if out else str(part)
        prev = part
    return out or "(top level)"


def parse_scenario(data: dict[str, Any], where: str, text: str | None = None) -> Scenario:
    """Validate a parsed TOML document; errors become BadInput(file[:line], key), the line
    found in ``text`` (the file's TOML source) when given."""
    data = dict(data)
    data.setdefault("name", Path(where).stem)
    data["path"] = where
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        errs = e.errors(include_url=False)
        first = errs[0]
        more = f" (and {len(errs) - 1} more error(s))" if len(errs) > 1 else ""
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "union_tag_invalid":
            msg = f"unknown action {first['input'].get('action')!r}; expected one of {', '.join(ACTIONS)}"
        field = _loc(tuple(first["loc"]))
        line = locate_key(text, field) if text is not None else None
        raise BadInput(msg + more, where=f"{where}:{line}" if line else where, field=field) from None


def scenario_error(scenario: Scenario, message: str, field: str) -> BadInput:
    """Bad input found after parsing (an unknown model, a setup that cannot run), located at
    ``file:line`` of ``field`` when the scenario's file can still be read."""
    try:
        line = locate_key(Path(scenario.path).read_text(), field)
    except (OSError, UnicodeDecodeError):
        line = None
    return BadInput(message, where=f"{scenario.path}:{line}" if line else scenario.path, field=field)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file."""
    p = Path(path)
    try:
        text = p.read_bytes().decode()
        data = tomllib.loads(text)
    except OSError as e:
        raise BadInput(f"cannot read scenario: {e.strerror}", where=str(p)) from None
    except tomllib.TOMLDecodeError as e:
        raise toml_decode_error(e, str(p)) from None
    except UnicodeDecodeError as e:
        raise BadInput(f"not a UTF-8 TOML file ({e.reason} at byte {e.start})", where=str(p)) from None
    return parse_scenario(data, str(p), text)
