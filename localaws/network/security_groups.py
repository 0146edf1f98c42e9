"""Security group rules as the VPC applies them to the first packet of one TCP connection.

Security groups are stateful: a connection is allowed when the source's groups admit it on egress and
the destination's groups admit it on ingress; the answers flow back whatever the other direction's
rules say (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-groups.html). A rule admits a
connection when its protocol is all (``-1``) or TCP, the destination port is in its range, and its peer
covers the other end (https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html):

- a CIDR covers an address inside it. Where only the other end's subnet is known (Lambda picks its
  network interface's address), the CIDR must cover the whole subnet: a rule that covers part of it
  works for some environments and not others, which this model does not guess at;
- a security group covers the network interfaces that carry it ("the rule affects all instances that
  are associated with the security group");
- a prefix list covers its service's addresses (a gateway endpoint's ``pl-...``).

Only IPv4 is modelled. Network ACLs are not evaluated (a VPC's default ACL allows everything both ways).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

_ALL = ("-1", "all")
_TCP = ("tcp", "6")


@dataclass(frozen=True)
class Peer:
    """The other end of a connection, as far as rules can name it: the network its address lies in
    (``/32`` when the address is known), the security groups on its network interface, and the managed
    prefix list it belongs to."""

    network: str | None = None
    groups: frozenset[str] = frozenset()
    prefix_list: str | None = None


def _ports(rule, port: int) -> bool:
    protocol = str(rule.ip_protocol or "").lower()
    if protocol in _ALL:
        return True
    if protocol not in _TCP:
        return False
    if rule.from_port is None or rule.to_port is None:
        return True  # a TCP rule without ports: all of them
    return int(rule.from_port) <= port <= int(rule.to_port)


def _covers(rule, peer: Peer) -> bool:
    group = (rule.source_group or {}).get("GroupId")
    if group and group in peer.groups:
        return True
    if rule.prefix_list_id and rule.prefix_list_id == peer.prefix_list:
        return True
    cidr = (rule.ip_range or {}).get("CidrIp")
    if cidr and peer.network:
        wanted = ipaddress.ip_network(peer.network, strict=False)
        return wanted.subnet_of(ipaddress.ip_network(cidr, strict=False))
    return False


def admitting_rule(backend, group_ids: Iterable[str], direction: str, port: int, peer: Peer) -> str | None:
    """``<group>/<rule>`` of the first rule of ``group_ids`` that admits TCP ``port`` to (``egress``) or
    from (``ingress``) ``peer``, or None when no rule does (unknown groups admit nothing)."""
    for group_id in group_ids:
        group = backend.get_security_group_from_id(group_id)
        if group is None:
            continue
        for rule in group.egress_rules if direction == "egress" else group.ingress_rules:
            if _ports(rule, port) and _covers(rule, peer):
                return f"{group_id}/{rule.id}"
    return None
