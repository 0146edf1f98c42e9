"""A template body is data: nothing in it runs on the server's host, and what CloudFormation refuses
(YAML aliases, unknown tags, malformed YAML) is refused with its ValidationError, not an HTML 500."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError


def _python_tag_template(target) -> str:
    # PyYAML's full loader calls builtins.open(target, "w") while it builds this value.
    return (
        "Resources:\n"
        "  Topic:\n"
        "    Type: AWS::SNS::Topic\n"
        "    Properties:\n"
        f"      TopicName: !!python/object/apply:builtins.open [{json.dumps(str(target))}, 'w']\n"
    )


@pytest.mark.parametrize("operation", ["create_stack", "validate_template", "get_template_summary"])
def test_a_python_tag_in_a_template_runs_nothing_on_the_host(local_aws, tmp_path, operation):
    target = tmp_path / "written-by-a-template"
    cfn = local_aws.client("cloudformation")
    kwargs = {"TemplateBody": _python_tag_template(target)}
    if operation == "create_stack":
        kwargs["StackName"] = "yaml-python-tag"
    with pytest.raises(ClientError) as raised:
        getattr(cfn, operation)(**kwargs)
    assert not target.exists()
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert error["Message"].startswith("Template format error: YAML not well-formed. (line 5, column")


def test_a_python_tag_in_a_change_set_runs_nothing_on_the_host(local_aws, tmp_path):
    target = tmp_path / "written-by-a-change-set"
    cfn = local_aws.client("cloudformation")
    with pytest.raises(ClientError) as raised:
        cfn.create_change_set(
            StackName="yaml-python-tag-cs",
            ChangeSetName="cs",
            ChangeSetType="CREATE",
            TemplateBody=_python_tag_template(target),
        )
    assert not target.exists()
    assert raised.value.response["Error"]["Code"] == "ValidationError"


def test_yaml_aliases_are_refused_as_cloudformation_refuses_them(local_aws):
    # The "billion laughs" shape: each level doubles the one before through aliases.
    levels = ["a0: &a0 [x, x]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    template = (
        "Metadata:\n"
        + "".join(f"  {line}\n" for line in levels)
        + ("Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n")
    )
    with pytest.raises(ClientError) as raised:
        local_aws.client("cloudformation").create_stack(StackName="yaml-aliases", TemplateBody=template)
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert error["Message"] == "Template error: YAML aliases are not allowed in CloudFormation templates"


def test_short_form_intrinsic_functions_still_read_as_their_long_form(local_aws):
    template = (
        "Parameters:\n  Name:\n    Type: String\n    Default: yaml-short-forms\n"
        "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n"
        "      TopicName: !Sub '${Name}-topic'\n"
        "Outputs:\n  Arn:\n    Value: !Ref Topic\n  Name:\n    Value: !GetAtt Topic.TopicName\n"
    )
    cfn = local_aws.client("cloudformation")
    cfn.create_stack(StackName="yaml-short-forms", TemplateBody=template)
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName="yaml-short-forms")["Stacks"][0]["Outputs"]
    }
    assert outputs["Name"] == "yaml-short-forms-topic"
    assert outputs["Arn"].endswith(":yaml-short-forms-topic")
    cfn.delete_stack(StackName="yaml-short-forms")
