"""Where a run listens: loopback unless asked; one interface by name; every interface only when asked twice
(``--allow-all-interfaces``) and then with the address the workers reach."""

from __future__ import annotations

import pytest

from harness.cli import Network
from harness.errors import HarnessError
from harness.run.process import listen_hosts, url_host


def test_loopback_by_default_and_the_advertise_host_follows_the_bind_host() -> None:
    assert listen_hosts("127.0.0.1", None, False) == ("127.0.0.1", "127.0.0.1")
    assert listen_hosts("10.231.0.1", None, False) == ("10.231.0.1", "10.231.0.1")
    assert listen_hosts("10.231.0.1", "loadbox.internal", False) == ("10.231.0.1", "loadbox.internal")


@pytest.mark.parametrize("host", ["0.0.0.0", "*", "::", ""])
def test_every_interface_is_refused_without_the_opt_in(host: str) -> None:
    with pytest.raises(HarnessError, match="every interface.*--allow-all-interfaces"):
        listen_hosts(host, "10.0.0.5", False)


def test_every_interface_needs_the_address_workers_reach() -> None:
    with pytest.raises(HarnessError, match="give --advertise-host"):
        listen_hosts("0.0.0.0", None, True)
    assert listen_hosts("*", "10.0.0.5", True) == ("0.0.0.0", "10.0.0.5")  # "*" is Locust's spelling
    assert listen_hosts("::", "fd00::5", True) == ("::", "fd00::5")


def test_an_ipv6_address_goes_into_urls_in_brackets() -> None:
    assert url_host("fd00::5") == "[fd00::5]" and url_host("10.0.0.5") == "10.0.0.5"


def test_local_workers_dial_the_master_where_it_listens() -> None:
    args = Network("10.231.0.1", "10.231.0.1", master_port=6000).locust_args(2)
    assert args == ["--proxy-bind-host", "10.231.0.1", "--proxy-advertise-host", "10.231.0.1", "--processes", "2",
                    "--master-bind-host", "10.231.0.1", "--master-bind-port", "6000", "--master-host",
                    "10.231.0.1", "--master-port", "6000"]
    wildcard = Network("0.0.0.0", "10.0.0.5", master_port=6000, allow_all_interfaces=True).locust_args(1)
    assert wildcard[wildcard.index("--master-host") + 1] == "127.0.0.1"
    assert "--allow-all-interfaces" in wildcard


def test_remote_workers_make_a_master_that_waits_for_them_on_5557_unless_told() -> None:
    args = Network("10.231.0.1", "10.231.0.1", remote_workers=3, worker_wait_s=30).locust_args(0)
    assert args == ["--proxy-bind-host", "10.231.0.1", "--proxy-advertise-host", "10.231.0.1", "--master",
                    "--expect-workers", "3", "--worker-wait-s", "30", "--master-bind-host", "10.231.0.1",
                    "--master-bind-port", "5557"]


def test_one_process_only_moves_the_listeners() -> None:
    assert Network().locust_args(0) == ["--proxy-bind-host", "127.0.0.1", "--proxy-advertise-host", "127.0.0.1"]
