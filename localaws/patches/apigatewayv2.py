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
"""

from __future__ import annotations

import json
import logging
from typing import Any

from moto.apigatewayv2 import models, responses
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


def apply() -> None:
    models.Api.__init__ = _wrap_api_init(models.Api.__init__)
    models.Api.api_endpoint = property(_api_endpoint, _keep_derived_endpoint)
    responses.ApiGatewayV2Response.create_api = _wrap_create_api_response(
        responses.ApiGatewayV2Response.create_api
    )
