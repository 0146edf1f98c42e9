"""Where an execution environment sits in the network: one subnet of its function's ``VpcConfig`` and the
function's security groups, or Lambda's own network when there is no ``VpcConfig``.

Lambda places a VPC function's environments behind network interfaces in the subnets listed in its
``VpcConfig``, all carrying the same security groups; which subnet an environment lands in is Lambda's
choice (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html). Here each new environment
takes the next subnet in turn (:func:`choose`), so a function whose subnets differ (one with a NAT route,
one without; one with a mount target, one without) works for some environments and not for others, as
it does on AWS. Without a ``VpcConfig`` (or with an empty subnet list) a function runs in Lambda's
own network, which reaches the public AWS endpoints and the internet.

The address of Lambda's network interface in a subnet is AWS's choice too, so where a security group
rule names CIDR ranges, a rule counts only when it covers the whole subnet (:mod:`.security_groups`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """An environment's place: ``subnet_id`` is None outside a VPC."""

    account: str
    region: str
    subnet_id: str | None = None
    security_group_ids: tuple[str, ...] = ()

    @property
    def in_vpc(self) -> bool:
        return self.subnet_id is not None


def subnets(vpc_config: Mapping | None) -> list[str]:
    """The subnet ids of a function's ``VpcConfig`` (as GetFunctionConfiguration answers it), in order."""
    return [str(s) for s in ((vpc_config or {}).get("SubnetIds") or []) if s]


def choose(account: str, region: str, vpc_config: Mapping | None, serial: int) -> Placement:
    """The placement of a function's ``serial``-th environment (0, 1, 2, ...): its subnets in turn."""
    ids = subnets(vpc_config)
    if not ids:
        return Placement(account, region)
    groups = tuple(str(g) for g in ((vpc_config or {}).get("SecurityGroupIds") or []) if g)
    return Placement(account, region, ids[serial % len(ids)], groups)
