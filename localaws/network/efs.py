"""Whether a cold start can mount its EFS access point over the network, with Lambda's own errors.

At a cold start Lambda mounts each of the function's file systems through a mount target over NFS
(TCP 2049). That needs, for the environment's subnet
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-filesystem.html: "Create a file system in
Amazon EFS with a mount target in every Availability Zone that your function connects to ... Ensure
that NFS traffic (port 2049) is allowed by the security groups used by the function and mount
targets"):

- a mount target of the access point's file system in the subnet's VPC and Availability Zone, in the
  ``available`` state;
- the function's security groups admitting TCP 2049 out to it (its address or its groups), and the
  mount target's groups admitting 2049 in from the function (its groups, or a CIDR covering its subnet).

When one is missing, the invocation fails with the error and message of "Troubleshoot invocation issues
in Lambda" (https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-invocation.html, sections
``troubleshooting-invocation-efsconnect`` and ``-efsmount``), with the HTTP status of the Invoke API's
error list (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors, the same
codes as botocore's ``lambda`` service model):

- ``EFSMountConnectivityException`` (408): "The function couldn't connect to the Amazon EFS file system
  with access point <arn>. Check your network configuration and try again.";
- ``EFSMountFailureException`` (403): "The function could not mount the EFS file system with access
  point <arn>." (the file system or access point does not exist);
- ``EFSMountTimeoutException`` (408): "The function could not mount the EFS file system with access
  point {<arn>} due to mount time out." (braces as the page prints them): the network was fine but the
  mount timed out. It is not a network verdict and :func:`check` never returns it; the engine raises it
  (:func:`mount_timeout`) when its own mount step overruns.

The reason (which subnet, which rule) is kept apart from the message, for the server log: AWS's message
says no more than the above.
"""

from __future__ import annotations

from dataclasses import dataclass

from localaws.network.placement import Placement
from localaws.network.security_groups import Peer, admitting_rule

NFS = 2049


@dataclass(frozen=True)
class LambdaError:
    """An Invoke error as Lambda answers it: HTTP status, ``x-amzn-ErrorType`` and message."""

    status: int
    error_type: str
    message: str


@dataclass(frozen=True)
class MountCheck:
    """``error`` is None when the mount can be reached; ``how`` says why, for the server log."""

    error: LambdaError | None
    how: str

    def __bool__(self) -> bool:
        return self.error is None


def connectivity(access_point_arn: str) -> LambdaError:
    return LambdaError(
        408,
        "EFSMountConnectivityException",
        f"The function couldn't connect to the Amazon EFS file system with access point {access_point_arn}. "
        "Check your network configuration and try again.",
    )


def mount_failure(access_point_arn: str) -> LambdaError:
    return LambdaError(
        403,
        "EFSMountFailureException",
        f"The function could not mount the EFS file system with access point {access_point_arn}.",
    )


def mount_timeout(access_point_arn: str) -> LambdaError:
    return LambdaError(
        408,
        "EFSMountTimeoutException",
        f"The function could not mount the EFS file system with access point {{{access_point_arn}}} due to mount time out.",
    )


def _access_point_file_system(placement: Placement, access_point_arn: str):
    from moto.efs.models import efs_backends

    efs = efs_backends[placement.account][placement.region]
    access_point = efs.access_points.get(access_point_arn.rsplit("/", 1)[-1])
    if access_point is None:
        return None
    return efs.file_systems_by_id.get(access_point.file_system_id)


def check(placement: Placement, access_point_arn: str) -> MountCheck:
    """Can an environment placed at ``placement`` reach a mount target of the access point's file system?"""
    from moto.ec2.exceptions import InvalidSubnetIdError
    from moto.ec2.models import ec2_backends

    file_system = _access_point_file_system(placement, access_point_arn)
    if file_system is None:
        return MountCheck(
            mount_failure(access_point_arn), "the access point or its file system does not exist"
        )
    if not placement.in_vpc:
        return MountCheck(connectivity(access_point_arn), "the function is not connected to a VPC")
    backend = ec2_backends[placement.account][placement.region]
    try:
        subnet = backend.get_subnet(placement.subnet_id)
    except InvalidSubnetIdError:
        return MountCheck(connectivity(access_point_arn), f"subnet {placement.subnet_id} does not exist")
    targets = [
        target
        for target in list(file_system._mount_targets.values())
        if target.vpc_id == subnet.vpc_id
        and target.availability_zone_name == subnet.availability_zone
        and target.life_cycle_state == "available"
    ]
    if not targets:
        return MountCheck(
            connectivity(access_point_arn),
            f"{file_system.file_system_id} has no available mount target in {subnet.availability_zone} "
            f"of {subnet.vpc_id} (the zone of {subnet.id})",
        )
    why = ""
    for target in targets:
        target_groups = frozenset(target.security_groups or [])
        out = admitting_rule(
            backend,
            placement.security_group_ids,
            "egress",
            NFS,
            Peer(f"{target.ip_address}/32", target_groups),
        )
        into = admitting_rule(
            backend,
            sorted(target_groups),
            "ingress",
            NFS,
            Peer(subnet.cidr_block, frozenset(placement.security_group_ids)),
        )
        if out and into:
            return MountCheck(
                None, f"mount target {target.mount_target_id} (egress {out}, its ingress {into})"
            )
        why = (
            f"the function's security groups admit no TCP 2049 out to mount target {target.mount_target_id}"
            if not out
            else f"the security groups of mount target {target.mount_target_id} admit no TCP 2049 in from the function"
        )
    return MountCheck(connectivity(access_point_arn), why)
