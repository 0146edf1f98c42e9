"""localaws.network.efs: a cold start reaches its mount target or fails with Lambda's own error, word for
word as "Troubleshoot invocation issues in Lambda" prints it, with the Invoke API's status."""

from __future__ import annotations

import botocore.session
import pytest

from localaws.network import efs
from localaws.network.placement import Placement

from .conftest import ACCOUNT, REGION

# https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-invocation.html, with the page's example ARN.
PAGE_ARN = "arn:aws:elasticfilesystem:us-east-2:123456789012:access-point/fsap-015cxmplb72b405fd"
CONNECTIVITY = (
    "The function couldn't connect to the Amazon EFS file system with access point "
    "arn:aws:elasticfilesystem:us-east-2:123456789012:access-point/fsap-015cxmplb72b405fd. "
    "Check your network configuration and try again."
)
FAILURE = (
    "The function could not mount the EFS file system with access point "
    "arn:aws:elasticfilesystem:us-east-2:123456789012:access-point/fsap-015cxmplb72b405fd."
)
TIMEOUT = (
    "The function could not mount the EFS file system with access point "
    "{arn:aws:elasticfilesystem:us-east-2:123456789012:access-point/fsap-015cxmplb72b405fd} due to mount time out."
)


def test_the_messages_are_the_troubleshooting_pages_own():
    assert efs.connectivity(PAGE_ARN).message == CONNECTIVITY
    assert efs.mount_failure(PAGE_ARN).message == FAILURE
    assert efs.mount_timeout(PAGE_ARN).message == TIMEOUT


@pytest.mark.parametrize(
    "error", [efs.connectivity(PAGE_ARN), efs.mount_failure(PAGE_ARN), efs.mount_timeout(PAGE_ARN)]
)
def test_the_statuses_are_the_invoke_apis(error):
    model = botocore.session.get_session().get_service_model("lambda")
    assert model.shape_for(error.error_type).metadata["error"]["httpStatusCode"] == error.status


def test_the_workshop_mounts_from_both_subnets(workshop):
    for subnet in (workshop.subnet_a, workshop.subnet_b):
        check = efs.check(workshop.placement(subnet), workshop.access_point)
        assert check and check.error is None
        assert workshop.mount_targets[subnet] in check.how


def test_an_efs_group_without_2049_ingress_is_efs_mount_connectivity_exception(workshop):
    rule = workshop.permission(2049, group=workshop.lambda_group)
    workshop.ec2.revoke_security_group_ingress(GroupId=workshop.efs_group, IpPermissions=rule)
    check = efs.check(workshop.placement(), workshop.access_point)
    assert not check
    assert check.error == efs.LambdaError(
        408, "EFSMountConnectivityException", efs.connectivity(workshop.access_point).message
    )
    assert "admit no TCP 2049 in" in check.how
    assert workshop.access_point in check.error.message and "[" not in check.error.message  # AWS's words only


def test_a_lambda_group_without_2049_egress_cannot_connect(workshop):
    rule = workshop.permission(2049, group=workshop.efs_group)
    workshop.ec2.revoke_security_group_egress(GroupId=workshop.lambda_group, IpPermissions=rule)
    check = efs.check(workshop.placement(), workshop.access_point)
    assert check.error.error_type == "EFSMountConnectivityException"
    assert "admit no TCP 2049 out" in check.how


def test_an_egress_rule_to_the_mount_targets_address_is_enough(workshop):
    rule = workshop.permission(2049, group=workshop.efs_group)
    workshop.ec2.revoke_security_group_egress(GroupId=workshop.lambda_group, IpPermissions=rule)
    target = workshop.efs.describe_mount_targets(MountTargetId=workshop.mount_targets[workshop.subnet_a])
    address = target["MountTargets"][0]["IpAddress"]
    workshop.ec2.authorize_security_group_egress(
        GroupId=workshop.lambda_group, IpPermissions=workshop.permission(2049, cidr=f"{address}/32")
    )
    assert efs.check(workshop.placement(workshop.subnet_a), workshop.access_point)
    assert not efs.check(workshop.placement(workshop.subnet_b), workshop.access_point)  # another address


def test_an_ingress_cidr_must_cover_the_functions_whole_subnet(workshop):
    rule = workshop.permission(2049, group=workshop.lambda_group)
    workshop.ec2.revoke_security_group_ingress(GroupId=workshop.efs_group, IpPermissions=rule)
    workshop.ec2.authorize_security_group_ingress(
        GroupId=workshop.efs_group, IpPermissions=workshop.permission(2049, cidr="10.42.0.0/24")
    )
    assert efs.check(workshop.placement(workshop.subnet_a), workshop.access_point)
    assert not efs.check(workshop.placement(workshop.subnet_b), workshop.access_point)  # 10.42.1.0/24
    workshop.ec2.authorize_security_group_ingress(
        GroupId=workshop.efs_group, IpPermissions=workshop.permission(2049, cidr="10.42.1.0/25")
    )
    assert not efs.check(workshop.placement(workshop.subnet_b), workshop.access_point)  # half is not enough


def test_a_zone_without_a_mount_target_cannot_connect(workshop):
    workshop.efs.delete_mount_target(MountTargetId=workshop.mount_targets[workshop.subnet_b])
    assert efs.check(workshop.placement(workshop.subnet_a), workshop.access_point)
    check = efs.check(workshop.placement(workshop.subnet_b), workshop.access_point)
    assert check.error.error_type == "EFSMountConnectivityException"
    assert "no available mount target in us-east-1b" in check.how


def test_a_mount_target_in_another_vpc_does_not_count(workshop):
    other = workshop.ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    subnet = workshop.ec2.create_subnet(VpcId=other, CidrBlock="10.50.0.0/24", AvailabilityZone="us-east-1a")
    everything = workshop.ec2.create_security_group(GroupName="open", Description="o", VpcId=other)["GroupId"]
    workshop.ec2.authorize_security_group_ingress(
        GroupId=everything, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    workshop.ec2.authorize_security_group_ingress(
        GroupId=workshop.efs_group, IpPermissions=workshop.permission(2049, cidr="0.0.0.0/0")
    )  # the mount targets admit everyone: only the VPC stands between
    placement = Placement(ACCOUNT, REGION, subnet["Subnet"]["SubnetId"], (everything,))
    check = efs.check(placement, workshop.access_point)
    assert not check and "no available mount target in us-east-1a" in check.how


def test_a_missing_access_point_is_efs_mount_failure_exception(workshop):
    arn = workshop.access_point
    workshop.efs.delete_access_point(AccessPointId=arn.rsplit("/", 1)[-1])
    check = efs.check(workshop.placement(), arn)
    assert check.error == efs.mount_failure(arn)
    assert check.error.status == 403


def test_a_function_outside_a_vpc_cannot_reach_a_mount_target(workshop):
    check = efs.check(Placement(ACCOUNT, REGION), workshop.access_point)
    assert check.error.error_type == "EFSMountConnectivityException"


def test_a_mount_target_that_is_not_available_yet_cannot_be_reached(workshop):
    from moto.efs.models import efs_backends

    file_system = efs_backends[ACCOUNT][REGION].file_systems_by_id[workshop.file_system]
    for target in file_system._mount_targets.values():
        target.life_cycle_state = "creating"  # moto's are available at once; AWS's take a while
    check = efs.check(workshop.placement(), workshop.access_point)
    assert check.error.error_type == "EFSMountConnectivityException"
