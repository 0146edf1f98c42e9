"""API Gateway HTTP APIs: quick create (API + CloudFormation) with an endpoint the local server answers.

Gaps of stock moto 5.2.5 filled here:

- ``AWS::ApiGatewayV2::Api`` is not supported: it is skipped and the stack still says CREATE_COMPLETE,
  so ``Fn::GetAtt Api.ApiEndpoint`` has nothing to return. Here the API is created (``Ref`` = ApiId,
  GetAtt ``ApiEndpoint`` and ``ApiId``), tagged, and deleted with the stack.
- ``CreateApi`` ignores the quick-create parameters ``Target`` and ``RouteKey``: AWS then creates a
  Lambda proxy integration (payload format 2.0), a route (``$default`` unless RouteKey says
  otherwise) and an auto-deployed ``$default`` stage. Here both the API call and the template do so.
- ``ApiEndpoint`` is ``https://<id>.execute-api.<region>.amazonaws.com``, which nothing local answers.
  Once the local server runs the HTTP API layer (``localaws.http_api``), it calls
  :func:`serve_endpoints_at` and every API's endpoint is ``<server url>/_api/<api-id>`` instead.
- ``AWS::ApiGatewayV2::ApiGatewayManagedOverrides`` is not supported, so a throttle set on the
  quick-created stage is lost. Here its ``Stage`` overrides (DefaultRouteSettings, RouteSettings,
  Description, StageVariables) are applied to the ``$default`` stage and restored when the resource is
  deleted (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-apigatewayv2-apigatewaymanagedoverrides.html),
  and :func:`admit` enforces the stage's throttle as API Gateway does: a token bucket of
  ``ThrottlingBurstLimit`` tokens refilled at ``ThrottlingRateLimit`` per second, 429 when empty
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html).
  Integration and Route overrides are refused with a clear error rather than silently ignored.
- ``UpdateStage`` is not implemented (an HTML 500): here it updates the fields it names, route
  settings key by key, and a new throttle takes effect at once
  (https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-stages-stagename.html).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from moto.apigatewayv2 import models, responses
from moto.apigatewayv2.exceptions import BadRequestException
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.common_models import CloudFormationModel

log = logging.getLogger(__name__)

ENDPOINT_PATH = "/_api"
_endpoint_base: str | None = None  # set by the server's HTTP API layer


def serve_endpoints_at(server_url: str | None) -> None:
    """Make every HTTP API's endpoint ``<server_url>/_api/<api-id>`` (None: back to AWS's form)."""
    global _endpoint_base
    _endpoint_base = server_url.rstrip("/") + ENDPOINT_PATH if server_url else None


def _api_endpoint(self) -> str:
    if _endpoint_base:
        return f"{_endpoint_base}/{self.api_id}"
    return f"https://{self.api_id}.execute-api.{self.region}.amazonaws.com"


def _keep_derived_endpoint(self, value: str) -> None:
    """moto's constructor assigns AWS's form; the endpoint is derived from the id instead."""


def _wrap_api_init(original):
    def __init__(self, region: str, *args, **kwargs):
        self.region = region
        original(self, region, *args, **kwargs)

    return __init__


def quick_create(api: models.Api, target: str, route_key: str | None = None) -> None:
    """What CreateApi does with ``Target``: proxy integration, route and auto-deployed ``$default`` stage."""
    integration = api.create_integration(
        connection_type="INTERNET",
        description="",
        integration_method="POST",
        integration_type="AWS_PROXY",
        integration_uri=target,
        payload_format_version="2.0",
        timeout_in_millis="30000",
    )
    api.create_route(
        api_key_required=False,
        authorization_scopes=[],
        authorization_type="NONE",
        route_key=route_key or "$default",
        target=f"integrations/{integration.id}",
    )
    api.create_stage({"stageName": "$default", "autoDeploy": True})


def _wrap_create_api_response(original):
    def create_api(self):
        status, headers, body = original(self)
        params = json.loads(self.body)
        if params.get("target"):
            api = self.apigatewayv2_backend.get_api(json.loads(body)["apiId"])
            quick_create(api, params["target"], params.get("routeKey"))
        return status, headers, body

    return create_api


class HttpApiResource(CloudFormationModel):
    """``AWS::ApiGatewayV2::Api`` (quick create or a bare API): Ref is the ApiId."""

    def __init__(self, api: models.Api, account_id: str, region: str):
        self.api = api
        self.account_id = account_id
        self.region = region

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApiGatewayV2::Api"

    @property
    def physical_resource_id(self) -> str:
        return self.api.api_id

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("ApiEndpoint", "ApiId")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "ApiEndpoint":
            return self.api.api_endpoint
        if attribute_name == "ApiId":
            return self.api.api_id
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> HttpApiResource:
        properties = cloudformation_json["Properties"]
        if "Body" in properties or "BodyS3Location" in properties:
            raise ValueError(
                "The local AWS supports HTTP APIs by quick create (Target) only, not OpenAPI Body imports."
            )
        backend = models.apigatewayv2_backends[account_id][region_name]
        api = backend.create_api(
            api_key_selection_expression=properties.get("ApiKeySelectionExpression"),
            cors_configuration=properties.get("CorsConfiguration"),
            description=properties.get("Description", ""),
            disable_schema_validation=properties.get("DisableSchemaValidation"),
            disable_execute_api_endpoint=properties.get("DisableExecuteApiEndpoint"),
            name=properties.get("Name", resource_name),
            protocol_type=properties.get("ProtocolType", "HTTP"),
            route_selection_expression=properties.get("RouteSelectionExpression"),
            tags=properties.get("Tags") or {},
            version=properties.get("Version"),
        )
        if properties.get("Target"):
            quick_create(api, properties["Target"], properties.get("RouteKey"))
        return cls(api, account_id, region_name)

    def delete(self, account_id: str, region: str) -> None:
        models.apigatewayv2_backends[account_id][region].delete_api(self.api.api_id)


_DEFAULT_STAGE = "$default"
_buckets: dict[str, tuple[float, float]] = {}  # api id -> (tokens, last refill, monotonic)
_buckets_lock = threading.Lock()


def admit(api: models.Api, now: float | None = None) -> bool:
    """Take a token from the ``$default`` stage's throttle; False means answer 429 Too Many Requests."""
    stage = api.stages.get(_DEFAULT_STAGE)
    settings = getattr(stage, "default_route_settings", None) or {}
    rate, burst = settings.get("throttlingRateLimit"), settings.get("throttlingBurstLimit")
    if rate is None and burst is None:
        return True  # only the account-level limits apply, far above what a workshop sends
    rate = float(rate if rate is not None else 10000)
    burst = float(burst if burst is not None else 5000)
    now = time.monotonic() if now is None else now
    with _buckets_lock:
        tokens, last = _buckets.get(api.api_id, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        admitted = tokens >= 1
        _buckets[api.api_id] = (tokens - 1 if admitted else tokens, now)
    return admitted


_ROUTE_SETTINGS = {"ThrottlingRateLimit": float, "ThrottlingBurstLimit": int, "DetailedMetricsEnabled": bool}


def _route_settings(settings: dict) -> dict:
    """CloudFormation's RouteSettings (``ThrottlingRateLimit: "5"``) as the API's JSON (``throttlingRateLimit: 5.0``)."""
    converted = {}
    for key, value in (settings or {}).items():
        kind = _ROUTE_SETTINGS.get(key, lambda v: v)
        if kind is bool and isinstance(value, str):
            value = value.lower() == "true"
        converted[key[0].lower() + key[1:]] = kind(value)
    return converted


class ManagedOverridesResource(CloudFormationModel):
    """``AWS::ApiGatewayV2::ApiGatewayManagedOverrides``: settings of a quick-created API's stage."""

    def __init__(self, api: models.Api, stage_overrides: dict):
        self.api = api
        stage = api.stages[_DEFAULT_STAGE]
        self.saved = (dict(stage.default_route_settings), dict(stage.route_settings), stage.description)
        self.apply_overrides(stage_overrides)

    def apply_overrides(self, overrides: dict) -> None:
        stage = self.api.stages[_DEFAULT_STAGE]
        defaults, routes, description = self.saved
        stage.default_route_settings = {**defaults, **_route_settings(overrides.get("DefaultRouteSettings"))}
        stage.route_settings = {
            **routes,
            **{key: _route_settings(value) for key, value in (overrides.get("RouteSettings") or {}).items()},
        }
        stage.description = overrides.get("Description", description)
        if "StageVariables" in overrides:
            stage.stage_variables = dict(overrides["StageVariables"])
        with _buckets_lock:
            _buckets.pop(self.api.api_id, None)  # a new throttle starts with a full bucket

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApiGatewayV2::ApiGatewayManagedOverrides"

    @property
    def physical_resource_id(self) -> str:
        return f"{self.api.api_id}-managed-overrides"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @staticmethod
    def _stage_overrides(cloudformation_json: dict, account_id: str, region_name: str) -> tuple:
        properties = cloudformation_json["Properties"]
        unsupported = [key for key in ("Integration", "Route") if properties.get(key)]
        if unsupported:
            raise ValueError(
                f"The local AWS applies ApiGatewayManagedOverrides' Stage only, not {' or '.join(unsupported)}: "
                "define the route or integration as its own resource instead."
            )
        api = models.apigatewayv2_backends[account_id][region_name].get_api(properties["ApiId"])
        if _DEFAULT_STAGE not in api.stages:
            raise ValueError(
                f"API {api.api_id} has no $default stage: overrides need a quick-created API (Target)."
            )
        return api, properties.get("Stage") or {}

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> ManagedOverridesResource:
        return cls(*cls._stage_overrides(cloudformation_json, account_id, region_name))

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: ManagedOverridesResource,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> ManagedOverridesResource:
        api, overrides = cls._stage_overrides(cloudformation_json, account_id, region_name)
        if api is not original_resource.api:  # ApiId changes replace the resource
            original_resource.delete(account_id, region_name)
            return cls(api, overrides)
        original_resource.apply_overrides(overrides)
        return original_resource

    def delete(self, account_id: str, region: str) -> None:
        """Removing the overrides restores the stage's defaults, as on AWS."""
        stage = self.api.stages.get(_DEFAULT_STAGE)
        if stage is not None:
            stage.default_route_settings, stage.route_settings, stage.description = (
                dict(self.saved[0]),
                dict(self.saved[1]),
                self.saved[2],
            )
        with _buckets_lock:
            _buckets.pop(self.api.api_id, None)


_STAGE_FIELDS = {
    "accessLogSettings": ("access_log_settings", dict),
    "autoDeploy": ("auto_deploy", bool),
    "clientCertificateId": ("client_certificate_id", str),
    "deploymentId": ("deployment_id", str),
    "description": ("description", str),
    "stageVariables": ("stage_variables", dict),
}


def update_stage(stage: models.Stage, changes: dict[str, Any]) -> None:
    """Apply an UpdateStage request's fields to ``stage``; BadRequestException for a mistyped one."""
    if not isinstance(changes, dict):
        raise BadRequestException("Invalid request body: a JSON object is expected.")
    for key, value in changes.items():
        if key in _STAGE_FIELDS:
            attribute, kind = _STAGE_FIELDS[key]
            if not isinstance(value, kind):
                raise BadRequestException(f"Invalid input for {key}: expected {kind.__name__}.")
            setattr(stage, attribute, value)
        elif key == "defaultRouteSettings":
            stage.default_route_settings = {**stage.default_route_settings, **_checked_settings(key, value)}
        elif key == "routeSettings":
            if not isinstance(value, dict):
                raise BadRequestException("Invalid input for routeSettings: expected an object.")
            for route_key, settings in value.items():
                merged = {**stage.route_settings.get(route_key, {}), **_checked_settings(route_key, settings)}
                stage.route_settings[route_key] = merged
    stage.updated = datetime.now()


def _checked_settings(where: str, settings: Any) -> dict:
    if not isinstance(settings, dict):
        raise BadRequestException(f"Invalid input for {where}: expected an object.")
    for key, value in settings.items():
        if key in ("throttlingBurstLimit",) and (isinstance(value, bool) or not isinstance(value, int)):
            raise BadRequestException(f"Invalid input for {key}: expected an integer.")
        if key in ("throttlingRateLimit",) and (
            isinstance(value, bool) or not isinstance(value, (int, float))
        ):
            raise BadRequestException(f"Invalid input for {key}: expected a number.")
    return settings


def _update_stage_response(self):
    api_id = self.path.split("/")[-3]
    stage = self.apigatewayv2_backend.get_stage(api_id, unquote(self.path.split("/")[-1]))
    update_stage(stage, json.loads(self.body or "{}"))
    with _buckets_lock:
        _buckets.pop(api_id, None)  # a new throttle starts with a full bucket
    return 200, {}, json.dumps(stage.to_json())


def apply() -> None:
    responses.ApiGatewayV2Response.update_stage = _update_stage_response
    models.Api.__init__ = _wrap_api_init(models.Api.__init__)
    models.Api.api_endpoint = property(_api_endpoint, _keep_derived_endpoint)
    responses.ApiGatewayV2Response.create_api = _wrap_create_api_response(
        responses.ApiGatewayV2Response.create_api
    )
