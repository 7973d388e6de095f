"""Backends: implementations of the pattern contracts, one subpackage per vendor.

``memory`` needs nothing; ``redis`` needs ``pip install 'eventpatterns[redis]'``;
``aws`` needs ``pip install 'eventpatterns[aws]'``. Vendor clients are imported only
when a backend is used. :func:`stores_from_url` builds every store of one backend from
one URL.
"""

from ._stores import Stores, stores_from_url

__all__ = ["Stores", "stores_from_url"]
