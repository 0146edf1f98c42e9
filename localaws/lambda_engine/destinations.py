"""Where an asynchronous invocation's records go: its destinations and its dead-letter queue.

Lambda sends an invocation record to an SQS queue, an SNS topic, a Lambda function (invoked
asynchronously) or an EventBridge bus, by the target's ARN, and a failed event's payload to the
function's dead-letter queue or topic
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html). Here they are sent
through the local server's own API, as any client would.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
from botocore.config import Config


class Destinations:
    """Sends records through the server at ``url`` (one boto3 client per service and Region)."""

    def __init__(self, url: str):
        self._url = url
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()

    def _client(self, service: str, region: str):
        with self._clients_lock:
            if (service, region) not in self._clients:
                self._clients[(service, region)] = boto3.client(
                    service,
                    endpoint_url=self._url,
                    region_name=region,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    config=Config(retries={"max_attempts": 2}),
                )
            return self._clients[(service, region)]

    def deliver(self, arn: str, kind: str, body: str, attributes: dict[str, tuple[str, str]]) -> None:
        """Send to an SQS queue, SNS topic, Lambda function or EventBridge bus, by the ARN's service."""
        _, _, service, region, account, resource = arn.split(":", 5)
        client = self._client(service, region)
        message_attributes = {k: {"DataType": t, "StringValue": v} for k, (t, v) in attributes.items()}
        if service == "sqs":
            queue_url = client.get_queue_url(QueueName=resource, QueueOwnerAWSAccountId=account)["QueueUrl"]
            client.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=message_attributes)
        elif service == "sns":
            client.publish(TopicArn=arn, Message=body, MessageAttributes=message_attributes)
        elif service == "lambda":
            client.invoke(FunctionName=arn, InvocationType="Event", Payload=body.encode())
        elif service == "events":
            # https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
            outcome = "Success" if kind == "OnSuccess" else "Failure"
            record = json.loads(body)
            client.put_events(
                Entries=[
                    {
                        "Source": "lambda",
                        "DetailType": f"Lambda Function Invocation Result - {outcome}",
                        "Detail": body,
                        "EventBusName": arn,
                        "Resources": [record["requestContext"]["functionArn"]],
                    }
                ]
            )
        else:
            raise ValueError(f"{arn} is not an SQS queue, SNS topic, Lambda function or EventBridge bus")
