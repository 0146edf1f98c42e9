"""localaws.network.addresses: the SDK inside an environment finds each service at its own address, with the
signing name and wire protocol the table claims (checked against botocore's own models)."""

from __future__ import annotations

import ipaddress

import boto3
import pytest

from localaws.network import addresses, internet


@pytest.fixture
def sdk_environment(monkeypatch):
    plan = addresses.plan()
    for name, value in plan.variables.items():
        monkeypatch.setenv(name, value)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    return plan


@pytest.mark.parametrize("service", addresses.SERVICES, ids=lambda s: s.client)
def test_boto3_reaches_each_service_at_its_own_address(sdk_environment, service):
    client = boto3.client(service.client)
    assert client.meta.endpoint_url == service.url
    model = client.meta.service_model
    assert model.signing_name == service.signing
    assert model.protocol == service.protocol
    assert (
        addresses.endpoint_of(
            service.signing, "/endpoints/x/invocations" if service.client == "sagemaker-runtime" else "/"
        )
        == service.endpoint
    )


def test_other_services_use_the_generic_address(sdk_environment):
    assert boto3.client("ssm").meta.endpoint_url == f"http://{addresses.GENERIC_ADDRESS}"


def test_sagemakers_api_and_runtime_share_a_signing_name_and_are_told_apart_by_path():
    assert addresses.endpoint_of("sagemaker", "/endpoints/resnet/invocations") == "sagemaker.runtime"
    assert addresses.endpoint_of("sagemaker", "/") == "sagemaker.api"
    assert addresses.endpoint_of("kinesis", "/") == "kinesis"


def test_every_listener_has_an_address_of_its_own_inside_a_local_prefix():
    hosts = internet.parse(
        "images.example=127.0.0.1:8123,images.example:443=127.0.0.1:8443,b.example=127.0.0.1:9"
    )
    plan = addresses.plan(hosts)
    endpoints = [listener.endpoint for listener in plan.listeners]
    assert len(endpoints) == len(set(endpoints))
    assert plan.listener(addresses.RUNTIME).endpoint == "127.0.0.1:9001"
    prefixes = [ipaddress.ip_network(p) for p in plan.local_prefixes]
    for listener in plan.listeners:
        if listener.kind != "runtime":
            assert any(ipaddress.ip_address(listener.address) in p for p in prefixes), listener
    assert (
        addresses.hosts_file(plan)
        == "127.0.0.1 localhost\n192.88.99.10 b.example\n192.88.99.11 images.example\n"
    )
    assert plan.listener("internet:images.example:443").target == ("127.0.0.1", 8443)
