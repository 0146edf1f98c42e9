"""EC2 (VPC): what the storage stack needs to create, describe and delete its network.

Gaps of stock moto 5.2.5 filled here:

- ``AWS::EC2::VPC`` drops ``EnableDnsSupport`` / ``EnableDnsHostnames`` (EFS mount targets need
  both to be resolvable by name).
- ``AWS::EC2::SecurityGroup`` drops ``SecurityGroupEgress``: the group keeps the default allow-all
  rule. On AWS, listing egress rules replaces that default. ``AWS::EC2::SecurityGroupEgress`` is
  not supported at all (skipped silently).
- ``Fn::GetAtt Subnet.AvailabilityZone`` returns the unresolved expression, and ``Fn::GetAZs ""``
  always answers with us-east-1's zones, whatever the stack's region.
- ``AWS::EC2::SubnetRouteTableAssociation`` records nothing on the route table (describe shows no
  association) and its ``Ref`` is the route table id instead of the association id; deleting it is a
  no-op.
- Deleting ``AWS::EC2::RouteTable`` and ``AWS::EC2::VPCEndpoint`` is a no-op, so deleting the stack
  then fails on the VPC with DependencyViolation and leaves the VPC behind. (Deleting an endpoint
  whose route table is already gone must not fail either: moto deletes a stack's resources in no
  fixed order.)
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.common_models import CloudFormationModel
from moto.ec2.models import ec2_backends
from moto.ec2.models.route_tables import RouteTable
from moto.ec2.models.security_groups import SecurityGroup
from moto.ec2.models.subnets import Subnet, SubnetRouteTableAssociation
from moto.ec2.models.vpcs import VPC, VPCEndPoint


def _truthy(value: Any) -> bool:
    return str(value).lower() == "true"


def _wrap_vpc_create(original):
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        vpc = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        props = cloudformation_json.get("Properties", {})
        backend = ec2_backends[account_id][region_name]
        if "EnableDnsSupport" in props:
            backend.modify_vpc_attribute(vpc.id, "enable_dns_support", _truthy(props["EnableDnsSupport"]))
        if "EnableDnsHostnames" in props:
            backend.modify_vpc_attribute(vpc.id, "enable_dns_hostnames", _truthy(props["EnableDnsHostnames"]))
        return vpc

    return classmethod(create_from_cloudformation_json)


def _peer(rule: dict, key: str) -> list[dict]:
    return [{"GroupId": rule[key]}] if rule.get(key) else []


def _authorize_egress(backend, group_id: str, rule: dict) -> None:
    backend.authorize_security_group_egress(
        group_name_or_id=group_id,
        ip_protocol=str(rule["IpProtocol"]),
        from_port=rule.get("FromPort"),
        to_port=rule.get("ToPort"),
        ip_ranges=[{"CidrIp": rule["CidrIp"], "Description": rule.get("Description", "")}]
        if rule.get("CidrIp")
        else [],
        source_groups=_peer(rule, "DestinationSecurityGroupId"),
        prefix_list_ids=[{"PrefixListId": rule["DestinationPrefixListId"]}]
        if rule.get("DestinationPrefixListId")
        else [],
    )


def _wrap_security_group_create(original):
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        group = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        rules = cloudformation_json.get("Properties", {}).get("SecurityGroupEgress")
        if rules:
            backend = ec2_backends[account_id][region_name]
            backend.revoke_security_group_egress(
                group_name_or_id=group.id, ip_protocol="-1", from_port=None, to_port=None,
                ip_ranges=[{"CidrIp": "0.0.0.0/0"}],
            )  # fmt: skip
            for rule in rules:
                _authorize_egress(backend, group.id, rule)
        return group

    return classmethod(create_from_cloudformation_json)


class SecurityGroupEgress(CloudFormationModel):
    """``AWS::EC2::SecurityGroupEgress``: one egress rule added to an existing group."""

    def __init__(self, group_id: str, properties: dict):
        self.group_id = group_id
        self.properties = properties

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EC2::SecurityGroupEgress"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        props = cloudformation_json["Properties"]
        _authorize_egress(ec2_backends[account_id][region_name], props["GroupId"], props)
        return cls(props["GroupId"], props)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = ec2_backends[account_id][region_name]
        if backend.get_security_group_by_name_or_id(self.group_id) is None:
            return
        peer = self.properties.get("DestinationSecurityGroupId")
        if peer and backend.get_security_group_by_name_or_id(peer) is None:
            return  # the peer group is gone, and the rule that named it went with it
        props = self.properties
        backend.revoke_security_group_egress(
            group_name_or_id=self.group_id,
            ip_protocol=str(props["IpProtocol"]),
            from_port=props.get("FromPort"),
            to_port=props.get("ToPort"),
            ip_ranges=[{"CidrIp": props["CidrIp"]}] if props.get("CidrIp") else [],
            source_groups=_peer(props, "DestinationSecurityGroupId"),
        )


def _subnet_get_cfn_attribute(self, attribute_name: str) -> str:
    values = {
        "AvailabilityZone": self.availability_zone,
        "AvailabilityZoneId": self.availability_zone_id,
        "CidrBlock": self.cidr_block,
        "SubnetId": self.id,
        "VpcId": self.vpc_id,
    }
    if attribute_name not in values:
        raise UnformattedGetAttTemplateException()
    return values[attribute_name]


def _wrap_clean_json(original):
    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::GetAZs" in resource_json:
            region = original(resource_json["Fn::GetAZs"], resources_map) or resources_map._region_name
            return [
                zone.name
                for zone in ec2_backends[resources_map._account_id][region].describe_availability_zones()
            ]
        return original(resource_json, resources_map)

    return clean_json


def _association_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json["Properties"]
    backend = ec2_backends[account_id][region_name]
    association = backend.create_subnet_association(
        route_table_id=props["RouteTableId"], subnet_id=props["SubnetId"]
    )
    association.association_id = backend.associate_route_table(
        props["RouteTableId"], subnet_id=props["SubnetId"]
    )
    return association


def _association_delete(self, account_id: str, region_name: str) -> None:
    backend = ec2_backends[account_id][region_name]
    backend.subnet_associations.pop(f"{self.route_table_id}:{self.subnet_id}", None)
    association_id = getattr(self, "association_id", None)
    if association_id and any(association_id in rt._associations for rt in backend.route_tables.values()):
        backend.disassociate_route_table(association_id)


def _route_table_delete(self, account_id: str, region_name: str) -> None:
    backend = ec2_backends[account_id][region_name]
    if self.id in backend.route_tables:
        backend.delete_route_table(self.id)


def _endpoint_delete(self, account_id: str, region_name: str) -> None:
    backend = ec2_backends[account_id][region_name]
    if self.id in backend.vpc_end_points:
        # A route table deleted first took the endpoint's route with it (stacks delete in any order).
        self.route_table_ids = [rt for rt in self.route_table_ids if rt in backend.route_tables]
        backend.delete_vpc_endpoints([self.id])
        backend.vpc_end_points.pop(self.id, None)


def apply() -> None:
    VPC.create_from_cloudformation_json = _wrap_vpc_create(VPC.create_from_cloudformation_json)
    SecurityGroup.create_from_cloudformation_json = _wrap_security_group_create(
        SecurityGroup.create_from_cloudformation_json
    )
    Subnet.has_cfn_attr = classmethod(
        lambda cls, attr: attr in ("AvailabilityZone", "AvailabilityZoneId", "CidrBlock", "SubnetId", "VpcId")
    )
    Subnet.get_cfn_attribute = _subnet_get_cfn_attribute
    parsing.clean_json = _wrap_clean_json(parsing.clean_json)
    SubnetRouteTableAssociation.create_from_cloudformation_json = classmethod(_association_create)
    SubnetRouteTableAssociation.physical_resource_id = property(
        lambda self: getattr(self, "association_id", None) or self.route_table_id
    )
    SubnetRouteTableAssociation.delete = _association_delete
    RouteTable.delete = _route_table_delete
    VPCEndPoint.delete = _endpoint_delete
