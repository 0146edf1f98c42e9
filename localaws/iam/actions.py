"""From an API operation to what IAM checks: the action(s), the resource ARN(s) and the request context.

The default is ``<service prefix>:<Operation>`` on the resource whose ARN the Service Authorization
Reference gives for the action (:mod:`.reference`), or ``"*"`` for an action that supports no
resource-level permissions. The exceptions, each with its page:

- Lambda (https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html): ``Invoke`` is
  ``lambda:InvokeFunction``; the resource is the function ARN, *qualified* when the request names a
  version or alias (``name:alias``, ``?Qualifier=``, a qualified ARN), so ``function:x-*`` matches both.
- S3 (each operation's "Permissions" section, https://docs.aws.amazon.com/AmazonS3/latest/API/API_Operations.html,
  and https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html): the
  :data:`S3` renames; ``versionId`` selects the ``...Version`` actions; CopyObject also needs
  ``s3:GetObject`` on its source; DeleteObjects is one ``s3:DeleteObject`` (``s3:DeleteObjectVersion``
  with a VersionId) per key (API_DeleteObjects.html); listing passes the
  ``s3:prefix``/``s3:delimiter``/``s3:max-keys`` condition keys (amazon-s3-policy-keys.html).
- STS: ``GetCallerIdentity`` is never checked ("No permissions are required to perform this operation",
  API_GetCallerIdentity.html); AssumeRole with ``Tags`` also needs ``sts:TagSession``, with
  ``SourceIdentity`` ``sts:SetSourceIdentity`` (id_session-tags.html, id_credentials_temp_control-access_monitor.html).
- ``iam:PassRole`` with ``iam:PassedToService`` wherever a role is handed to a service: Lambda's
  CreateFunction/UpdateFunctionConfiguration ``Role``, SageMaker's CreateModel ``ExecutionRoleArn``,
  CloudFormation's ``RoleARN`` (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html).
- EFS: CreateMountTarget also needs ``ec2:DescribeSubnets``, ``ec2:DescribeNetworkInterfaces`` and
  ``ec2:CreateNetworkInterface``; DeleteMountTarget ``ec2:DeleteNetworkInterface``
  (https://docs.aws.amazon.com/efs/latest/ug/API_CreateMountTarget.html, .../API_DeleteMountTarget.html).
- API Gateway (HTTP APIs): the action is the HTTP verb on the API Gateway resource path,
  ``apigateway:POST`` on ``arn:aws:apigateway:<region>::/apis``
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/security_iam_service-with-iam.html).
- CloudWatch Logs authorises log-group actions on ``log-group:<name>:log-stream:`` (as its denials
  show, e.g. "... logs:CreateLogGroup on resource: arn:aws:logs:eu-central-1:697149045717:log-group:/aws/lambda/x:log-stream:"),
  which is why policies write ``log-group:<name>:*``.
- SageMaker ARNs carry the resource name lower-cased (what CreateEndpoint returns).
- IAM role ARNs include the role's path (``role/<path><name>``), looked up in the account.

One resource is checked per action: where AWS checks several (EC2's CreateSubnet on the subnet and its
VPC), the first required resource type whose ARN the request gives, else the new resource's ``.../*``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from localaws.iam import reference
from localaws.iam.operations import Operation

PREFIX = {
    "efs": "elasticfilesystem",
    "apigatewayv2": "apigateway",
    "sagemaker-runtime": "sagemaker",
    "service-quotas": "servicequotas",
}
LAMBDA = {
    "Invoke": "InvokeFunction",
    "InvokeWithResponseStream": "InvokeFunction",
    "InvokeAsync": "InvokeAsync",
}
S3 = {
    "HeadObject": "GetObject",
    "HeadBucket": "ListBucket",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "ListBuckets": "ListAllMyBuckets",
    "ListMultipartUploads": "ListBucketMultipartUploads",
    "ListParts": "ListMultipartUploadParts",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "CopyObject": "PutObject",
    "UploadPartCopy": "PutObject",
    "DeleteObjects": "DeleteObject",
    "GetBucketEncryption": "GetEncryptionConfiguration",
    "PutBucketEncryption": "PutEncryptionConfiguration",
    "DeleteBucketEncryption": "PutEncryptionConfiguration",
    "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "PutLifecycleConfiguration",
    "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
    "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "PutBucketPublicAccessBlock",
    "DeleteBucketOwnershipControls": "PutBucketOwnershipControls",
    "DeleteBucketTagging": "PutBucketTagging",
    "GetBucketCors": "GetBucketCORS",
    "PutBucketCors": "PutBucketCORS",
    "DeleteBucketCors": "PutBucketCORS",
    "GetBucketNotificationConfiguration": "GetBucketNotification",
    "PutBucketNotificationConfiguration": "PutBucketNotification",
    "GetBucketReplication": "GetReplicationConfiguration",
    "PutBucketReplication": "PutReplicationConfiguration",
    "DeleteBucketReplication": "PutReplicationConfiguration",
    "GetObjectLockConfiguration": "GetBucketObjectLockConfiguration",
    "PutObjectLockConfiguration": "PutBucketObjectLockConfiguration",
    "GetBucketAccelerateConfiguration": "GetAccelerateConfiguration",
    "PutBucketAccelerateConfiguration": "PutAccelerateConfiguration",
    "GetBucketAnalyticsConfiguration": "GetAnalyticsConfiguration",
    "GetBucketInventoryConfiguration": "GetInventoryConfiguration",
    "GetBucketMetricsConfiguration": "GetMetricsConfiguration",
    "SelectObjectContent": "GetObject",
}
S3_VERSIONED = {
    "GetObject": "GetObjectVersion",
    "HeadObject": "GetObjectVersion",
    "DeleteObject": "DeleteObjectVersion",
    "GetObjectTagging": "GetObjectVersionTagging",
    "PutObjectTagging": "PutObjectVersionTagging",
    "GetObjectAcl": "GetObjectVersionAcl",
}
S3_BUCKET_LEVEL = {
    "ListObjects",
    "ListObjectsV2",
    "ListObjectVersions",
    "ListMultipartUploads",
    "DeleteObjects",
    "HeadBucket",
}
UNCHECKED = {("sts", "GetCallerIdentity")}
# (service, operation) -> extra (action, resource) the caller needs; "{region}"/"{account}" filled in
DEPENDENT = {
    ("efs", "CreateMountTarget"): [
        ("ec2:DescribeSubnets", "*"),
        ("ec2:DescribeNetworkInterfaces", "*"),
        ("ec2:CreateNetworkInterface", "arn:aws:ec2:{region}:{account}:network-interface/*"),
    ],
    ("efs", "DeleteMountTarget"): [
        ("ec2:DeleteNetworkInterface", "arn:aws:ec2:{region}:{account}:network-interface/*")
    ],
    ("efs", "ModifyMountTargetSecurityGroups"): [
        ("ec2:ModifyNetworkInterfaceAttribute", "arn:aws:ec2:{region}:{account}:network-interface/*")
    ],
    ("efs", "DescribeMountTargetSecurityGroups"): [("ec2:DescribeNetworkInterfaceAttribute", "*")],
}
# (service, operation) -> (parameter holding the role ARN, the service the role is passed to)
PASSES_ROLE = {
    ("lambda", "CreateFunction"): ("Role", "lambda.amazonaws.com"),
    ("lambda", "UpdateFunctionConfiguration"): ("Role", "lambda.amazonaws.com"),
    ("sagemaker", "CreateModel"): ("ExecutionRoleArn", "sagemaker.amazonaws.com"),
    ("cloudformation", "CreateStack"): ("RoleARN", "cloudformation.amazonaws.com"),
    ("cloudformation", "UpdateStack"): ("RoleARN", "cloudformation.amazonaws.com"),
    ("cloudformation", "DeleteStack"): ("RoleARN", "cloudformation.amazonaws.com"),
}
_EC2_ID_PREFIX = {
    "vpc-": "vpc",
    "subnet-": "subnet",
    "sg-": "security-group",
    "rtb-": "route-table",
    "vpce-": "vpc-endpoint",
    "eni-": "network-interface",
    "igw-": "internet-gateway",
    "nat-": "natgateway",
}

RoleArn = Callable[[str], str]  # role name -> its ARN (with the role's path)


@dataclass(slots=True)
class Check:
    action: str
    resource: str
    context: dict[str, list[str]] = field(default_factory=dict)  # lower-cased keys


def lambda_arn(name: str, qualifier: str | None, region: str, account: str) -> str:
    """FunctionName as a name, ``name:qualifier``, a partial ARN (``acct:function:name``) or an ARN."""
    if name.startswith("arn:"):
        base = name
    elif ":function:" in name:
        base = f"arn:aws:lambda:{region}:{name}"
    else:
        base = f"arn:aws:lambda:{region}:{account}:function:{name}"
    if qualifier and base.count(":") == 6:
        base = f"{base}:{qualifier}"
    return base


def checks(op: Operation, region: str, account: str, role_arn: RoleArn | None = None) -> list[Check]:
    """What IAM evaluates for one operation (empty: nothing to check)."""
    if (op.service, op.name) in UNCHECKED:
        return []
    role_arn = role_arn or (lambda name: f"arn:aws:iam::{account}:role/{name}")
    out = _primary(op, region, account, role_arn)
    out += [
        Check(a, r.format(region=region, account=account))
        for a, r in DEPENDENT.get((op.service, op.name), [])
    ]
    passes = PASSES_ROLE.get((op.service, op.name))
    if passes and op.params.get(passes[0]):
        out.append(Check("iam:PassRole", str(op.params[passes[0]]), {"iam:passedtoservice": [passes[1]]}))
    return out


def _primary(op: Operation, region: str, account: str, role_arn: RoleArn) -> list[Check]:
    p = op.params
    prefix = PREFIX.get(op.service, op.service)
    if op.service == "lambda":
        action = f"lambda:{LAMBDA.get(op.name, op.name)}"
        if "FunctionName" in p:
            return [Check(action, lambda_arn(str(p["FunctionName"]), p.get("Qualifier"), region, account))]
        return [Check(action, _generic(action, p, region, account))]
    if op.service == "s3":
        return _s3(op)
    if op.service == "apigatewayv2":
        path = op.path[3:] if op.path.startswith("/v2/") else op.path or "/apis"
        return [Check(f"apigateway:{op.method or 'POST'}", f"arn:aws:apigateway:{region}::{path}")]
    if op.service == "efs":
        if p.get("FileSystemId"):
            return [
                Check(
                    f"{prefix}:{op.name}",
                    f"arn:aws:elasticfilesystem:{region}:{account}:file-system/{p['FileSystemId']}",
                )
            ]
        if p.get("AccessPointId"):
            return [
                Check(
                    f"{prefix}:{op.name}",
                    f"arn:aws:elasticfilesystem:{region}:{account}:access-point/{p['AccessPointId']}",
                )
            ]
        return [Check(f"{prefix}:{op.name}", _generic(f"{prefix}:{op.name}", p, region, account))]
    if op.service in ("sagemaker", "sagemaker-runtime"):
        for key, kind in (
            ("EndpointName", "endpoint"),
            ("EndpointConfigName", "endpoint-config"),
            ("ModelName", "model"),
        ):
            if key in p and not op.name.startswith("List"):
                return [
                    Check(
                        f"sagemaker:{op.name}",
                        f"arn:aws:sagemaker:{region}:{account}:{kind}/{str(p[key]).lower()}",
                    )
                ]
        return [Check(f"sagemaker:{op.name}", "*")]
    if op.service == "cloudformation":
        name = p.get("StackName")
        if name and not op.name.startswith("List"):
            arn = (
                name
                if name.startswith("arn:")
                else f"arn:aws:cloudformation:{region}:{account}:stack/{name}/*"
            )
            return [Check(f"cloudformation:{op.name}", arn)]
        return [Check(f"cloudformation:{op.name}", "*")]
    if op.service == "logs":
        group = p.get("logGroupName")
        if group and op.name != "DescribeLogGroups":
            stream = p.get("logStreamName") or ""
            return [
                Check(
                    f"logs:{op.name}",
                    f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:{stream}",
                )
            ]
        return [Check(f"logs:{op.name}", "*")]
    if op.service == "iam":
        return [Check(f"iam:{op.name}", _iam_resource(op, account, role_arn))]
    if op.service == "sts":
        if op.name.startswith("AssumeRole"):
            role = str(p.get("RoleArn", "*"))
            out = [Check(f"sts:{op.name}", role)]
            if any(k.startswith("Tags.member") for k in p):
                out.append(Check("sts:TagSession", role))
            if "SourceIdentity" in p:
                out.append(Check("sts:SetSourceIdentity", role))
            return out
        return [Check(f"sts:{op.name}", "*")]
    if op.service == "ec2" and op.name in ("CreateTags", "DeleteTags"):
        resource = str(p.get("ResourceId.1", ""))
        kind = next((k for pre, k in _EC2_ID_PREFIX.items() if resource.startswith(pre)), None)
        return [Check(f"ec2:{op.name}", f"arn:aws:ec2:{region}:{account}:{kind}/{resource}" if kind else "*")]
    action = f"{prefix}:{op.name}"
    return [Check(action, _generic(action, p, region, account, create=op.name.startswith("Create")))]


def _iam_resource(op: Operation, account: str, role_arn: RoleArn) -> str:
    p = op.params
    if op.name == "SimulatePrincipalPolicy":
        return str(p.get("PolicySourceArn", "*"))
    if "RoleName" in p:
        return role_arn(str(p["RoleName"]))
    if "UserName" in p:
        return f"arn:aws:iam::{account}:user/{p['UserName']}"
    if "GroupName" in p:
        return f"arn:aws:iam::{account}:group/{p['GroupName']}"
    if "PolicyArn" in p:
        return str(p["PolicyArn"])
    if op.name == "CreatePolicy" and "PolicyName" in p:
        return f"arn:aws:iam::{account}:policy{p.get('Path', '/')}{p['PolicyName']}"
    if "InstanceProfileName" in p:
        return f"arn:aws:iam::{account}:instance-profile/{p['InstanceProfileName']}"
    if op.name == "CreateServiceLinkedRole" and "AWSServiceName" in p:
        return f"arn:aws:iam::{account}:role/aws-service-role/{p['AWSServiceName']}/*"
    return "*"


def _generic(action: str, params: dict, region: str, account: str, create: bool = False) -> str:
    """The ARN of the first required resource type the parameters fill; for a Create, the new resource's
    ``.../*``; ``"*"`` when the action supports no resource-level permissions or nothing fits."""
    types = reference.resource_types(action)
    if not types:
        return "*"
    prefix = action.split(":", 1)[0]
    values = {"Partition": "aws", "Region": region, "Account": account}
    values.update({k: str(v) for k, v in params.items() if isinstance(v, str | int)})
    ordered = [t for t in types if t.endswith("*")] or types
    for kind in ordered:
        template = reference.arn_format(prefix, kind)
        arn = template and reference.fill_arn(template, values)
        if arn:
            return arn
    if create:
        template = reference.arn_format(prefix, ordered[0])
        if template:
            return reference.fill_arn(template, values, missing="*") or "*"
    return "*"


def _s3(op: Operation) -> list[Check]:
    p, name = op.params, op.name
    bucket, key = p.get("Bucket"), p.get("Key")
    action = S3.get(name, name)
    if ("versionId" in p or "VersionId" in p) and name in S3_VERSIONED:
        action = S3_VERSIONED[name]
    if name == "ListBuckets" or not bucket:
        return [Check("s3:ListAllMyBuckets", "*")]
    if key is not None and name not in S3_BUCKET_LEVEL:
        out = [Check(f"s3:{action}", f"arn:aws:s3:::{bucket}/{key}")]
        source = p.get("x-amz-copy-source") or p.get("CopySource")
        if name in ("CopyObject", "UploadPartCopy") and source:
            out.append(
                Check("s3:GetObject", f"arn:aws:s3:::{unquote(str(source)).lstrip('/').split('?')[0]}")
            )
        return out
    if name == "DeleteObjects":  # per key; s3:DeleteObjectVersion for a key given with its version
        objects = p.get("_objects") or [("*", None)]
        return [
            Check(f"s3:DeleteObject{'Version' if v else ''}", f"arn:aws:s3:::{bucket}/{k}")
            for k, v in objects
        ]
    context = {}
    if name in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
        context = {f"s3:{k}": [str(v)] for k, v in p.items() if k in ("prefix", "delimiter", "max-keys")}
    return [Check(f"s3:{action}", f"arn:aws:s3:::{bucket}", context)]
