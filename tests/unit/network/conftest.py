"""An in-process moto holding the workshop's network as ``cloudformation/storage.yaml`` builds it, made
with boto3 call by call (fast, and each test can break one piece): a VPC with DNS, two private subnets
in two zones sharing one route table, the S3 gateway endpoint on it, the Lambda group (egress 443
anywhere and 2049 to the EFS group only), the EFS group (ingress 2049 from the Lambda group only), an
EFS file system with a mount target per subnet, and an access point. ``test_storage_template`` checks
the same verdicts on the template itself."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from localaws.network.placement import Placement

ACCOUNT, REGION = "123456789012", "us-east-1"


@dataclass
class Workshop:
    ec2: object
    efs: object
    vpc: str
    subnet_a: str
    subnet_b: str
    route_table: str
    s3_endpoint: str
    lambda_group: str
    efs_group: str
    file_system: str
    mount_targets: dict
    access_point: str

    def placement(self, subnet: str | None = None, groups: tuple[str, ...] | None = None) -> Placement:
        return Placement(ACCOUNT, REGION, subnet or self.subnet_a, groups or (self.lambda_group,))

    def vpc_config(self) -> dict:
        return {"SubnetIds": [self.subnet_a, self.subnet_b], "SecurityGroupIds": [self.lambda_group]}

    def add_nat(self) -> str:
        """A public subnet with an internet gateway and a NAT gateway; the private table's default route
        to it. Returns the NAT gateway's id."""
        ec2 = self.ec2
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=self.vpc)
        public = ec2.create_subnet(VpcId=self.vpc, CidrBlock="10.42.9.0/24", AvailabilityZone="us-east-1a")
        public_id = public["Subnet"]["SubnetId"]
        table = ec2.create_route_table(VpcId=self.vpc)["RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=table, SubnetId=public_id)
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=public_id, AllocationId=allocation)["NatGateway"][
            "NatGatewayId"
        ]
        ec2.create_route(RouteTableId=self.route_table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        self.igw, self.public_subnet, self.public_table = igw, public_id, table
        return nat

    @staticmethod
    def permission(
        port: int, *, cidr: str | None = None, group: str | None = None, prefix_list: str | None = None
    ):
        """One TCP permission for ``port`` to or from a CIDR, a group or a prefix list."""
        permission = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
        if cidr:
            permission["IpRanges"] = [{"CidrIp": cidr}]
        if group:
            permission["UserIdGroupPairs"] = [{"GroupId": group}]
        if prefix_list:
            permission["PrefixListIds"] = [{"PrefixListId": prefix_list}]
        return [permission]


def build_workshop() -> Workshop:
    ec2 = boto3.client("ec2", region_name=REGION)
    efs = boto3.client("efs", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet_a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.0.0/24", AvailabilityZone="us-east-1a")
    subnet_b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24", AvailabilityZone="us-east-1b")
    subnet_a, subnet_b = subnet_a["Subnet"]["SubnetId"], subnet_b["Subnet"]["SubnetId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    for subnet in (subnet_a, subnet_b):
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    s3 = ec2.create_vpc_endpoint(
        VpcId=vpc, VpcEndpointType="Gateway", ServiceName=f"com.amazonaws.{REGION}.s3", RouteTableIds=[table]
    )["VpcEndpoint"]["VpcEndpointId"]
    lambda_group = ec2.create_security_group(GroupName="lambda", Description="lambda", VpcId=vpc)["GroupId"]
    efs_group = ec2.create_security_group(GroupName="efs", Description="efs", VpcId=vpc)["GroupId"]
    everywhere = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    for group in (lambda_group, efs_group):
        ec2.revoke_security_group_egress(GroupId=group, IpPermissions=everywhere)
    https = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_egress(GroupId=lambda_group, IpPermissions=https)
    nfs_out = [
        {"IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "UserIdGroupPairs": [{"GroupId": efs_group}]}
    ]
    ec2.authorize_security_group_egress(GroupId=lambda_group, IpPermissions=nfs_out)
    nfs_in = [
        {
            "IpProtocol": "tcp",
            "FromPort": 2049,
            "ToPort": 2049,
            "UserIdGroupPairs": [{"GroupId": lambda_group}],
        }
    ]
    ec2.authorize_security_group_ingress(GroupId=efs_group, IpPermissions=nfs_in)
    nothing = [
        {"IpProtocol": "icmp", "FromPort": 252, "ToPort": 86, "IpRanges": [{"CidrIp": "255.255.255.255/32"}]}
    ]
    ec2.authorize_security_group_egress(GroupId=efs_group, IpPermissions=nothing)
    file_system = efs.create_file_system(CreationToken=f"workshop-{uuid.uuid4().hex}", Encrypted=True)[
        "FileSystemId"
    ]
    mount_targets = {
        subnet: efs.create_mount_target(
            FileSystemId=file_system, SubnetId=subnet, SecurityGroups=[efs_group]
        )["MountTargetId"]
        for subnet in (subnet_a, subnet_b)
    }
    access_point = efs.create_access_point(
        FileSystemId=file_system, PosixUser={"Uid": 1000, "Gid": 1000}, RootDirectory={"Path": "/ml"}
    )["AccessPointArn"]
    return Workshop(
        ec2,
        efs,
        vpc,
        subnet_a,
        subnet_b,
        table,
        s3,
        lambda_group,
        efs_group,
        file_system,
        mount_targets,
        access_point,
    )


@pytest.fixture
def workshop(monkeypatch) -> Workshop:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield build_workshop()
