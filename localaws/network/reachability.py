"""What an execution environment may connect to, decided as AWS's VPC decides it, from moto's EC2 model.

For an environment outside a VPC: everything, since "by default, Lambda functions have access to the
public internet" and the public AWS endpoints
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html). For an environment in
a subnet with security groups (:class:`.placement.Placement`), an AWS service (by its VPC endpoint name:
``s3``, ``lambda``, ``sagemaker.runtime``...) is reached, in this order, through:

1. an **interface endpoint** for it in the VPC that is ``available`` with private DNS (so the service's
   usual host name resolves to the endpoint; private DNS needs the VPC's DNS support and DNS host names),
   when the environment's groups admit TCP 443 out to the endpoint's network interfaces and the
   endpoint's groups (the VPC's default group when it has none) admit 443 in from the environment
   (https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html: "If the security
   group restricts inbound HTTPS traffic (port 443) from resources in the VPC, you might not be able to
   send traffic through the endpoint network interface");
2. a **gateway endpoint** (S3 and DynamoDB only) whose prefix-list route is in the subnet's route table,
   when the groups admit 443 out to the prefix list or to everywhere
   (https://docs.aws.amazon.com/vpc/latest/privatelink/gateway-endpoints.html);
3. its **public endpoint through a NAT gateway** route (:func:`.routes.nat_path`), when the groups admit
   443 out to everywhere (a public endpoint has many addresses; a rule for some of them is not modelled).

"The internet" (a published host's address and port) is reached only by the third way, with an egress
rule for that port and address. EFS mount targets are checked at cold start by :mod:`.efs`.

Not modelled: network ACLs, endpoint policies (they are IAM decisions, made per request), IPv6, and
interface endpoints without private DNS (the SDK's default host name then resolves to the public
endpoint, which is the third way).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from localaws.network import addresses, routes
from localaws.network.placement import Placement
from localaws.network.security_groups import Peer, admitting_rule

HTTPS = 443
GATEWAY_SERVICES = ("s3", "dynamodb")
EVERYWHERE = "0.0.0.0/0"
_NO_ENDPOINT = "-"  # an endpoint name no service has: the verdict for services without endpoints


@dataclass(frozen=True)
class Verdict:
    """Whether a connection is allowed, and the path it takes or why it is dropped (for logs)."""

    allowed: bool
    how: str

    def __bool__(self) -> bool:
        return self.allowed


def _backend(placement: Placement):
    from moto.ec2.models import ec2_backends

    return ec2_backends[placement.account][placement.region]


def _subnet(backend, placement: Placement):
    from moto.ec2.exceptions import InvalidSubnetIdError

    try:
        return backend.get_subnet(placement.subnet_id)
    except InvalidSubnetIdError:
        return None


def _true(value) -> bool:
    return str(value).lower() == "true"


def _interface_endpoint(backend, placement: Placement, subnet, endpoint) -> Verdict:
    vpc = backend.get_vpc(subnet.vpc_id)
    if not (_true(vpc.enable_dns_support) and _true(vpc.enable_dns_hostnames)):
        return Verdict(
            False,
            f"interface endpoint {endpoint.id}: its private DNS needs the VPC's DNS support and host names",
        )
    groups = set(endpoint.security_group_ids or [])
    if not groups:
        default = backend.get_default_security_group(subnet.vpc_id)
        groups = {default.id} if default is not None else set()
    eni_subnets = [s for s in (endpoint.subnet_ids or []) if s]
    out = None
    for eni_subnet in eni_subnets or [None]:
        network = backend.get_subnet(eni_subnet).cidr_block if eni_subnet else None
        out = admitting_rule(
            backend, placement.security_group_ids, "egress", HTTPS, Peer(network, frozenset(groups))
        )
        if out:
            break
    into = admitting_rule(
        backend,
        sorted(groups),
        "ingress",
        HTTPS,
        Peer(subnet.cidr_block, frozenset(placement.security_group_ids)),
    )
    if out and into:
        return Verdict(True, f"interface endpoint {endpoint.id} (egress {out}, its ingress {into})")
    side = (
        "the function's security groups admit no TCP 443 out to it"
        if not out
        else ("its security groups admit no TCP 443 in from the function")
    )
    return Verdict(False, f"interface endpoint {endpoint.id}: {side}")


def service(placement: Placement, endpoint_name: str) -> Verdict:
    """May the environment open a connection to the AWS service ``endpoint_name`` (on HTTPS)?"""
    if not placement.in_vpc:
        return Verdict(True, "no VpcConfig: Lambda's own network reaches the public AWS endpoints")
    backend = _backend(placement)
    subnet = _subnet(backend, placement)
    if subnet is None:
        return Verdict(False, f"subnet {placement.subnet_id} does not exist")
    name = f"com.amazonaws.{placement.region}.{endpoint_name}"
    for endpoint in list(backend.vpc_end_points.values()):
        if endpoint.vpc_id != subnet.vpc_id or endpoint.service_name != name or endpoint.state != "available":
            continue
        if (
            str(endpoint.vpc_endpoint_type or "").lower() == "interface"
            and str(endpoint.private_dns_enabled).lower() != "false"
        ):
            return _interface_endpoint(backend, placement, subnet, endpoint)
    table = routes.table_of(backend, subnet.id)
    if table is None:
        return Verdict(False, f"{subnet.id} has no route table")
    if endpoint_name in GATEWAY_SERVICES:
        route = routes.prefix_list_route(table, name)
        if route is not None and _live_gateway_endpoint(backend, route):
            prefix = route.destination_prefix_list.id
            rule = admitting_rule(
                backend, placement.security_group_ids, "egress", HTTPS, Peer(EVERYWHERE, prefix_list=prefix)
            )
            if rule:
                return Verdict(True, f"gateway endpoint {route.gateway_id} on {table.id} (egress {rule})")
            return Verdict(
                False,
                f"gateway endpoint {route.gateway_id} on {table.id}, but no egress rule admits TCP 443 to it",
            )
    path = routes.nat_path(backend, routes.route_to(table, "0.0.0.0"))
    if path is None:
        label = "other AWS services" if endpoint_name == _NO_ENDPOINT else endpoint_name
        return Verdict(
            False, f"no way from {subnet.id} ({table.id}) to {label}: no endpoint, no NAT gateway route"
        )
    rule = admitting_rule(backend, placement.security_group_ids, "egress", HTTPS, Peer(EVERYWHERE))
    if rule is None:
        return Verdict(False, f"{path}, but no egress rule admits TCP 443 to 0.0.0.0/0")
    return Verdict(True, f"public endpoint through {path} (egress {rule})")


def _live_gateway_endpoint(backend, route) -> bool:
    endpoint = backend.vpc_end_points.get(route.gateway_id or "")
    return endpoint is not None and endpoint.state == "available"


def internet(placement: Placement, address: str, port: int) -> Verdict:
    """May the environment open a TCP connection to the public ``address`` on ``port``?"""
    if not placement.in_vpc:
        return Verdict(True, "no VpcConfig: Lambda's own network reaches the internet")
    backend = _backend(placement)
    subnet = _subnet(backend, placement)
    if subnet is None:
        return Verdict(False, f"subnet {placement.subnet_id} does not exist")
    table = routes.table_of(backend, subnet.id)
    route = routes.route_to(table, address) if table is not None else None
    if route is None:
        return Verdict(False, f"{subnet.id} has no route to {address}")
    path = routes.nat_path(backend, route)
    if path is None:
        return Verdict(
            False,
            f"{address} takes {routes.describe_route(route)} on {table.id}, which is no NAT gateway's way out",
        )
    rule = admitting_rule(backend, placement.security_group_ids, "egress", port, Peer(f"{address}/32"))
    if rule is None:
        return Verdict(False, f"{path}, but no egress rule admits TCP {port} to {address}")
    return Verdict(True, f"{path} (egress {rule})")


@dataclass(frozen=True)
class Policy:
    """An environment's verdicts: per modelled service (by boto3 client name), for any other service,
    and per published internet host (by listener name)."""

    services: Mapping[str, Verdict] = field(default_factory=dict)
    other_services: Verdict = Verdict(True, "no VpcConfig")
    internet: Mapping[str, Verdict] = field(default_factory=dict)

    def allows_endpoint(self, endpoint_name: str) -> bool:
        """Whether a request for the service ``endpoint_name`` may be answered (the generic address)."""
        service_ = addresses.BY_ENDPOINT.get(endpoint_name)
        verdict = self.services.get(service_.client) if service_ else None
        return bool(verdict if verdict is not None else self.other_services)

    def listener_open(self, listener: addresses.Listener) -> bool:
        """Whether connections to ``listener`` may be accepted (else its SYNs are dropped)."""
        if listener.kind == "internet":
            return bool(self.internet.get(listener.name))
        if listener.kind == "aws" and listener.name != addresses.GENERIC:
            return bool(self.services.get(listener.name))
        return True  # the generic AWS address decides per request; the Runtime API is always open


def evaluate(placement: Placement, plan: addresses.Plan) -> Policy:
    """Every verdict an environment's listeners need, read from moto's model now."""
    services = {s.client: service(placement, s.endpoint) for s in addresses.SERVICES}
    hosts = {
        listener.name: internet(placement, listener.address, listener.port)
        for listener in plan.listeners
        if listener.kind == "internet"
    }
    return Policy(services, service(placement, _NO_ENDPOINT), hosts)
