"""Condition operators, set qualifiers and policy variables against the IAM User Guide
(reference_policies_elements_condition_operators.html and the pages :mod:`localaws.iam.conditions` cites)."""

from __future__ import annotations

from localaws.iam.conditions import evaluate_block

# ---- condition operators (reference_policies_elements_condition_operators.html) ------------------------


def cond(block, **ctx):
    return evaluate_block(block, {k.lower(): v for k, v in ctx.items()}, True)


def test_missing_key_false_except_negated_ifexists_and_null():
    assert cond({"StringEquals": {"aws:PrincipalTag/team": "a"}}) is False
    assert cond({"StringNotEquals": {"aws:PrincipalTag/team": "a"}}) is True
    assert cond({"StringEqualsIfExists": {"aws:PrincipalTag/team": "a"}}) is True
    assert cond({"Null": {"aws:PrincipalTag/team": "true"}}) is True
    assert cond({"Null": {"aws:PrincipalTag/team": "false"}}) is False


def test_values_or_keys_and_operators_and_negated_nor():
    assert cond({"StringEquals": {"k": ["a", "b"]}}, k=["b"]) is True
    assert cond({"StringNotEquals": {"k": ["a", "b"]}}, k=["b"]) is False
    assert cond({"StringNotEquals": {"k": ["a", "b"]}}, k=["c"]) is True
    assert cond({"StringEquals": {"k": "a", "j": "b"}}, k=["a"], j=["x"]) is False
    assert cond({"StringEquals": {"k": "a"}, "StringLike": {"j": "x*"}}, k=["a"], j=["xyz"]) is True


def test_key_names_are_case_insensitive_values_case_sensitive():
    assert cond({"StringEquals": {"AWS:SourceAccount": "123"}}, **{"aws:sourceaccount": ["123"]}) is True
    assert cond({"StringEquals": {"k": "ABC"}}, k=["abc"]) is False
    assert cond({"StringEqualsIgnoreCase": {"k": "ABC"}}, k=["abc"]) is True


def test_set_operators_on_multivalued_keys():
    tags = {"aws:TagKeys": ["env", "team"]}
    assert cond({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team", "cost"]}}, **tags) is True
    assert cond({"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}}, **tags) is False
    assert cond({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}, **tags) is True
    # the documented pitfall: ForAllValues is true when the key is missing, ForAnyValue false
    assert cond({"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}}) is True
    assert cond({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}) is False


def test_numeric_date_bool_ip_arn_operators():
    assert cond({"NumericLessThanEquals": {"s3:max-keys": "10"}}, **{"s3:max-keys": ["10"]}) is True
    assert cond({"NumericLessThan": {"s3:max-keys": "10"}}, **{"s3:max-keys": ["10"]}) is False
    assert (
        cond(
            {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
            **{"aws:CurrentTime": ["2026-06-01T12:00:00Z"]},
        )
        is True
    )
    assert (
        cond({"DateGreaterThan": {"aws:EpochTime": "1700000000"}}, **{"aws:EpochTime": ["1800000000"]})
        is True
    )
    assert cond({"Bool": {"aws:SecureTransport": "false"}}, **{"aws:SecureTransport": ["FALSE"]}) is True
    assert cond({"Bool": {"aws:SecureTransport": False}}, **{"aws:SecureTransport": ["false"]}) is True
    assert (
        cond(
            {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}},
            **{"aws:SourceIp": ["203.0.113.7"]},
        )
        is True
    )
    assert (
        cond({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, **{"aws:SourceIp": ["127.0.0.1"]}) is True
    )
    assert cond({"IpAddress": {"aws:SourceIp": "127.0.0.1"}}, **{"aws:SourceIp": ["127.0.0.1"]}) is True
    assert (
        cond(
            {"ArnLike": {"aws:SourceArn": "arn:aws:execute-api:*:*:abc/*"}},
            **{"aws:SourceArn": ["arn:aws:execute-api:us-east-1:1:abc/x/GET/"]},
        )
        is True
    )
    assert (
        cond(
            {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/admin-*"}},
            **{"aws:PrincipalArn": ["arn:aws:iam::1:role/dev"]},
        )
        is True
    )


def test_condition_values_take_policy_variables():
    block = {"StringLike": {"s3:prefix": ["home/${aws:username}/*"]}}
    assert cond(block, **{"s3:prefix": ["home/carlos/x"], "aws:username": ["carlos"]}) is True
    assert cond(block, **{"s3:prefix": ["home/bob/x"], "aws:username": ["carlos"]}) is False


def test_an_unknown_operator_never_matches():
    assert cond({"StringEqualz": {"k": "a"}}, k=["a"]) is False
    assert cond({"Null": {"k": "false"}, "StringEquals": "not a mapping"}, k=["a"]) is False


def test_missing_context_keys_are_listed():
    from localaws.iam.conditions import missing_keys

    block = {"StringEquals": {"aws:PrincipalTag/team": "a", "aws:username": "x"}}
    assert missing_keys(block, {"aws:username": ["x"]}) == {"aws:PrincipalTag/team"}
