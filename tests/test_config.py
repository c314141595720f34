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
        (("duration_s = 5.0\n", "duration_s = 9.0\n"), "faults.0.duration_s", "would last until 11.0 s"),
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
    assert "exactly one of 'command', 'url' or 'urls'" in error.value.reason


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


MINE = '\n[target.mine]\ndriver = "x.y:Z"\n'


def _mine(tmp_path: Path, body: str, base: str = BASE) -> Path:
    return _write(tmp_path, base.replace('targets = ["naive", "ackmap"]', 'targets = ["mine"]') + MINE + body)


def test_named_ports_reach_the_target_spec_and_the_command(tmp_path: Path) -> None:
    body = 'command = ["srv", "--sub={port.sub}", "--pub", "{port.pub}", "--first", "{port}", "{{x}}"]\n' \
           'ports = ["sub", "pub"]\n'
    spec = resolve_target("mine", load_scenario(_mine(tmp_path, body)).target)
    assert spec.ports == ("sub", "pub")
    assert spec.argv({"sub": 7001, "pub": 7002}, 1.0, 1.0) == ["srv", "--sub=7001", "--pub", "7002", "--first",
                                                               "7001", "{x}"]
    plain = resolve_target("mine", load_scenario(_mine(tmp_path, 'command = ["srv", "{port}"]\n')).target)
    assert plain.ports == ("main",) and plain.argv(7005, 1.0, 1.0) == ["srv", "7005"]


@pytest.mark.parametrize(("body", "field", "reason"), [
    ('command = ["srv", "{port.pub}"]\n', "target.mine.command.1", "{port.pub}: no port named 'pub'; ports: main"),
    ('command = ["srv", "{prot}"]\n', "target.mine.command.1", "unknown placeholder {prot}"),
    ('command = ["srv", "{python.x}"]\n', "target.mine.command.1", "unknown placeholder {python.x}"),
    ('command = ["srv", "{port"]\n', "target.mine.command.1", "a literal brace is written doubled"),
    ('command = ["srv", "}"]\n', "target.mine.command.1", "a literal brace is written doubled"),
    ('command = ["srv"]\nports = ["Sub"]\n', "target.mine.ports.0", "lower case letters"),
    ('command = ["srv"]\nports = ["a", "a"]\n', "target.mine.ports", "unique"),
    ('command = ["srv"]\nports = []\n', "target.mine.ports", "at least 1 item"),
    ('url = "http://127.0.0.1:1"\nports = ["a", "b"]\n', "target.mine.ports", "a target reached by url has one"),
    ('command = ["srv"]\nready = { kind = "tcp", port = "pub" }\n', "target.mine.ready.port",
     "unknown port 'pub'; ports: main"),
    ('command = ["srv"]\nready = { kind = "command", command = ["c", "{port.x}"] }\n',
     "target.mine.ready.command.1", "no port named 'x'"),
    ('command = ["srv"]\noptions = 3\n', "target.mine.options", "valid dictionary"),
])
def test_target_ports_and_placeholders_are_checked_at_load(tmp_path: Path, body: str, field: str,
                                                          reason: str) -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario(_mine(tmp_path, body))
    assert error.value.field == field
    assert reason in error.value.reason


def test_a_fault_names_a_port_of_the_target_and_only_a_toxic_may(tmp_path: Path) -> None:
    body = 'command = ["srv", "{port.sub}", "{port.pub}"]\nports = ["sub", "pub"]\n'
    on_pub = BASE.replace('cohort = "u1"\n', 'cohort = "u1"\nport = "pub"\n')
    scenario = load_scenario(_mine(tmp_path, body, on_pub))
    assert scenario.faults[0].port == "pub"
    check_target_fits(scenario, resolve_target("mine", scenario.target), "s.toml")
    with pytest.raises(ScenarioError) as error:
        check_target_fits(scenario, resolve_target("naive", {}), "s.toml")
    assert error.value.field == "faults.0.port"
    assert "target 'naive' has no port 'pub'; its ports: main" in str(error.value)
    restart = '\n[[faults]]\nname = "deploy"\ntype = "restart_target"\nport = "pub"\nat_s = 1\nduration_s = 1\n'
    with pytest.raises(ScenarioError) as error:
        load_scenario(_write(tmp_path, BASE + restart))
    assert error.value.field == "faults.1.port" and "whole process" in error.value.reason


def test_options_are_a_table_passed_through_and_typed_only_where_locust_runs(tmp_path: Path) -> None:
    body = 'command = ["srv"]\n[target.mine.options]\nmode = "lossy"\nbuffer = 3\n'
    scenario = load_scenario(_mine(tmp_path, body))
    assert resolve_target("mine", scenario.target).options == {"mode": "lossy", "buffer": 3}
    # in this process (no Locust) the driver "x.y:Z" is never imported: nothing to check it against
    assert "locust" not in __import__("sys").modules


def test_a_running_server_with_several_ports_is_given_by_urls(tmp_path: Path) -> None:
    body = 'urls = { sub = "http://127.0.0.1:7001", pub = "http://127.0.0.1:7002/" }\n'
    spec = resolve_target("mine", load_scenario(_mine(tmp_path, body)).target)
    assert spec.ports == ("sub", "pub") and spec.url == "http://127.0.0.1:7001" and spec.command is None
    assert dict(spec.urls) == {"sub": "http://127.0.0.1:7001", "pub": "http://127.0.0.1:7002/"}
    with pytest.raises(ScenarioError) as error:
        load_scenario(_mine(tmp_path, body + 'ports = ["pub", "sub"]\n'))
    assert error.value.field == "target.mine.ports" and "leave ports out" in error.value.reason
    with pytest.raises(ScenarioError) as error:
        load_scenario(_mine(tmp_path, body + 'url = "http://127.0.0.1:1"\n'))
    assert "exactly one of 'command', 'url' or 'urls'" in error.value.reason


ROOMS = BASE.replace('name = "u2"\nusers = 1\n', 'name = "u2"\nusers = 1\nrooms = ["lobby"]\nsend_to = "rooms"\n')


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (BASE.replace("users = 1\n", 'users = 1\nsend_to = "rooms"\n', 1), "cohorts.0.send_to",
         "needs the cohort's rooms"),
        (BASE.replace("users = 1\n", 'users = 1\nrooms = ["no spaces"]\n', 1), "cohorts.0.rooms.0", "pattern"),
        (ROOMS + '\n[[membership]]\ncohort = "u9"\nroom = "lobby"\naction = "leave"\nat_s = 1.0\n',
         "membership.0.cohort", "unknown cohort 'u9'"),
        (ROOMS + '\n[[membership]]\ncohort = "u2"\nroom = "lobby"\naction = "leave"\nat_s = 10.0\n',
         "membership.0.at_s", "after sending stops"),
        (ROOMS + '\n[[membership]]\ncohort = "u2"\nroom = "lobby"\naction = "wander"\nat_s = 1.0\n',
         "membership.0.action", "'join' or 'leave'"),
        (ROOMS + '\n[[membership]]\ncohort = "u2"\nroom = "lobby"\naction = "join"\nat_s = 1.0\nrepeat = 3\n',
         "membership.0.every_s", "needs every_s"),
        (ROOMS + '\n[[membership]]\ncohort = "u2"\nroom = "lobby"\naction = "leave"\nat_s = 1.0\nspread_s = 60\n',
         "membership.0.spread_s", "would never happen"),
        (BASE.replace("users = 1\n", 'users = 1\nsend_to = "nobody"\n'), "cohorts", "nothing to judge"),
    ],
)
def test_room_settings_are_checked_by_field(tmp_path: Path, text: str, field: str, reason: str) -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario(_write(tmp_path, text))
    assert (error.value.field, reason in error.value.reason) == (field, True), error.value


def test_rooms_need_a_target_that_serves_them(tmp_path: Path) -> None:
    scenario = load_scenario(_write(tmp_path, ROOMS))
    assert scenario.cohorts[1].rooms == ["lobby"] and scenario.cohorts[1].send_to == "rooms"
    check_target_fits(scenario, resolve_target("ackmap", scenario.target))  # serves rooms
    with pytest.raises(ScenarioError) as error:
        check_target_fits(scenario, resolve_target("memory-resume", scenario.target))
    assert error.value.field == "cohorts.1.rooms" and "does not serve rooms" in error.value.reason
