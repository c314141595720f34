"""docs/scenario.md is generated from the scenario models and must stay in sync with them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.config import PROCESS_FAULTS, Scenario
from harness.scenario_reference import (
    REGENERATE,
    VALIDATOR_RULES,
    builtin_toxics,
    render_reference,
    scenario_json_schema,
    sections,
)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scenario.md"


def _section_text(doc: str, title: str) -> str:
    start = doc.index(f"\n## {title}\n")
    end = doc.find("\n## ", start + 1)
    return doc[start:] if end < 0 else doc[start:end]


def test_the_committed_reference_is_the_generated_one() -> None:
    assert DOC.read_text(encoding="utf-8") == render_reference(), (
        f"docs/scenario.md is out of date with harness/config.py; regenerate it: {REGENERATE}")


def test_every_section_in_the_expected_order() -> None:
    headers = [s.header for s in sections()]
    assert headers == ["", "[heartbeat]", "[load]", "[drain]", "[health]", "[store]", "[deploy]", "[[cohorts]]",
                       "[[faults]]", "[[membership]]",
                       "[expect.<target>]", "[gate]", "[target.<name>]", "[target.<name>.ready]"]


def test_every_field_of_every_model_is_in_its_section() -> None:
    doc = render_reference()
    for section in sections():
        text = _section_text(doc, section.title)
        for name in section.model.model_fields:
            assert f"\n| `{name}` |" in text, f"{section.model.__name__}.{name} missing under {section.title}"


def test_attribute_docstrings_are_the_meanings() -> None:
    text = _section_text(render_reference(), "`[load]`")
    assert "| `duration_s` | float | `10.0` | `0 < x ≤ 86400` | Sending window, from the moment" in text


def test_every_fault_type_is_listed() -> None:
    doc = render_reference()
    for name, cls in builtin_toxics().items():
        assert f"| `{name}` |" in doc
        for attribute in cls.attribute_names():
            assert f"| `{attribute}` |" in doc
    for name, description in PROCESS_FAULTS.items():
        assert f"| `{name}` | {description} |" in doc
    assert "| `latency` | `latency` | ms | `0` | `0 ≤ x ≤ 3600000` |" in doc


def test_validator_rules_name_real_fields() -> None:
    models = {s.model.__name__: s.model for s in sections()}
    for model, field in VALIDATOR_RULES:
        assert field in models[model].model_fields, f"VALIDATOR_RULES names {model}.{field}, which does not exist"


def test_json_schema_is_valid_json_with_the_top_level_properties() -> None:
    schema = json.loads(json.dumps(scenario_json_schema()))
    assert set(schema["properties"]) == set(Scenario.model_fields)
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["cohorts"]  # name defaults to the file's name
    assert schema["$defs"]["Load"]["properties"]["duration_s"]["description"].startswith("Sending window")


def test_harness_schema_command_prints_the_json_schema() -> None:
    done = subprocess.run([sys.executable, "-m", "harness", "schema"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    assert set(schema["properties"]) == set(Scenario.model_fields)
