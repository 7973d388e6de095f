"""aiobotocore clients, opened lazily and shared, and AWS errors mapped into the error tree.

Nothing here imports aiobotocore until a client is first needed, so ``import
eventpatterns`` stays light and a missing extra is a
:class:`~eventpatterns.errors.MissingDependency` naming ``pip install 'eventpatterns[aws]'``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import anyio

from ...errors import BackendUnavailable, ConfigurationError, MissingDependency

__all__ = ["AWSConfigurationError", "AWSUnavailable", "ClientPool", "aws_errors"]

#: Error codes that mean "slow down or try later": the call may succeed if retried.
_TRANSIENT = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
    "ProvisionedThroughputExceededException", "RequestThrottled", "SlowDown",
    "ServiceUnavailable", "InternalError", "InternalFailure", "InternalServerError",
    "RequestTimeout", "RequestTimeoutException", "TransactionInProgressException",
}  # fmt: skip


class AWSConfigurationError(ConfigurationError):
    """AWS refused the call for a reason retrying will not fix.

    A missing resource, missing permissions, a bad parameter.

    Attributes:
        code: The AWS error code (``"NoSuchBucket"``, ``"AccessDenied"``...).
        operation: The API operation (``"PutObject"``...).
    """

    def __init__(self, message: str, *, code: str, operation: str) -> None:
        self.code = code
        self.operation = operation
        super().__init__(message)


class AWSUnavailable(BackendUnavailable):
    """AWS could not be reached, or throttled the call past botocore's own retries.

    Attributes:
        code: The AWS error code, or the botocore exception's name.
        operation: The API operation.
    """

    def __init__(self, message: str, *, code: str, operation: str) -> None:
        self.code = code
        self.operation = operation
        super().__init__(message)


def error_code(exc: BaseException) -> str | None:
    """Return the AWS error code of a botocore ``ClientError`` (else ``None``)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


@contextlib.contextmanager
def aws_errors(operation: str, *, resource: str) -> Iterator[None]:
    """Map botocore's errors raised inside into the error tree, naming ``resource``.

    Client errors a caller handles itself (``NoSuchKey``...) should be caught inside
    the block; what comes out is :class:`AWSUnavailable` (throttling, 5xx, endpoint
    and connection failures) or :class:`AWSConfigurationError` (everything else).
    """
    import botocore.exceptions as bce

    try:
        yield
    except bce.ClientError as exc:
        code = error_code(exc) or "Unknown"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        text = f"AWS {operation} on {resource}: {code}: {message[:300]}"
        if code in _TRANSIENT or (isinstance(status, int) and status >= 500):
            raise AWSUnavailable(text, code=code, operation=operation) from exc
        raise AWSConfigurationError(text, code=code, operation=operation) from exc
    except (bce.EndpointConnectionError, bce.ConnectionError, bce.HTTPClientError) as exc:
        raise AWSUnavailable(
            f"AWS {operation} on {resource}: cannot reach the endpoint: {str(exc)[:300]}",
            code=type(exc).__name__,
            operation=operation,
        ) from exc
    except bce.NoCredentialsError as exc:
        raise AWSConfigurationError(
            f"AWS {operation} on {resource}: no credentials (set AWS_ACCESS_KEY_ID or a profile)",
            code="NoCredentials",
            operation=operation,
        ) from exc


class ClientPool:
    """One aiobotocore client per service, created on first use and closed by ``aclose``.

    Args:
        region: The AWS region (``None``: botocore's default chain).
        endpoint_url: Another endpoint (moto, LocalStack).
        config: Extra ``botocore.config.Config`` keyword arguments.
    """

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self._config = {"retries": {"max_attempts": 3, "mode": "standard"}, **(config or {})}
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._lock = anyio.Lock()
        self._closed = False

    async def client(self, service: str) -> Any:
        """Return the shared client of ``service`` (``"s3"``, ``"dynamodb"``...)."""
        found = self._clients.get(service)
        if found is not None:
            return found
        async with self._lock:
            if self._closed:
                raise BackendUnavailable(f"the {service} client is closed")
            found = self._clients.get(service)
            if found is None:
                try:
                    from aiobotocore.config import AioConfig
                    from aiobotocore.session import get_session
                except ImportError as exc:
                    raise MissingDependency("aiobotocore", extra="aws") from exc
                session = get_session()
                factory = session.create_client(
                    service,
                    region_name=self.region,
                    endpoint_url=self.endpoint_url,
                    config=AioConfig(**self._config),
                )
                found = await self._stack.enter_async_context(factory)
                self._clients[service] = found
            return found

    async def aclose(self) -> None:
        """Close every client (idempotent)."""
        self._closed = True
        self._clients.clear()
        await self._stack.aclose()
