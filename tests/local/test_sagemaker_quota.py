"""The account's serverless concurrency quota (issue 21): the embedded SageMaker applies AWS's default for new
accounts (10) at CreateEndpoint with AWS's ``ResourceLimitExceeded``, so a notebook that would need a quota
increase on AWS fails here too. Fails without ``localaws/sagemaker/quota.py`` (moto creates any number)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from localaws import server
from localaws.sagemaker import quota
from tests import sagemaker_support as sm


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    handle = sm.start_server(
        tmp_path_factory.mktemp("sm-quota-state"),
        LOCALAWS_SAGEMAKER_CREATE_SECONDS="0.1",
        LOCALAWS_SAGEMAKER_SERVERLESS_CONCURRENCY=None,  # AWS's default, not the other tests' large one
    )
    yield handle
    server.stop(handle.state_dir)


@pytest.fixture(scope="module")
def tiny_url(local):
    return sm.upload(local, sm.tiny_archive(), "tiny/model.tar.gz")


def test_endpoints_past_the_accounts_serverless_concurrency_are_refused_until_one_is_deleted(local, tiny_url):
    assert quota.DEFAULT == 10
    for i in range(5):  # 5 x MaxConcurrency 2 = the whole quota
        assert (
            sm.create_endpoint(local, f"q-{i}", tiny_url, max_concurrency=2)["EndpointStatus"] == "InService"
        )
    client = local.client("sagemaker")
    client.create_endpoint_config(
        EndpointConfigName="q-one-more",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "q-0",
                "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1},
            }
        ],
    )
    with pytest.raises(ClientError) as refused:
        client.create_endpoint(EndpointName="q-one-more", EndpointConfigName="q-one-more")
    error = refused.value.response["Error"]
    assert error["Code"] == "ResourceLimitExceeded"
    assert (
        "is 10 Concurrency, with current utilization of 10 Concurrency and a request delta of 1"
        in error["Message"]
    )
    assert "Service Quotas" in error["Message"]
    assert "q-one-more" not in [e["EndpointName"] for e in client.list_endpoints()["Endpoints"]]
    client.delete_endpoint(EndpointName="q-4")
    client.create_endpoint(EndpointName="q-one-more", EndpointConfigName="q-one-more")  # room again


def test_service_quotas_lists_the_quota_the_server_applies(local):
    quotas = local.client("service-quotas").list_service_quotas(ServiceCode="sagemaker")["Quotas"]
    assert [(q["QuotaName"], q["Value"]) for q in quotas] == [(quota.NAME, 10.0)]
    assert local.client("service-quotas").list_service_quotas(ServiceCode="lambda")["Quotas"] == []
