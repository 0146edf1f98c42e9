"""IAM as AWS evaluates it: who is calling (SigV4), and what they may do (policies), for every request.

The shared room the application creates once and hands to the services (as it does the sandbox):

    from localaws.iam import Authorizer
    iam = Authorizer()                      # reads moto's IAM/STS stores; LOCALAWS_IAM=off disables it
    outcome = iam.check(environ)            # Allowed, or an Answer (the service's refusal) to send
    env = iam.credentials_for_role(role_arn, function_name)   # AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN
    refusal = iam.cloudformation_may(caller, "AWS::EFS::MountTarget", "create", properties)

Modules, each following one AWS behaviour and naming its page: :mod:`.sigv4`, :mod:`.streaming`,
:mod:`.sigv2` and :mod:`.body` (signatures), :mod:`.identity` and :mod:`.store` (callers; the only
module reading moto), :mod:`.operations`, :mod:`.actions` and :mod:`.reference` (request -> action,
resource), :mod:`.context`, :mod:`.conditions` and :mod:`.evaluator` (the decision), :mod:`.errors`
(each service's refusal), :mod:`.cfn_permissions` and :mod:`.cfn` (CloudFormation as its caller), :mod:`.simulate`
(the policy simulator), :mod:`.authorizer` (the public API).
"""

from localaws.iam.authorizer import CALLER_KEY, Allowed, Authorizer, RoleNotAssumable, middleware
from localaws.iam.cfn import Refusal
from localaws.iam.errors import Answer
from localaws.iam.evaluator import Decision
from localaws.iam.identity import Caller

__all__ = [
    "CALLER_KEY",
    "Allowed",
    "Answer",
    "Authorizer",
    "Caller",
    "Decision",
    "Refusal",
    "RoleNotAssumable",
    "middleware",
]
