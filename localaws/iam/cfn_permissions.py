"""What CloudFormation checks, as its caller, for each resource it creates or deletes.

CloudFormation calls each resource type's handlers with the caller's credentials, or with the stack's
service role when it has one (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html).
Each type's registry schema lists the actions its handlers may call ("handlers" > "permissions",
https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html); those lists
are maxima (S3::Bucket's create lists 38 actions for every property it could have), so each row below
keeps the actions the operation itself needs and, gated on the property that needs it, the rest; plus
what the called API checks beyond its own action (EFS mount targets' network interfaces, the execution
role handed to Lambda or SageMaker, the service-linked role a first file system creates). Every row
names its page: ``_page(type)`` is the type's template reference, whose schema the row reads.

How a refusal reads, and the execution role's checks: :mod:`.cfn`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from localaws.iam.actions import lambda_arn

Props = dict

EFS_CREATE_MT = "https://docs.aws.amazon.com/efs/latest/ug/API_CreateMountTarget.html"
EFS_DELETE_MT = "https://docs.aws.amazon.com/efs/latest/ug/API_DeleteMountTarget.html"
EFS_SLR = "https://docs.aws.amazon.com/efs/latest/ug/using-service-linked-roles.html"
LAMBDA_EFS = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-filesystem.html"
PASSROLE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html"


def _page(resource_type: str) -> str:
    _, service, name = resource_type.split("::")
    return f"https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-{service.lower()}-{name.lower()}.html"


@dataclass(frozen=True, slots=True)
class Target:
    """The resource being provisioned: where, its properties, and its physical id once known."""

    region: str
    account: str
    properties: Props
    physical_id: str | None = None


def _always(props: Props) -> bool:
    return True


def _any(*names: str) -> Callable[[Props], bool]:
    return lambda props: any(props.get(n) for n in names)


@dataclass(frozen=True, slots=True)
class Need:
    """One action the caller must be allowed; ``resource`` builds its ARN (``"*"`` when None)."""

    action: str
    doc: str
    when: Callable[[Props], bool] = _always
    resource: Callable[[Target], str] | None = None
    passed_to: str | None = None  # iam:PassRole: the iam:PassedToService context value


def _name(t: Target, prop: str) -> str:
    return str(t.properties.get(prop) or t.physical_id or "*")


def _function(t: Target) -> str:
    return lambda_arn(
        str(t.properties.get("FunctionName") or t.physical_id or "*"), None, t.region, t.account
    )


def _version_function(t: Target) -> str:
    return lambda_arn(str(t.properties.get("FunctionName", "*")), None, t.region, t.account)


def _role(t: Target) -> str:
    path = t.properties.get("Path") or "/"
    return f"arn:aws:iam::{t.account}:role{path}{_name(t, 'RoleName')}"


def _passed(prop: str) -> Callable[[Target], str]:
    return lambda t: str(t.properties.get(prop) or "*")


def _file_system(t: Target) -> str:
    fs = t.properties.get("FileSystemId") or t.physical_id or "*"
    return f"arn:aws:elasticfilesystem:{t.region}:{t.account}:file-system/{fs}"


def _ec2(kind: str) -> Callable[[Target], str]:
    return lambda t: f"arn:aws:ec2:{t.region}:{t.account}:{kind}/{t.physical_id or '*'}"


def _ec2_new(kind: str) -> Callable[[Target], str]:
    return lambda t: f"arn:aws:ec2:{t.region}:{t.account}:{kind}/*"


def _log_group(t: Target) -> str:
    return f"arn:aws:logs:{t.region}:{t.account}:log-group:{_name(t, 'LogGroupName')}:log-stream:"


def _bucket(t: Target) -> str:
    return f"arn:aws:s3:::{_name(t, 'BucketName')}"


def _sagemaker(kind: str, prop: str) -> Callable[[Target], str]:
    return lambda t: f"arn:aws:sagemaker:{t.region}:{t.account}:{kind}/{_name(t, prop).lower()}"


def _apis(t: Target) -> str:
    return f"arn:aws:apigateway:{t.region}::/apis" + (f"/{t.physical_id}" if t.physical_id else "")


def _rows(resource_type: str, *needs: tuple) -> list[Need]:
    """Needs given as (action, when, resource[, passed_to]) citing the type's page unless they say."""
    out = []
    for need in needs:
        action, when, resource, *rest = need
        doc = rest[1] if len(rest) > 1 else _page(resource_type)
        out.append(Need(action, doc, when or _always, resource, rest[0] if rest else None))
    return out


A = _always
VPC, SUBNET, RTB, SG, VPCE = (
    _ec2("vpc"),
    _ec2("subnet"),
    _ec2("route-table"),
    _ec2("security-group"),
    _ec2("vpc-endpoint"),
)
ENI = _ec2_new("network-interface")  # the interface a mount target creates: its id is not the mount target's

# (resource type, "create" | "delete") -> what the caller must be allowed
CALLER: dict[tuple[str, str], list[Need]] = {
    ("AWS::EC2::VPC", "create"): _rows(
        "AWS::EC2::VPC",
        ("ec2:CreateVpc", A, VPC),
        ("ec2:DescribeVpcs", A, None),
        ("ec2:ModifyVpcAttribute", _any("EnableDnsHostnames", "EnableDnsSupport"), VPC),
        ("ec2:CreateTags", _any("Tags"), VPC),
    ),
    ("AWS::EC2::VPC", "delete"): _rows(
        "AWS::EC2::VPC", ("ec2:DeleteVpc", A, VPC), ("ec2:DescribeVpcs", A, None)
    ),
    ("AWS::EC2::Subnet", "create"): _rows(
        "AWS::EC2::Subnet",
        ("ec2:CreateSubnet", A, SUBNET),
        ("ec2:DescribeSubnets", A, None),
        ("ec2:ModifySubnetAttribute", _any("MapPublicIpOnLaunch"), SUBNET),
        ("ec2:CreateTags", _any("Tags"), SUBNET),
    ),
    ("AWS::EC2::Subnet", "delete"): _rows(
        "AWS::EC2::Subnet", ("ec2:DeleteSubnet", A, SUBNET), ("ec2:DescribeSubnets", A, None)
    ),
    ("AWS::EC2::RouteTable", "create"): _rows(
        "AWS::EC2::RouteTable",
        ("ec2:CreateRouteTable", A, RTB),
        ("ec2:DescribeRouteTables", A, None),
        ("ec2:CreateTags", _any("Tags"), RTB),
    ),
    ("AWS::EC2::RouteTable", "delete"): _rows(
        "AWS::EC2::RouteTable", ("ec2:DeleteRouteTable", A, RTB), ("ec2:DescribeRouteTables", A, None)
    ),
    ("AWS::EC2::SubnetRouteTableAssociation", "create"): _rows(
        "AWS::EC2::SubnetRouteTableAssociation",
        ("ec2:AssociateRouteTable", A, RTB),
        ("ec2:DescribeRouteTables", A, None),
    ),
    ("AWS::EC2::SubnetRouteTableAssociation", "delete"): _rows(
        "AWS::EC2::SubnetRouteTableAssociation",
        ("ec2:DisassociateRouteTable", A, RTB),
        ("ec2:DescribeRouteTables", A, None),
    ),
    ("AWS::EC2::SecurityGroup", "create"): _rows(
        "AWS::EC2::SecurityGroup",
        ("ec2:CreateSecurityGroup", A, SG),
        ("ec2:DescribeSecurityGroups", A, None),
        ("ec2:AuthorizeSecurityGroupIngress", _any("SecurityGroupIngress"), SG),
        ("ec2:AuthorizeSecurityGroupEgress", _any("SecurityGroupEgress"), SG),
        ("ec2:RevokeSecurityGroupEgress", _any("SecurityGroupEgress"), SG),
        ("ec2:CreateTags", _any("Tags"), SG),
    ),
    ("AWS::EC2::SecurityGroup", "delete"): _rows(
        "AWS::EC2::SecurityGroup", ("ec2:DeleteSecurityGroup", A, SG), ("ec2:DescribeSecurityGroups", A, None)
    ),
    ("AWS::EC2::SecurityGroupEgress", "create"): _rows(
        "AWS::EC2::SecurityGroupEgress",
        ("ec2:AuthorizeSecurityGroupEgress", A, SG),
        ("ec2:DescribeSecurityGroupRules", A, None),
    ),
    ("AWS::EC2::SecurityGroupEgress", "delete"): _rows(
        "AWS::EC2::SecurityGroupEgress",
        ("ec2:RevokeSecurityGroupEgress", A, SG),
        ("ec2:DescribeSecurityGroupRules", A, None),
    ),
    ("AWS::EC2::VPCEndpoint", "create"): _rows(
        "AWS::EC2::VPCEndpoint",
        ("ec2:CreateVpcEndpoint", A, VPCE),
        ("ec2:DescribeVpcEndpoints", A, None),
        ("ec2:CreateTags", _any("Tags"), VPCE),
    ),
    ("AWS::EC2::VPCEndpoint", "delete"): _rows(
        "AWS::EC2::VPCEndpoint", ("ec2:DeleteVpcEndpoints", A, VPCE), ("ec2:DescribeVpcEndpoints", A, None)
    ),
    ("AWS::S3::Bucket", "create"): _rows(
        "AWS::S3::Bucket",
        ("s3:CreateBucket", A, _bucket),
        ("s3:PutEncryptionConfiguration", _any("BucketEncryption"), _bucket),
        ("s3:PutBucketPublicAccessBlock", _any("PublicAccessBlockConfiguration"), _bucket),
        ("s3:PutBucketVersioning", _any("VersioningConfiguration"), _bucket),
        ("s3:PutBucketOwnershipControls", _any("OwnershipControls"), _bucket),
        ("s3:PutLifecycleConfiguration", _any("LifecycleConfiguration"), _bucket),
        ("s3:PutBucketTagging", _any("Tags"), _bucket),
    ),
    ("AWS::S3::Bucket", "delete"): _rows("AWS::S3::Bucket", ("s3:DeleteBucket", A, _bucket)),
    ("AWS::EFS::FileSystem", "create"): _rows(
        "AWS::EFS::FileSystem",
        ("elasticfilesystem:CreateFileSystem", A, _file_system),
        ("elasticfilesystem:DescribeFileSystems", A, None),
        ("elasticfilesystem:TagResource", _any("FileSystemTags"), _file_system),
        ("elasticfilesystem:PutFileSystemPolicy", _any("FileSystemPolicy"), _file_system),
        ("elasticfilesystem:PutBackupPolicy", _any("BackupPolicy"), _file_system),
        ("elasticfilesystem:PutLifecycleConfiguration", _any("LifecyclePolicies"), _file_system),
        ("kms:DescribeKey", lambda p: str(p.get("Encrypted")).lower() == "true", None),
        # the account's first file system makes EFS create AWSServiceRoleForAmazonElasticFileSystem
        (
            "iam:CreateServiceLinkedRole",
            _any("_service_linked_role_missing"),
            lambda t: f"arn:aws:iam::{t.account}:role/aws-service-role/elasticfilesystem.amazonaws.com/*",
            None,
            EFS_SLR,
        ),
    ),
    ("AWS::EFS::FileSystem", "delete"): _rows(
        "AWS::EFS::FileSystem",
        ("elasticfilesystem:DeleteFileSystem", A, _file_system),
        ("elasticfilesystem:DescribeFileSystems", A, None),
    ),
    ("AWS::EFS::MountTarget", "create"): _rows(
        "AWS::EFS::MountTarget",
        ("elasticfilesystem:CreateMountTarget", A, _file_system),
        ("elasticfilesystem:DescribeMountTargets", A, None),
        ("ec2:DescribeSubnets", A, None, None, EFS_CREATE_MT),
        ("ec2:DescribeNetworkInterfaces", A, None, None, EFS_CREATE_MT),
        ("ec2:CreateNetworkInterface", A, ENI, None, EFS_CREATE_MT),
    ),
    ("AWS::EFS::MountTarget", "delete"): _rows(
        "AWS::EFS::MountTarget",
        ("elasticfilesystem:DeleteMountTarget", A, _file_system),
        ("elasticfilesystem:DescribeMountTargets", A, None),
        ("ec2:DeleteNetworkInterface", A, ENI, None, EFS_DELETE_MT),
    ),
    ("AWS::EFS::AccessPoint", "create"): _rows(
        "AWS::EFS::AccessPoint",
        ("elasticfilesystem:CreateAccessPoint", A, _file_system),
        ("elasticfilesystem:DescribeAccessPoints", A, None),
        ("elasticfilesystem:TagResource", _any("AccessPointTags"), _file_system),
    ),
    ("AWS::EFS::AccessPoint", "delete"): _rows(
        "AWS::EFS::AccessPoint",
        ("elasticfilesystem:DeleteAccessPoint", A, None),
        ("elasticfilesystem:DescribeAccessPoints", A, None),
    ),
    ("AWS::IAM::Role", "create"): _rows(
        "AWS::IAM::Role",
        ("iam:CreateRole", A, _role),
        ("iam:GetRole", A, _role),
        ("iam:PutRolePolicy", _any("Policies"), _role),
        ("iam:AttachRolePolicy", _any("ManagedPolicyArns"), _role),
        ("iam:TagRole", _any("Tags"), _role),
    ),
    ("AWS::IAM::Role", "delete"): _rows(
        "AWS::IAM::Role",
        ("iam:DeleteRole", A, _role),
        ("iam:DeleteRolePolicy", _any("Policies"), _role),
        ("iam:DetachRolePolicy", _any("ManagedPolicyArns"), _role),
    ),
    ("AWS::Logs::LogGroup", "create"): _rows(
        "AWS::Logs::LogGroup",
        ("logs:CreateLogGroup", A, _log_group),
        ("logs:DescribeLogGroups", A, None),
        ("logs:PutRetentionPolicy", _any("RetentionInDays"), _log_group),
        ("logs:TagResource", _any("Tags"), _log_group),
    ),
    ("AWS::Logs::LogGroup", "delete"): _rows(
        "AWS::Logs::LogGroup", ("logs:DeleteLogGroup", A, _log_group), ("logs:DescribeLogGroups", A, None)
    ),
    ("AWS::Lambda::Function", "create"): _rows(
        "AWS::Lambda::Function",
        ("lambda:CreateFunction", A, _function),
        ("lambda:GetFunction", A, _function),
        ("iam:PassRole", _any("Role"), _passed("Role"), "lambda.amazonaws.com", PASSROLE),
        ("lambda:TagResource", _any("Tags"), _function),
        (
            "s3:GetObject",
            lambda p: bool((p.get("Code") or {}).get("S3Bucket")),
            lambda t: (
                f"arn:aws:s3:::{t.properties['Code']['S3Bucket']}/{t.properties['Code'].get('S3Key', '')}"
            ),
        ),
        ("ec2:DescribeSecurityGroups", _any("VpcConfig"), None),
        ("ec2:DescribeSubnets", _any("VpcConfig"), None),
        ("ec2:DescribeVpcs", _any("VpcConfig"), None),
        ("elasticfilesystem:DescribeMountTargets", _any("FileSystemConfigs"), None, None, LAMBDA_EFS),
        ("lambda:PutFunctionConcurrency", lambda p: "ReservedConcurrentExecutions" in p, _function),
    ),
    ("AWS::Lambda::Function", "delete"): _rows(
        "AWS::Lambda::Function",
        ("lambda:DeleteFunction", A, _function),
        ("lambda:GetFunction", A, _function),
        ("ec2:DescribeNetworkInterfaces", _any("VpcConfig"), None),
    ),
    ("AWS::Lambda::Version", "create"): _rows(
        "AWS::Lambda::Version",
        ("lambda:PublishVersion", A, _version_function),
        ("lambda:GetFunctionConfiguration", A, _version_function),
        ("lambda:ListVersionsByFunction", A, _version_function),
    ),
    ("AWS::Lambda::Version", "delete"): _rows(
        "AWS::Lambda::Version", ("lambda:DeleteFunction", A, _version_function)
    ),
    ("AWS::Lambda::Alias", "create"): _rows(
        "AWS::Lambda::Alias",
        ("lambda:CreateAlias", A, _version_function),
        ("lambda:PutProvisionedConcurrencyConfig", _any("ProvisionedConcurrencyConfig"), _version_function),
        ("lambda:GetProvisionedConcurrencyConfig", _any("ProvisionedConcurrencyConfig"), _version_function),
    ),
    ("AWS::Lambda::Alias", "delete"): _rows(
        "AWS::Lambda::Alias",
        ("lambda:DeleteAlias", A, _version_function),
        ("lambda:GetAlias", A, _version_function),
    ),
    ("AWS::Lambda::Permission", "create"): _rows(
        "AWS::Lambda::Permission", ("lambda:AddPermission", A, _version_function)
    ),
    ("AWS::Lambda::Permission", "delete"): _rows(
        "AWS::Lambda::Permission", ("lambda:RemovePermission", A, _version_function)
    ),
    ("AWS::ApiGatewayV2::Api", "create"): _rows(
        "AWS::ApiGatewayV2::Api",
        ("apigateway:POST", A, _apis),
        ("apigateway:PUT", _any("Body", "BodyS3Location"), _apis),
    ),
    ("AWS::ApiGatewayV2::Api", "delete"): _rows(
        "AWS::ApiGatewayV2::Api", ("apigateway:DELETE", A, _apis), ("apigateway:GET", A, _apis)
    ),
    ("AWS::ApiGatewayV2::ApiGatewayManagedOverrides", "create"): _rows(
        "AWS::ApiGatewayV2::ApiGatewayManagedOverrides",
        ("apigateway:GET", A, _apis),
        ("apigateway:PATCH", A, _apis),
    ),
    ("AWS::ApiGatewayV2::ApiGatewayManagedOverrides", "delete"): _rows(
        "AWS::ApiGatewayV2::ApiGatewayManagedOverrides", ("apigateway:GET", A, _apis)
    ),
    ("AWS::SageMaker::Model", "create"): _rows(
        "AWS::SageMaker::Model",
        ("sagemaker:CreateModel", A, _sagemaker("model", "ModelName")),
        (
            "iam:PassRole",
            _any("ExecutionRoleArn"),
            _passed("ExecutionRoleArn"),
            "sagemaker.amazonaws.com",
            PASSROLE,
        ),
        ("sagemaker:AddTags", _any("Tags"), _sagemaker("model", "ModelName")),
    ),
    ("AWS::SageMaker::Model", "delete"): _rows(
        "AWS::SageMaker::Model", ("sagemaker:DeleteModel", A, _sagemaker("model", "ModelName"))
    ),
    ("AWS::SageMaker::EndpointConfig", "create"): _rows(
        "AWS::SageMaker::EndpointConfig",
        ("sagemaker:CreateEndpointConfig", A, _sagemaker("endpoint-config", "EndpointConfigName")),
        ("sagemaker:AddTags", _any("Tags"), _sagemaker("endpoint-config", "EndpointConfigName")),
    ),
    ("AWS::SageMaker::EndpointConfig", "delete"): _rows(
        "AWS::SageMaker::EndpointConfig",
        ("sagemaker:DeleteEndpointConfig", A, _sagemaker("endpoint-config", "EndpointConfigName")),
    ),
    ("AWS::SageMaker::Endpoint", "create"): _rows(
        "AWS::SageMaker::Endpoint",
        ("sagemaker:CreateEndpoint", A, _sagemaker("endpoint", "EndpointName")),
        ("sagemaker:DescribeEndpoint", A, _sagemaker("endpoint", "EndpointName")),
        ("sagemaker:AddTags", _any("Tags"), _sagemaker("endpoint", "EndpointName")),
    ),
    ("AWS::SageMaker::Endpoint", "delete"): _rows(
        "AWS::SageMaker::Endpoint",
        ("sagemaker:DeleteEndpoint", A, _sagemaker("endpoint", "EndpointName")),
        ("sagemaker:DescribeEndpoint", A, _sagemaker("endpoint", "EndpointName")),
    ),
}


def needs(resource_type: str, operation: str, target: Target) -> list[tuple[Need, str, dict]]:
    """(need, resource ARN, context) of every action the caller must be allowed for this operation."""
    out = []
    for need in CALLER.get((resource_type, operation), []):
        if not need.when(target.properties):
            continue
        resource = need.resource(target) if need.resource is not None else "*"
        context = {"iam:passedtoservice": [need.passed_to]} if need.passed_to else {}
        out.append((need, resource, context))
    return out
