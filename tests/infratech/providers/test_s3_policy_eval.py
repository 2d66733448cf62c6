"""The evaluator the storage tests rely on decides as AWS IAM documents it."""

from __future__ import annotations

import pytest
from s3_policy_eval import decide

ALLOW_A = {"Sid": "A", "Effect": "Allow", "Action": ["s3:GetObject", "s3:Put*"], "Resource": ["arn:aws:s3:::b/team-a/*"]}
DENY_P = {"Sid": "D", "Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*/promotion.json"}


def test_nothing_is_allowed_unless_a_statement_allows_it():
    assert decide({"Statement": [ALLOW_A]}, "s3:GetObject", "arn:aws:s3:::b/team-b/x") == "ImplicitDeny"
    assert decide({"Statement": []}, "s3:GetObject", "arn:aws:s3:::b/team-a/x") == "ImplicitDeny"


def test_a_deny_wins_over_an_allow_in_either_order():
    key = "arn:aws:s3:::b/team-a/run/promotion.json"
    assert decide({"Statement": [ALLOW_A, DENY_P]}, "s3:PutObject", key) == "ExplicitDeny"
    assert decide({"Statement": [DENY_P, ALLOW_A]}, "s3:PutObject", key) == "ExplicitDeny"
    assert decide({"Statement": [ALLOW_A, DENY_P]}, "s3:GetObject", key) == "Allow"


def test_star_spans_slashes_question_mark_is_one_character_resources_are_case_sensitive():
    doc = {"Statement": [ALLOW_A]}
    assert decide(doc, "s3:GetObject", "arn:aws:s3:::b/team-a/deep/er/x") == "Allow"
    assert decide(doc, "S3:getobject", "arn:aws:s3:::b/team-a/x") == "Allow", "actions are case-insensitive"
    assert decide(doc, "s3:GetObject", "arn:aws:s3:::b/TEAM-A/x") == "ImplicitDeny"
    assert decide(doc, "s3:PutObjectAcl", "arn:aws:s3:::b/team-a/x") == "Allow", "s3:Put* is a prefix wildcard"
    one = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/?"}]}
    assert decide(one, "s3:GetObject", "arn:aws:s3:::b/x") == "Allow"
    assert decide(one, "s3:GetObject", "arn:aws:s3:::b/xy") == "ImplicitDeny"


def test_elements_it_does_not_evaluate_are_refused():
    with pytest.raises(ValueError):
        decide({"Statement": [{**ALLOW_A, "Condition": {"StringLike": {"s3:prefix": "team-a/*"}}}]}, "s3:ListBucket", "arn:aws:s3:::b")
