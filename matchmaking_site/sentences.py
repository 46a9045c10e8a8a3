"""Sentences the product composes in English, translated where a person reads them.

A suggestion's reasons ("you were together in 3 sessions") and a service's refusals ("That time
was just booked ...") are made where the facts are (a backend, a service), and kept in English
there: the suggestion caches, the pushed diffs and the API contract hold and compare them in that
form, whoever reads them later and in whatever language. They are translated at the edge, for the
reader: `localize(text)` translates a fixed sentence as `gettext` does, and a composed one by
finding its template among the active language's catalogue ("you were together in {n} sessions"),
translating that, and putting the values back.

Templates are marked with `gettext_noop` where they are defined, so `makemessages` collects them;
their fields are `str.format` fields (`{n}`), and a translation keeps the same names.
"""

from __future__ import annotations

import re
from functools import cache
from types import SimpleNamespace

from django.utils import translation
from django.utils.translation import gettext, trans_real

FIELD = re.compile(r"\{(\w+)\}")


@cache
def _templates(language: str) -> tuple[tuple[re.Pattern[str], tuple[str, ...], str], ...]:
    """(pattern, field names, translated template) for each composed msgid of `language`'s
    catalogue, the most specific (longest fixed text) first."""
    entries: dict[str, str] = {}
    catalog = trans_real.translation(language)._catalog  # type: ignore[attr-defined]  # the merged catalogues
    for msgid, translated in catalog.items():
        if isinstance(msgid, str) and "{" in msgid and translated:
            entries.setdefault(msgid, translated)  # the first catalogue that has it wins, as in gettext
    found = []
    for msgid, translated in entries.items():
        parts = FIELD.split(msgid)  # literal, field, literal, field, ..., literal
        fields = tuple(parts[1::2])
        if not fields:
            continue
        regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<f{i // 2}>.+?)" for i, part in enumerate(parts))
        fixed = sum(len(p) for p in parts[0::2])
        found.append((fixed, re.compile(regex, re.DOTALL), fields, translated))
    found.sort(key=lambda t: -t[0])
    return tuple((rx, fields, translated) for _, rx, fields, translated in found)


def localize(text: str) -> str:
    """`text` (a sentence of the product, in English) in the active language; unchanged when the
    active language is English or the sentence has no translation."""
    language = translation.get_language()
    if not text or not language or language.split("-")[0] == "en":
        return text
    fixed = gettext(text)
    if fixed != text:
        return fixed
    for rx, fields, translated in _templates(language):
        match = rx.fullmatch(text)
        if match is None:
            continue
        values = {name: match.group(f"f{i}") for i, name in enumerate(fields)}
        try:
            return translated.format_map(values)
        except (KeyError, IndexError, ValueError):  # a translation that names other fields
            return text
    return text


def localize_reasons(reasons: list[dict]) -> list[dict]:
    """A suggestion's reasons ({"kind", "text", "weight"}), the texts in the active language."""
    return [{**r, "text": localize(r["text"])} for r in reasons]


def localize_items(items: list[dict]) -> list[dict]:
    """Suggestions as the API and the socket give them, their reasons in the active language."""
    return [{**item, "reasons": localize_reasons(item.get("reasons") or [])} for item in items]


def language_of(headers: list[tuple[bytes, bytes]], cookies: dict[str, str]) -> str:
    """The language a WebSocket's person reads, chosen by Django's own rule for a page
    (`LocaleMiddleware`: the switcher's cookie, else the browser's Accept-Language, else the
    site's default), from the handshake's headers and cookies."""
    accept = next((v.decode("latin-1") for k, v in headers if k.lower() == b"accept-language"), "")
    handshake = SimpleNamespace(COOKIES=cookies, META={"HTTP_ACCEPT_LANGUAGE": accept})
    return translation.get_language_from_request(handshake)  # type: ignore[arg-type]  # reads these two only
