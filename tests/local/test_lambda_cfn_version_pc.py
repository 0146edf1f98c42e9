"""``AWS::Lambda::Version`` with ``ProvisionedConcurrencyConfig`` works like the alias form.

See ``localaws/patches/lambda_cfn.py``. AWS: the property configures Provisioned Concurrency on the
published version and changes without replacing it
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-lambda-version.html).
"""

from __future__ import annotations

import json

import pytest

from tests.local.test_lambda_cfn import function, role, unique

HANDLER = (
    "import os\n\ndef handler(event, context):\n    return os.environ['AWS_LAMBDA_INITIALIZATION_TYPE']\n"
)


def _template(code: dict, name: str, count: int | None) -> str:
    version = {"FunctionName": {"Ref": "Function"}, "Description": "provisioned"}
    if count is not None:
        version["ProvisionedConcurrencyConfig"] = {"ProvisionedConcurrentExecutions": count}
    resources = {
        "Role": role(),
        "Function": function(code, name),
        "Version": {"Type": "AWS::Lambda::Version", "Properties": version},
    }
    return json.dumps(
        {"Resources": resources, "Outputs": {"Version": {"Value": {"Fn::GetAtt": ["Version", "Version"]}}}}
    )


@pytest.fixture
def provisioned_code(local_aws) -> dict:
    from tests.conftest import lambda_zip

    s3 = local_aws.client("s3")
    bucket = unique("cfn-version-pc")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="app.zip", Body=lambda_zip(HANDLER))
    return {"S3Bucket": bucket, "S3Key": "app.zip"}


def _status(stack: str, cfn) -> str:
    return cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]


def test_a_version_with_provisioned_concurrency_is_ready_changes_in_place_and_goes_with_the_stack(
    provisioned_code, local_aws
):
    cfn, lam = local_aws.client("cloudformation"), local_aws.client("lambda")
    name = unique("fn-version-pc")
    cfn.create_stack(StackName=name, TemplateBody=_template(provisioned_code, name, 1))
    assert _status(name, cfn) == "CREATE_COMPLETE"
    config = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    assert (config["Status"], config["RequestedProvisionedConcurrentExecutions"]) == ("READY", 1)
    assert config["AllocatedProvisionedConcurrentExecutions"] == 1
    answer = lam.invoke(FunctionName=name, Qualifier="1", Payload=b"{}")
    assert json.loads(answer["Payload"].read()) == "provisioned-concurrency"

    cfn.update_stack(StackName=name, TemplateBody=_template(provisioned_code, name, 2))
    assert _status(name, cfn) == "UPDATE_COMPLETE"
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == [
        "$LATEST",
        "1",
    ]
    config = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    assert (config["Status"], config["RequestedProvisionedConcurrentExecutions"]) == ("READY", 2)

    cfn.update_stack(StackName=name, TemplateBody=_template(provisioned_code, name, None))
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")

    cfn.update_stack(StackName=name, TemplateBody=_template(provisioned_code, name, 1))
    assert lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")["Status"] == "READY"
    cfn.delete_stack(StackName=name)
    assert name not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
