"""localaws.network.reachability: what an environment may connect to, from moto's EC2 model, one rule per
test (each test breaks or adds exactly the piece its rule is about)."""

from __future__ import annotations

from localaws.network import addresses, internet, reachability
from localaws.network.placement import Placement, choose

from .conftest import ACCOUNT, REGION

HOST = "192.88.99.10"


def test_without_a_vpc_config_everything_is_reachable(workshop):
    outside = Placement(ACCOUNT, REGION)
    assert all(reachability.service(outside, s.endpoint) for s in addresses.SERVICES)
    assert reachability.internet(outside, HOST, 80)


def test_the_workshop_subnets_reach_s3_through_the_gateway_endpoint_and_nothing_else(workshop):
    for subnet in (workshop.subnet_a, workshop.subnet_b):
        placement = workshop.placement(subnet)
        s3 = reachability.service(placement, "s3")
        assert s3 and workshop.s3_endpoint in s3.how
        for other in ("lambda", "sts", "dynamodb", "logs", "sagemaker.runtime"):
            verdict = reachability.service(placement, other)
            assert not verdict and "no NAT gateway" in verdict.how
        assert not reachability.internet(placement, HOST, 443)


def test_the_gateway_endpoint_counts_only_while_its_route_is_in_the_table(workshop):
    prefix = workshop.ec2.describe_vpc_endpoints(VpcEndpointIds=[workshop.s3_endpoint])["VpcEndpoints"][0]
    prefix_list = next(
        r["DestinationPrefixListId"]
        for r in workshop.ec2.describe_route_tables(RouteTableIds=[workshop.route_table])["RouteTables"][0][
            "Routes"
        ]
        if r.get("DestinationPrefixListId")
    )
    assert prefix["RouteTableIds"] == [workshop.route_table]
    workshop.ec2.delete_route(RouteTableId=workshop.route_table, DestinationPrefixListId=prefix_list)
    assert not reachability.service(workshop.placement(), "s3")


def test_a_deleted_gateway_endpoint_leaves_no_way_to_s3(workshop):
    workshop.ec2.delete_vpc_endpoints(VpcEndpointIds=[workshop.s3_endpoint])
    assert not reachability.service(workshop.placement(), "s3")


def test_a_gateway_endpoint_that_is_not_available_carries_nothing_even_with_its_route(workshop):
    from moto.ec2.models import ec2_backends

    ec2_backends[ACCOUNT][REGION].vpc_end_points[workshop.s3_endpoint].state = "pending"  # no API sets it
    assert not reachability.service(workshop.placement(), "s3")


def test_the_gateway_endpoint_needs_an_egress_rule_for_443(workshop):
    https = workshop.permission(443, cidr="0.0.0.0/0")
    workshop.ec2.revoke_security_group_egress(GroupId=workshop.lambda_group, IpPermissions=https)
    verdict = reachability.service(workshop.placement(), "s3")
    assert not verdict and "no egress rule admits TCP 443" in verdict.how


def test_a_udp_rule_for_443_does_not_admit_tcp(workshop):
    https = workshop.permission(443, cidr="0.0.0.0/0")
    workshop.ec2.revoke_security_group_egress(GroupId=workshop.lambda_group, IpPermissions=https)
    udp = [{"IpProtocol": "udp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    workshop.ec2.authorize_security_group_egress(GroupId=workshop.lambda_group, IpPermissions=udp)
    assert not reachability.service(workshop.placement(), "s3")
    tcp = [{"IpProtocol": "6", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    workshop.ec2.authorize_security_group_egress(GroupId=workshop.lambda_group, IpPermissions=tcp)
    assert reachability.service(workshop.placement(), "s3")  # the API's protocol number 6 is TCP too


def test_an_egress_rule_naming_the_s3_prefix_list_admits_the_gateway_endpoint(workshop):
    https = workshop.permission(443, cidr="0.0.0.0/0")
    workshop.ec2.revoke_security_group_egress(GroupId=workshop.lambda_group, IpPermissions=https)
    s3_list = next(
        p["PrefixListId"]
        for p in workshop.ec2.describe_prefix_lists()["PrefixLists"]
        if p["PrefixListName"] == f"com.amazonaws.{REGION}.s3"
    )
    rule = workshop.permission(443, prefix_list=s3_list)
    workshop.ec2.authorize_security_group_egress(GroupId=workshop.lambda_group, IpPermissions=rule)
    assert reachability.service(workshop.placement(), "s3")
    assert not reachability.service(workshop.placement(), "dynamodb")


def test_a_dynamodb_gateway_endpoint_opens_dynamodb(workshop):
    workshop.ec2.create_vpc_endpoint(
        VpcId=workshop.vpc,
        VpcEndpointType="Gateway",
        ServiceName=f"com.amazonaws.{REGION}.dynamodb",
        RouteTableIds=[workshop.route_table],
    )
    assert reachability.service(workshop.placement(), "dynamodb")


def test_a_nat_gateway_route_opens_every_service_and_the_internet_on_443(workshop):
    workshop.add_nat()
    placement = workshop.placement()
    lambda_ = reachability.service(placement, "lambda")
    assert lambda_ and "NAT gateway" in lambda_.how
    assert reachability.internet(placement, HOST, 443)
    assert "gateway endpoint" in reachability.service(placement, "s3").how  # the endpoint still wins


def test_through_a_nat_gateway_the_security_group_still_decides_the_port(workshop):
    workshop.add_nat()
    placement = workshop.placement()
    verdict = reachability.internet(placement, HOST, 80)
    assert not verdict and "no egress rule admits TCP 80" in verdict.how
    rule = workshop.permission(80, cidr=f"{HOST}/32")
    workshop.ec2.authorize_security_group_egress(GroupId=workshop.lambda_group, IpPermissions=rule)
    assert reachability.internet(placement, HOST, 80)
    assert not reachability.internet(placement, "192.88.99.11", 80)  # the rule names one address


def test_a_deleted_nat_gateway_is_a_blackhole(workshop):
    nat = workshop.add_nat()
    workshop.ec2.delete_nat_gateway(NatGatewayId=nat)
    assert not reachability.service(workshop.placement(), "lambda")
    assert not reachability.internet(workshop.placement(), HOST, 443)


def test_a_nat_gateway_without_an_attached_internet_gateway_reaches_nothing(workshop):
    workshop.add_nat()
    workshop.ec2.detach_internet_gateway(InternetGatewayId=workshop.igw, VpcId=workshop.vpc)
    assert not reachability.internet(workshop.placement(), HOST, 443)


def test_a_private_nat_gateway_has_no_way_to_the_internet(workshop):
    workshop.add_nat()
    private = workshop.ec2.create_nat_gateway(SubnetId=workshop.public_subnet, ConnectivityType="private")
    workshop.ec2.replace_route(
        RouteTableId=workshop.route_table,
        DestinationCidrBlock="0.0.0.0/0",
        NatGatewayId=private["NatGateway"]["NatGatewayId"],
    )
    assert not reachability.internet(workshop.placement(), HOST, 443)  # same subnet, same way out: private


def test_a_subnet_routed_straight_to_an_internet_gateway_gives_a_function_no_internet(workshop):
    igw = workshop.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    workshop.ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=workshop.vpc)
    workshop.ec2.create_route(
        RouteTableId=workshop.route_table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw
    )
    verdict = reachability.internet(workshop.placement(), HOST, 443)
    assert not verdict and igw in verdict.how
    assert not reachability.service(workshop.placement(), "lambda")


def test_the_most_specific_route_decides(workshop):
    workshop.add_nat()
    workshop.ec2.create_route(
        RouteTableId=workshop.route_table, DestinationCidrBlock="192.88.99.0/24", GatewayId=workshop.igw
    )
    assert not reachability.internet(workshop.placement(), HOST, 443)  # the /24 goes to the gateway
    assert reachability.internet(workshop.placement(), "192.0.2.80", 443)  # the rest still to the NAT


def test_an_interface_endpoint_whose_group_admits_443_from_the_function_opens_its_service(workshop):
    group = workshop.ec2.create_security_group(GroupName="endpoints", Description="e", VpcId=workshop.vpc)[
        "GroupId"
    ]
    ingress = workshop.permission(443, group=workshop.lambda_group)
    workshop.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=ingress)
    workshop.ec2.create_vpc_endpoint(
        VpcId=workshop.vpc,
        VpcEndpointType="Interface",
        ServiceName=f"com.amazonaws.{REGION}.lambda",
        SubnetIds=[workshop.subnet_a, workshop.subnet_b],
        SecurityGroupIds=[group],
    )
    verdict = reachability.service(workshop.placement(), "lambda")
    assert verdict and "interface endpoint" in verdict.how
    assert not reachability.service(workshop.placement(), "sts")


def test_an_interface_endpoint_guarded_by_a_group_without_443_ingress_is_not_a_way(workshop):
    workshop.ec2.create_vpc_endpoint(
        VpcId=workshop.vpc,
        VpcEndpointType="Interface",
        ServiceName=f"com.amazonaws.{REGION}.lambda",
        SubnetIds=[workshop.subnet_a],
        SecurityGroupIds=[workshop.efs_group],
    )
    verdict = reachability.service(workshop.placement(), "lambda")
    assert not verdict and "admit no TCP 443 in" in verdict.how


def test_an_interface_endpoint_without_groups_is_guarded_by_the_vpcs_default_group(workshop):
    workshop.ec2.create_vpc_endpoint(
        VpcId=workshop.vpc,
        VpcEndpointType="Interface",
        ServiceName=f"com.amazonaws.{REGION}.sts",
        SubnetIds=[workshop.subnet_a],
    )
    assert not reachability.service(workshop.placement(), "sts")  # the default group admits only itself
    default = workshop.ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [workshop.vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    ingress = workshop.permission(443, cidr="10.42.0.0/16")
    workshop.ec2.authorize_security_group_ingress(GroupId=default, IpPermissions=ingress)
    assert reachability.service(workshop.placement(), "sts")


def test_an_interface_endpoint_needs_the_functions_egress_on_443(workshop):
    group = workshop.ec2.create_security_group(GroupName="endpoints", Description="e", VpcId=workshop.vpc)[
        "GroupId"
    ]
    workshop.ec2.authorize_security_group_ingress(
        GroupId=group, IpPermissions=workshop.permission(443, cidr="10.42.0.0/16")
    )
    workshop.ec2.create_vpc_endpoint(
        VpcId=workshop.vpc,
        VpcEndpointType="Interface",
        ServiceName=f"com.amazonaws.{REGION}.logs",
        SubnetIds=[workshop.subnet_a],
        SecurityGroupIds=[group],
    )
    assert reachability.service(workshop.placement(), "logs")
    https = workshop.permission(443, cidr="0.0.0.0/0")
    workshop.ec2.revoke_security_group_egress(GroupId=workshop.lambda_group, IpPermissions=https)
    verdict = reachability.service(workshop.placement(), "logs")
    assert not verdict and "admit no TCP 443 out" in verdict.how


def test_a_cidr_rule_must_cover_the_functions_whole_subnet(workshop):
    group = workshop.ec2.create_security_group(GroupName="endpoints", Description="e", VpcId=workshop.vpc)[
        "GroupId"
    ]
    workshop.ec2.authorize_security_group_ingress(
        GroupId=group, IpPermissions=workshop.permission(443, cidr="10.42.0.0/25")
    )
    workshop.ec2.create_vpc_endpoint(
        VpcId=workshop.vpc,
        VpcEndpointType="Interface",
        ServiceName=f"com.amazonaws.{REGION}.logs",
        SubnetIds=[workshop.subnet_a],
        SecurityGroupIds=[group],
    )
    assert not reachability.service(workshop.placement(), "logs")  # half of 10.42.0.0/24 is not enough


def test_an_interface_endpoint_without_private_dns_leaves_the_public_name_to_the_nat_path(workshop):
    group = workshop.ec2.create_security_group(GroupName="endpoints", Description="e", VpcId=workshop.vpc)[
        "GroupId"
    ]
    workshop.ec2.authorize_security_group_ingress(
        GroupId=group, IpPermissions=workshop.permission(443, group=workshop.lambda_group)
    )
    workshop.ec2.create_vpc_endpoint(
        VpcId=workshop.vpc,
        VpcEndpointType="Interface",
        ServiceName=f"com.amazonaws.{REGION}.lambda",
        SubnetIds=[workshop.subnet_a],
        SecurityGroupIds=[group],
        PrivateDnsEnabled=False,
    )
    assert not reachability.service(workshop.placement(), "lambda")


def test_private_dns_needs_the_vpcs_dns_attributes(workshop):
    group = workshop.ec2.create_security_group(GroupName="endpoints", Description="e", VpcId=workshop.vpc)[
        "GroupId"
    ]
    workshop.ec2.authorize_security_group_ingress(
        GroupId=group, IpPermissions=workshop.permission(443, group=workshop.lambda_group)
    )
    workshop.ec2.create_vpc_endpoint(
        VpcId=workshop.vpc,
        VpcEndpointType="Interface",
        ServiceName=f"com.amazonaws.{REGION}.lambda",
        SubnetIds=[workshop.subnet_a],
        SecurityGroupIds=[group],
    )
    assert reachability.service(workshop.placement(), "lambda")
    workshop.ec2.modify_vpc_attribute(VpcId=workshop.vpc, EnableDnsHostnames={"Value": False})
    assert not reachability.service(workshop.placement(), "lambda")


def test_a_rule_for_all_protocols_admits_any_port(workshop):
    workshop.add_nat()
    everything = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    workshop.ec2.authorize_security_group_egress(GroupId=workshop.lambda_group, IpPermissions=everything)
    assert reachability.internet(workshop.placement(), HOST, 8080)


def test_environments_take_the_functions_subnets_in_turn_and_may_differ(workshop):
    config = workshop.vpc_config()
    placements = [choose(ACCOUNT, REGION, config, serial) for serial in range(4)]
    assert [p.subnet_id for p in placements] == [workshop.subnet_a, workshop.subnet_b] * 2
    assert all(p.security_group_ids == (workshop.lambda_group,) for p in placements)
    own = workshop.ec2.create_route_table(VpcId=workshop.vpc)["RouteTable"]["RouteTableId"]
    association = next(
        a["RouteTableAssociationId"]
        for a in workshop.ec2.describe_route_tables(RouteTableIds=[workshop.route_table])["RouteTables"][0][
            "Associations"
        ]
        if a.get("SubnetId") == workshop.subnet_b
    )
    workshop.ec2.replace_route_table_association(AssociationId=association, RouteTableId=own)
    assert reachability.service(placements[0], "s3")
    assert not reachability.service(placements[1], "s3")  # subnet B's new table has no endpoint route
    assert choose(ACCOUNT, REGION, {"SubnetIds": []}, 3) == Placement(ACCOUNT, REGION)


def test_a_subnet_that_does_not_exist_reaches_nothing(workshop):
    ghost = Placement(ACCOUNT, REGION, "subnet-0123456789abcdef0", (workshop.lambda_group,))
    assert not reachability.service(ghost, "s3")
    assert not reachability.internet(ghost, HOST, 443)


def test_the_policy_opens_exactly_the_listeners_the_verdicts_allow(workshop):
    hosts = internet.parse("images.example=127.0.0.1:8123, files.example:443=127.0.0.1:8443")
    plan = addresses.plan(hosts)
    policy = reachability.evaluate(workshop.placement(), plan)
    opened = {listener.name for listener in plan.listeners if policy.listener_open(listener)}
    assert opened == {addresses.RUNTIME, addresses.GENERIC, "s3"}
    assert policy.allows_endpoint("s3") and not policy.allows_endpoint("lambda")
    assert not policy.allows_endpoint("kinesis")  # a service with no address of its own: the NAT path
    workshop.add_nat()
    policy = reachability.evaluate(workshop.placement(), plan)
    opened = {listener.name for listener in plan.listeners if policy.listener_open(listener)}
    assert "lambda" in opened and "internet:files.example:443" in opened
    assert "internet:images.example:80" not in opened  # port 80 has no egress rule
    assert policy.allows_endpoint("kinesis")
