"""The gallery's apps on EventBridge, SQS, DynamoDB and S3: moto_server, the real client.

Every app of the gallery, the same code as on memory, switched by
``EVENTPATTERNS_BACKEND`` to an ``aws://`` URL naming moto's endpoint: ``aws_app`` and
``report_job`` (bus, jobs in DynamoDB, blobs in S3), ``chat`` and ``push_offline``
(presence and devices in DynamoDB), ``choreography`` (dead letters in each group's DLQ,
redrive), ``batch_failures`` (partial batch failure on SQS), ``order_status`` and
``bff_profiles`` (the gateway over the AWS bus). ``tests/test_examples.py`` runs them on
memory and holds the checks of what they print.
"""

from __future__ import annotations

import pytest

from test_examples import APPS, CHECKS, run_app  # tests/ is on sys.path (the rootdir conftest)

from .conftest import REGION

pytestmark = pytest.mark.aws


@pytest.mark.parametrize("name", APPS)
def test_app_on_moto(name: str, aws: str) -> None:
    # poll=1: the bus's long poll of its tap queue, so that closing takes a second, not five.
    # One URL for every store: the bus (EventBridge, SQS), jobs (DynamoDB), blobs (S3).
    url = f"aws://?region={REGION}&endpoint_url={aws}&prefix=example&poll=1"
    url += "&bucket=example-invoices&create=true"
    CHECKS[name](run_app(name, url, timeout=90))
