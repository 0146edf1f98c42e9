"""localaws.network.internet: the hosts an operator publishes as "the internet" (LOCALAWS_INTERNET_HOSTS)
look public to a function's code, and only this machine's loopback can be behind them."""

from __future__ import annotations

import importlib.util
import ipaddress
from pathlib import Path

import pytest

from localaws.network import internet

DOWNLOAD = Path(__file__).resolve().parents[3] / "functions" / "inference" / "download.py"


def test_a_published_host_gets_a_public_looking_address_and_port_80_by_default():
    (host,) = internet.parse("images.example=127.0.0.1:8123")
    assert (host.name, host.port, host.target) == ("images.example", 80, ("127.0.0.1", 8123))
    assert ipaddress.ip_address(host.address) in internet.NETWORK
    assert host.listener_name == "internet:images.example:80"


def test_the_inference_functions_url_check_takes_a_published_host_for_a_public_one():
    spec = importlib.util.spec_from_file_location("inference_download_for_network", DOWNLOAD)
    download = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(download)
    (host,) = internet.parse("images.example=127.0.0.1:8123")
    assert ipaddress.ip_address(host.address).is_global
    assert download.address_refusal(host.address, allow_private=False) is None


def test_names_get_addresses_in_order_and_share_one_across_ports():
    hosts = internet.parse(" b.example:443=127.0.0.1:2 ; a.example=[::1]:3, b.example=127.0.0.1:1")
    assert [(h.name, h.port, h.address) for h in hosts] == [
        ("a.example", 80, "192.88.99.10"),
        ("b.example", 80, "192.88.99.11"),
        ("b.example", 443, "192.88.99.11"),
    ]
    assert hosts[0].target == ("::1", 3)
    assert internet.parse("") == internet.parse(None) == ()
    assert internet.from_environment({internet.SETTING: "c.example=127.0.0.1:5"})[0].name == "c.example"


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("images.example=10.0.0.5:80", "this machine's loopback"),
        ("images.example=example.com:80", "this machine's loopback"),
        ("images.example=127.0.0.1:0", "port"),
        ("images.example:99999=127.0.0.1:80", "port"),
        ("images=127.0.0.1:80", "host name with a dot"),
        ("-bad.example=127.0.0.1:80", "host name with a dot"),
        ("images.example", "<name>[:<port>]=<address>:<port>"),
        ("a.example=127.0.0.1:1,a.example:80=127.0.0.1:2", "published twice"),
    ],
)
def test_a_setting_that_cannot_be_used_is_refused_with_the_fix(setting, words):
    with pytest.raises(internet.InternetHostsError, match="LOCALAWS_INTERNET_HOSTS") as caught:
        internet.parse(setting)
    assert words in str(caught.value)
