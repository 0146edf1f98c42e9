"""The IAM room's public face: every request's caller verified and its operation decided, as AWS does.

One :class:`Authorizer` is created by the application and handed to whoever needs it:

- ``check(environ)`` -> :class:`Allowed` (the request goes on; ``environ["localaws.iam.caller"]`` holds
  the :class:`.identity.Caller`) or an :class:`.errors.Answer` to send instead: the service's own
  refusal (bad or unknown credentials, an expired session, a tampered body, a denial with IAM's
  sentence), or the answer to an operation the IAM room answers itself (``GetCallerIdentity`` of the
  root user, ``SimulatePrincipalPolicy``/``SimulateCustomPolicy``). It reads the body once (it must,
  to verify the signature: :mod:`.body`) and leaves a fresh stream of it in ``wsgi.input``;
- ``credentials_for_role(role_arn, session_name)`` -> the ``AWS_*`` variables of a session of an
  execution role, so that a function's own calls are evaluated as that role;
- ``cloudformation_may(caller, resource_type, operation, properties)`` -> None or a
  :class:`.cfn.Refusal` whose reason is CloudFormation's CREATE_FAILED text;
- ``execution_role_problem(...)``, ``service_allowed(...)``: Lambda's checks of a function's role, and
  resource-based policies naming a service principal (API Gateway invoking through AddPermission);
- ``describe()`` -> what the server's health document says about IAM.

``LOCALAWS_IAM=off`` turns enforcement off (``check`` allows everything without reading anything).
What is not enforced locally: SCPs and RCPs (no Organization), VPC endpoint policies, MFA, KMS key
policies; CloudFormation's own calls to moto never pass ``check`` (it decides per resource instead).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from localaws.iam import body, cfn, errors, sigv2, sigv4, simulate, streaming
from localaws.iam.actions import Check, checks
from localaws.iam.cfn_permissions import Target
from localaws.iam.context import request_context
from localaws.iam.evaluator import Decision, Policies, Principal, Request, Result, denial_message, evaluate
from localaws.iam.identity import Caller, Credentials
from localaws.iam.operations import Operation, bucket_from_host, route
from localaws.iam.store import MotoStore, NoSuchEntity

CALLER_KEY = "localaws.iam.caller"
NOT_ENFORCED = ["service control policies", "VPC endpoint policies", "MFA", "KMS key policies"]
_SCOPE = re.compile(r"Credential=[^/,\s]*/\d{8}/[^/]+/([^/]+)/aws4_request")
_UNSIGNED_LAMBDA = re.compile(
    r"^/20\d\d-\d\d-\d\d/(functions|layers|account-settings|event-source-mappings|tags)\b"
)
ROOT_ASSUME = "Roles may not be assumed by root accounts."


class RoleNotAssumable(PermissionError):
    """The role's trust policy does not let the service assume it (or the role does not exist)."""


@dataclass(slots=True)
class Allowed:
    """The request may go on. ``caller`` is None when enforcement is off or the caller is anonymous."""

    caller: Caller | None
    operation: Operation | None = None
    checks: list[Check] = field(default_factory=list)


class Authorizer:
    """Verifies, identifies and decides every request of one account (see the module)."""

    def __init__(
        self,
        store: MotoStore | None = None,
        *,
        root_keys: dict[str, str] | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.store = store or MotoStore()
        self.account = self.store.account
        self.credentials = Credentials(self.account, self.store, root_keys)
        self.enabled = os.environ.get("LOCALAWS_IAM", "on").lower() != "off" if enabled is None else enabled

    def describe(self) -> dict:
        """The health document's view of IAM."""
        return {
            "enforced": self.enabled,
            "root_access_keys": sorted(self.credentials.root_keys),
            "not_enforced": NOT_ENFORCED,
        }

    # ---- every request ----------------------------------------------------------------------------

    def check(self, environ: dict) -> Allowed | errors.Answer:
        """Verify the request's signature, find its caller, and decide its operation (see the module)."""
        if not self.enabled:
            return Allowed(None)
        signed = None
        try:
            signed = sigv4.parse(environ)
            if signed is None:
                v2 = sigv2.parse(environ)
                if v2 is None:
                    return self._anonymous(environ, _signing_name(environ))
                return self._v2(environ, v2)
            caller = self.credentials.lookup(signed.access_key, signed.security_token)
            data = self._verify(environ, signed, caller)
        except sigv4.SignatureError as exc:
            access_key = signed.access_key if signed is not None else None
            return self._refusal(environ, _signing_name(environ), exc, access_key)
        except body.TooLarge as exc:
            return errors.refusal(_signing_name(environ), environ, "unsupported", str(exc))
        environ[CALLER_KEY] = caller
        return self._decide(environ, caller, signed.service, signed.region, data)

    def _verify(self, environ: dict, signed: sigv4.Signed, caller: Caller) -> bytes | None:
        """Check the signature (and the body against it); return the body when it was read into memory."""
        try:
            if signed.content_sha256 == sigv4.STREAMING_SIGNED:
                seed = sigv4.verify(environ, signed, caller.secret, None)
                decoded = int(environ.get("HTTP_X_AMZ_DECODED_CONTENT_LENGTH") or -1)
                verifier = streaming.ChunkedVerifier(signed, caller.secret, seed, decoded)
                _, digest = body.replace(environ, verifier.decode(environ["wsgi.input"]))
                environ["HTTP_X_AMZ_CONTENT_SHA256"] = digest
                environ.pop("HTTP_X_AMZ_DECODED_CONTENT_LENGTH", None)
                encodings = [e.strip() for e in environ.get("HTTP_CONTENT_ENCODING", "").split(",")]
                kept = [e for e in encodings if e and e != "aws-chunked"]
                if kept:
                    environ["HTTP_CONTENT_ENCODING"] = ",".join(kept)
                else:
                    environ.pop("HTTP_CONTENT_ENCODING", None)
                return None
            if signed.content_sha256 == sigv4.STREAMING_SIGNED_TRAILER:
                raise sigv4.SignatureError(
                    "unsupported",
                    "aws-chunked uploads with signed trailers (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER)",
                )
            hex_sent = sigv4.sends_hex_digest(signed)
            needs_digest = not signed.presigned and (hex_sent or not signed.content_sha256)
            if needs_digest or (signed.service != "s3" and not signed.presigned):
                whole = None if signed.service != "s3" else body.IN_MEMORY  # parameters are in the body
                data = body.read(environ, digest=needs_digest, in_memory=whole)
            elif signed.service == "s3" and "delete" in environ.get("QUERY_STRING", ""):
                data = body.read(environ, digest=False)  # DeleteObjects: the keys are in the body
            else:
                data = None
            sigv4.verify(environ, signed, caller.secret, data.sha256 if data is not None else None)
            if hex_sent and data is not None:
                sigv4.check_payload(signed, data.sha256)
            return data.data if data is not None else None
        except sigv4.SignatureError as exc:
            exc.context.setdefault("SignatureProvided", signed.signature)
            raise

    def _v2(self, environ: dict, v2: sigv2.SignedV2) -> Allowed | errors.Answer:
        caller = self.credentials.lookup(v2.access_key, v2.security_token)
        sigv2.verify(environ, v2, caller.secret, bucket_from_host(environ))
        environ[CALLER_KEY] = caller
        return self._decide(environ, caller, "s3", "us-east-1", None)

    def _anonymous(self, environ: dict, signing: str) -> Allowed | errors.Answer:
        """An unsigned request: AWS refuses it outright, except S3, which evaluates it as anonymous."""
        if signing != "s3":
            return errors.refusal(signing, environ, "missing")
        op = route(environ, "s3", None)
        if op is None:
            return errors.refusal("s3", environ, "missing")
        who = Principal("*", self.account, "anonymous")
        for check in checks(op, "us-east-1", self.account):
            resource = self.store.resource_policy(check.action, check.resource)
            policies = Policies(resource=resource.document if resource else None)
            if not evaluate(Request(who, check.action, check.resource, check.context), policies).allowed:
                return errors.refusal("s3", environ, "missing")
        return Allowed(None, op)

    def _decide(
        self, environ: dict, caller: Caller, signing: str, region: str, data: bytes | None
    ) -> Allowed | errors.Answer:
        op = route(environ, signing, data)
        if op is None:
            if caller.is_root:
                return Allowed(caller)  # root may do anything moto answers (E1)
            detail = f"User: {caller.arn} is not authorized to perform this request: the local AWS does not know the {signing} operation {environ['REQUEST_METHOD']} {sigv4.raw_path(environ)}"
            return errors.refusal(signing, environ, "denied", detail)
        if caller.is_root and (op.service, op.name) == ("sts", "GetCallerIdentity"):
            return _caller_identity(caller)
        if caller.is_root and op.service == "sts" and op.name.startswith("AssumeRole"):
            return errors.refusal(signing, environ, "denied", ROOT_ASSUME)
        wanted = checks(op, region, self.account, self.store.role_arn)
        context = request_context(caller, region, environ.get("REMOTE_ADDR"))
        policies = self.store.policies_for(caller) if not caller.is_root else Policies()
        for check in wanted:
            request = Request(caller.principal, check.action, check.resource, {**context, **check.context})
            result = self._evaluate(request, policies)
            if not result.allowed:
                sentence = denial_message(request, result, quoted=signing == "s3")
                return errors.refusal(signing, environ, "denied", sentence)
        if op.service == "iam" and op.name in ("SimulatePrincipalPolicy", "SimulateCustomPolicy"):
            return simulate.answer(op.name, op.params, self.store, self.account)
        return Allowed(caller, op, wanted)

    def _evaluate(self, request: Request, policies: Policies) -> Result:
        resource = self.store.resource_policy(request.action, request.resource)
        if resource is not None:
            policies = Policies(
                policies.identity,
                policies.boundary,
                policies.session,
                resource.document,
                resource.account,
                resource.trust,
            )
        return evaluate(request, policies)

    def _refusal(
        self, environ: dict, signing: str, exc: sigv4.SignatureError, access_key: str | None
    ) -> errors.Answer:
        extra: dict = {}
        if signing == "s3":
            if exc.kind in ("mismatch", "unknown_key") and access_key:
                extra["AWSAccessKeyId"] = access_key
            if exc.kind == "mismatch":
                for key, name in (
                    ("string_to_sign", "StringToSign"),
                    ("SignatureProvided", "SignatureProvided"),
                    ("canonical_request", "CanonicalRequest"),
                ):
                    if key in exc.context:
                        extra[name] = exc.context[key]
            elif exc.kind == "expired":
                extra = {
                    "X-Amz-Expires": exc.context.get("expires", ""),
                    "ServerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            elif exc.kind == "payload":
                extra = {k: v for k, v in exc.context.items() if k.endswith("ContentSHA256")}
        detail = exc.detail if exc.kind in ("malformed", "skew", "expired", "unsupported") else ""
        return errors.refusal(signing, environ, exc.kind, detail, extra)

    # ---- for the other rooms ----------------------------------------------------------------------

    def credentials_for_role(
        self,
        role_arn: str,
        session_name: str,
        service: str = "lambda.amazonaws.com",
        region: str = "us-east-1",
    ) -> dict[str, str]:
        """``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` of a new session of
        ``role_arn`` (12 hours), as Lambda sets them for a function's execution role
        (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
        RoleNotAssumable when the role's trust policy does not let ``service`` assume it."""
        if not self.role_assumable_by(role_arn, service):
            raise RoleNotAssumable(f"{service} may not assume {role_arn}")
        creds = self.store.issue_session(role_arn, session_name[:64], region)
        return {
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"],
        }

    def role_assumable_by(self, role_arn: str, service: str) -> bool:
        """Whether the role exists and its trust policy lets ``service`` (``lambda.amazonaws.com``) assume it."""
        who = Principal(service, self.account, "service")
        return self._evaluate(Request(who, "sts:AssumeRole", role_arn), Policies()).allowed

    def service_allowed(
        self,
        service: str,
        action: str,
        resource: str,
        source_arn: str | None = None,
        source_account: str | None = None,
    ) -> bool:
        """Whether a resource-based policy lets a service principal act (API Gateway invoking a function:
        https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html)."""
        context = {}
        if source_arn:
            context["aws:sourcearn"] = [source_arn]
        if source_account or source_arn:
            context["aws:sourceaccount"] = [source_account or self.account]
        who = Principal(service, self.account, "service")
        return self._evaluate(Request(who, action, resource, context), Policies()).allowed

    def execution_role_problem(
        self, role_arn: str, properties: dict, service: str = "lambda.amazonaws.com"
    ) -> str | None:
        """Lambda's message when the function's execution role cannot be used as ``properties`` need
        (:mod:`.cfn`), else None."""
        if not self.role_assumable_by(role_arn, service):
            return cfn.ROLE_NOT_ASSUMABLE
        try:
            policies = self.store.policies_for_arn(role_arn)
        except NoSuchEntity:
            return cfn.ROLE_NOT_ASSUMABLE
        return cfn.execution_role_problem(role_arn, self.account, policies, properties, service)

    def cloudformation_may(
        self,
        caller: Caller,
        resource_type: str,
        operation: str,
        properties: dict,
        *,
        region: str = "us-east-1",
        physical_id: str | None = None,
        role_arn: str | None = None,
    ) -> cfn.Refusal | None:
        """Whether CloudFormation, acting as ``caller`` (or as the stack's service role ``role_arn``), may
        ``operation`` ("create" | "delete") a resource; None if so, else the first refused action."""
        if role_arn:
            name = role_arn.rsplit("/", 1)[-1]
            arn = f"arn:aws:sts::{self.account}:assumed-role/{name}/AWSCloudFormation"
            caller = Caller(arn, self.account, "assumed-role", name, "", "", role_arn=role_arn)
        properties = dict(properties)
        if resource_type == "AWS::EFS::FileSystem" and operation == "create":
            missing = not self.store.service_linked_role_exists("elasticfilesystem.amazonaws.com")
            properties["_service_linked_role_missing"] = missing
        target = Target(region, self.account, properties, physical_id)
        policies = self.store.policies_for(caller) if not caller.is_root else Policies()
        return cfn.may(caller, policies, resource_type, operation, target, self._evaluate)


def _signing_name(environ: dict) -> str:
    """The signing name of a request's credential scope; for an unsigned one, the service it addresses."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1)
    query = environ.get("QUERY_STRING", "")
    if "X-Amz-Credential=" in query:
        for key, value in sigv4.query_pairs(query):
            if key == b"X-Amz-Credential":
                parts = value.decode(errors="replace").split("/")
                return parts[3] if len(parts) == 5 else "s3"
    if environ.get("HTTP_X_AMZ_TARGET"):
        return environ["HTTP_X_AMZ_TARGET"].split("_", 1)[0].split(".", 1)[0].lower()
    if _UNSIGNED_LAMBDA.match(environ.get("PATH_INFO", "")):
        return "lambda"
    if (
        environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
        and environ.get("REQUEST_METHOD") == "POST"
    ):
        return "sts"
    return "s3"


def _caller_identity(caller: Caller) -> errors.Answer:
    """GetCallerIdentity for the root user, as AWS answers it (Arn ``arn:aws:iam::<account>:root``, UserId
    the account id); moto would answer ``arn:aws:sts::<account>:user/moto`` for a key it does not know."""
    request_id = str(uuid.uuid4())
    xml = (
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
        f"<Arn>{escape(caller.arn)}</Arn><UserId>{escape(caller.user_id)}</UserId><Account>{caller.account}</Account>"
        f"</GetCallerIdentityResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    ).encode()
    return errors.Answer(
        "200 OK",
        [("Content-Type", "text/xml"), ("Content-Length", str(len(xml))), ("x-amzn-RequestId", request_id)],
        xml,
    )


def middleware(app, authorizer: Authorizer):
    """``app`` behind ``authorizer``: what a refused request gets instead of ``app``'s answer (for tests,
    and the shape of the hook in the application)."""

    def gate(environ: dict, start_response):
        outcome = authorizer.check(environ)
        if isinstance(outcome, errors.Answer):
            return outcome.send(start_response)
        return app(environ, start_response)

    return gate


__all__ = ["Allowed", "Authorizer", "Decision", "RoleNotAssumable", "middleware", "CALLER_KEY"]
