"""OpenAPI generation: every operation documents the errors every endpoint can give.

drf-spectacular documents what a view declares; the errors that come from the framework around
the view (authentication, throttling, a missing event or attendee, a validation error) would be
left out of every operation by hand-written declarations sooner or later. Adding them here, once,
keeps the schema honest for clients and for the schemathesis run in the test suite."""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

ERROR_SCHEMA = {
    "type": "object",
    "description": "`detail` for a request-level error, or a list of messages per field.",
    "additionalProperties": True,
}
COMMON_ERRORS = {
    "400": "Invalid input: a message per field (or `non_field_errors`).",
    "401": "No credentials, or an invalid or revoked API key.",
    "403": "Authenticated, but not allowed to do this (e.g. a session request without its CSRF token).",
    "404": "No such event or attendee for this caller (another organization's rows are never revealed).",
    "429": "Rate limit exceeded; retry after the number of seconds in the `Retry-After` header.",
    "503": "The database is unavailable (restart, failover); retry after `Retry-After` seconds.",
}


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in COMMON_ERRORS.items():
            responses.setdefault(
                code, {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            )
        return responses
