"""05's path on the local backend: the ``sagemaker`` SDK's v3 resources deploy EfficientNet-Lite0, the AWS CLI
gets a real prediction whose first answer is a measured cold start, and 04's scenarios give records
that tell cold, provisioned and spill-over apart from what the containers report.

Fails on stock moto 5.2.5: its DescribeModel answers ``"VpcConfig": {}`` and DescribeEndpointConfig
``"DataCaptureConfig": {}``, which the SDK's ``Model.get`` / ``EndpointConfig.get`` refuse, and its
InvokeEndpoint returns canned data.
"""

from __future__ import annotations

import json

import pytest

from helpers import serverless, serverless_bench, session
from localaws import server
from tests import sagemaker_support as sm
from tests.conftest import workshop_pointed_at
from tests.local.test_sagemaker_efficientnet import _cli_invoke

PREFIX = "sdk"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """05's model, configurations and two endpoints, made the way 05 makes them."""
    handle = sm.start_server(tmp_path_factory.mktemp("sm-sdk-state"), LOCALAWS_SAGEMAKER_IDLE_SECONDS="600")
    try:
        archive = sm.model_archive()
        url = sm.upload(handle, archive.path.read_bytes(), archive.key, bucket="sm-sdk-models")
        with workshop_pointed_at(handle, PREFIX) as cfg:
            names = serverless.names(cfg)
            image = serverless.image_uri(cfg.region)
            model = serverless.create_model(names, image, url, sm.role(handle))
            config = serverless.create_endpoint_config(
                names.config, names.model, serverless.serverless_config(2048, 2)
            )
            serverless.create_endpoint_config(
                names.pc_config, names.model, serverless.serverless_config(2048, 2, 1)
            )
            for name, config_name in ((names.endpoint, names.config), (names.pc_endpoint, names.pc_config)):
                serverless.create_endpoint(name, config_name)
            yield handle, names, model, config
    finally:
        server.stop(handle.state_dir)  # also when the setup fails


def test_the_sdk_resources_describe_what_was_made(deployed):
    handle, names, model, config = deployed
    assert model.model_name == names.model and model.primary_container.image.endswith("-cpu-py312")
    serverless_config = config.production_variants[0].serverless_config
    assert (serverless_config.memory_size_in_mb, serverless_config.max_concurrency) == (2048, 2)
    with workshop_pointed_at(handle, PREFIX):
        container = model.primary_container
        again = serverless.create_model(names, container.image, container.model_data_url, "arn:ignored")
        assert again.model_arn == model.model_arn  # a re-run reuses it
        with pytest.raises(RuntimeError, match=r"exists with another archive.*delete_sagemaker"):
            serverless.create_model(names, container.image, "s3://sm-sdk-models/other.tar.gz", "arn:ignored")


def test_the_aws_cli_gets_a_prediction_and_the_first_answer_is_a_measured_cold_start(deployed, tmp_path):
    handle, names, *_ = deployed
    first, _ = _cli_invoke(handle, names.endpoint, tmp_path / "first.json")
    second, _ = _cli_invoke(handle, names.endpoint, tmp_path / "second.json")
    assert len(first["predictions"]) == 5 and first["predictions"] == second["predictions"]
    init = first["container"]["init"]
    assert init["phases_ms"]["import_torch"] > 0 and init["total_ms"] >= sum(init["phases_ms"].values()) - 0.5
    assert (
        first["container"]["ready_ms_before_first_request"] < serverless_bench.COLD_READY_MS
    )  # started by the request
    assert second["container"]["id"] == first["container"]["id"] and "init" not in second["container"]


def test_the_sdk_endpoint_invokes_and_the_provisioned_container_was_ready_before(deployed):
    from sagemaker.core.resources import Endpoint

    handle, names, *_ = deployed
    with workshop_pointed_at(handle, PREFIX) as cfg:
        endpoint = Endpoint.get(endpoint_name=names.pc_endpoint, session=session.session(), region=cfg.region)
        answer = json.loads(
            endpoint.invoke(body=sm.SAMPLE_IMAGE.read_bytes(), content_type="image/jpeg").body.read()
        )
    assert (
        answer["container"]["ready_ms_before_first_request"] > serverless_bench.COLD_READY_MS
    )  # provisioned, not cold


def test_04_s_scenarios_on_serverless_endpoints_give_records_that_tell_the_kinds_apart(deployed):
    handle, names, *_ = deployed
    params = serverless_bench.ServerlessParams(cold_starts=1, warm=2, provisioned=2, burst=2, memory_mb=2048)
    with workshop_pointed_at(handle, PREFIX):
        records = serverless_bench.run(names, sm.SAMPLE_IMAGE.read_bytes(), params)
        left = [e["EndpointName"] for e in handle.client("sagemaker").list_endpoints()["Endpoints"]]
    assert not [r for r in records if r["error"]], [r["error"] for r in records if r["error"]]
    by = {
        s: [r for r in records if r["scenario"] == s]
        for s in ("cold", "warm", "provisioned", "burst-on-demand", "burst-provisioned")
    }
    assert [len(v) for v in by.values()] == [1, 2, 2, 2, 2]
    assert all(r["cold"] and r["init_import_torch_ms"] for r in by["cold"] + by["burst-on-demand"])
    assert not any(r["cold"] for r in by["warm"] + by["provisioned"])
    assert all(r["init_type"] == "provisioned-concurrency" for r in by["provisioned"])
    spill = sorted(r["cold"] for r in by["burst-provisioned"])
    assert spill == [False, True]  # one on the provisioned container, one spilled over to a cold one
    assert sorted(left) == sorted([names.endpoint, names.pc_endpoint])  # the fresh endpoints are gone
