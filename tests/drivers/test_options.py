"""Driver options: the scenario's table under the driver's own pydantic model (pure; no Locust)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from harness.config import load_scenario
from harness.drivers.options import options_error, parse_options
from harness.errors import ScenarioError
from harness.paths import DEFAULT_SCENARIO


class Options(BaseModel):
    mode: Literal["acked", "fire-and-forget"] = "acked"
    buffer: int = Field(16, ge=1)


def test_a_fitting_table_becomes_typed_settings_with_defaults() -> None:
    parsed = parse_options(Options, {"buffer": 4})
    assert isinstance(parsed, Options) and parsed.mode == "acked" and parsed.buffer == 4
    assert options_error(Options, {}) is None


@pytest.mark.parametrize(("raw", "field", "reason"), [
    ({"bufer": 4}, "bufer", "unknown option; the driver's options: buffer, mode"),
    ({"buffer": "lots"}, "buffer", "valid integer"),
    ({"buffer": 0}, "buffer", "greater than or equal to 1"),
    ({"mode": "lossy"}, "mode", "'acked' or 'fire-and-forget'"),
])
def test_unknown_and_badly_typed_options_name_the_field_and_the_reason(raw: dict[str, object], field: str,
                                                                       reason: str) -> None:
    problem = options_error(Options, raw)
    assert problem is not None and problem[0] == field and reason in problem[1]
    with pytest.raises(ValueError, match=f"options.{field}: "):
        parse_options(Options, raw)


def test_a_driver_without_options_refuses_a_table_and_accepts_none() -> None:
    assert options_error(None, {}) is None and parse_options(None, {}) is None
    problem = options_error(None, {"mode": "x"})
    assert problem is not None and problem[0] == "mode" and "declares no pydantic model 'Options'" in problem[1]


def test_options_must_be_a_pydantic_model() -> None:
    with pytest.raises(TypeError, match="pydantic BaseModel"):
        options_error(dict, {})


class FakeDriver:
    """Stands in for a driver class (a real one imports Locust, which must stay out of pytest)."""

    Options = Options


def test_the_load_time_check_names_file_target_field_and_reason(tmp_path: Path) -> None:
    text = (DEFAULT_SCENARIO.read_text().replace('targets = ["naive", "ackmap"]', 'targets = ["mine"]')
            + '\n[target.mine]\ncommand = ["srv"]\ndriver = "tests.drivers.test_options:FakeDriver"\n'
            + '[target.mine.options]\nbuffer = "lots"\n')
    path = tmp_path / "s.toml"
    path.write_text(text)
    load_scenario(path)  # no Locust in this process: the driver is not imported, the table passes as is
    with pytest.raises(ScenarioError) as error:
        load_scenario(path, check_options=True)
    assert str(error.value).startswith(f"{path}: field 'target.mine.options.buffer': ")
    assert "valid integer" in error.value.reason
    path.write_text(text.replace('buffer = "lots"', "buffer = 2"))
    assert load_scenario(path, check_options=True).target["mine"].options == {"buffer": 2}
    path.write_text(text.replace("FakeDriver", "Missing"))
    load_scenario(path, check_options=True)  # a driver that cannot be loaded is the load process's error
