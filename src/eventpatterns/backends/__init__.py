"""Backends: implementations of the pattern contracts, one subpackage per vendor.

``memory`` needs nothing; ``redis`` needs ``pip install 'eventpatterns[redis]'``;
``aws`` needs ``pip install 'eventpatterns[aws]'``. Vendor clients are imported only
when a backend is used.
"""
