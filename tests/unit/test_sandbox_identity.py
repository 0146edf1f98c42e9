"""The sandbox's identity: the access point's PosixUser, Lambda's user otherwise, and never root."""

from __future__ import annotations

from localaws.lambda_engine.sandbox import identity


def test_an_access_point_s_posix_user_is_the_function_s_user():
    found = identity.for_access_points([{"Uid": 1000, "Gid": 1000, "SecondaryGids": [2000]}])
    assert (found.uid, found.gid, found.groups) == (1000, 1000, (2000,))


def test_without_an_access_point_the_function_runs_as_lambda_s_user():
    assert (identity.for_access_points([]).uid, identity.for_access_points([{}]).gid) == (993, 990)


def test_a_posix_user_of_root_is_never_taken_on():
    for user in ({"Uid": 0, "Gid": 0}, {"Uid": 1000, "Gid": 0}, {"Uid": 0, "Gid": 1000}):
        found = identity.for_access_points([user])
        assert (found.uid, found.gid) == (993, 990), user
        assert "root" in found.source
    assert identity.for_access_points([{"Uid": 1000, "Gid": 1000, "SecondaryGids": [0, 5]}]).groups == (5,)
