"""Schemas of the declared event types, and an AsyncAPI 3.0 document of the application.

The document describes, for each declared :class:`~eventpatterns.core.EventModel` type,
a channel (its address is the CloudEvents ``type``) with one message whose payload is
the type's data schema and whose headers are the CloudEvents attributes; a ``send``
operation per type (the application publishes it); a ``receive`` operation per consumer
group and the types it handles; and, when asked, the real-time gateway's WebSocket
channel with every type a client may subscribe to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core import DEFAULT_REGISTRY, EventModel, EventRegistry
from ..errors import ConfigurationError

__all__ = ["asyncapi_document", "json_schemas"]

_KEY = re.compile(r"[^A-Za-z0-9_.\-]")

#: The CloudEvents context attributes, as the headers of every message.
_CE_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["specversion", "id", "source", "type"],
    "properties": {
        "specversion": {"type": "string", "const": "1.0"},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "minLength": 1},
        "type": {"type": "string"},
        "subject": {"type": "string"},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"type": "string"},
        "dataschema": {"type": "string", "format": "uri"},
    },
}


def _key(name: str) -> str:
    """Return ``name`` as an AsyncAPI component key (letters, digits, ".", "-", "_")."""
    return _KEY.sub("_", name)


def json_schemas(registry: EventRegistry = DEFAULT_REGISTRY) -> dict[str, dict[str, Any]]:
    """Return the JSON Schema of each declared type's data, by CloudEvents ``type``."""
    return registry.json_schemas()


def _schemas(models: Iterable[type[EventModel]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the components' schemas (nested models hoisted) and each type's key."""
    schemas: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for model in models:
        key = _key(model.event_type)
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, nested in schema.pop("$defs", {}).items():
            held = schemas.setdefault(name, nested)
            if held != nested:
                raise ConfigurationError(
                    f"two different models are both named {name!r} in event schemas;"
                    " rename one of them"
                )
        schema["title"] = model.event_type
        schema["$id"] = model.dataschema()
        schemas[key] = schema
        keys[model.event_type] = key
    return schemas, keys


def asyncapi_document(
    registry: EventRegistry = DEFAULT_REGISTRY,
    *,
    title: str,
    version: str,
    description: str | None = None,
    groups: Mapping[str, Sequence[type[EventModel]]] | None = None,
    gateway: Sequence[type[EventModel]] | None = None,
    gateway_address: str = "/ws",
) -> dict[str, Any]:
    """Return an AsyncAPI 3.0.0 document (a JSON-ready dict) of the declared event types.

    Args:
        registry: The declared types.
        title: The application's name (``info.title``).
        version: The application's version (``info.version``).
        description: Its description.
        groups: Consumer groups and the types each handles (``receive`` operations).
        gateway: The types clients may subscribe to through the real-time gateway
            (a ``receive`` channel at ``gateway_address``); ``None``: no gateway.
        gateway_address: Where the gateway's WebSocket is.

    Raises:
        ConfigurationError: A group or the gateway names a type the registry lacks, or
            two nested models share a name with different schemas.
    """
    models = list(registry)
    schemas, keys = _schemas(models)
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for model in models:
        key = keys[model.event_type]
        messages[key] = {
            "name": model.event_type,
            "title": model.__name__,
            "summary": (model.__doc__ or "").strip().split("\n")[0] or model.event_type,
            "contentType": "application/json",
            "headers": {**_CE_HEADERS, "properties": {
                **_CE_HEADERS["properties"],
                "type": {"type": "string", "const": model.event_type},
                "dataschema": {"type": "string", "const": model.dataschema()},
            }},
            "payload": {"$ref": f"#/components/schemas/{key}"},
        }  # fmt: skip
        channels[key] = {
            "address": model.event_type,
            "messages": {key: {"$ref": f"#/components/messages/{key}"}},
        }
        operations[f"publish.{key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/{key}"}],
        }

    def known(model: type[EventModel], where: str) -> str:
        key = keys.get(model.event_type)
        if key is None or registry.get(model.event_type) is not model:
            raise ConfigurationError(f"{where} names {model.__qualname__}, not in the registry")
        return key

    for group, handled in (groups or {}).items():
        for model in handled:
            key = known(model, f"group {group!r}")
            operations[f"consume.{_key(group)}.{key}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{key}"},
                "messages": [{"$ref": f"#/channels/{key}/messages/{key}"}],
                "summary": f"consumer group {group}",
            }
    if gateway is not None:
        refs = {known(m, "the gateway"): {"$ref": f"#/components/messages/{known(m, '')}"}
                for m in gateway}  # fmt: skip
        channels["gateway"] = {
            "address": gateway_address,
            "title": "Real-time gateway",
            "description": "WebSocket (and SSE) subscriptions with server-side filters; see"
            " the protocol reference.",
            "messages": refs,
        }
        operations["gateway.subscribe"] = {
            "action": "receive",
            "channel": {"$ref": "#/channels/gateway"},
            "messages": [{"$ref": f"#/channels/gateway/messages/{k}"} for k in refs],
        }
    return {
        "asyncapi": "3.0.0",
        "info": info,
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }
