"""Template checks that keep the workshop's safety settings: an EFS file-system policy and an HTTP API throttle."""

from __future__ import annotations

from helpers.template_checks import check_file_system_policies, check_http_api_throttles, parse_template

API = """
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: a, ProtocolType: HTTP, Target: arn:aws:lambda:us-east-1:123456789012:function:f}
"""
THROTTLE = """
  Throttle:
    Type: AWS::ApiGatewayV2::ApiGatewayManagedOverrides
    Properties:
      ApiId: !Ref Api
      Stage: {DefaultRouteSettings: {ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10}}
"""


def test_a_quick_created_http_api_without_a_throttle_is_reported():
    [finding] = check_http_api_throttles(parse_template(API))
    assert finding.startswith("Api is a public HTTP API without a throttle")
    assert check_http_api_throttles(parse_template(API + THROTTLE)) == []


def test_a_throttle_with_only_a_rate_is_not_enough():
    half = THROTTLE.replace(", ThrottlingBurstLimit: 10", "")
    assert check_http_api_throttles(parse_template(API + half))


def test_a_file_system_without_a_policy_is_reported():
    bare = "Resources:\n  Fs:\n    Type: AWS::EFS::FileSystem\n    Properties: {Encrypted: true}\n"
    [finding] = check_file_system_policies(parse_template(bare))
    assert finding.startswith("Fs has no FileSystemPolicy")
    policy = bare.replace("{Encrypted: true}", "{Encrypted: true, FileSystemPolicy: {Statement: []}}")
    assert (
        check_file_system_policies(parse_template(policy.replace("Statement: []", "Version: '2012-10-17'")))
        == []
    )
