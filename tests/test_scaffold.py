"""harness new-target: what it writes, and what it refuses (the smoke run itself: tests/integration)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.config import load_scenario, resolve_target
from harness.scaffold import class_name, scaffold


def test_it_writes_a_package_whose_scenario_names_its_server_and_driver(tmp_path: Path) -> None:
    written = scaffold("my_chat", tmp_path)
    assert sorted(p.name for p in written) == ["README.md", "__init__.py", "driver.py", "scenario.toml", "server.py"]
    scenario = load_scenario(tmp_path / "my_chat" / "scenario.toml")
    target = resolve_target("my_chat", scenario.target)
    assert target.command == ("{python}", "-m", "my_chat.server", "--port", "{port}")
    assert target.driver == "my_chat.driver:MyChatUser" and (target.ready or {}).get("kind") == "tcp"
    assert scenario.expect["my_chat"].valid is True
    driver = ast.parse((tmp_path / "my_chat" / "driver.py").read_text())
    (user,) = [n for n in driver.body if isinstance(n, ast.ClassDef) and n.name == "MyChatUser"]
    methods = {n.name for n in user.body if isinstance(n, ast.FunctionDef)}
    assert {"open", "is_open", "transmit", "close"} <= methods  # the four methods the driver interface needs
    ast.parse((tmp_path / "my_chat" / "server.py").read_text())


@pytest.mark.parametrize("name", ["My-Chat", "1chat", "class", "", "a" * 41])
def test_a_name_that_cannot_be_a_package_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="cannot be a Python package name"):
        scaffold(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["os", "json", "harness", "targets", "locust"])
def test_a_name_that_shadows_an_importable_module_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="already an importable module"):
        scaffold(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        scaffold("chat", tmp_path / "f")


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "chat").mkdir()
    (tmp_path / "chat" / "server.py").write_text("mine")
    with pytest.raises(FileExistsError):
        scaffold("chat", tmp_path)
    assert (tmp_path / "chat" / "server.py").read_text() == "mine"


def test_class_names() -> None:
    assert class_name("my_chat") == "MyChat" and class_name("x") == "X" and class_name("a__b") == "AB"
