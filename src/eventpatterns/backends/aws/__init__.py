"""The AWS backends (extra ``aws``): S3 blobs, DynamoDB jobs; aiobotocore imported lazily.

Errors AWS returns are mapped into the error tree at the boundary:
:class:`AWSUnavailable` (a :class:`~eventpatterns.errors.BackendUnavailable`) for
throttling and endpoint failures after botocore's retries, :class:`AWSConfigurationError`
(a :class:`~eventpatterns.errors.ConfigurationError`) for missing resources or
permissions; both keep the AWS error ``code``.
"""

from ._bus import AWSBusBackend
from ._client import AWSConfigurationError, AWSUnavailable
from ._dynamo_devices import DynamoDeviceRegistry
from ._dynamo_jobs import DynamoJobStore
from ._dynamo_presence import DynamoPresence
from ._s3 import S3BlobStore

__all__ = [
    "AWSBusBackend",
    "AWSConfigurationError",
    "AWSUnavailable",
    "DynamoDeviceRegistry",
    "DynamoJobStore",
    "DynamoPresence",
    "S3BlobStore",
]
