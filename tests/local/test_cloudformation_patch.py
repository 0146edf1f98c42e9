"""CloudFormation on the local backend behaves like AWS for events, failures and no-op updates."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

BUCKETS = {
    "Resources": {
        "First": {"Type": "AWS::S3::Bucket"},
        "Second": {"Type": "AWS::S3::Bucket", "DependsOn": "First"},
    },
    # An exported output makes moto create resources while it evaluates exports, before the stack event.
    "Outputs": {
        "FirstName": {"Value": {"Ref": "First"}, "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-first"}}}
    },
}
BROKEN = {
    "Resources": {
        "Fine": {"Type": "AWS::S3::Bucket"},
        "Broken": {
            "Type": "AWS::EC2::Subnet",
            "DependsOn": "Fine",
            "Properties": {"VpcId": "vpc-0000000000doesnotexist", "CidrBlock": "10.9.0.0/24"},
        },
    }
}


def events(cfn, name):
    return list(reversed(cfn.describe_stack_events(StackName=name)["StackEvents"]))


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_every_resource_gets_in_progress_and_complete_events(local_aws):
    cfn, name = local_aws.client("cloudformation"), unique("events")
    stack_id = cfn.create_stack(StackName=name, TemplateBody=json.dumps(BUCKETS))["StackId"]
    seen = [(e["LogicalResourceId"], e["ResourceStatus"]) for e in events(cfn, name)]
    assert seen[0] == (name, "CREATE_IN_PROGRESS") and seen[-1] == (name, "CREATE_COMPLETE")
    assert [status for logical, status in seen].count("CREATE_IN_PROGRESS") == 3  # the stack and two buckets
    for logical in ("First", "Second"):
        assert seen.index((logical, "CREATE_IN_PROGRESS")) < seen.index((logical, "CREATE_COMPLETE"))
    cfn.delete_stack(StackName=name)
    seen = [(e["LogicalResourceId"], e["ResourceStatus"]) for e in events(cfn, stack_id)]
    assert ("First", "DELETE_COMPLETE") in seen and ("Second", "DELETE_COMPLETE") in seen


def test_a_failing_resource_rolls_the_stack_back_with_the_reason(local_aws):
    cfn, s3, name = local_aws.client("cloudformation"), local_aws.client("s3"), unique("broken")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(BROKEN))
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    failed = [e for e in events(cfn, name) if e["ResourceStatus"] == "CREATE_FAILED"]
    assert [e["LogicalResourceId"] for e in failed] == ["Broken"]
    assert "vpc-0000000000doesnotexist" in failed[0]["ResourceStatusReason"]
    # The rollback removed the bucket that had been created.
    assert not [b for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(name.lower())]
    cfn.delete_stack(StackName=name)


def test_an_update_that_changes_nothing_is_refused_as_on_aws(local_aws):
    cfn, name = local_aws.client("cloudformation"), unique("noop")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(BUCKETS))
    with pytest.raises(ClientError, match="No updates are to be performed"):
        cfn.update_stack(StackName=name, TemplateBody=json.dumps(BUCKETS))
    cfn.delete_stack(StackName=name)


def test_an_update_with_a_changed_parameter_is_applied(local_aws):
    cfn, name = local_aws.client("cloudformation"), unique("param")
    template = {
        "Parameters": {"Tag": {"Type": "String", "Default": "a"}},
        "Resources": {
            "P": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Type": "String", "Value": {"Ref": "Tag"}, "Name": name},
            }
        },
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    with pytest.raises(ClientError, match="No updates"):
        cfn.update_stack(
            StackName=name,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": "Tag", "ParameterValue": "a"}],
        )
    cfn.update_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "Tag", "ParameterValue": "b"}],
    )
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE", events(
        cfn, name
    )[-2]["ResourceStatusReason"]
    cfn.delete_stack(StackName=name)


def test_a_failed_delete_keeps_the_stack_in_delete_failed(local_aws):
    cfn, ec2, name = local_aws.client("cloudformation"), local_aws.client("ec2"), unique("vpc")
    template = {
        "Resources": {"Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.42.0.0/16"}}},
        "Outputs": {"VpcId": {"Value": {"Ref": "Vpc"}}},
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    vpc_id = cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"][0]["OutputValue"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.42.1.0/24")["Subnet"][
        "SubnetId"
    ]  # not the stack's
    cfn.delete_stack(StackName=name)
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "DELETE_FAILED"
    assert "DependencyViolation" in events(cfn, name)[-1]["ResourceStatusReason"]
    ec2.delete_subnet(SubnetId=subnet)
    cfn.delete_stack(StackName=name)
    assert name not in [
        s["StackName"]
        for s in cfn.list_stacks(StackStatusFilter=["CREATE_COMPLETE", "DELETE_FAILED"])["StackSummaries"]
    ]
