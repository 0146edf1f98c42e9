"""CloudFormation acting as its caller, and Lambda's checks of an execution role: the decisions and how
a refusal reads.

- Each resource operation is allowed only if every action :mod:`.cfn_permissions` lists for it is
  allowed to the stack's caller, or to its service role (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html).
  A refused one fails the resource as CloudFormation reports a registry handler's failure:
  ``Resource handler returned message: "<the service's message> (Service: Efs, Status Code: 403,
  Request ID: <id>)" (RequestToken: <uuid>, HandlerErrorCode: AccessDenied)`` (recorded from AWS in
  aws-amplify/amplify-cli#10116 for EC2, trailofbits/algo#14369); the service's message is its
  own denial (EC2's "You are not authorized to perform this operation. User: ...", EFS's fixed
  sentence) for its own actions, IAM's sentence for an action of another service it needs.
- Lambda refuses a function whose execution role it cannot assume (400 ``InvalidParameterValueException``
  "The role defined for the function cannot be assumed by Lambda.") and, for a function in a VPC, a
  role that cannot manage network interfaces ("The provided execution role does not have permissions
  to call CreateNetworkInterface on EC2", https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from localaws.iam import errors
from localaws.iam.cfn_permissions import Props, Target, needs
from localaws.iam.context import request_context
from localaws.iam.evaluator import Policies, Principal, Request, Result, denial_message, evaluate
from localaws.iam.identity import Caller

LAMBDA_VPC = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html"
ROLE_NOT_ASSUMABLE = "The role defined for the function cannot be assumed by Lambda."
# a resource type's service -> (its IAM prefix, the name its handler's failure gives: "(Service: Efs, ...)")
HANDLER_SERVICES = {
    "EC2": ("ec2", "Ec2"),
    "EFS": ("elasticfilesystem", "Efs"),
    "Lambda": ("lambda", "Lambda"),
    "IAM": ("iam", "Iam"),
    "S3": ("s3", "S3"),
    "Logs": ("logs", "CloudWatchLogs"),
    "SageMaker": ("sagemaker", "SageMaker"),
    "ApiGatewayV2": ("apigateway", "ApiGatewayV2"),
}

Evaluate = Callable[[Request, Policies], Result]  # evaluate with the resource's own policy looked up


@dataclass(frozen=True, slots=True)
class Refusal:
    """A resource operation CloudFormation's caller may not perform; ``reason`` is the ResourceStatusReason."""

    action: str
    resource: str
    reason: str
    context: dict = field(default_factory=dict)


def handler_failure_reason(message: str, service: str, status: int = 403) -> str:
    return (
        f'Resource handler returned message: "{message} (Service: {service}, Status Code: {status}, '
        f'Request ID: {uuid.uuid4()})" (RequestToken: {uuid.uuid4()}, HandlerErrorCode: AccessDenied)'
    )


def may(
    caller: Caller, policies: Policies, resource_type: str, operation: str, target: Target, decide: Evaluate
) -> Refusal | None:
    """None if ``caller`` (with ``policies``) may perform ``operation`` on the resource, else the refusal."""
    context = request_context(caller, target.region, None)
    for need, resource, extra in needs(resource_type, operation, target):
        request = Request(caller.principal, need.action, resource, {**context, **extra})
        result = decide(request, policies)
        if result.allowed:
            continue
        prefix = need.action.split(":", 1)[0]
        own_prefix, service = HANDLER_SERVICES.get(resource_type.split("::")[1], (prefix, prefix.title()))
        sentence = denial_message(request, result)
        if prefix == own_prefix:  # the handler's service refused its own action: its own wording
            message = errors.message_for(
                prefix, "ec2" if prefix == "ec2" else "rest-json", "denied", sentence
            )
        else:
            message = sentence
        reason = handler_failure_reason(message, service)
        return Refusal(need.action, resource, reason, extra)
    return None


@dataclass(frozen=True, slots=True)
class RoleRule:
    """What a function's execution role must allow, which Lambda checks when the function is created."""

    when: Callable[[Props], bool]
    actions: tuple[str, ...]
    message: str  # "{action}" is the first action the role lacks, without its prefix
    doc: str


EXECUTION_ROLE = (
    RoleRule(
        lambda p: bool((p.get("VpcConfig") or {}).get("SubnetIds")),
        ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface"),
        "The provided execution role does not have permissions to call {action} on EC2",
        LAMBDA_VPC,
    ),
)


def execution_role_problem(
    role_arn: str, account: str, role_policies: Policies, properties: Props, service: str
) -> str | None:
    """The first :data:`EXECUTION_ROLE` rule ``role_policies`` fail for ``properties``, as Lambda words it."""
    name = role_arn.rsplit("/", 1)[-1]
    who = Principal(
        f"arn:aws:sts::{account}:assumed-role/{name}/{service}", account, "assumed-role", role_arn
    )
    for rule in EXECUTION_ROLE:
        if rule.when(properties):
            for action in rule.actions:
                if not evaluate(Request(who, action, "*"), role_policies).allowed:
                    return rule.message.format(action=action.split(":", 1)[1])
    return None
