"""Each gap of stock moto that the storage stack hits, pinned by a test that fails without its patch.

The templates here are minimal on purpose: each test names one gap (see the docstrings of
``localaws/patches/{ec2,efs,s3}.py``).
"""

from __future__ import annotations

import json
import uuid

import pytest

NETWORK = {
    "Vpc": {
        "Type": "AWS::EC2::VPC",
        "Properties": {"CidrBlock": "10.30.0.0/16", "EnableDnsSupport": True, "EnableDnsHostnames": True},
    },
    "Subnet": {
        "Type": "AWS::EC2::Subnet",
        "Properties": {
            "VpcId": {"Ref": "Vpc"},
            "CidrBlock": "10.30.1.0/24",
            "AvailabilityZone": {"Fn::Select": [1, {"Fn::GetAZs": ""}]},
        },
    },
}

# A route table with an S3 gateway endpoint on it, in NETWORK's VPC.
ROUTED = {
    "Rt": {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": {"Ref": "Vpc"}}},
    "S3": {
        "Type": "AWS::EC2::VPCEndpoint",
        "Properties": {
            "VpcId": {"Ref": "Vpc"},
            "ServiceName": "com.amazonaws.us-east-1.s3",
            "VpcEndpointType": "Gateway",
            "RouteTableIds": [{"Ref": "Rt"}],
        },
    },
}


@pytest.fixture
def deploy(local_aws):
    """Create a stack from resources and outputs; delete it afterwards. Returns (outputs, stack id)."""
    cfn = local_aws.client("cloudformation")
    created = []

    def _deploy(resources: dict, outputs: dict, region: str | None = None) -> dict:
        client = local_aws.client("cloudformation", **({"region_name": region} if region else {}))
        name = f"patch-{uuid.uuid4().hex[:8]}"
        body = {"Resources": resources, "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
        stack_id = client.create_stack(StackName=name, TemplateBody=json.dumps(body))["StackId"]
        created.append((client, stack_id))
        stack = client.describe_stacks(StackName=stack_id)["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    yield _deploy
    for client, stack_id in created:
        client.delete_stack(StackName=stack_id)
    del cfn


EFS = {
    "Fs": {"Type": "AWS::EFS::FileSystem", "Properties": {"Encrypted": True, "ThroughputMode": "elastic"}},
    "Sg": {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {"GroupDescription": "efs", "VpcId": {"Ref": "Vpc"}},
    },
    "Mt": {
        "Type": "AWS::EFS::MountTarget",
        "Properties": {
            "FileSystemId": {"Ref": "Fs"},
            "SubnetId": {"Ref": "Subnet"},
            "SecurityGroups": [{"Ref": "Sg"}],
        },
    },
    "Ap": {
        "Type": "AWS::EFS::AccessPoint",
        "Properties": {
            "FileSystemId": {"Ref": "Fs"},
            "PosixUser": {"Uid": "1000", "Gid": "1000"},
            "RootDirectory": {
                "Path": "/ml",
                "CreationInfo": {"OwnerUid": "1000", "OwnerGid": "1000", "Permissions": "750"},
            },
        },
    },
}


def test_efs_getatt_and_ref_resolve_to_ids_and_arns(deploy, local_aws):
    out = deploy(
        {**NETWORK, **EFS},
        {
            "FsId": {"Ref": "Fs"},
            "FsArn": {"Fn::GetAtt": ["Fs", "Arn"]},
            "ApRef": {"Ref": "Ap"},
            "ApId": {"Fn::GetAtt": ["Ap", "AccessPointId"]},
            "ApArn": {"Fn::GetAtt": ["Ap", "Arn"]},
            "MtIp": {"Fn::GetAtt": ["Mt", "IpAddress"]},
        },
    )
    assert out["ApRef"] == out["ApId"] and out["ApRef"].startswith("fsap-")
    assert out["FsArn"].endswith(f":file-system/{out['FsId']}")
    assert out["ApArn"].endswith(f":access-point/{out['ApId']}")
    assert out["MtIp"].startswith("10.30.1.")


def test_efs_access_point_numbers_come_back_as_numbers(deploy, local_aws):
    out = deploy({**NETWORK, **EFS}, {"ApId": {"Ref": "Ap"}})
    ap = local_aws.client("efs").describe_access_points(AccessPointId=out["ApId"])["AccessPoints"][0]
    assert ap["PosixUser"] == {"Uid": 1000, "Gid": 1000}
    assert ap["RootDirectory"]["CreationInfo"] == {"OwnerUid": 1000, "OwnerGid": 1000, "Permissions": "750"}


def test_vpc_dns_flags_are_applied(deploy, local_aws):
    out = deploy(NETWORK, {"VpcId": {"Ref": "Vpc"}})
    ec2 = local_aws.client("ec2")
    assert ec2.describe_vpc_attribute(VpcId=out["VpcId"], Attribute="enableDnsHostnames")[
        "EnableDnsHostnames"
    ]["Value"]
    assert ec2.describe_vpc_attribute(VpcId=out["VpcId"], Attribute="enableDnsSupport")["EnableDnsSupport"][
        "Value"
    ]


def test_subnet_availability_zone_getatt_and_getazs_follow_the_stack_region(deploy):
    out = deploy(NETWORK, {"Az": {"Fn::GetAtt": ["Subnet", "AvailabilityZone"]}}, region="eu-west-1")
    assert out["Az"] == "eu-west-1b"


def test_security_group_egress_replaces_the_default_allow_all_rule(deploy, local_aws):
    resources = {
        **NETWORK,
        "Other": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {"GroupDescription": "o", "VpcId": {"Ref": "Vpc"}},
        },
        "Sg": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "lambda",
                "VpcId": {"Ref": "Vpc"},
                "SecurityGroupEgress": [
                    {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}
                ],
            },
        },
        "ToOther": {
            "Type": "AWS::EC2::SecurityGroupEgress",
            "Properties": {
                "GroupId": {"Ref": "Sg"},
                "IpProtocol": "tcp",
                "FromPort": 2049,
                "ToPort": 2049,
                "DestinationSecurityGroupId": {"Ref": "Other"},
            },
        },
    }
    out = deploy(resources, {"Sg": {"Ref": "Sg"}, "Other": {"Ref": "Other"}})
    group = local_aws.client("ec2").describe_security_groups(GroupIds=[out["Sg"]])["SecurityGroups"][0]
    rules = sorted(
        (p["FromPort"], [r["CidrIp"] for r in p["IpRanges"]], [g["GroupId"] for g in p["UserIdGroupPairs"]])
        for p in group["IpPermissionsEgress"]
    )
    assert rules == [(443, ["0.0.0.0/0"], []), (2049, [], [out["Other"]])]


def test_route_table_association_endpoint_and_vpc_are_really_created_and_deleted(local_aws):
    cfn, ec2 = local_aws.client("cloudformation"), local_aws.client("ec2")
    resources = {
        **NETWORK,
        **ROUTED,
        "Assoc": {
            "Type": "AWS::EC2::SubnetRouteTableAssociation",
            "Properties": {"SubnetId": {"Ref": "Subnet"}, "RouteTableId": {"Ref": "Rt"}},
        },
    }
    outputs = {
        "Vpc": {"Value": {"Ref": "Vpc"}},
        "Rt": {"Value": {"Ref": "Rt"}},
        "Assoc": {"Value": {"Ref": "Assoc"}},
    }
    name = f"patch-{uuid.uuid4().hex[:8]}"
    stack_id = cfn.create_stack(
        StackName=name, TemplateBody=json.dumps({"Resources": resources, "Outputs": outputs})
    )["StackId"]
    out = {
        o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    }
    table = ec2.describe_route_tables(RouteTableIds=[out["Rt"]])["RouteTables"][0]
    assert [a["RouteTableAssociationId"] for a in table["Associations"]] == [out["Assoc"]]
    cfn.delete_stack(StackName=name)
    assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    assert not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [out["Vpc"]]}])["Vpcs"]
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [out["Vpc"]]}])[
        "VpcEndpoints"
    ]
    assert not endpoints


def test_bucket_versioning_public_access_block_and_ownership_are_applied(deploy, local_aws):
    bucket = {
        "Type": "AWS::S3::Bucket",
        "Properties": {
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        },
    }
    name = deploy({"B": bucket}, {"B": {"Ref": "B"}})["B"]
    s3 = local_aws.client("s3")
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"].values())
    assert s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}
    ]


def test_deleting_a_stack_with_a_non_empty_bucket_fails_as_on_aws(local_aws):
    cfn, s3 = local_aws.client("cloudformation"), local_aws.client("s3")
    name = f"patch-{uuid.uuid4().hex[:8]}"
    body = {"Resources": {"B": {"Type": "AWS::S3::Bucket"}}, "Outputs": {"B": {"Value": {"Ref": "B"}}}}
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(body))
    bucket = cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"][0]["OutputValue"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    cfn.delete_stack(StackName=name)
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "DELETE_FAILED"
    s3.delete_object(Bucket=bucket, Key="k")
    cfn.delete_stack(StackName=name)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_an_endpoint_whose_route_table_went_first_still_deletes(local_aws):
    """moto deletes a stack's resources in no fixed order; the route table may go before the endpoint."""
    cfn, ec2 = local_aws.client("cloudformation"), local_aws.client("ec2")
    resources = {
        **NETWORK,
        **ROUTED,
    }
    body = {"Resources": resources, "Outputs": {"Rt": {"Value": {"Ref": "Rt"}}}}
    name = f"patch-{uuid.uuid4().hex[:8]}"
    stack_id = cfn.create_stack(StackName=name, TemplateBody=json.dumps(body))["StackId"]
    route_table = cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"][0]["OutputValue"]
    ec2.delete_route_table(RouteTableId=route_table)
    cfn.delete_stack(StackName=name)
    assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"


def test_describe_file_systems_pages_at_100_as_efs_does(own_local_aws):
    """moto paged at 10: a caller reading one page (as AWS's 100 allows) missed file systems past the tenth."""
    efs = own_local_aws.client("efs")
    created = {efs.create_file_system(CreationToken=f"page-{i}")["FileSystemId"] for i in range(12)}
    page = efs.describe_file_systems()
    assert {f["FileSystemId"] for f in page["FileSystems"]} == created and "NextMarker" not in page
    first = efs.describe_file_systems(MaxItems=5)
    assert len(first["FileSystems"]) == 5 and first["NextMarker"]
