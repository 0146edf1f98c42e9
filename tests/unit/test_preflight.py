"""The preflight of 01 on the aws backend, with botocore's Stubber standing in for STS, IAM and Lambda."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import NoCredentialsError, UnauthorizedSSOTokenError
from botocore.stub import ANY, Stubber

from helpers import preflight
from helpers.config import ConfigError

ROLE_SESSION = "arn:aws:sts::123456789012:assumed-role/WorkshopLearner/alice"
ROLE = "arn:aws:iam::123456789012:role/learners/WorkshopLearner"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("WORKSHOP_BACKEND", "aws")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("WORKSHOP_PROVISIONED_CONCURRENCY", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("WORKSHOP_PREFIX", raising=False)
    clients = {
        name: boto3.client(name, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        for name in ("sts", "iam", "lambda")
    }
    stubs = {name: Stubber(client) for name, client in clients.items()}
    monkeypatch.setattr(preflight.session, "client", lambda service, **kw: clients[service])
    for stub in stubs.values():
        stub.activate()
    yield stubs
    for stub in stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def who(stubs):
    stubs["sts"].add_response(
        "get_caller_identity", {"Account": "123456789012", "Arn": ROLE_SESSION, "UserId": "AROA:alice"}, {}
    )


def simulated(stubs, decide):
    """One SimulatePrincipalPolicy answer per learner-policy statement, each action decided by ``decide``."""
    stubs["iam"].add_response("get_role", {"Role": role()}, {"RoleName": "WorkshopLearner"})
    for statement in preflight.learner_policy()["Statement"]:
        results = [
            {"EvalActionName": a, "EvalResourceName": "*", "EvalDecision": decide(a)}
            for a in statement["Action"]
        ]
        expected = {"PolicySourceArn": ROLE, "ActionNames": statement["Action"], "ResourceArns": ANY}
        if "Condition" in statement:  # the service-linked roles: simulated with the service they are for
            expected["ContextEntries"] = [
                {
                    "ContextKeyName": "iam:AWSServiceName",
                    "ContextKeyValues": ["elasticfilesystem.amazonaws.com"],
                    "ContextKeyType": "string",
                }
            ]
        stubs["iam"].add_response(
            "simulate_principal_policy", {"EvaluationResults": results, "IsTruncated": False}, expected
        )


def role():
    import datetime

    return {
        "Path": "/learners/",
        "RoleName": "WorkshopLearner",
        "RoleId": "AROAEXAMPLEEXAMPLE1",
        "Arn": ROLE,
        "CreateDate": datetime.datetime(2026, 1, 1),
    }


def settings_of(total, unreserved):
    return {
        "AccountLimit": {"ConcurrentExecutions": total, "UnreservedConcurrentExecutions": unreserved},
        "AccountUsage": {},
    }


def account(stubs, total, unreserved, held=None):
    """GetAccountSettings, then the inference function's alias: ``held`` environments, or none configured."""
    stubs["lambda"].add_response("get_account_settings", settings_of(total, unreserved), {})
    alias = {"FunctionName": "lambda-efs-inference", "Qualifier": "provisioned"}
    if held is None:
        stubs["lambda"].add_client_error(
            "get_provisioned_concurrency_config", "ProvisionedConcurrencyConfigNotFoundException", "none", 404
        )
    else:
        answer = {"RequestedProvisionedConcurrentExecutions": held, "Status": "READY"}
        stubs["lambda"].add_response("get_provisioned_concurrency_config", answer, alias)


def test_on_the_local_backend_the_preflight_is_skipped_in_one_line(monkeypatch):
    monkeypatch.setenv("WORKSHOP_BACKEND", "local")
    said = []
    assert "skipped" in preflight.run(echo=said.append) and len(said) == 1


def test_a_ready_account_passes_every_check(aws):
    who(aws)
    simulated(aws, lambda action: "allowed")
    account(aws, 1000, 1000)
    said = []
    result = preflight.run(echo=said.append)
    assert result["permissions"]["checked"] and not result["permissions"]["denied"]
    assert result["permissions"]["principal"] == ROLE  # the role's ARN with its path, not the session's
    assert result["concurrency"]["provisioned_concurrency"] == 1 and len(said) == 3


def test_a_denied_action_stops_the_preflight_naming_it_and_the_policy(aws):
    who(aws)
    simulated(
        aws,
        lambda action: "implicitDeny" if action == "lambda:PutProvisionedConcurrencyConfig" else "allowed",
    )
    account(aws, 1000, 1000)
    with pytest.raises(
        preflight.PreflightError,
        match="DENIED lambda:PutProvisionedConcurrencyConfig: attach policies/learner-policy.json",
    ):
        preflight.run(echo=None)


def test_without_the_simulator_the_unchecked_actions_are_listed(aws):
    who(aws)
    aws["iam"].add_client_error("get_role", "AccessDenied", "no")
    aws["iam"].add_client_error("simulate_principal_policy", "AccessDenied", "no")
    account(aws, 1000, 1000)
    result = preflight.run(echo=None)
    perms = result["permissions"]
    assert not perms["checked"] and "lambda:InvokeFunction" in perms["unchecked"]
    assert perms["principal"] == "arn:aws:iam::123456789012:role/WorkshopLearner"
    said = result["summary"]
    assert said[1].startswith("role: iam:GetRole on your own role WorkshopLearner was refused (AccessDenied)")
    assert "could not be checked" in said[2] and "iam:SimulatePrincipalPolicy" in said[2]
    assert "carrying on" in said[2] and "lambda:InvokeFunction" not in said[2]  # one line, not 150 actions


def test_an_account_without_room_for_provisioned_concurrency_is_told_to_use_0(aws):
    aws["lambda"].add_response("get_account_settings", settings_of(10, 10), {})
    quota = preflight.concurrency()
    assert not quota["fits"] and quota["provisioned_concurrency"] == 0 and quota["room_for_provisioned"] == 0
    assert (
        "WORKSHOP_PROVISIONED_CONCURRENCY=0" in quota["advice"] and "keeps 100 unreserved" in quota["advice"]
    )


def test_room_is_what_lambda_leaves_above_its_100_unreserved(aws):
    aws["lambda"].add_response("get_account_settings", settings_of(1000, 101), {})
    assert preflight.concurrency(wanted=2)["room_for_provisioned"] == 1
    aws["lambda"].add_response("get_account_settings", settings_of(1000, 101), {})
    assert preflight.concurrency(wanted=1)["fits"]


def test_expired_credentials_are_one_sentence_with_the_fix(aws):
    aws["sts"].add_client_error(
        "get_caller_identity", "ExpiredToken", "The security token included in the request is expired"
    )
    with pytest.raises(
        preflight.PreflightError, match=r"^AWS refused your credentials \(ExpiredToken.*refresh them"
    ):
        preflight.identity()


def test_sso_and_missing_credentials_are_one_sentence_each(aws, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "workshop")

    def failing(error):
        def client(service, **kw):
            class Client:
                def get_caller_identity(self):
                    raise error

            return Client()

        return client

    monkeypatch.setattr(preflight.session, "client", failing(UnauthorizedSSOTokenError()))
    with pytest.raises(
        preflight.PreflightError, match="SSO session is missing or expired.*aws sso login --profile workshop"
    ):
        preflight.identity()
    monkeypatch.setattr(preflight.session, "client", failing(NoCredentialsError()))
    with pytest.raises(preflight.PreflightError, match="No AWS credentials were found: run 'aws configure'"):
        preflight.identity()


@pytest.mark.parametrize(("raw", "expected"), [("", 1), ("0", 0), ("2", 2)])
def test_the_provisioned_concurrency_setting(monkeypatch, raw, expected):
    monkeypatch.setenv("WORKSHOP_BACKEND", "local")  # no account to ask: unset means 1
    monkeypatch.setenv("WORKSHOP_PROVISIONED_CONCURRENCY", raw)
    assert preflight.provisioned_concurrency() == expected


def test_a_bad_provisioned_concurrency_setting_names_the_fix(monkeypatch):
    monkeypatch.setenv("WORKSHOP_PROVISIONED_CONCURRENCY", "one")
    with pytest.raises(ConfigError, match="set it to 0"):
        preflight.provisioned_concurrency()


def test_iam_actions_are_simulated_on_this_prefixs_roles():
    pattern = "arn:aws:iam::*:role/lambda-efs-*"
    assert preflight._sample_resource(pattern, "123456789012", "us-east-1") == (
        "arn:aws:iam::123456789012:role/lambda-efs-preflight"
    )
    assert preflight._sample_resource(pattern, "123456789012", "us-east-1", "alice") == (
        "arn:aws:iam::123456789012:role/alice-preflight"
    )
    assert preflight._sample_resource("*", "1", "r") == "*"


def test_with_no_room_03_deploys_0_without_the_setting_and_says_why(aws):
    """03's PROVISIONED_ENVIRONMENTS on a new account: 0 and a note, not a stack that rolls back."""
    account(aws, 10, 10)
    said = []
    assert preflight.provisioned_concurrency(echo=said.append) == 0
    assert len(said) == 1 and said[0].startswith("Provisioned Concurrency 0:") and "Service Quotas" in said[0]


def test_with_room_03_deploys_1_and_says_nothing(aws):
    account(aws, 1000, 1000)
    said = []
    assert preflight.provisioned_concurrency(echo=said.append) == 1 and not said


def test_the_setting_wins_over_the_account_and_asks_aws_nothing(aws, monkeypatch):
    monkeypatch.setenv("WORKSHOP_PROVISIONED_CONCURRENCY", "1")
    assert preflight.provisioned_concurrency(echo=None) == 1  # the stubs would fail on any call


def test_the_environment_03_already_holds_counts_as_room_when_03_runs_again(aws):
    """Unreserved 100 after 03 allocated 1 (101 before): re-running 03 keeps its environment."""
    account(aws, 101, 100, held=1)
    assert preflight.provisioned_concurrency(echo=None) == 1
    account(aws, 101, 100, held=1)
    quota = preflight.concurrency(wanted=1, function="lambda-efs-inference")
    assert quota["fits"] and quota["held_by_this_workshop"] == 1 and quota["room_for_provisioned"] == 1


def test_an_unreadable_account_setting_keeps_the_default(aws):
    aws["lambda"].add_client_error("get_account_settings", "AccessDeniedException", "no", 403)
    assert preflight.provisioned_concurrency(echo=None) == 1


def test_room_for_03_but_not_for_04s_burst_says_the_burst_spills_over(aws):
    account(aws, 101, 101)
    quota = preflight.concurrency(wanted=1, function="lambda-efs-inference")
    assert (
        quota["fits"]
        and "04's provisioned burst needs 1 more at the same time, so it gets 0" in quota["advice"]
    )
    account(aws, 1000, 1000)
    assert "04's" not in preflight.concurrency(wanted=1, function="lambda-efs-inference")["advice"]


def test_the_spare_room_is_what_can_still_be_allocated_beside_03s_alias(aws):
    aws["lambda"].add_response("get_account_settings", settings_of(101, 100), {})  # 03 holds 1
    assert preflight.spare_provisioned() == 0
    aws["lambda"].add_response("get_account_settings", settings_of(1000, 999), {})
    assert preflight.spare_provisioned() == 899


def test_a_role_whose_path_could_not_be_read_is_said_so_not_called_a_closed_simulator(aws):
    who(aws)
    aws["iam"].add_client_error("get_role", "AccessDenied", "no")
    aws["iam"].add_client_error("simulate_principal_policy", "NoSuchEntity", "no such role", 404)
    account(aws, 1000, 1000)
    perms = preflight.run(echo=None)["permissions"]
    assert not perms["checked"] and "needs iam:GetRole on itself" in perms["reason"]
    assert "arn:aws:iam::123456789012:role/WorkshopLearner" in perms["reason"]


def test_an_sso_role_without_getrole_on_itself_is_said_in_one_line_and_the_preflight_carries_on(aws):
    """Issue 21: IAM Identity Center and SageMaker Studio roles have paths that only iam:GetRole tells,
    which the learner policy does not grant; the preflight says so once and goes on to the quota."""
    sso = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Learner_0123456789abcdef/alice"
    aws["sts"].add_response(
        "get_caller_identity", {"Account": "123456789012", "Arn": sso, "UserId": "AROA:a"}, {}
    )
    aws["iam"].add_client_error("get_role", "AccessDenied", "not authorized to perform: iam:GetRole")
    aws["iam"].add_client_error("simulate_principal_policy", "NoSuchEntity", "no such role", 404)
    account(aws, 1000, 1000)
    said = []
    result = preflight.run(echo=said.append)
    role_lines = [line for line in said if "iam:GetRole on your own role" in line]
    assert len(role_lines) == 1 and "AWSReservedSSO_Learner_0123456789abcdef" in role_lines[0]
    assert result["concurrency"]["provisioned_concurrency"] == 1  # carried on
    assert len(said) == 4 and all(len(line) < 400 for line in said)
