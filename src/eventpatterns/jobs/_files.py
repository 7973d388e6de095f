"""A job result downloaded as a file: :class:`FileResult`, and its ``Content-Disposition``.

A handler that returns ``FileResult(data, content_type="text/csv", filename="r.csv")``
has its bytes stored as a blob of that media type; the download (the ``303`` of
``GET /jobs/{id}/result``: the blob route, or S3's presigned URL) answers with that
``Content-Type`` and ``Content-Disposition: attachment; filename="r.csv"``
(RFC 6266, with RFC 8187's ``filename*`` for a name that is not ASCII). A filename is
sanitised, not trusted: no directory, no control or formatting character, no quote,
backslash or leading dot, at most :data:`MAX_FILENAME` characters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

from ..errors import ArgumentTypeError, ConfigurationError

__all__ = ["MAX_FILENAME", "FileResult", "content_disposition", "safe_filename"]

#: Longest filename kept (in characters); a longer one keeps its extension.
MAX_FILENAME = 200
_FALLBACK = "download"
_NAME_CHARS = r"[A-Za-z0-9!#$&^_.+-]+"
_MEDIA_TYPE = re.compile(
    rf"{_NAME_CHARS}/{_NAME_CHARS}(\s*;\s*{_NAME_CHARS}=({_NAME_CHARS}|\"[^\"\\\x00-\x1f\x7f]*\"))*"
)
#: What RFC 8187 lets through unencoded in ``filename*`` (its ``attr-char``).
_ATTR_CHARS = "!#$&+-.^_`|~"


def safe_filename(name: object) -> str:
    """Return ``name`` made safe for a download: its last path segment, cleaned.

    Control and formatting characters (line breaks, a right-to-left override...) are
    dropped, as are quotes, backslashes, ``;``, ``%`` and leading dots or spaces; runs
    of spaces become one; a name longer than :data:`MAX_FILENAME` is cut, keeping its
    extension. What is left empty becomes ``"download"``.

    Raises:
        ArgumentTypeError: ``name`` is not a string.

    Example:
        >>> safe_filename("../../etc/passwd")
        'passwd'
        >>> safe_filename('.hidden "x".csv')
        'hidden x.csv'
    """
    if not isinstance(name, str):
        raise ArgumentTypeError("FileResult", "filename", expected="a str", got=name)
    last = re.split(r"[/\\]", name)[-1]
    kept = "".join(
        " " if unicodedata.category(c) == "Zs" else c
        for c in last
        if unicodedata.category(c) == "Zs" or unicodedata.category(c)[0] not in ("C", "Z")
    )
    kept = re.sub(r"[\"\\;%]", "", kept)
    kept = re.sub(r" +", " ", kept).strip().lstrip(".").strip()
    if len(kept) > MAX_FILENAME:
        stem, dot, extension = kept.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            kept = stem[: MAX_FILENAME - len(extension) - 1].rstrip() + "." + extension
        else:
            kept = kept[:MAX_FILENAME].rstrip()
    return kept or _FALLBACK


def content_disposition(filename: object) -> str:
    """Return the ``Content-Disposition`` header value downloading as ``filename``.

    ``attachment; filename="..."`` with an ASCII fallback (other characters become
    ``_``), and ``filename*=UTF-8''...`` when the (sanitised) name is not ASCII. The
    value is always Latin-1 encodable, one line.

    Raises:
        ArgumentTypeError: ``filename`` is not a string.

    Example:
        >>> print(content_disposition("report.csv"))
        attachment; filename="report.csv"
        >>> print(content_disposition("résumé.pdf"))
        attachment; filename="r_sum_.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf
    """
    name = safe_filename(filename)
    fallback = "".join(c if " " <= c <= "~" else "_" for c in name)
    value = f'attachment; filename="{fallback}"'
    if fallback != name:
        value += "; filename*=UTF-8''" + quote(name, safe=_ATTR_CHARS)
    return value


def check_content_type(content_type: object) -> str:
    """Return ``content_type`` if it is a media type (``type/subtype; param=value``).

    Raises:
        ArgumentTypeError: Not a string.
        ConfigurationError: Not a media type (or over 255 characters).
    """
    if not isinstance(content_type, str):
        raise ArgumentTypeError("FileResult", "content_type", expected="a str", got=content_type)
    if len(content_type) > 255 or _MEDIA_TYPE.fullmatch(content_type) is None:
        raise ConfigurationError(
            f"content_type must be a media type such as 'text/csv', got {content_type[:80]!r}"
        )
    return content_type


@dataclass(frozen=True, slots=True)
class FileResult:
    r"""A job result to download as a file: bytes, their media type and a filename.

    Return one from a handler: the bytes go to the tracker's blob store (always, as
    any ``bytes`` result), with ``content_type``; the download sends that type and,
    with a ``filename``, ``Content-Disposition: attachment`` (see
    :func:`content_disposition`). ``tracker.result(job)`` gives the bytes back.

    Attributes:
        data: The file's bytes.
        content_type: Its media type (``"text/csv"``, ``"application/pdf"``...).
        filename: The name to save it as, or ``None`` (the browser's choice). It is
            sanitised (:func:`safe_filename`): ``"../x.csv"`` becomes ``"x.csv"``.

    Raises:
        ArgumentTypeError: ``data`` is not bytes, or a field is not a string.
        ConfigurationError: ``content_type`` is not a media type.

    Example:
        ```python
        from eventpatterns.jobs import FileResult

        result = FileResult(b"a,b\\n1,2\\n", content_type="text/csv", filename="../r.csv")
        print(result.filename)  # r.csv
        ```
    """

    data: bytes
    content_type: str = "application/octet-stream"
    filename: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes | bytearray | memoryview):
            raise ArgumentTypeError("FileResult", "data", expected="bytes", got=self.data)
        object.__setattr__(self, "data", bytes(self.data))
        check_content_type(self.content_type)
        if self.filename is not None:
            object.__setattr__(self, "filename", safe_filename(self.filename))
