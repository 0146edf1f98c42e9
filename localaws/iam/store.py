"""The one module that reads moto's IAM, STS, Lambda, S3 and EFS stores (moto 5.2.5) for IAM decisions.

moto keeps the account's identities and policies; its own checks are never used (its
``INITIAL_NO_AUTH_ACTION_COUNT`` stays at its default, infinity, so ``moto.iam.access_control`` never
runs). What is read here:

- access keys: ``iam_backends[account][partition].access_keys`` (a dict by key id: users' ``AKIA`` keys
  and the ``ASIA`` keys STS creates), and each STS session (``sts_backends[...].assumed_roles``, a list
  moto scans linearly) indexed here by key id, incrementally, so a look-up is O(1);
- identity-based policies (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html): a
  user's inline and attached managed policies and those of its groups; a role's, with its permissions
  boundary; a session's session policy (AssumeRole's ``Policy``). A managed policy counts with its
  default version;
- resource-based policies: a Lambda function's policy (AddPermission), an S3 bucket policy, an EFS
  file-system policy, a role's trust policy;
- temporary credentials for a role (:meth:`MotoStore.issue_session`) created through moto's own STS,
  so that the key, its secret and its session token are found again like any session's.
"""

from __future__ import annotations

import json
import os
import threading
from calendar import timegm
from dataclasses import dataclass

from localaws.iam.evaluator import Policies
from localaws.iam.identity import Caller, KeyRecord

DEFAULT_SESSION_S = 12 * 3600  # the longest a role session may last (MaxSessionDuration's maximum)


def account_id() -> str:
    """The account moto serves (``MOTO_ACCOUNT_ID``, else moto's default)."""
    from moto.core import DEFAULT_ACCOUNT_ID

    return os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)


@dataclass(frozen=True, slots=True)
class ResourcePolicy:
    document: str
    account: str
    trust: bool = False


class NoSuchEntity(LookupError):
    """The user, group or role an ARN names does not exist."""


def _default_document(policy) -> str:
    return next((v.document for v in policy.versions if v.is_default), "")


def _epoch(when) -> float:
    return float(timegm(when.timetuple()))


class MotoStore:
    """Read-only views of moto's stores for one account and partition (plus issuing role sessions)."""

    def __init__(self, account: str | None = None, partition: str = "aws") -> None:
        self.account = account or account_id()
        self.partition = partition
        self._sessions: dict[str, object] = {}
        self._scanned: tuple[int, int] = (0, 0)  # (id of moto's list, how many of it are indexed)
        self._lock = threading.Lock()

    @property
    def iam(self):
        from moto.iam.models import iam_backends

        return iam_backends[self.account][self.partition]

    @property
    def sts(self):
        from moto.sts.models import sts_backends

        return sts_backends[self.account][self.partition]

    # ---- who is calling ---------------------------------------------------------------------------

    def find_key(self, access_key: str) -> KeyRecord | None:
        iam = self.iam  # one look-up of moto's backend (each costs a lock and a few dict hops)
        key = iam.access_keys.get(access_key)
        if key is None:
            return None
        active = key.status == "Active"
        if key.user_name is not None:
            user = iam.users.get(key.user_name)
            if user is None:
                return None
            tags = {t["Key"]: t["Value"] for t in iam.tagger.list_tags_for_resource(user.arn)["Tags"]}
            caller = Caller(
                user.arn,
                self.account,
                "user",
                user.name,
                access_key,
                key.secret_access_key,
                user.id,
                tags=tags,
            )
            return KeyRecord(caller, active)
        session = self._session(access_key)
        if session is None:
            return None
        role = self.role_by_arn(session.role_arn)
        role_arn = role.arn if role is not None else session.role_arn
        role_name = role_arn.rsplit("/", 1)[-1]
        caller = Caller(
            f"arn:{self.partition}:sts::{self.account}:assumed-role/{role_name}/{session.session_name}",
            self.account,
            "assumed-role",
            role_name,
            access_key,
            session.secret_access_key,
            f"{role.id if role is not None else 'AROA'}:{session.session_name}",
            session.session_name,
            role_arn,
            {t["Key"]: t["Value"] for t in (role.tags if role is not None else [])},
            session.policy or None,
        )
        return KeyRecord(caller, active, session.session_token, _epoch(session.expiration))

    def _session(self, access_key: str):
        found = self._sessions.get(access_key)
        if found is not None:
            return found
        with self._lock:
            sessions = self.sts.assumed_roles
            list_id, done = self._scanned
            if list_id != id(sessions):  # moto was reset: index its new list from the start
                self._sessions.clear()
                done = 0
            for session in sessions[done:]:
                self._sessions[session.access_key_id] = session
            self._scanned = (id(sessions), len(sessions))
        return self._sessions.get(access_key)

    # ---- identity-based policies ------------------------------------------------------------------

    def policies_for(self, caller: Caller) -> Policies:
        """The identity-based policies, boundary and session policy that apply to ``caller``."""
        if caller.kind == "user":
            return self._user_policies(caller.name)
        if caller.kind == "assumed-role":
            role = self.role_by_arn(caller.role_arn or "")
            policies = self._role_policies(role) if role is not None else Policies()
            if caller.session_policy:
                policies.session = [caller.session_policy]
            return policies
        return Policies()

    def policies_for_arn(self, arn: str) -> Policies:
        """The identity-based policies of the user, group or role ``arn`` names (SimulatePrincipalPolicy)."""
        resource = arn.split(":", 5)[-1]
        kind, _, rest = resource.partition("/")
        name = rest.rsplit("/", 1)[-1]
        if kind == "user" and name in self.iam.users and self.iam.users[name].arn == arn:
            return self._user_policies(name)
        if kind == "role":
            role = self.role_by_arn(arn)
            if role is not None:
                return self._role_policies(role)
        if kind == "group":
            group = self.iam.groups.get(name)
            if group is not None and group.arn == arn:
                return Policies(identity=self._attached(group))
        raise NoSuchEntity(f"The user, group or role with ARN {arn} cannot be found.")

    def _attached(self, entity) -> list[str]:
        return list(entity.policies.values()) + [
            _default_document(p) for p in entity.managed_policies.values()
        ]

    def _user_policies(self, name: str) -> Policies:
        iam = self.iam
        user = iam.users[name]
        documents = self._attached(user)
        for group in iam.groups.values():
            if user in group.users:
                documents += self._attached(group)
        return Policies(identity=documents)

    def _role_policies(self, role) -> Policies:
        boundary = None
        if role.permissions_boundary_arn:
            managed = self.iam.managed_policies.get(role.permissions_boundary_arn)
            boundary = _default_document(managed) if managed is not None else '{"Statement": []}'
        return Policies(identity=self._attached(role), boundary=boundary)

    def role_by_arn(self, arn: str):
        for role in self.iam.roles.values():
            if role.arn == arn:
                return role
        return None

    def role_by_name(self, name: str):
        for role in self.iam.roles.values():
            if role.name == name:
                return role
        return None

    def role_arn(self, name: str) -> str:
        """The ARN of role ``name`` with its path (``role/service-role/x``), or the path-less form."""
        role = self.role_by_name(name)
        return role.arn if role is not None else f"arn:{self.partition}:iam::{self.account}:role/{name}"

    def service_linked_role_exists(self, service: str) -> bool:
        prefix = f"/aws-service-role/{service}/"
        return any(role.path == prefix for role in self.iam.roles.values())

    # ---- resource-based policies ------------------------------------------------------------------

    def resource_policy(self, action: str, resource: str) -> ResourcePolicy | None:
        """The resource-based policy that applies to ``action`` on ``resource``, if the resource has one."""
        if action.lower().startswith("sts:assumerole"):
            role = self.role_by_arn(resource)
            if role is None:
                return ResourcePolicy('{"Statement": []}', self.account, trust=True)  # nobody may assume it
            return ResourcePolicy(role.assume_role_policy_document or "{}", role.account_id, trust=True)
        parts = resource.split(":", 5)
        if len(parts) != 6:
            return None
        service, region, account, rest = parts[2], parts[3], parts[4] or self.account, parts[5]
        try:
            if service == "lambda" and rest.startswith("function:"):
                return self._function_policy(region, account, resource)
            if service == "s3":
                return self._bucket_policy(rest.split("/", 1)[0])
            if service == "elasticfilesystem" and rest.startswith("file-system/"):
                return self._file_system_policy(region, account, rest.split("/", 1)[1])
        except (KeyError, LookupError):
            return None
        return None

    def _function_policy(self, region: str, account: str, arn: str) -> ResourcePolicy | None:
        """The function's policy (AddPermission's statements), with those of the version or alias the ARN
        qualifies. Read from moto's storage directly: its look-ups raise exceptions that cost ~100 us each."""
        from moto.awslambda.models import lambda_backends

        storage = lambda_backends[account][region]._lambdas
        parts = arn.split(":")
        entry = storage._functions.get(parts[6])
        if entry is None:
            return None
        functions = [entry["latest"]]
        if len(parts) > 7 and parts[7] != "$LATEST":
            try:
                functions.append(storage.get_function_by_name_or_arn_with_qualifier(parts[6], parts[7]))
            except Exception:  # noqa: BLE001 - an unknown version or alias: the call will fail on its own
                pass
        statements, seen = [], set()
        for fn in functions:
            for statement in fn.policy.statements:
                key = json.dumps(statement, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    statements.append(statement)
        if not statements:
            return None
        return ResourcePolicy(json.dumps({"Version": "2012-10-17", "Statement": statements}), account)

    def _bucket_policy(self, bucket_name: str) -> ResourcePolicy | None:
        from moto.s3.models import s3_backends

        bucket = s3_backends[self.account][self.partition].buckets.get(bucket_name)
        if bucket is None or not bucket.policy:
            return None
        document = bucket.policy.decode() if isinstance(bucket.policy, bytes) else str(bucket.policy)
        return ResourcePolicy(document, bucket.account_id)

    def _file_system_policy(self, region: str, account: str, fs_id: str) -> ResourcePolicy | None:
        from moto.efs.models import efs_backends

        fs = efs_backends[account][region].file_systems_by_id.get(fs_id)
        if fs is None or not fs.file_system_policy:
            return None
        return ResourcePolicy(fs.file_system_policy, account)

    # ---- sessions for roles -----------------------------------------------------------------------

    def issue_session(
        self, role_arn: str, session_name: str, region: str, duration_s: int = DEFAULT_SESSION_S
    ) -> dict:
        """Temporary credentials of a session of ``role_arn``, created in moto's STS store."""
        session = self.sts.assume_role(
            region_name=region,
            role_session_name=session_name,
            role_arn=role_arn,
            policy=None,
            duration=duration_s,
            external_id=None,
        )
        with self._lock:
            self._sessions[session.access_key_id] = session
        return {
            "AccessKeyId": session.access_key_id,
            "SecretAccessKey": session.secret_access_key,
            "SessionToken": session.session_token,
            "Expiration": _epoch(session.expiration),
            "Arn": session.arn,
        }
