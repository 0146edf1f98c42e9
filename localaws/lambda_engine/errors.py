"""The Lambda service errors the engine raises, with the HTTP status and error type boto3 models."""

from __future__ import annotations


class LambdaServiceError(Exception):
    """An error answered as Lambda does: ``x-amzn-ErrorType`` names the modelled exception."""

    def __init__(self, status: int, error_type: str, message: str, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.reason = reason

    def body(self) -> dict:
        doc = {"Type": "User", "message": self.message}
        if self.reason:
            doc["Reason"] = self.reason
        return doc


def not_found(message: str) -> LambdaServiceError:
    return LambdaServiceError(404, "ResourceNotFoundException", message)


def invalid_parameter(message: str) -> LambdaServiceError:
    return LambdaServiceError(400, "InvalidParameterValueException", message)


def throttled(message: str, reason: str) -> LambdaServiceError:
    return LambdaServiceError(429, "TooManyRequestsException", message, reason)
