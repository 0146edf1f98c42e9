"""storage.yaml deployed to the embedded backend through helpers.stacks, every resource checked
through its own service's API, re-deployed as a no-op, then deleted with nothing left behind."""

from __future__ import annotations

import re

import pytest

from helpers import cleanup, stacks
from tests.conftest import workshop_pointed_at

EXPORTS = [
    "VpcId",
    "PrivateSubnetIds",
    "LambdaSecurityGroupId",
    "EfsSecurityGroupId",
    "FileSystemId",
    "FileSystemArn",
    "AccessPointId",
    "AccessPointArn",
    "ArtifactBucketName",
]


@pytest.fixture(scope="module")
def storage(local_aws):
    """The storage stack, deployed once for this module under its own prefix."""
    with workshop_pointed_at(local_aws, "storage-test") as cfg:
        name = cfg.name("storage")
        events: list[str] = []
        outputs = stacks.deploy(name, "storage", echo=events.append)
        yield {"name": name, "outputs": outputs, "events": events, "aws": local_aws}
        stacks.delete(name, echo=None)


def test_deploy_prints_an_event_for_every_resource(storage):
    logged = "\n".join(storage["events"])
    for logical in stacks.template_resources("storage"):
        assert re.search(rf"CREATE_COMPLETE\s+\S+\s+{logical}\b", logged), (
            f"no CREATE_COMPLETE event for {logical}"
        )


def test_every_export_is_an_output_with_the_stack_name_prefix(storage):
    cfn = storage["aws"].client("cloudformation")
    exports = {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]}
    for key in EXPORTS:
        assert exports[f"{storage['name']}-{key}"] == storage["outputs"][key]


def test_network_vpc_with_dns_two_private_subnets_in_two_zones(storage):
    ec2, out = storage["aws"].client("ec2"), storage["outputs"]
    vpc = out["VpcId"]
    assert ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]
    assert ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsHostnames")["EnableDnsHostnames"][
        "Value"
    ]
    subnets = ec2.describe_subnets(SubnetIds=out["PrivateSubnetIds"].split(","))["Subnets"]
    assert len(subnets) == 2 and len({s["AvailabilityZone"] for s in subnets}) == 2
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)
    assert all(s["VpcId"] == vpc for s in subnets)


def test_route_table_has_both_subnets_and_the_s3_gateway_endpoint(storage):
    ec2, out = storage["aws"].client("ec2"), storage["outputs"]
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [out["VpcId"]]}])[
        "VpcEndpoints"
    ]
    assert [(e["VpcEndpointType"], e["ServiceName"]) for e in endpoints] == [
        ("Gateway", "com.amazonaws.us-east-1.s3")
    ]
    table = ec2.describe_route_tables(RouteTableIds=endpoints[0]["RouteTableIds"])["RouteTables"][0]
    assert sorted(a["SubnetId"] for a in table["Associations"] if "SubnetId" in a) == sorted(
        out["PrivateSubnetIds"].split(",")
    )
    nat = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [out["VpcId"]]}])["NatGateways"]
    assert not nat, "the workshop needs no NAT gateway (and it costs money)"


def test_efs_accepts_nfs_only_from_the_lambda_security_group(storage):
    ec2, out = storage["aws"].client("ec2"), storage["outputs"]
    efs_sg = ec2.describe_security_groups(GroupIds=[out["EfsSecurityGroupId"]])["SecurityGroups"][0]
    assert [
        (
            p["IpProtocol"],
            p["FromPort"],
            p["ToPort"],
            [g["GroupId"] for g in p["UserIdGroupPairs"]],
            p["IpRanges"],
        )
        for p in efs_sg["IpPermissions"]
    ] == [("tcp", 2049, 2049, [out["LambdaSecurityGroupId"]], [])]


def test_file_system_is_encrypted_elastic_with_a_mount_target_per_subnet(storage):
    efs, out = storage["aws"].client("efs"), storage["outputs"]
    fs = efs.describe_file_systems(FileSystemId=out["FileSystemId"])["FileSystems"][0]
    assert fs["Encrypted"] and fs["ThroughputMode"] == "elastic"
    assert fs["FileSystemArn"] == out["FileSystemArn"]
    targets = efs.describe_mount_targets(FileSystemId=out["FileSystemId"])["MountTargets"]
    assert sorted(t["SubnetId"] for t in targets) == sorted(out["PrivateSubnetIds"].split(","))
    for target in targets:
        groups = efs.describe_mount_target_security_groups(MountTargetId=target["MountTargetId"])[
            "SecurityGroups"
        ]
        assert groups == [out["EfsSecurityGroupId"]]


def test_access_point_is_rooted_at_ml_as_uid_1000(storage):
    efs, out = storage["aws"].client("efs"), storage["outputs"]
    ap = efs.describe_access_points(AccessPointId=out["AccessPointId"])["AccessPoints"][0]
    assert ap["AccessPointArn"] == out["AccessPointArn"] and ap["FileSystemId"] == out["FileSystemId"]
    assert ap["PosixUser"]["Uid"] == 1000 and ap["PosixUser"]["Gid"] == 1000
    assert ap["RootDirectory"]["Path"] == "/ml"
    assert ap["RootDirectory"]["CreationInfo"]["OwnerUid"] == 1000


CLIENT_ACTIONS = (
    "elasticfilesystem:ClientMount",
    "elasticfilesystem:ClientWrite",
    "elasticfilesystem:ClientRootAccess",
)


def _role_statements(template: str, storage_outputs: dict) -> list[dict]:
    """The EFS statements of a template's execution role, with the storage stack's imports resolved."""
    from helpers.template_checks import load_template

    doc = load_template(stacks.template_path(template))
    statements = doc["Resources"]["Role"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]

    def resolve(value):
        if isinstance(value, dict) and "Fn::ImportValue" in value:
            return storage_outputs[value["Fn::ImportValue"]["Fn::Sub"].split("}-", 1)[1]]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return [resolve(v) for v in value] if isinstance(value, list) else value

    return [resolve(s) for s in statements if "elasticfilesystem" in str(s["Action"])]


def _matches(statement: dict, action: str, access_point: str | None) -> bool:
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    if action not in actions:
        return False
    condition = statement.get("Condition", {})
    key = "elasticfilesystem:AccessPointArn"
    if key in condition.get("StringEquals", {}) and condition["StringEquals"][key] != access_point:
        return False
    if key in condition.get("Null", {}) and (condition["Null"][key] == "true") != (access_point is None):
        return False
    return True


def allowed(role: list[dict], file_system_policy: dict, action: str, access_point: str | None) -> bool:
    """IAM's evaluation for one principal of the account: an explicit Deny wins, then any Allow."""
    statements = role + file_system_policy["Statement"]
    if any(s["Effect"] == "Deny" and _matches(s, action, access_point) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, action, access_point) for s in statements)


def test_the_file_system_policy_makes_inference_read_only_and_lets_the_seeder_write(storage):
    """With a policy, EFS consults the execution roles (https://docs.aws.amazon.com/lambda/latest/dg/configuration-filesystem.html)."""
    import json

    out = storage["outputs"]
    policy = json.loads(
        storage["aws"].client("efs").describe_file_system_policy(FileSystemId=out["FileSystemId"])["Policy"]
    )
    inference, seeder = _role_statements("function", out), _role_statements("seeder", out)
    mount, write, root = CLIENT_ACTIONS
    ap = out["AccessPointArn"]
    assert allowed(inference, policy, mount, ap) and not allowed(inference, policy, write, ap)
    assert allowed(seeder, policy, mount, ap) and allowed(seeder, policy, write, ap)
    for role in (inference, seeder):
        assert not allowed(role, policy, root, ap)
        assert not any(allowed(role, policy, action, None) for action in CLIENT_ACTIONS)  # no access point
    broad = [{"Effect": "Allow", "Action": list(CLIENT_ACTIONS), "Resource": "*"}]  # e.g. a managed policy
    assert not allowed(broad, policy, root, ap) and not allowed(broad, policy, write, None)


def test_artifact_bucket_is_private_versioned_encrypted_and_owner_enforced(storage):
    s3, bucket = storage["aws"].client("s3"), storage["outputs"]["ArtifactBucketName"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"][0][
        "ObjectOwnership"
    ] == ("BucketOwnerEnforced")


def test_redeploy_changes_nothing(storage):
    said: list[str] = []
    again = stacks.deploy(storage["name"], "storage", echo=said.append)
    assert again == storage["outputs"]
    assert any("nothing to change" in line for line in said)
    status = storage["aws"].client("cloudformation").describe_stacks(StackName=storage["name"])["Stacks"][0]
    assert status["StackStatus"] == "CREATE_COMPLETE"


def test_a_missing_output_names_the_notebook_to_run(storage):
    with pytest.raises(LookupError, match=r"no output 'Nope'.*run 01_setup_efs.ipynb"):
        stacks.output(storage["name"], "Nope", notebook="01_setup_efs.ipynb")


def test_a_missing_stack_names_the_notebook_to_run(workshop_env):
    with pytest.raises(LookupError, match=r"storage-nothere does not exist.*run 01_setup_efs.ipynb first"):
        stacks.outputs("storage-nothere", notebook="01_setup_efs.ipynb")


@pytest.fixture
def storage_del(local_aws):
    with workshop_pointed_at(local_aws, "storage-del") as cfg:
        yield cfg


def test_delete_empties_every_version_and_leaves_nothing(local_aws, storage_del):
    """A separate stack: versioned objects and delete markers in the bucket must not block the delete."""
    cfg = storage_del
    out = stacks.deploy(cfg.name("storage"), "storage", echo=None)
    s3 = local_aws.client("s3")
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket=out["ArtifactBucketName"], Key="model.tar.gz", Body=body)
    s3.delete_object(Bucket=out["ArtifactBucketName"], Key="model.tar.gz")  # a delete marker
    assert stacks.delete(cfg.name("storage"), echo=None) is True
    assert not any(cleanup.leftovers(cfg).values()), cleanup.leftovers(cfg)
    assert stacks.delete(cfg.name("storage"), echo=None) is False  # twice is fine
