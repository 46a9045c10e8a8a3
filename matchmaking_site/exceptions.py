"""The API's exception handler: DRF's, with error messages that quote at most `QUOTED_CHARS`
characters of a bad value (DRF's "\"<input>\" is not a valid choice." echoed a 100 KB value back
whole)."""

import re

from rest_framework.views import exception_handler as drf_exception_handler

from events.ingestion import QUOTED_CHARS

# A quoted run longer than the limit, as DRF's messages quote input: "..." (or '...').
_LONG = QUOTED_CHARS + 1
_LONG_QUOTE = re.compile(rf'"([^"]{{{_LONG},}})"|\'([^\']{{{_LONG},}})\'')
MAX_MESSAGE_CHARS = 2 * QUOTED_CHARS + 200  # any message, quoted or not, is cut past this


def _shorten(match: re.Match) -> str:
    quote = '"' if match.group(1) is not None else "'"
    text = match.group(1) if match.group(1) is not None else match.group(2)
    return f"{quote}{text[: QUOTED_CHARS - 3]}...{quote}"


def bounded_message(message: str) -> str:
    short = _LONG_QUOTE.sub(_shorten, message)
    return short if len(short) <= MAX_MESSAGE_CHARS else short[: MAX_MESSAGE_CHARS - 3] + "..."


def _bounded(data):
    if isinstance(data, dict):
        return {key: _bounded(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_bounded(value) for value in data]
    if isinstance(data, str):
        # ErrorDetail is a str that carries its code: keep the code with the shortened text.
        short = bounded_message(data)
        return type(data)(short, code=data.code) if hasattr(data, "code") else short
    return data


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = _bounded(response.data)
    return response
