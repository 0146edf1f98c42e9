"""Cleanup touches only this prefix's resources, by exact name: ``lambda-efs`` never catches
``lambda-efs-alice`` (a colleague's workshop in the same account), which a ``startswith`` would."""

from __future__ import annotations

import json

import pytest

from helpers import cleanup
from tests.conftest import lambda_zip, workshop_pointed_at


@pytest.fixture
def two_workshops(local_aws):
    """Functions, log groups and buckets of prefix ``scope`` (ours) and ``scope-alice`` (hers)."""
    lam, logs, s3 = (local_aws.client(s) for s in ("lambda", "logs", "s3"))
    role = local_aws.lambda_role()
    made = {"functions": [], "groups": [], "buckets": []}
    for prefix in ("scope", "scope-alice"):
        for suffix in ("inference", "seeder"):
            name = f"{prefix}-{suffix}"
            lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Handler="app.handler",
                Role=role,
                Code={"ZipFile": lambda_zip("def handler(e, c):\n    return e\n")},
            )
            made["functions"].append(name)
            logs.create_log_group(logGroupName=f"/aws/lambda/{name}")
            made["groups"].append(f"/aws/lambda/{name}")
        bucket = f"{prefix}-storage-artifactbucket-abc123"
        s3.create_bucket(Bucket=bucket)
        made["buckets"].append(bucket)
    yield made
    for name in made["functions"]:
        lam.delete_function(FunctionName=name)
    for group in made["groups"]:
        try:
            logs.delete_log_group(logGroupName=group)
        except logs.exceptions.ResourceNotFoundException:
            pass
    for bucket in made["buckets"]:
        s3.delete_bucket(Bucket=bucket)


def test_leftovers_and_log_group_deletes_never_reach_another_prefix(local_aws, two_workshops):
    with workshop_pointed_at(local_aws, "scope") as cfg:
        left = cleanup.leftovers(cfg)
        assert sorted(left["functions"]) == ["scope-inference", "scope-seeder"]
        assert sorted(left["log groups"]) == ["/aws/lambda/scope-inference", "/aws/lambda/scope-seeder"]
        assert left["buckets"] == ["scope-storage-artifactbucket-abc123"]
        assert sorted(cleanup.delete_log_groups(cfg)) == [
            "/aws/lambda/scope-inference",
            "/aws/lambda/scope-seeder",
        ]
    remaining = [g["logGroupName"] for g in local_aws.client("logs").describe_log_groups()["logGroups"]]
    assert {"/aws/lambda/scope-alice-inference", "/aws/lambda/scope-alice-seeder"} <= set(remaining)
    with workshop_pointed_at(local_aws, "scope-alice") as cfg:
        assert sorted(cleanup.leftovers(cfg)["functions"]) == ["scope-alice-inference", "scope-alice-seeder"]


def test_the_storage_stack_waits_for_its_importers(local_aws):
    """delete_stacks keeps the storage stack while a dependant still imports it, and says why."""
    cfn = local_aws.client("cloudformation")
    exporter = {
        "Resources": {"G": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/x/scope2"}}},
        "Outputs": {"V": {"Value": "1", "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-V"}}}},
    }
    importer = {
        "Resources": {
            "G": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {
                    "LogGroupName": {"Fn::Join": ["-", ["/y", {"Fn::ImportValue": "scope2-storage-V"}]]}
                },
            }
        }
    }
    cfn.create_stack(StackName="scope2-storage", TemplateBody=json.dumps(exporter))
    cfn.create_stack(StackName="scope2-other", TemplateBody=json.dumps(importer))  # not a workshop stack
    try:
        with workshop_pointed_at(local_aws, "scope2") as cfg:
            outcome = cleanup.delete_stacks(cfg, echo=None)
            assert outcome["scope2-storage"].startswith(
                "FAILED: scope2-storage is still imported by scope2-other"
            )
            assert cleanup.leftovers(cfg)["stacks"] == ["scope2-storage"]
        cfn.delete_stack(StackName="scope2-other")
        with workshop_pointed_at(local_aws, "scope2") as cfg:
            assert cleanup.delete_stacks(cfg, echo=None)["scope2-storage"] == "deleted"
    finally:
        for name in ("scope2-other", "scope2-storage"):
            cfn.delete_stack(StackName=name)


def test_sagemaker_cleanup_deletes_this_prefix_s_endpoints_configs_model_and_logs_only(local_aws):
    """05's endpoints (kept and fresh), configurations, model and endpoint log groups go; a colleague's
    ``<prefix>-alice-...`` ones stay, and a second run finds nothing to do."""
    from tests import sagemaker_support as sm

    client, logs = local_aws.client("sagemaker"), local_aws.client("logs")
    url = sm.upload(local_aws, sm.tiny_archive(), "scope3/model.tar.gz", bucket="scope3-models")
    for prefix in ("scope3", "scope3-alice"):
        base = f"{prefix}-effnet"
        client.create_model(
            ModelName=base,
            ExecutionRoleArn=sm.role(local_aws),
            PrimaryContainer={"Image": sm.IMAGE, "ModelDataUrl": url},
        )
        client.create_endpoint_config(
            EndpointConfigName=f"{base}-serverless",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": base,
                    "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1},
                }
            ],
        )
        for endpoint in (base, f"{base}-cold-0"):
            client.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{base}-serverless")
            logs.create_log_group(logGroupName=f"/aws/sagemaker/Endpoints/{endpoint}")
    with workshop_pointed_at(local_aws, "scope3") as cfg:
        left = cleanup.leftovers(cfg)
        assert sorted(left["SageMaker endpoints"]) == ["scope3-effnet", "scope3-effnet-cold-0"]
        assert left["SageMaker endpoint configs"] == ["scope3-effnet-serverless"]
        assert left["SageMaker models"] == ["scope3-effnet"]
        assert "/aws/sagemaker/Endpoints/scope3-effnet-cold-0" in left["log groups"]
        cleanup.delete_sagemaker(cfg, echo=None)
        cleanup.delete_log_groups(cfg)
        left = cleanup.leftovers(cfg)
        assert not any(
            left[k]
            for k in ("SageMaker endpoints", "SageMaker endpoint configs", "SageMaker models", "log groups")
        )
        assert cleanup.delete_sagemaker(cfg, echo=None) == {
            "SageMaker endpoints": [],
            "SageMaker endpoint configs": [],
            "SageMaker models": [],
        }
    with workshop_pointed_at(local_aws, "scope3-alice") as cfg:
        left = cleanup.leftovers(cfg)
        assert sorted(left["SageMaker endpoints"]) == [
            "scope3-alice-effnet",
            "scope3-alice-effnet-cold-0",
        ]
        assert len(left["log groups"]) == 2
        cleanup.delete_sagemaker(cfg, echo=None)
        cleanup.delete_log_groups(cfg)
