"""``Retry-After`` (RFC 9110 section 10.2.3): one parser for every HTTP client here.

The push providers (FCM, APNs, Web Push) and the webhook sender all honour it; they
share this one reading so that a header means the same thing everywhere.
"""

from __future__ import annotations

import email.utils
import re
from datetime import timezone

__all__ = ["retry_after"]

# delay-seconds = 1*DIGIT (section 10.2.3); more than 12 digits (30,000 years) is no delay
# but garbage, and is refused before int() sees it
_SECONDS = re.compile(r"[0-9]{1,12}")
# An IMF-fixdate is 29 characters, rfc850 and asctime about as long; anything far
# longer is not a date (and is not handed to the date parser).
_MAX_DATE = 64


def retry_after(value: str | None, now: float) -> float | None:
    """Read a ``Retry-After`` header as the Unix time to retry at.

    Both forms of RFC 9110 are read: delay-seconds (``"120"``) and an HTTP-date in any
    of the three formats section 5.6.7 requires a recipient to accept. A date without a
    zone (the asctime format has none) is GMT, as every HTTP-date is. The answer is
    never before ``now``: a date in the past means "now". Callers cap long waits.

    Args:
        value: The header's value; ``None`` when it is absent.
        now: The current time (Unix seconds), from the caller's clock.

    Returns:
        When to retry, or ``None`` when the header is absent or unreadable (the caller
        then uses its own backoff).
    """
    if value is None:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return now + int(value)
    if not value or len(value) > _MAX_DATE or not value.isascii():
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # section 5.6.7: HTTP-dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    try:
        at = when.timestamp()
    except (OverflowError, OSError, ValueError):  # pragma: no cover - platform limits
        return None
    return max(now, at)
