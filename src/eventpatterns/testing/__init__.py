"""Test helpers for applications and backends: conformance suites, clocks, fakes.

One suite per role protocol of the bus contract (:class:`EventLogSuite`,
:class:`ConsumerGroupSuite`, :class:`DeadLetterSuite`) and :class:`BusBackendSuite`,
which runs all three plus the tests that need a whole backend; :class:`PresenceSuite`
for implementations of the real-time :class:`~eventpatterns.realtime.Presence` contract;
:class:`JobStoreSuite` and :class:`BlobStoreSuite` for job and blob stores;
:class:`DeviceRegistrySuite` for push device registries, :class:`DispatchStateSuite`
and :class:`PushDeadLetterSuite` for the push dispatcher's stores; :class:`WebPushReceiver`, a
local Web Push service.

Importing this package needs pytest (``pip install 'eventpatterns[dev]'`` or just
``pytest``); it is never imported by ``import eventpatterns``.
"""

from ._apns_fake import APNsNotification, FakeAPNs, make_apns_key
from ._blob_store_suite import BlobStoreSuite
from ._bus_suite import BusBackendSuite
from ._clock import ManualClock
from ._dead_letter_suite import DeadLetterSuite
from ._device_registry_suite import DeviceRegistrySuite
from ._dispatch_state_suite import DispatchStateSuite, PushDeadLetterSuite
from ._fcm_fake import FakeFCM, make_service_account
from ._group_suite import ConsumerGroupSuite
from ._helpers import TypeMatcher, eventually, make_events
from ._job_store_suite import JobStoreSuite
from ._log_suite import EventLogSuite
from ._presence_suite import PresenceSuite
from ._webpush_receiver import ReceivedWebPush, WebPushReceiver

__all__ = [
    "APNsNotification",
    "BlobStoreSuite",
    "BusBackendSuite",
    "ConsumerGroupSuite",
    "DeadLetterSuite",
    "DeviceRegistrySuite",
    "DispatchStateSuite",
    "EventLogSuite",
    "FakeAPNs",
    "FakeFCM",
    "JobStoreSuite",
    "ManualClock",
    "PresenceSuite",
    "PushDeadLetterSuite",
    "ReceivedWebPush",
    "WebPushReceiver",
    "TypeMatcher",
    "eventually",
    "make_apns_key",
    "make_events",
    "make_service_account",
]
