"""Scenario validation: every error names the file, the field and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import check_target_fits, load_scenario, resolve_target
from harness.errors import ScenarioError
from harness.paths import DEFAULT_SCENARIO

BASE = DEFAULT_SCENARIO.read_text()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def test_default_scenario_loads() -> None:
    scenario = load_scenario(DEFAULT_SCENARIO)
    assert scenario.name == "heartbeat-timeout"
    assert scenario.user_ids() == [("u1-0", "u1"), ("u2-0", "u2")]
    assert scenario.faults[0].streams == ["upstream", "downstream"]
    assert scenario.expect["naive"].valid is False


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (("[drain]\n", "[drain]\ncolour = 1\n"), "drain.colour", "unknown field"),
        (("rate_per_user = 20.0", "rate_per_user = -1"), "load.rate_per_user", "greater than 0"),
        (('cohort = "u1"', 'cohort = "u9"'), "faults.0.cohort", "unknown cohort 'u9'; known: u1, u2"),
        (('type = "timeout"', 'type = "meteor"'), "faults.0.type", "unknown fault type 'meteor'"),
        (('targets = ["naive", "ackmap"]', 'targets = ["x"]'), "targets.0", "unknown target 'x'"),
        (('stream = "both"', 'stream = "sideways"'), "faults.0.stream", "Input should be"),
        (("timeout = 0 }", "timeout = 0.5 }"), "faults.0.attributes", "timeout"),
        # a fault the proxy would refuse never reaches a run (it used to fail there and the run PASSED)
        (('type = "timeout"', 'type = "bandwidth"'), "faults.0.attributes", "timeout"),
        (("attributes = { timeout = 0 }", "attributes = { timout = 0 }"), "faults.0.attributes", "timout"),
        (("attributes = { timeout = 0 }", "attributes = { timeout = -1 }"), "faults.0.attributes", "timeout"),
        (("attributes = { timeout = 0 }", 'attributes = { timeout = "0" }'), "faults.0.attributes", "timeout"),
        (("at_s = 2.0", "at_s = 10.0"), "faults.0.at_s", "after sending stops at 10 s"),
        (("at_s = 2.0", "at_s = nan"), "faults.0.at_s", "finite number"),
        (("ack_timeout_s = 2.0", "ack_timeout_s = inf"), "load.ack_timeout_s", "finite number"),
        (("timeout_s = 8.0", "timeout_s = inf"), "drain.timeout_s", "finite number"),
        (("[[cohorts]]\nname = \"u2\"\nusers = 1\n", ""), "(top level)", "at least two users"),
        (("duration_s = 5.0\n", "duration_s = 5.0\nrepeat = 3\n"), "faults.0.every_s", "needs every_s"),
        (("duration_s = 5.0\n", "duration_s = 5.0\nrepeat = 3\nevery_s = 5.0\n"), "faults.0.every_s",
         "would overlap"),
        (("users = 1\n", "users = 1\nrate_per_user = 0\n"), "cohorts.0.rate_per_user", "greater than 0"),
    ],
)
def test_errors_name_file_field_and_reason(tmp_path: Path, change: tuple[str, str], field: str, reason: str) -> None:
    assert change[0] in BASE
    path = _write(tmp_path, BASE.replace(*change))
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert error.value.path == str(path)
    assert error.value.field == field
    assert reason in error.value.reason
    assert str(error.value).startswith(f"{path}: field '{field}': ")


def test_bandwidth_with_a_negative_rate_is_refused(tmp_path: Path) -> None:
    text = BASE.replace('type = "timeout"', 'type = "bandwidth"').replace("{ timeout = 0 }", "{ rate = -1 }")
    with pytest.raises(ScenarioError) as error:
        load_scenario(_write(tmp_path, text))
    assert error.value.field == "faults.0.attributes" and "rate" in error.value.reason


def test_process_faults_take_no_attributes(tmp_path: Path) -> None:
    text = BASE.replace('type = "timeout"', 'type = "kill_target"').replace('cohort = "u1"\n', "")
    with pytest.raises(ScenarioError) as error:
        load_scenario(_write(tmp_path, text))
    assert error.value.field == "faults.0.attributes" and "takes no attributes" in error.value.reason


def test_a_directory_or_binary_file_is_a_named_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not a file"):
        load_scenario(tmp_path)
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"name = \"x\"\n\xff\xfe\n")
    with pytest.raises(ScenarioError, match="not UTF-8 text"):
        load_scenario(binary)


def test_the_secret_never_goes_on_a_command_line(tmp_path: Path) -> None:
    text = BASE + '\n[target.mine]\ncommand = ["{python}", "server.py", "--secret", "{secret}"]\n'
    with pytest.raises(ScenarioError) as error:
        load_scenario(_write(tmp_path, text))
    assert error.value.field == "target.mine.command.3"
    assert "HARNESS_TARGET_SECRET" in error.value.reason


def test_process_faults_are_checked_against_the_target(tmp_path: Path) -> None:
    text = BASE.replace('type = "timeout"', 'type = "kill_store"').replace('cohort = "u1"\n', "").replace(
        "attributes = { timeout = 0 }\n", "")
    scenario = load_scenario(_write(tmp_path, text))
    with pytest.raises(ScenarioError, match="target 'naive' has no store") as error:
        check_target_fits(scenario, resolve_target("naive", {}), "s.toml")
    assert error.value.field == "faults.0.type"
    check_target_fits(scenario, resolve_target("redis-store", {}), "s.toml")  # has a store: fine


def test_syntax_error_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(_write(tmp_path, "name = [unclosed"))
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "absent.toml")


def test_user_defined_target_needs_command_or_url(tmp_path: Path) -> None:
    text = BASE.replace('targets = ["naive", "ackmap"]', 'targets = ["mine"]') + "\n[target.mine]\nordered = true\n"
    with pytest.raises(ScenarioError) as error:
        load_scenario(_write(tmp_path, text))
    assert error.value.field == "target.mine"
    assert "exactly one of 'command' or 'url'" in error.value.reason


def test_process_faults_take_no_cohort_and_toxics_need_one(tmp_path: Path) -> None:
    restart = '\n[[faults]]\nname = "deploy"\ntype = "restart_target"\nat_s = 1\nduration_s = 1\n'
    scenario = load_scenario(_write(tmp_path, BASE + restart))
    assert [f.is_process_fault for f in scenario.faults] == [False, True]
    with pytest.raises(ScenarioError) as error:
        load_scenario(_write(tmp_path, BASE + restart.replace('at_s = 1', 'cohort = "u1"\nat_s = 1')))
    assert error.value.field == "faults.1.cohort" and "hits the whole target" in error.value.reason
    with pytest.raises(ScenarioError) as error:
        load_scenario(_write(tmp_path, BASE.replace('cohort = "u1"\n', "")))
    assert error.value.field == "faults.0.cohort" and "needs the cohort" in error.value.reason


def test_rolling_restart_needs_two_instances(tmp_path: Path) -> None:
    fault = '\n[[faults]]\nname = "deploy"\ntype = "rolling_restart"\nat_s = 1\nduration_s = 1\n'
    with pytest.raises(ScenarioError) as error:
        load_scenario(_write(tmp_path, BASE + fault))
    assert error.value.field == "faults.1.type" and "instances >= 2" in error.value.reason
    assert load_scenario(_write(tmp_path, BASE + fault + "\n[deploy]\ninstances = 2\n")).deploy.instances == 2


@pytest.mark.parametrize("path", sorted(DEFAULT_SCENARIO.parent.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_loads_and_states_its_expected_outcomes(path: Path) -> None:
    scenario = load_scenario(path)
    assert path.read_text().startswith("# "), "each scenario opens with a comment saying what it simulates"
    assert set(scenario.targets) <= set(scenario.expect), "an expected outcome for every listed target"


def test_repeated_faults_start_at_the_same_jittered_times_for_the_same_seed(tmp_path: Path) -> None:
    text = BASE.replace("duration_s = 5.0\n", "duration_s = 1.0\nrepeat = 4\nevery_s = 3.0\njitter_s = 1.5\n")
    text = text.replace("duration_s = 10.0\n", "duration_s = 20.0\n")  # every occurrence within sending
    fault = load_scenario(_write(tmp_path, text)).faults[0]
    starts = fault.starts(seed=1)
    assert len(starts) == 4 and starts == fault.starts(seed=1) != fault.starts(seed=2)
    for k, start in enumerate(starts):
        assert 2.0 + 3.0 * k <= start <= 2.0 + 3.0 * k + 1.5
    assert load_scenario(DEFAULT_SCENARIO).faults[0].starts(seed=1) == [2.0]


def test_a_cohort_rate_overrides_the_load_rate(tmp_path: Path) -> None:
    text = BASE.replace('name = "u2"\nusers = 1\n', 'name = "u2"\nusers = 1\nrate_per_user = 200.0\n')
    scenario = load_scenario(_write(tmp_path, text))
    assert scenario.rate_for("u2") == 200.0 and scenario.rate_for("u1") == 20.0
