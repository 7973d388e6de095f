"""Event contracts as documents: JSON Schemas and an AsyncAPI 3.0 description.

The typed events themselves are :class:`eventpatterns.core.EventModel` classes; this
package turns what was declared into documents other teams and tools read. The command
line writes them: ``eventpatterns schema export --module myapp.events``.
"""

from ._asyncapi import asyncapi_document, json_schemas

__all__ = ["asyncapi_document", "json_schemas"]
