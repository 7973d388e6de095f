"""The one ``Retry-After`` parser shared by the push providers and the webhook sender."""

from __future__ import annotations

import email.utils

from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.bff._webhooks import _retry_after
from eventpatterns.core._http_dates import retry_after
from eventpatterns.push._fcm_errors import retry_at
from eventpatterns.push._webpush import retry_after as webpush_retry_after

NOW = 1_800_000_000.0
AT = 1_800_000_090.0  # NOW + 90 s
FORMS = [
    "Fri, 15 Jan 2027 08:01:30 GMT",  # IMF-fixdate
    "Friday, 15-Jan-27 08:01:30 GMT",  # rfc850
    "Fri Jan 15 08:01:30 2027",  # asctime: no zone, and GMT all the same
]


def test_every_http_date_form_and_delay_seconds() -> None:
    assert email.utils.formatdate(AT, usegmt=True) == FORMS[0]
    for value in FORMS:
        assert retry_after(value, NOW) == AT, value
    assert retry_after(" 90 ", NOW) == AT
    assert retry_after(None, NOW) is None


def test_unreadable_values_are_none_and_the_past_is_now() -> None:
    for value in ["", "soon", "-5", "1.5", "9" * 13, "٣", "¹", "Fri, 99 Jan 2027", "x" * 5000]:
        assert retry_after(value, NOW) is None, value
    assert retry_after(email.utils.formatdate(NOW - 3600, usegmt=True), NOW) == NOW


def test_the_three_callers_read_the_header_alike() -> None:
    for value in [*FORMS, "90", "junk", None]:
        at = retry_after(value, NOW)
        assert retry_at(value, NOW) == at
        assert webpush_retry_after(value, now=NOW) == at
        assert _retry_after(value, NOW) == (None if at is None else at - NOW)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80) | st.integers(min_value=0, max_value=10**15).map(str))
def test_fuzzed_values_never_raise_and_never_go_back(value: str) -> None:
    at = retry_after(value, NOW)
    assert at is None or at >= NOW
