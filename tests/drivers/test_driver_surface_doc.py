"""docs/custom-target.md's driver surface stays true: every attribute its table offers exists, every callback
it asks for is a method of the base class, every example it lists exists with its test (read from the source:
the base class imports Locust, which the pytest process must not)."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

from harness.run.context import RunContext, Slot

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "custom-target.md").read_text()
BASE = ast.parse((ROOT / "harness" / "drivers" / "base.py").read_text())


def _section(title: str) -> str:
    return DOC.split(title, 1)[1].split("\n#", 1)[0]


def _base_class() -> ast.ClassDef:
    (cls,) = [n for n in BASE.body if isinstance(n, ast.ClassDef) and n.name == "DeliveryUser"]
    return cls


def _user_attributes() -> set[str]:
    cls = _base_class()
    names = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    names |= {t.id for n in cls.body if isinstance(n, ast.AnnAssign | ast.Assign)
              for t in ([n.target] if isinstance(n, ast.AnnAssign) else n.targets) if isinstance(t, ast.Name)}
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self" \
                and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return names


def test_every_attribute_the_doc_offers_exists() -> None:
    offered = re.findall(r"`self\.([a-z_]+)(?:\.([a-z_]+))?", _section("### What the harness gives the driver"))
    assert len(offered) >= 9
    slot_fields = {f.name for f in dataclasses.fields(Slot)}
    context_fields = {f.name for f in dataclasses.fields(RunContext)}
    for first, second in offered:
        assert first in _user_attributes(), first
        if first == "slot" and second:
            assert second in slot_fields, second
        if first == "ctx" and second:
            assert second in context_fields, second


def test_every_callback_the_doc_asks_for_is_a_base_method() -> None:
    asked = set(re.findall(r"`self\.([a-z_]+)\(", _section("### What the driver must give back")))
    methods = {n.name for n in _base_class().body if isinstance(n, ast.FunctionDef)}
    assert asked == {"connected", "disconnected", "received", "replied", "completed"}
    assert asked <= methods


def test_every_listed_example_exists_with_its_test() -> None:
    rows = re.findall(r"^\| `(examples/[a-z]+)/` \|.*\| `(tests/[^`]+)` \|$", DOC, flags=re.MULTILINE)
    assert len(rows) == 3
    for folder, test in rows:
        assert (ROOT / folder / "driver.py").exists() and (ROOT / folder / "scenario.toml").exists(), folder
        assert (ROOT / test).exists(), test
