"""``examples/aws_app`` on EventBridge, SQS, DynamoDB and S3: moto_server, the real client.

The same app as on memory (``tests/test_examples.py`` runs that and holds the checks),
switched by ``EVENTPATTERNS_BACKEND`` to an ``aws://`` bus URL naming moto's endpoint.
"""

from __future__ import annotations

import pytest

from test_examples import check_aws_app, run_app  # tests/ is on sys.path (rootdir conftest)

from .conftest import REGION

pytestmark = pytest.mark.aws


def test_aws_app_on_moto(aws: str) -> None:
    # poll=1: the bus's long poll of its tap queue, so that closing takes a second, not five.
    url = f"aws://?region={REGION}&endpoint_url={aws}&prefix=example&poll=1"
    check_aws_app(run_app("aws_app", url, timeout=90))
