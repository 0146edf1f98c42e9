"""SageMaker control plane: what the serverless data plane (``localaws.sagemaker``) needs from moto.

Gaps of stock moto 5.2.5 filled here, each with a test in ``tests/local/test_sagemaker_*.py``:

- CreateEndpointConfig checks ``ServerlessConfig`` as AWS does (:mod:`localaws.sagemaker.serverless_config`).
- CreateEndpoint answers with the endpoint ``Creating``; it becomes ``InService`` or ``Failed`` with a
  ``FailureReason`` once prepared (:mod:`localaws.sagemaker.endpoints`); moto made it ``InService`` at
  once. A second endpoint with the same name is a ``ValidationException`` ("Cannot create already
  existing endpoint"), as on AWS; moto replaced the first silently. One past the account's serverless
  concurrency quota is ``ResourceLimitExceeded`` (:mod:`localaws.sagemaker.quota`), and Service Quotas'
  ListServiceQuotas answers with that quota.
- DeleteEndpoint stops the endpoint's containers.
- DescribeModel, DescribeEndpointConfig and DescribeEndpoint leave out an optional structure the
  resource does not have (``VpcConfig``, ``DataCaptureConfig``, ...), as AWS does
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpointConfig.html): moto
  answered ``{}``, which the ``sagemaker`` SDK's ``Model.get`` / ``EndpointConfig.get`` refuse (a
  VpcConfig requires ``Subnets``, a DataCaptureConfig ``DestinationS3Uri``...).
- CloudFormation: ``ModelName``, ``EndpointConfigName`` and ``EndpointName`` name the resources (moto
  ignored them and made up names), and an ``AWS::SageMaker::Endpoint`` is complete only when it is
  ``InService`` (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sagemaker-endpoint.html);
  a ``Failed`` one fails the stack operation with its reason.

Without the embedded server's data plane (moto used alone), endpoints stay as moto makes them.
"""

from __future__ import annotations

import logging

from moto.core.responses import ActionResult
from moto.sagemaker import models
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.responses import SageMakerResponse

from localaws.sagemaker import endpoints, quota, serverless_config

log = logging.getLogger(__name__)

CFN_WAIT_S = 600.0
_NAME_PROPERTY = {
    models.Model: "ModelName",
    models.FakeEndpointConfig: "EndpointConfigName",
    models.FakeEndpoint: "EndpointName",
}


def _wrap_create_endpoint_config(original):
    def create_endpoint_config(self, endpoint_config_name, production_variants, *args, **kwargs):
        serverless_config.normalise(production_variants)
        return original(self, endpoint_config_name, production_variants, *args, **kwargs)

    return create_endpoint_config


def _wrap_create_endpoint(original):
    def create_endpoint(self, endpoint_name, endpoint_config_name, tags):
        if endpoint_name in self.endpoints:
            arn = models.FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f'Cannot create already existing endpoint "{arn}".')
        if endpoints.current() is not None:  # the embedded server's data plane, not moto used alone
            quota.check(self, endpoint_config_name)
        endpoint = original(self, endpoint_name, endpoint_config_name, tags)
        manager = endpoints.current()
        if manager is not None:
            manager.start(self, endpoint)
        return endpoint

    return create_endpoint


def _wrap_delete_endpoint(original):
    def delete_endpoint(self, endpoint_name):
        original(self, endpoint_name)
        manager = endpoints.current()
        if manager is not None:
            manager.delete(self.account_id, self.region_name, endpoint_name)

    return delete_endpoint


def _wrap_endpoint_from_cfn(original):
    def create_from_cloudformation_json(
        resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        endpoint = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        manager = endpoints.current()
        if manager is not None:
            manager.wait(account_id, region_name, endpoint.endpoint_name, CFN_WAIT_S)
            if endpoint.endpoint_status == "Failed":
                raise ValidationError(
                    message=f"Endpoint {endpoint.endpoint_name} failed: {endpoint.failure_reason}"
                )
        return endpoint

    return create_from_cloudformation_json


def _without_empty_structures(original):
    """A Describe* response handler whose answer has no ``{}`` members (moto's backend still sees them)."""

    def describe(self):
        answer = original(self).result
        return ActionResult({key: value for key, value in answer.items() if value != {}})

    return describe


def apply() -> None:
    from moto.servicequotas.responses import ServiceQuotasResponse

    ServiceQuotasResponse.list_service_quotas = quota.list_service_quotas
    backend = models.SageMakerModelBackend
    for name in ("describe_model", "describe_endpoint_config", "describe_endpoint"):
        setattr(SageMakerResponse, name, _without_empty_structures(getattr(SageMakerResponse, name)))
    backend.create_endpoint_config = _wrap_create_endpoint_config(backend.create_endpoint_config)
    backend.create_endpoint = _wrap_create_endpoint(backend.create_endpoint)
    backend.delete_endpoint = _wrap_delete_endpoint(backend.delete_endpoint)
    models.FakeEndpoint.create_from_cloudformation_json = staticmethod(  # the original is bound to the class
        _wrap_endpoint_from_cfn(models.FakeEndpoint.create_from_cloudformation_json)
    )
    for cls, prop in _NAME_PROPERTY.items():
        cls.cloudformation_name_type = staticmethod(lambda prop=prop: prop)
