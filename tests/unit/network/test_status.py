"""localaws.network.status: where namespaces are missing, one sentence says what is not enforced."""

from __future__ import annotations

from localaws.network import status


def test_without_namespaces_one_sentence_says_what_is_not_enforced():
    reason = "this system has no Linux network namespaces"
    sentence = status.sentence(reason)
    assert sentence.count(". ") == 0 and sentence.endswith(".")  # one sentence
    for words in (
        "share this machine's network",
        "VpcConfig",
        "security groups",
        "not enforced",
        "EFS",
        reason,
    ):
        assert words in sentence
    described = status.describe(reason)
    assert described["isolated"] is False and described["not_enforced"] == status.NOT_ENFORCED
    assert described["reason"] == reason


def test_with_namespaces_nothing_is_said():
    assert status.sentence(None) is None
    assert status.describe(None) == {
        "isolated": True,
        "mode": "a network namespace per environment",
        "not_enforced": None,
    }
