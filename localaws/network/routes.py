"""Route tables as the VPC router applies them to a connection leaving a Lambda network interface.

- A subnet uses the route table explicitly associated with it, else its VPC's main route table
  (https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Route_Tables.html).
- Traffic takes the most specific route that matches its destination, longest prefix first; a gateway
  endpoint's route names the service's prefix list and wins over a default route
  (https://docs.aws.amazon.com/vpc/latest/userguide/route-tables-priority.html,
  https://docs.aws.amazon.com/vpc/latest/privatelink/gateway-endpoints.html).
- A Lambda function reaches the internet only through a NAT gateway: the route goes to a NAT gateway
  that is ``available`` with public connectivity, in a subnet whose own table sends ``0.0.0.0/0`` to an
  internet gateway attached to the VPC. A route straight to an internet gateway gives a function
  nothing: "Connecting a function to a public subnet doesn't give it internet access or a public IP
  address" (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html,
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html).
- A route whose target is gone (a deleted NAT gateway or endpoint, a detached internet gateway) is a
  blackhole: the traffic is dropped.

The routes are read from moto's model (``RouteTable.routes``), never from an endpoint's
``RouteTableIds``: moto 5.2.5 lets the two disagree (``modify-vpc-endpoint --remove-route-table-ids``
keeps the route; ``delete-route`` keeps the table listed), and on AWS the route is what carries traffic.
"""

from __future__ import annotations

import ipaddress


def table_of(backend, subnet_id: str):
    """The subnet's route table (explicit association, else the VPC's main table), or None."""
    subnet = backend.get_subnet(subnet_id)
    main = None
    for table in list(backend.route_tables.values()):  # a copy: the app may add one meanwhile
        if table.vpc_id != subnet.vpc_id:
            continue
        if subnet_id in table._associations.values():
            return table
        if table.main_association_id is not None:
            main = table
    return main


def route_to(table, address: str):
    """The route an IPv4 ``address`` takes from ``table`` (longest prefix match), or None."""
    target = ipaddress.ip_address(address)
    best, best_length = None, -1
    for route in table.routes:  # RouteTable.routes is a copy
        if not route.destination_cidr_block:
            continue
        network = ipaddress.ip_network(route.destination_cidr_block, strict=False)
        if target in network and network.prefixlen > best_length:
            best, best_length = route, network.prefixlen
    return best


def prefix_list_route(table, prefix_list_name: str):
    """The table's route to a managed prefix list (``com.amazonaws.<region>.s3``), or None."""
    for route in table.routes:
        prefix = route.destination_prefix_list
        if prefix is not None and prefix.prefix_list_name == prefix_list_name:
            return route
    return None


def _attached_igw(backend, route) -> str | None:
    """The id of the attached internet gateway ``route`` sends traffic to, or None."""
    gateway = route.gateway
    if gateway is None or not str(gateway.id).startswith("igw-"):
        return None
    if gateway.id not in backend.internet_gateways or getattr(gateway, "vpc", None) is None:
        return None  # deleted or detached: a blackhole
    return gateway.id


def nat_path(backend, route) -> str | None:
    """How ``route`` reaches the internet through a NAT gateway (for the verdict's text), or None when it
    does not: not a NAT route, a NAT gateway that is not available or is private, or one whose own subnet
    has no way out through an attached internet gateway."""
    nat = route.nat_gateway if route is not None else None
    if nat is None:
        return None
    if nat.state != "available" or (nat.connectivity_type or "public") != "public":
        return None
    nat_table = table_of(backend, nat.subnet_id)
    out = route_to(nat_table, "0.0.0.0") if nat_table is not None else None
    igw = _attached_igw(backend, out) if out is not None else None
    if igw is None:
        return None
    return f"NAT gateway {nat.id} in {nat.subnet_id}, then internet gateway {igw}"


def describe_route(route) -> str:
    """A route in words: ``0.0.0.0/0 -> nat-...`` (for the verdicts' explanations)."""
    destination = route.destination_cidr_block or (
        route.destination_prefix_list.id if route.destination_prefix_list else "?"
    )
    target = (
        "local"
        if route.local
        else (
            route.gateway_id
            or route.nat_gateway_id
            or route.transit_gateway_id
            or getattr(route.vpc_pcx, "id", None)
            or getattr(route.interface, "id", None)
            or "?"
        )
    )
    return f"{destination} -> {target}"
