"""A consumer group's AWS resources: an EventBridge rule, its SQS queue and DLQ.

``create`` is idempotent (every step is: ``CreateQueue`` with the same attributes,
``SetQueueAttributes``, ``PutRule``, ``PutTargets``) so a crash half-way is mended
by the next call; ``delete`` is the documented teardown.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from ...errors import GroupNotFound
from ._client import ClientPool, aws_errors, error_code

__all__ = ["GroupResources", "resource_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def resource_name(prefix: str, name: str, suffix: str, *, limit: int) -> str:
    """Return an SQS / EventBridge-safe name for ``prefix-name-suffix``, within ``limit``.

    Queue names allow ``A-Z a-z 0-9 _ -`` and 80 characters, rule names 64; a name
    that had to change (a ``.``, or too long) gets a hash of the original, so two
    groups never share a resource.
    """
    wanted = f"{prefix}-{name}{suffix}"
    safe = _UNSAFE.sub("_", wanted)
    if safe == wanted and len(safe) <= limit:
        return safe
    digest = hashlib.sha256(wanted.encode()).hexdigest()[:12]
    keep = limit - len(suffix) - len(digest) - 1
    return f"{_UNSAFE.sub('_', f'{prefix}-{name}')[:keep]}-{digest}{suffix}"


@dataclass(slots=True)
class GroupResources:
    """Names and, once known, URLs and ARNs of one group's resources."""

    group: str
    queue_name: str
    dlq_name: str
    rule_name: str
    queue_url: str = ""
    dlq_url: str = ""

    @classmethod
    def named(cls, prefix: str, group: str) -> GroupResources:
        """Return the resources of ``group`` under ``prefix`` (nothing is called)."""
        return cls(
            group=group,
            queue_name=resource_name(prefix, group, "", limit=80),
            dlq_name=resource_name(prefix, group, "-dlq", limit=80),
            rule_name=resource_name(prefix, group, "", limit=64),
        )

    async def lookup(self, pool: ClientPool) -> bool:
        """Fill in the queue URLs; return ``False`` when the group's queue does not exist."""
        sqs = await pool.client("sqs")
        try:
            with aws_errors("GetQueueUrl", resource=f"queue {self.queue_name!r}"):
                self.queue_url = (await sqs.get_queue_url(QueueName=self.queue_name))["QueueUrl"]
                self.dlq_url = (await sqs.get_queue_url(QueueName=self.dlq_name))["QueueUrl"]
        except Exception as exc:
            if error_code(exc.__cause__ or exc) in {
                "AWS.SimpleQueueService.NonExistentQueue",
                "QueueDoesNotExist",
            }:
                return False
            raise
        return True

    async def complete(self, pool: ClientPool, *, bus: str) -> bool:
        """Tell whether the group's rule exists and targets its queue (after :meth:`lookup`).

        ``False`` for a group half created (a crash between its queues and its rule):
        :meth:`create` mends it.
        """
        events = await pool.client("events")
        with aws_errors("ListTargetsByRule", resource=f"rule {self.rule_name!r}"):
            try:
                answer = await events.list_targets_by_rule(Rule=self.rule_name, EventBusName=bus)
            except Exception as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return False
                raise
        return any(t.get("Id") == "queue" for t in answer.get("Targets", []))

    async def require(self, pool: ClientPool) -> None:
        """Fill in the URLs, or raise :class:`GroupNotFound`."""
        if not self.queue_url and not await self.lookup(pool):
            raise GroupNotFound(self.group)

    async def create(
        self, pool: ClientPool, *, bus: str, pattern: dict[str, Any], max_receives: int
    ) -> None:
        """Create (or mend) the DLQ, the queue, its policy, the rule and its target."""
        sqs = await pool.client("sqs")
        events = await pool.client("events")
        where = f"group {self.group!r}"
        with aws_errors("CreateQueue", resource=where):
            self.dlq_url = (
                await sqs.create_queue(
                    QueueName=self.dlq_name, Attributes={"MessageRetentionPeriod": "1209600"}
                )
            )["QueueUrl"]
            dlq_arn = await _arn(sqs, self.dlq_url)
            redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
            self.queue_url = (
                await sqs.create_queue(
                    QueueName=self.queue_name,
                    Attributes={
                        "RedrivePolicy": json.dumps(redrive),
                        "MessageRetentionPeriod": "1209600",
                    },
                )
            )["QueueUrl"]
            queue_arn = await _arn(sqs, self.queue_url)
        with aws_errors("PutRule", resource=where):
            rule_arn = (
                await events.put_rule(
                    Name=self.rule_name,
                    EventBusName=bus,
                    EventPattern=json.dumps(pattern),
                    State="ENABLED",
                    Description=f"eventpatterns consumer group {self.group}",
                )
            )["RuleArn"]
        with aws_errors("SetQueueAttributes", resource=where):
            await sqs.set_queue_attributes(
                QueueUrl=self.queue_url, Attributes={"Policy": _policy(queue_arn, rule_arn)}
            )
        with aws_errors("PutTargets", resource=where):
            await events.put_targets(
                Rule=self.rule_name,
                EventBusName=bus,
                Targets=[{"Id": "queue", "Arn": queue_arn}],
            )

    async def delete(self, pool: ClientPool, *, bus: str) -> None:
        """Tear the group down: target, rule, queue and DLQ (missing parts are skipped)."""
        sqs = await pool.client("sqs")
        events = await pool.client("events")
        where = f"group {self.group!r}"
        gone = {"ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue",
                "QueueDoesNotExist"}  # fmt: skip
        steps: list[tuple[str, Any]] = [
            ("RemoveTargets", lambda: events.remove_targets(
                Rule=self.rule_name, EventBusName=bus, Ids=["queue"])),
            ("DeleteRule", lambda: events.delete_rule(Name=self.rule_name, EventBusName=bus)),
        ]  # fmt: skip
        await self.lookup(pool)
        for url in (self.queue_url, self.dlq_url):
            if url:
                steps.append(("DeleteQueue", lambda url=url: sqs.delete_queue(QueueUrl=url)))
        for operation, call in steps:
            try:
                with aws_errors(operation, resource=where):
                    await call()
            except Exception as exc:
                if error_code(exc.__cause__ or exc) not in gone:
                    raise
        self.queue_url = self.dlq_url = ""


async def _arn(sqs: Any, url: str) -> str:
    attributes = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def _policy(queue_arn: str, rule_arn: str) -> str:
    """Let the rule (and only it) send to the queue (EventBridge User Guide, SQS targets)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "eventpatterns-rule",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
    )
