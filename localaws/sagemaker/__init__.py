"""The SageMaker Serverless Inference data plane of the local backend.

moto keeps SageMaker's control plane (CreateModel, CreateEndpointConfig, CreateEndpoint...), with the
gaps filled in ``localaws.patches.sagemaker``; this package serves serverless endpoints for real, one
module per behaviour:

- :mod:`.serverless_config`: ``ServerlessConfig`` checked as CreateEndpointConfig checks it;
- :mod:`.quota`: the account's serverless concurrency quota, checked at CreateEndpoint;
- :mod:`.endpoints`: ``Creating`` -> ``InService`` / ``Failed`` with a reason;
- :mod:`.archive`: the model archive from S3, extracted for ``/opt/ml/model``;
- :mod:`.container`: one container in the Lambda sandbox (serverless runs on Lambda), sized from
  ``MemorySizeInMB``; :mod:`.serving` is the emulated PyTorch inference image inside it;
- :mod:`.framework`: the image's torch, precompiled as an image is;
- :mod:`.pool`: cold starts, scale-out to ``MaxConcurrency``, scale to zero, Provisioned Concurrency;
- :mod:`.layer`: InvokeEndpoint and its errors; :mod:`.telemetry`: metrics and logs as AWS publishes them.

Settings (read when the server starts): ``LOCALAWS_SAGEMAKER_CREATE_SECONDS`` (1),
``LOCALAWS_SAGEMAKER_IDLE_SECONDS`` (300), ``LOCALAWS_SAGEMAKER_SETUP_SECONDS`` (180),
``LOCALAWS_SAGEMAKER_INVOCATION_SECONDS`` (60), ``LOCALAWS_SAGEMAKER_FRAMEWORK`` (torch's folder),
``LOCALAWS_SAGEMAKER_SERVERLESS_CONCURRENCY`` (10, the account's quota);
``LOCALAWS_SAGEMAKER_DATA_PLANE=off`` gives stock moto's endpoints (to see a test fail without this package).

Not emulated (said here rather than pretended): instance-based variants (moto's canned answers);
UpdateEndpoint; images other than the PyTorch inference container; ``code/requirements.txt`` (the
toolkit pip-installs it at start; here the container has no network, so the model's imports must be
in the framework bundle); the 4 MB limit on responses;
``ModelNotReadyException``; network isolation between containers (as for Lambda, they share loopback).
"""
