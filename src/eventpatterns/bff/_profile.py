"""Frontend profiles: one per client kind, each a projection per event type.

A :class:`Profile` (``web``, ``ios``, ``android``...) maps event types to
:class:`~eventpatterns.bff.Projection`. :class:`Profiles` holds an application's
profiles, validates them at start-up against the declared event models (a projection
naming a field its type does not have is a :class:`~eventpatterns.errors.ConfigurationError`
then, naming the profile, the type and the field), picks the profile of a principal, and
shapes events for it: for the real-time gateway (:meth:`Profiles.encode`, the JSON text
of one frame's event) and for push (:meth:`Profile.notification`).
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from ..core import DEFAULT_REGISTRY, Event, EventModel, EventRegistry, is_json_content_type
from ..errors import ConfigurationError
from ..push import PLATFORMS, Notification, Variant
from ._projection import Localizer, Projection, as_configuration_error

__all__ = ["Profile", "Profiles", "Shaped"]

#: What shaping returns: an event (``rich`` form), a compact dict, or ``None`` (not shown).
Shaped = Event | dict[str, Any] | None

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]{0,200})\}")
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _data_of(event: Event) -> Any:
    data = event.data
    if isinstance(data, bytes) and is_json_content_type(event.datacontenttype):
        try:
            return json.loads(data)
        except ValueError:  # bytes Event accepted are UTF-8 JSON; be safe all the same
            return None
    return data


class Profile(BaseModel):
    """How one client kind sees events.

    Attributes:
        name: ``web``, ``ios``... (lower-case, up to 32 characters).
        projections: A projection per event type, keyed by the CloudEvents ``type`` or
            by an :class:`~eventpatterns.core.EventModel` class.
        unlisted: What happens to an event type with no projection: ``pass`` (sent as
            it is) or ``drop`` (not sent to this profile).
        locale: The locale used when a connection names none.

    Raises:
        ConfigurationError: A bad name, or a projection key that is neither a type
            string nor a declared ``EventModel`` class.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str
    projections: Mapping[str, Projection] = Field(default_factory=dict)
    unlisted: Literal["pass", "drop"] = "pass"
    locale: str = "en"
    _models: dict[str, type[EventModel]] = PrivateAttr(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        models: dict[str, type[EventModel]] = {}
        given = data.get("projections")
        if isinstance(given, Mapping):
            keyed: dict[str, Any] = {}
            for key, projection in given.items():
                if isinstance(key, type) and issubclass(key, EventModel):
                    if not key.event_type:
                        raise ConfigurationError(f"{key.__qualname__} declares no event type")
                    models[key.event_type] = key
                    key = key.event_type
                if not isinstance(key, str) or not key:
                    raise ConfigurationError(
                        f"a projection key is an event type or an EventModel class, got {key!r:.80}"
                    )
                keyed[key] = (
                    Projection.parse(projection) if isinstance(projection, str) else projection
                )
            data["projections"] = keyed
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise as_configuration_error("profile option", exc) from None
        if not _NAME.match(self.name):
            raise ConfigurationError(f"profile name {self.name!r:.40} is not [a-z][a-z0-9_-]*")
        self._models.update(models)

    def models(self) -> dict[str, type[EventModel]]:
        """Return the event model classes the projections were keyed by."""
        return dict(self._models)

    def shape(
        self, event: Event, *, locale: str | None = None, localizer: Localizer | None = None
    ) -> Shaped:
        """Return the event as this profile sees it, or ``None`` if it is not shown.

        ``rich`` projections return an :class:`~eventpatterns.core.Event` with the
        projected data (``dataschema`` dropped: the data no longer follows it);
        ``compact`` ones a dict of ``id``, ``type``, ``time`` and ``data``. A
        missing field is left out; a missing ``required`` field hides the event.
        """
        projection = self.projections.get(event.type)
        if projection is None:
            return event if self.unlisted == "pass" else None
        data = projection.apply(_data_of(event), locale=locale or self.locale, localizer=localizer)
        if data is None:
            return None
        if projection.form == "compact":
            out: dict[str, Any] = {"id": event.id, "type": event.type}
            if event.time is not None:
                out["time"] = event.to_dict()["time"]
            out["data"] = data
            return out
        return Event(
            type=event.type,
            source=event.source,
            id=event.id,
            subject=event.subject,
            time=event.time,
            datacontenttype="application/json",
            extensions=event.extensions,
            data=data,
        )

    def notification(
        self,
        event: Event,
        *,
        title: str,
        body: str = "",
        locale: str | None = None,
        localizer: Localizer | None = None,
        **options: Any,
    ) -> Notification | None:
        """Build a push notification from the event as this profile sees it.

        ``title`` and ``body`` are message keys (localized first, when a localizer is
        given) holding ``{field}`` placeholders filled from the projected data
        (a missing field leaves the placeholder empty; nothing but plain field names
        is interpreted). ``data`` carries the projected top-level scalars as strings.

        Args:
            event: The event.
            title: Title template or message key.
            body: Body template or message key.
            locale: The recipient's locale (default: the profile's).
            localizer: The localisation hook.
            **options: Other :class:`~eventpatterns.push.Notification` fields
                (``topic``, ``urgency``, ``collapse_key``...).

        Returns:
            The notification, or ``None`` when the profile does not show the event.
        """
        shaped = self.shape(event, locale=locale, localizer=localizer)
        if shaped is None:
            return None
        data = shaped.data if isinstance(shaped, Event) else shaped["data"]
        values: dict[str, Any] = data if isinstance(data, dict) else {}
        where = locale or self.locale

        def fill(template: str) -> str:
            text = localizer(template, where) if localizer is not None and template else template
            return _PLACEHOLDER.sub(lambda m: _scalar(values.get(m[1])), text)[:1024]

        strings = {
            k: _scalar(v)[:1024]
            for k, v in list(values.items())[:100]
            if isinstance(v, str | int | float | bool)
        }
        options.setdefault("idempotency_key", f"{self.name}:{event.id}"[:255])
        return Notification(title=fill(title), body=fill(body), data=strings, **options)


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _unwrap(annotation: Any) -> list[Any]:
    """Return the types an annotation may hold (Optional/Union/Annotated unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _has_path(model: type[BaseModel], path: str) -> bool:
    """Whether instances of ``model`` can hold ``path`` (``Any``/``dict`` hold anything)."""
    head, _, rest = path.partition(".")
    field = model.model_fields.get(head)
    if field is None:
        field = next((f for f in model.model_fields.values() if f.alias == head), None)
    if field is None:
        return False
    if not rest:
        return True
    for candidate in _unwrap(field.annotation):
        if candidate is Any or candidate is dict or typing.get_origin(candidate) is dict:
            return True
        if (
            isinstance(candidate, type)
            and issubclass(candidate, BaseModel)
            and _has_path(candidate, rest)
        ):
            return True
    return False


class Profiles:
    """An application's frontend profiles, validated together at start-up.

    Args:
        profiles: The profiles (names must differ).
        default: The name of the profile used when ``profile_of`` names none.
        profile_of: Picks a principal's profile name (default: its ``profile`` claim);
            any object with ``claims`` works (a realtime ``Principal``).
        registry: Where undeclared-by-class event types are looked up.
        localizer: The localisation hook for every profile.
        allow_undeclared: Accept projections for types no model declares (their
            fields cannot be checked).

    Raises:
        ConfigurationError: Two profiles share a name, ``default`` names none, or a
            projection names a type no model declares (unless ``allow_undeclared``)
            or a field its type's model does not have; the message names the profile,
            the type and the field.
    """

    def __init__(
        self,
        profiles: Iterable[Profile],
        *,
        default: str = "web",
        profile_of: Callable[[Any], str | None] | None = None,
        registry: EventRegistry = DEFAULT_REGISTRY,
        localizer: Localizer | None = None,
        allow_undeclared: bool = False,
    ) -> None:
        self._profiles: dict[str, Profile] = {}
        for profile in profiles:
            if not isinstance(profile, Profile):
                raise ConfigurationError(f"Profiles takes Profile objects, got {profile!r:.80}")
            if profile.name in self._profiles:
                raise ConfigurationError(f"two profiles are named {profile.name!r}")
            self._profiles[profile.name] = profile
        if default not in self._profiles:
            raise ConfigurationError(f"the default profile {default!r} is not among the profiles")
        self.default = default
        self.localizer = localizer
        self._profile_of = profile_of or _claim
        for profile in self._profiles.values():
            _validate(profile, registry, allow_undeclared=allow_undeclared)

    def __getitem__(self, name: str) -> Profile:
        return self._profiles[name]

    def __iter__(self) -> typing.Iterator[Profile]:
        return iter(self._profiles.values())

    def profile_of(self, principal: Any) -> Profile:
        """Return the principal's profile (the default one for an unknown name)."""
        name = self._profile_of(principal)
        return self._profiles.get(name or self.default) or self._profiles[self.default]

    def shape(self, principal: Any, event: Event, *, locale: str | None = None) -> Shaped:
        """Return ``event`` shaped for the principal's profile (``None``: not shown)."""
        return self.profile_of(principal).shape(event, locale=locale, localizer=self.localizer)

    def notification(
        self,
        event: Event,
        *,
        title: str,
        body: str = "",
        platforms: Mapping[str, str] | None = None,
        locale: str | None = None,
        **options: Any,
    ) -> Notification | None:
        """Build one push notification whose text each platform's profile shapes.

        The default profile gives the notification's own title, body and data; each
        platform named in ``platforms`` gets a :class:`~eventpatterns.push.Variant` from
        its profile (or ``None`` when that profile does not show the event: its devices
        get nothing). The dispatcher sends each device its platform's variant, so a
        user's phone and browser each get their own client's form of one event, under
        one fatigue budget and one idempotency key.

        Args:
            event: The event.
            title: Title template or message key (see :meth:`Profile.notification`).
            body: Body template or message key.
            platforms: Push platform (``"webpush"``, ``"fcm"``, ``"apns"``) to profile
                name; by default ``webpush`` → ``web``, ``fcm`` → ``android``, ``apns``
                → ``ios``, for those of them that are among the profiles.
            locale: The recipient's locale (default: each profile's).
            **options: Other :class:`~eventpatterns.push.Notification` fields.

        Returns:
            The notification, or ``None`` when no profile shows the event.

        Raises:
            ConfigurationError: ``platforms`` names an unknown platform or profile.
        """
        if platforms is None:
            platforms = {p: n for p, n in _PLATFORM_PROFILES.items() if n in self._profiles}
        for platform, name in platforms.items():
            if platform not in PLATFORMS or name not in self._profiles:
                raise ConfigurationError(
                    f"platforms maps {platform!r:.40} to {name!r:.40}: platforms are"
                    f" {', '.join(PLATFORMS)} and profiles {', '.join(self._profiles)}"
                )
        made = {
            name: self._profiles[name].notification(
                event, title=title, body=body, locale=locale, localizer=self.localizer, **options
            )
            for name in {self.default, *platforms.values()}
        }
        variants = {
            platform: None if (n := made[name]) is None else Variant(n.title, n.body, n.data)
            for platform, name in platforms.items()
            if name != self.default  # the notification's own text is the default's
        }
        base = made[self.default]
        if base is None:
            # The default profile hides it: only the platforms whose profile shows it.
            base = next((made[n] for n in platforms.values() if made[n] is not None), None)
            if base is None:
                return None
            variants.update(dict.fromkeys(p for p in PLATFORMS if p not in variants))
        return dataclasses.replace(base, variants=variants)

    def encode(self, profile: Profile, event: Event, *, locale: str | None = None) -> str | None:
        """Return the JSON text of ``event`` for ``profile``: what a gateway frame carries.

        ``None``: the profile does not show the event (send it no frame).
        """
        shaped = profile.shape(event, locale=locale, localizer=self.localizer)
        if shaped is None:
            return None
        return _DUMPS(shaped.to_dict() if isinstance(shaped, Event) else shaped)


#: Which profile shapes each push platform's notifications, by default.
_PLATFORM_PROFILES = {"webpush": "web", "fcm": "android", "apns": "ios"}


def _claim(principal: Any) -> str | None:
    claims = getattr(principal, "claims", None)
    value = claims.get("profile") if isinstance(claims, Mapping) else None
    return value if isinstance(value, str) else None


def _validate(profile: Profile, registry: EventRegistry, *, allow_undeclared: bool) -> None:
    models = profile.models()
    for type_, projection in profile.projections.items():
        model = models.get(type_) or registry.get(type_)
        if model is None:
            if allow_undeclared:
                continue
            raise ConfigurationError(
                f"profile {profile.name!r}: event type {type_!r} has no EventModel to check"
                " the projection against (declare one, or pass allow_undeclared=True)"
            )
        for path in sorted(projection.paths()):
            if not _has_path(model, path):
                raise ConfigurationError(
                    f"profile {profile.name!r}: event type {type_!r} ({model.__qualname__})"
                    f" has no field {path!r}"
                )
