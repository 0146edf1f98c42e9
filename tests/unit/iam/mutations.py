"""Mutation evidence for the IAM room: each rule, removed or inverted, makes its tests fail.

Run: ``PYTHONPATH=$PWD .venv/bin/python -m tests.unit.iam.mutations [--check] [NAME ...]``. For each
mutation (one rule of :mod:`localaws.iam`, cited in its module), a copy of the ``localaws`` package is
changed in a temporary folder, which comes first on the path (the tests run from it, and pytest's
``--import-mode=append`` keeps the worktree's unchanged copy behind it; the script checks which copy is
imported), and the tests that pin the rule are run: the mutation must make them fail ("killed"). ``--check`` only verifies that every mutated text is still in the source
(run by ``test_mutations_still_apply`` so that a refactoring cannot silently disarm this list).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PACKAGE = REPO / "localaws"
UNIT = "tests/unit/iam"
LOCAL = "tests/local/iam"


@dataclass(frozen=True)
class Mutation:
    name: str
    module: str  # under localaws/iam/
    old: str
    new: str
    tests: tuple[str, ...]


def m(name: str, module: str, old: str, new: str, *tests: str) -> Mutation:
    return Mutation(name, module, old, new, tests)


EV, ST, CO, SIG = (
    f"{UNIT}/test_evaluator.py",
    f"{UNIT}/test_statements.py",
    f"{UNIT}/test_conditions.py",
    f"{UNIT}/test_sigv4.py",
)
ACT, ERR, CFN = f"{UNIT}/test_actions.py", f"{UNIT}/test_errors.py", f"{UNIT}/test_cfn_permissions.py"
IDN, STO, BODY = f"{UNIT}/test_identity.py", f"{UNIT}/test_store.py", f"{UNIT}/test_body.py"
E2E_SIG, E2E_S3, E2E_POL = (
    f"{LOCAL}/test_signatures.py",
    f"{LOCAL}/test_signatures_s3.py",
    f"{LOCAL}/test_policies.py",
)

# fmt: off
MUTATIONS = [
    # ---- evaluator.py: reference_policies_evaluation-logic*.html, access_policies_boundaries.html
    m('E1 the root user has full access', 'evaluator.py', 'if who.kind == "root" and not policies.trust:', 'if False:', EV, ST),
    m('E1 a resource-based deny applies to root', 'evaluator.py', '    if deny:  # E2; applies to the root user too (E1)\n        return Result(Decision.EXPLICIT_DENY, "resource-based policy")', '    if deny and who.kind != "root":\n        return Result(Decision.EXPLICIT_DENY, "resource-based policy")', EV, ST),
    m('E2 an identity-based deny wins', 'evaluator.py', '            if st.effect == "Deny":\n                return True, allows', '            if st.effect == "Deny":\n                continue', EV, ST),
    m('R1 a same-account resource policy allows alone', 'evaluator.py', 'if same_account and "direct" in resource_allows:  # R2', 'if False:', EV, ST),
    m('R2 naming the role ARN stays limited by the boundary', 'evaluator.py', 'if same_account and "role" in resource_allows and boundary_ok and session_ok:', 'if same_account and "role" in resource_allows:', EV, ST),
    m('R2 naming the account delegates', 'evaluator.py', 'best = best or "account"', 'return "direct"', EV, ST),
    m('R3 the trust policy must allow', 'evaluator.py', '        if not resource_allows:\n            return Result(Decision.IMPLICIT_DENY, "resource-based policy")', '        if not resource_allows and not identity_allows:\n            return Result(Decision.IMPLICIT_DENY, "resource-based policy")', EV, ST),
    m('R3 a trust naming the account needs an identity allow', 'evaluator.py', '        if identity_allows and boundary_ok and session_ok:\n            return Result(Decision.ALLOW)\n        return Result(Decision.IMPLICIT_DENY, _limiting(identity_allows, boundary_ok))\n    same_account', '        return Result(Decision.ALLOW)\n    same_account', EV, ST),
    m('B1 the boundary limits identity policies', 'evaluator.py', 'boundary_ok = bool(hits)  # B1', 'boundary_ok = True', EV, ST),
    m('S1 the session policy limits the session', 'evaluator.py', 'session_ok = bool(hits)  # S1', 'session_ok = True', EV, ST, E2E_POL),
    m('P1 services are allowed only by resource policies', 'evaluator.py', 'if who.kind in ("service", "anonymous"):  # P1', 'if who.kind == "anonymous":', EV, ST),
    m('P1 a Service principal must be the caller', 'evaluator.py', 'if who.kind == "service" and value == who.arn:', 'if who.kind == "service":', EV, ST),
    m('NotAction inverts the action match', 'evaluator.py', 'if hit == st.not_action:', 'if not hit:', EV, ST),
    m('NotResource inverts the resource match', 'evaluator.py', '== st.not_resource:', '== False:', EV, ST),
    m('NotPrincipal applies to everyone else', 'evaluator.py', '            if matched is not None:\n                return None\n            how = "direct"', '            how = "direct"', EV, ST),
    m('actions are case-insensitive', 'evaluator.py', 'pattern = str(pattern).lower()', 'pattern = str(pattern)', EV, ST),
    m('a request on * matches only * statements', 'evaluator.py', '        if resource == "*":\n            continue', '        if resource == "*":\n            return True', EV, ST),
    m('an identity statement needs Resource', 'evaluator.py', 'return None  # an identity-based statement without Resource grants nothing', 'pass  #', EV, ST),
    m('the denial sentence names the policy type', 'evaluator.py', 'return f"{head} because no {kind} allows the {request.action} action"', 'return f"{head}"', EV, ST, ERR),
    # ---- conditions.py: reference_policies_elements_condition_operators.html and the pages it cites
    m('C1 a missing key is false', 'conditions.py', 'return if_exists or negated', 'return True', CO),
    m('C1 IfExists', 'conditions.py', 'return if_exists or negated', 'return negated', CO),
    m('C1 Null tests presence', 'conditions.py', '(pv.lower() == "true") == (not values)', '(pv.lower() == "true") == bool(values)', CO),
    m('C2 negated operators are NOR', 'conditions.py', 'return not matched if negated else matched', 'return matched', CO),
    m('C2 keys under an operator are ANDed', 'conditions.py', '            if not evaluate_operator(operator, key, policy_values, context, variables):\n                return False', '            if evaluate_operator(operator, key, policy_values, context, variables):\n                return True', CO),
    m('C3 ForAllValues is true for a missing key', 'conditions.py', '        if not values:\n            return True', '        if not values:\n            return False', CO),
    m('C3 ForAnyValue is false for a missing key', 'conditions.py', 'if qualifier == "foranyvalue":  # C3\n        if not values:\n            return False', 'if qualifier == "foranyvalue":  # C3\n        if not values:\n            return True', CO),
    m('C4 condition keys are case-insensitive', 'conditions.py', 'values = context.get(key.lower())', 'values = context.get(key)', CO),
    m('C4 ARN parts match separately', 'conditions.py', 'return all(like(pp, aa) for pp, aa in zip(p, a, strict=True))', 'return like(pattern, arn)', EV, ST),
    m('C4 ? matches one character', 'conditions.py', 'out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))', 'out.append(".*" if c == "*" else re.escape(c))', EV, ST),
    m('C4 StringEqualsIgnoreCase', 'conditions.py', '"stringequalsignorecase": lambda p, r: _literal(p).lower() == r.lower(),', '"stringequalsignorecase": lambda p, r: _literal(p) == r,', CO),
    m('C5 IpAddress takes CIDR', 'conditions.py', 'return ipaddress.ip_address(request) in ipaddress.ip_network(policy, strict=False)', 'return ipaddress.ip_address(request) == ipaddress.ip_address(policy.split("/")[0])', CO),
    m('C5 Bool is case-insensitive', 'conditions.py', '"bool": lambda p, r: p.lower() == r.lower(),', '"bool": lambda p, r: p == r,', CO),
    m('C6 variables only in version 2012-10-17', 'evaluator.py', 'return tuple(out), doc.get("Version") == "2012-10-17"', 'return tuple(out), True', EV, ST),
    m("C6 a variable's default", 'conditions.py', '            return default[1:-1]', '            raise Unresolved(key)', EV, ST),
    m('C6 ${*} is a literal asterisk', 'conditions.py', '            return _ESCAPE + inner', '            return inner', EV, ST),
    # ---- sigv4.py, streaming.py, sigv2.py, body.py: the signing pages they cite
    m('S3 signs the path encoded once', 'sigv4.py', '    if service == "s3":\n        return path', '    if service == "s3x":\n        return path', SIG, E2E_SIG, E2E_S3),
    m('the path as sent, not PATH_INFO', 'sigv4.py', 'raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "/"))', 'raw = quote(environ.get("PATH_INFO", "/"))', E2E_SIG, E2E_S3),
    m('Trimall of header values', 'sigv4.py', 'lines.append(f"{name}:{\' \'.join(value.split())}")', 'lines.append(f"{name}:{value.strip()}")', E2E_SIG, E2E_S3),
    m('presigned URLs leave X-Amz-Signature out', 'sigv4.py', 'if presigned and key == b"X-Amz-Signature":', 'if False:', SIG),
    m('the query is sorted', 'sigv4.py', '    pairs.sort()\n', '', SIG),
    m('+ stays a literal plus', 'sigv4.py', 'pairs.append((unquote_to_bytes(key), unquote_to_bytes(value)))', 'pairs.append((unquote_to_bytes(key), unquote_to_bytes(value.replace("+", " "))))', SIG),
    m("the body's hash is signed", 'sigv4.py', 'return body_sha256 or EMPTY_SHA256', 'return EMPTY_SHA256', E2E_SIG, E2E_S3),
    m("S3's body must match x-amz-content-sha256", 'sigv4.py', 'if sends_hex_digest(signed) and not hmac.compare_digest(signed.content_sha256, digest_hex):', 'if False:', SIG, E2E_SIG, E2E_S3),
    m('15 minutes of clock skew', 'sigv4.py', 'elif abs(now - when) > MAX_SKEW_S:', 'elif False:', SIG, E2E_SIG, E2E_S3),
    m('presigned URLs expire', 'sigv4.py', 'if now > when + (signed.expires or 0):', 'if False:', SIG),
    m('Host must be signed', 'sigv4.py', 'if "host" not in signed.signed_headers:', 'if False:', SIG),
    m('the signature is compared', 'sigv4.py', '    if not hmac.compare_digest(expected, signed.signature):\n        raise SignatureError("mismatch"', '    if False:\n        raise SignatureError("mismatch"', SIG, E2E_SIG, E2E_S3),
    m('each aws-chunked chunk is verified', 'streaming.py', 'if not hmac.compare_digest(expected, signature.decode(errors="replace")):', 'if False:', SIG, E2E_SIG, E2E_S3),
    m('aws-chunked length must match', 'streaming.py', '        if total != self._decoded_length:\n', '        if False:\n', SIG),
    m('SigV2 URLs expire', 'sigv2.py', 'if (time.time() if now is None else now) > signed.expires:', 'if False:', SIG),
    m('SigV2 signs the bucket of the host', 'sigv2.py', 'resource = (f"/{bucket_from_host}" if bucket_from_host else "") + raw_path(environ)', 'resource = raw_path(environ)', SIG),
    m('a chunked body loses its Transfer-Encoding', 'body.py', '    environ.pop("HTTP_TRANSFER_ENCODING", None)  # werkzeug reads no body of a "chunked" request without it\n    if in_memory', '    if in_memory', BODY),
    # ---- identity.py, store.py: id_credentials_temp_use-resources.html
    m('a temporary key needs its token', 'identity.py', 'if not token or not hmac.compare_digest(token, record.session_token):', 'if token and not hmac.compare_digest(token, record.session_token):', IDN),
    m('a long-term key takes no token', 'identity.py', '        if record.session_token is None:\n            if token:', '        if record.session_token is None:\n            if False:', IDN),
    m('sessions expire', 'identity.py', 'if record.expires is not None and record.expires < (time.time() if now is None else now):', 'if False:', IDN),
    m('an inactive key is refused', 'identity.py', 'if record is None or not record.active:', 'if record is None:', IDN),
    m("a user's groups' policies apply", 'store.py', '            if user in group.users:\n                documents += self._attached(group)', '            pass', STO),
    m('a managed policy counts with its default version', 'store.py', 'return next((v.document for v in policy.versions if v.is_default), "")', 'return policy.versions[0].document', STO),
    m('sessions are indexed as they appear', 'store.py', '            for session in sessions[done:]:', '            for session in sessions[:1]:', STO),
    m("a role's boundary applies", 'store.py', '        return Policies(identity=self._attached(role), boundary=boundary)', '        return Policies(identity=self._attached(role))', STO),
    # ---- actions.py: lambda-api-permissions-ref.html, the S3 API pages, API_CreateMountTarget.html...
    m('Invoke is lambda:InvokeFunction', 'actions.py', '"Invoke": "InvokeFunction",', '"Invoke": "Invoke",', ACT),
    m('a qualified function ARN', 'actions.py', '    if qualifier and base.count(":") == 6:', '    if False:', ACT),
    m('HeadObject is s3:GetObject', 'actions.py', '    "HeadObject": "GetObject",\n    "HeadBucket"', '    "HeadBucket"', ACT),
    m('versionId selects the Version actions', 'actions.py', 'if ("versionId" in p or "VersionId" in p) and name in S3_VERSIONED:', 'if False:', ACT),
    m('DeleteObjects checks each key', 'actions.py', 'objects = p.get("_objects") or [("*", None)]', 'objects = [("*", None)]', ACT),
    m('CopyObject reads its source', 'actions.py', '        if name in ("CopyObject", "UploadPartCopy") and source:', '        if False:', ACT),
    m('GetCallerIdentity needs no permission', 'actions.py', 'UNCHECKED = {("sts", "GetCallerIdentity")}', 'UNCHECKED = set()', E2E_POL),
    m('mount targets need the network interface actions', 'actions.py', '("ec2:CreateNetworkInterface", "arn:aws:ec2:{region}:{account}:network-interface/*"),\n    ],', '    ],', ACT, E2E_POL),
    m('handing a role to a service needs iam:PassRole', 'actions.py', '    if passes and op.params.get(passes[0]):', '    if False:', ACT, E2E_POL),
    m('log-group actions on :log-stream:', 'actions.py', ':log-group:{group}:log-stream:{stream}"', ':log-group:{group}"', ACT),
    m('SageMaker ARNs are lower-cased', 'actions.py', '{kind}/{str(p[key]).lower()}', '{kind}/{p[key]}', ACT),
    m('the Reference decides on * for actions without resources', 'actions.py', '    if not types:\n        return "*"', '    if not types:\n        return f"arn:aws:{action}"', ACT),
    # ---- errors.py: each service's refusal
    m('EC2 answers UnauthorizedOperation', 'errors.py', '"denied": (403, "UnauthorizedOperation"),', '"denied": (403, "AccessDenied"),', ERR),
    m('JSON services answer 400', 'errors.py', '"denied": (400, "AccessDeniedException"),', '"denied": (403, "AccessDeniedException"),', ERR),
    m('EFS does not name the user', 'errors.py', '        if signing_name == "elasticfilesystem":\n', '        if False:\n', ERR, E2E_POL),
    m('S3 quotes the resource', 'authorizer.py', 'quoted=signing == "s3"', 'quoted=False', E2E_POL),
    # ---- authorizer.py
    m('root cannot assume roles', 'authorizer.py', 'if caller.is_root and op.service == "sts" and op.name.startswith("AssumeRole"):', 'if False:', E2E_POL),
    m('GetCallerIdentity tells the truth for root', 'authorizer.py', 'if caller.is_root and (op.service, op.name) == ("sts", "GetCallerIdentity"):', 'if False:', E2E_SIG, E2E_S3),
    m('unsigned requests are refused outside S3', 'authorizer.py', '        if signing != "s3":\n            return errors.refusal(signing, environ, "missing")', '        if signing != "s3":\n            return Allowed(None)', E2E_SIG, E2E_S3),
    m('anonymous S3 requests need a public policy', 'authorizer.py', '            if not evaluate(Request(who, check.action, check.resource, check.context), policies).allowed:', '            if False:', E2E_POL),
    m("the caller's checks are all enforced", 'authorizer.py', '            if not result.allowed:\n                sentence', '            if False:\n                sentence', E2E_POL),
    m('a large non-S3 body is still read for its parameters', 'authorizer.py', 'whole = None if signed.service != "s3" else body.IN_MEMORY', 'whole = body.IN_MEMORY', E2E_POL),
    m('LOCALAWS_IAM=off', 'authorizer.py', '"on").lower() != "off"', '"on").lower() != "none"', E2E_POL),
    # ---- cfn_permissions.py, cfn.py: the CloudFormation table and its refusals
    m('mount targets create network interfaces (CloudFormation)', 'cfn_permissions.py', '        ("ec2:CreateNetworkInterface", A, ENI, None, EFS_CREATE_MT),\n', '', CFN),
    m('the first file system creates the service-linked role', 'authorizer.py', '            properties["_service_linked_role_missing"] = missing', '            pass', CFN),
    m("a stack's service role acts instead of its caller", 'authorizer.py', '        if role_arn:\n            name = role_arn', '        if False:\n            name = role_arn', CFN),
    m('a function in a VPC needs a role managing interfaces', 'cfn.py', '                if not evaluate(Request(who, action, "*"), role_policies).allowed:', '                if False:', CFN),
    m('the execution role must trust Lambda', 'authorizer.py', '        if not self.role_assumable_by(role_arn, service):\n            return cfn.ROLE_NOT_ASSUMABLE', '        if False:\n            return cfn.ROLE_NOT_ASSUMABLE', CFN),
]
# fmt: on


def _source(mutation: Mutation, root: Path = PACKAGE) -> Path:
    return root / "iam" / mutation.module


def check() -> list[str]:
    """The mutations whose text is missing from, or not unique in, the source."""
    problems = []
    for mutation in MUTATIONS:
        count = _source(mutation).read_text().count(mutation.old)
        if count != 1:
            problems.append(f"{mutation.name}: {mutation.module} has the text {count} times")
    return problems


def run(mutation: Mutation) -> bool:
    """True if the mutation is killed (its tests fail)."""
    with tempfile.TemporaryDirectory(prefix="iam-mutant-") as folder:
        copy = Path(folder) / "localaws"
        shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
        path = _source(mutation, copy)
        path.write_text(path.read_text().replace(mutation.old, mutation.new, 1))
        env = {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{REPO}", "PYTHONDONTWRITEBYTECODE": "1"}
        # run from the temporary folder: ``python -m`` puts the working directory first on the path
        imported = subprocess.run(
            [sys.executable, "-c", "import localaws.iam; print(localaws.iam.__file__)"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
        )
        assert imported.stdout.startswith(folder), (
            f"the mutant is not the imported copy: {imported.stdout}{imported.stderr}"
        )
        tests = [str(REPO / t) for t in mutation.tests]
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            "--import-mode=append",
            f"--rootdir={REPO}",
            "-c",
            str(REPO / "pyproject.toml"),
            *tests,
        ]
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=1800)
        if result.returncode not in (0, 1):  # 2: collection errors, 4: usage, 5: no tests - not evidence
            raise RuntimeError(
                f"{mutation.name}: pytest exited {result.returncode}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        return result.returncode == 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that every mutation still applies")
    parser.add_argument("names", nargs="*", help="run only mutations whose name contains one of these")
    args = parser.parse_args()
    problems = check()
    if problems or args.check:
        print("\n".join(problems) or f"all {len(MUTATIONS)} mutations apply")
        sys.exit(1 if problems else 0)
    survivors = []
    for mutation in MUTATIONS:
        if args.names and not any(n in mutation.name for n in args.names):
            continue
        killed = run(mutation)
        print(
            f"{'killed  ' if killed else 'SURVIVED'} {mutation.name}  ({mutation.module}; {', '.join(Path(t).name for t in mutation.tests)})",
            flush=True,
        )
        if not killed:
            survivors.append(mutation.name)
    sys.exit(1 if survivors else 0)


if __name__ == "__main__":
    main()
