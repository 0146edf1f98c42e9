"""The workshop's own ``cloudformation/storage.yaml``, deployed into an in-process moto (with localaws's
moto patches, as the server runs it), judged by the network model: its private subnets reach S3 and
their EFS mount target and nothing else; a template that drops the 2049 rule or the S3 endpoint's route
table breaks exactly that, with Lambda's error for EFS."""

from __future__ import annotations

import copy
import json

import boto3
import pytest
from moto import mock_aws

from helpers import stacks
from helpers.template_checks import load_template
from localaws import patches
from localaws.network import addresses, efs, reachability
from localaws.network.placement import choose

from .conftest import ACCOUNT, REGION

TEMPLATE = load_template(stacks.template_path("storage"))


@pytest.fixture
def deploy(monkeypatch):
    """Deploy a (possibly edited) copy of storage.yaml; returns its outputs."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    patches.apply_all()
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name=REGION)

        def _deploy(template: dict) -> dict:
            cfn.create_stack(StackName="storage", TemplateBody=json.dumps(template))
            stack = cfn.describe_stacks(StackName="storage")["Stacks"][0]
            assert stack["StackStatus"] == "CREATE_COMPLETE", stack
            return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}

        yield _deploy


def _vpc_config(outputs: dict) -> dict:
    return {
        "SubnetIds": outputs["PrivateSubnetIds"].split(","),
        "SecurityGroupIds": [outputs["LambdaSecurityGroupId"]],
    }


def test_the_workshops_private_subnets_reach_s3_and_efs_and_nothing_else(deploy):
    outputs = deploy(TEMPLATE)
    plan = addresses.plan()
    for serial in (0, 1):  # both subnets
        placement = choose(ACCOUNT, REGION, _vpc_config(outputs), serial)
        policy = reachability.evaluate(placement, plan)
        assert {name for name, verdict in policy.services.items() if verdict} == {"s3"}
        assert not policy.other_services
        assert not reachability.internet(placement, "192.88.99.10", 443)
        assert efs.check(placement, outputs["AccessPointArn"])


def test_the_same_code_without_vpc_config_reaches_the_lambda_api(deploy):
    deploy(TEMPLATE)
    policy = reachability.evaluate(choose(ACCOUNT, REGION, None, 0), addresses.plan())
    assert policy.services["lambda"] and policy.other_services


def test_an_efs_group_that_does_not_admit_2049_fails_the_mount_with_lambdas_error(deploy):
    broken = copy.deepcopy(TEMPLATE)
    ingress = broken["Resources"]["EfsSecurityGroup"]["Properties"]["SecurityGroupIngress"][0]
    ingress["FromPort"] = ingress["ToPort"] = 2048
    outputs = deploy(broken)
    check = efs.check(choose(ACCOUNT, REGION, _vpc_config(outputs), 0), outputs["AccessPointArn"])
    assert check.error == efs.connectivity(outputs["AccessPointArn"])
    assert check.error.status == 408


def test_a_lambda_group_without_the_nfs_egress_rule_fails_the_mount(deploy):
    broken = copy.deepcopy(TEMPLATE)
    del broken["Resources"]["LambdaToEfsEgress"]
    outputs = deploy(broken)
    check = efs.check(choose(ACCOUNT, REGION, _vpc_config(outputs), 1), outputs["AccessPointArn"])
    assert check.error.error_type == "EFSMountConnectivityException"


def test_an_s3_endpoint_off_the_route_table_leaves_the_subnets_without_s3(deploy):
    broken = copy.deepcopy(TEMPLATE)
    broken["Resources"]["S3GatewayEndpoint"]["Properties"]["RouteTableIds"] = []
    outputs = deploy(broken)
    placement = choose(ACCOUNT, REGION, _vpc_config(outputs), 0)
    assert not reachability.service(placement, "s3")
    assert efs.check(placement, outputs["AccessPointArn"])  # EFS does not need the endpoint
