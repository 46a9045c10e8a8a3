"""JSON from clients, bounded before it is parsed.

Python's parser recurses once per nesting level: a 5,000-deep body raised `RecursionError` deep
inside it, which became a 500. Here the size is capped first, then the nesting depth is counted in
one vectorised pass over the brackets outside strings, and only a body within both limits reaches
`json.loads`. Used by the REST API (`BoundedJSONParser`) and by every WebSocket consumer
(`matchmaking_site.websocket.JsonConsumer`)."""

import json
import re

import numpy as np
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

# No request of the API nests deeper than 4 (envelope, list, item, a metadata object); 32 leaves
# room for any reasonable client and is far below the interpreter's recursion limit.
MAX_DEPTH = 32
TOO_DEEP = "JSON nested deeper than {limit} levels."
NOT_JSON = "Not valid JSON: {error}"
NOT_UTF8 = "Not valid JSON: the body is not UTF-8."

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_STEP = np.zeros(256, dtype=np.int8)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1


class JsonTooDeep(ValueError):
    pass


def depth(raw: bytes) -> int:
    """The deepest nesting of `raw`, brackets inside strings not counted. Not a validator: a body
    that is not JSON gets some number, and `json.loads` then says what is wrong with it."""
    outside = _STRING.sub(b"", raw)
    steps = _STEP[np.frombuffer(outside, dtype=np.uint8)]
    if not steps.any():
        return 0
    return int(np.cumsum(steps, dtype=np.int64).max())


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH, parse_constant=None):
    """`json.loads`, refusing (with `JsonTooDeep`, a ValueError) a body nested past `max_depth`.
    Bytes are decoded as UTF-8 once (a `UnicodeDecodeError`, also a ValueError, if they are not)."""
    data = raw.encode() if isinstance(raw, str) else raw
    if depth(data) > max_depth:
        raise JsonTooDeep(TOO_DEEP.format(limit=max_depth))
    text = raw if isinstance(raw, str) else raw.decode("utf-8")
    return json.loads(text, parse_constant=parse_constant)


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with a size cap (`DATA_UPLOAD_MAX_MEMORY_SIZE`, read no further) and a
    depth cap (`MAX_DEPTH`): either answers 4xx with a message, never a 500. Like DRF's, it refuses
    NaN and Infinity under `STRICT_JSON` (the default)."""

    def parse(self, stream, media_type=None, parser_context=None):
        if stream is None:
            raise ParseError(NOT_JSON.format(error="empty body"))
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
        try:
            return loads(raw, parse_constant=strict_constant if self.strict else None)
        except UnicodeDecodeError as exc:
            raise ParseError(NOT_UTF8) from exc
        except JsonTooDeep as exc:
            raise ParseError(str(exc)) from exc
        except ValueError as exc:
            raise ParseError(NOT_JSON.format(error=exc)) from exc
