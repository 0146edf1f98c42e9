"""function.yaml's safety settings, deployed for real on the local backend with a stand-in handler:
no Provisioned Concurrency when the account has no room for it (ProvisionedConcurrency=0), and the
public HTTP API's throttle (429 past the burst)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from helpers import functions, stacks
from tests.conftest import workshop_pointed_at

HANDLER = 'import json\n\ndef handler(event, context):\n    return {"statusCode": 200, "body": json.dumps({"ok": True})}\n'


@pytest.fixture(scope="module")
def no_pc_stack(local_aws, tmp_path_factory):
    source = tmp_path_factory.mktemp("standin")
    (source / "app.py").write_text(HANDLER)
    with workshop_pointed_at(local_aws, "fnopts") as cfg:
        storage = stacks.deploy(cfg.name("storage"), "storage", echo=None)
        code = functions.build_zip("standin", source)
        outputs = stacks.deploy(
            cfg.name("function"),
            "function",
            {
                "StorageStackName": cfg.name("storage"),
                "FunctionName": cfg.name("inference"),
                "CodeBucket": storage["ArtifactBucketName"],
                "CodeKey": functions.upload_zip(code, storage["ArtifactBucketName"]),
                "MemorySize": 512,
                "Timeout": 10,
                "ProvisionedConcurrency": 0,
                "ApiThrottlingRateLimit": 1,
                "ApiThrottlingBurstLimit": 2,
            },
            echo=None,
        )
        yield {"outputs": outputs, "aws": local_aws}
        for suffix in ("function", "storage"):
            stacks.delete(cfg.name(suffix), echo=None)


def test_provisioned_concurrency_0_deploys_the_alias_without_it(no_pc_stack):
    lam, name = no_pc_stack["aws"].client("lambda"), no_pc_stack["outputs"]["FunctionName"]
    assert (
        lam.get_alias(FunctionName=name, Name="provisioned")["FunctionVersion"]
        == no_pc_stack["outputs"]["VersionNumber"]
    )
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="provisioned")


def test_the_http_api_of_function_yaml_is_throttled(no_pc_stack):
    api_id = no_pc_stack["outputs"]["HttpApiUrl"].rstrip("/").rsplit("/", 1)[1]
    [stage] = no_pc_stack["aws"].client("apigatewayv2").get_stages(ApiId=api_id)["Items"]
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == 1
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 2
    assert no_pc_stack["outputs"]["HttpApiThrottle"] == "1 per second, burst 2"
    statuses = []
    for _ in range(5):
        request = urllib.request.Request(no_pc_stack["outputs"]["HttpApiUrl"], data=b"{}", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                statuses.append(reply.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
            assert exc.code != 429 or json.loads(exc.read()) == {"message": "Too Many Requests"}
        time.sleep(0.01)
    assert statuses[0] == 200 and 429 in statuses, statuses


def test_the_storage_stacks_file_system_has_its_policy(no_pc_stack):
    efs = no_pc_stack["aws"].client("efs")
    [fs] = [
        f
        for f in efs.describe_file_systems()["FileSystems"]
        if {"Key": "Name", "Value": "fnopts-storage"} in f["Tags"]
    ]
    policy = json.loads(efs.describe_file_system_policy(FileSystemId=fs["FileSystemId"])["Policy"])
    assert {s["Sid"] for s in policy["Statement"]} == {"OnlyThroughAnAccessPoint", "NoRootAccess"}
