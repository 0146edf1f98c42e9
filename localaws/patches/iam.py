"""IAM: roles from CloudFormation with their managed policies and readable inline policies.

Gaps of stock moto 5.2.5 filled here:

- ``AWS::IAM::Role`` drops ``ManagedPolicyArns``: nothing is attached. Here each ARN is attached (an
  AWS managed policy is loaded from moto's bundled copy when the server does not preload them), and
  detached again when the stack deletes the role (stock deletion would then fail with DeleteConflict).
- An inline policy given in a template is stored as ``str(dict)``: ``GetRolePolicy`` returns a Python
  repr instead of a JSON document, and ``GetAccountAuthorizationDetails`` fails with HTTP 500. Here
  a policy document that is not a string is stored as JSON, as the API stores it.
"""

from __future__ import annotations

import json
import logging
from functools import cache

from moto.iam import models
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.exceptions import NotFoundException
from moto.utilities.utils import get_partition

log = logging.getLogger(__name__)
_AWS_POLICY_PREFIX = "arn:aws:iam::aws:policy"


@cache
def _aws_managed_policy_data() -> dict[str, dict]:
    return json.loads(aws_managed_policies_data)


def _managed_policy(backend: models.IAMBackend, arn: str) -> models.ManagedPolicy:
    """The policy with this ARN, loading an AWS managed one on first use."""
    if arn not in backend.managed_policies and arn.startswith(_AWS_POLICY_PREFIX):
        name = arn.rsplit("/", 1)[-1]
        data = _aws_managed_policy_data().get(name)
        if data is not None:
            policy = models.AWSManagedPolicy.from_data(name, backend.account_id, backend.region_name, data)
            backend.managed_policies[policy.arn] = policy
    if arn not in backend.managed_policies:
        raise NotFoundException(f"Policy {arn} does not exist or is not attachable.")
    return backend.managed_policies[arn]


def _wrap_put_policy(original):
    def put_policy(self, policy_name: str, policy_json) -> None:
        if not isinstance(policy_json, str):
            policy_json = json.dumps(policy_json)
        original(self, policy_name, policy_json)

    return put_policy


def _wrap_create_role(original):
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        role = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        backend = models.iam_backends[account_id][get_partition(region_name)]
        for arn in cloudformation_json["Properties"].get("ManagedPolicyArns", []):
            _managed_policy(backend, arn).attach_to(role)
        return role

    return create_from_cloudformation_json


def _wrap_delete_role(original):
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        backend = models.iam_backends[account_id][get_partition(region_name)]
        for role in list(backend.roles.values()):
            if role.name == resource_name:
                for policy in list(role.managed_policies.values()):
                    policy.detach_from(role)
        original.__func__(cls, resource_name, cloudformation_json, account_id, region_name)

    return delete_from_cloudformation_json


def apply() -> None:
    models.Role.put_policy = _wrap_put_policy(models.Role.put_policy)
    models.Role.create_from_cloudformation_json = classmethod(
        _wrap_create_role(models.Role.create_from_cloudformation_json)
    )
    models.Role.delete_from_cloudformation_json = classmethod(
        _wrap_delete_role(models.Role.delete_from_cloudformation_json)
    )
