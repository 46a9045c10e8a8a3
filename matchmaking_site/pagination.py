from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """Limit/offset pagination whose numbers stay inside what the database accepts: an offset past
    PostgreSQL's bigint would otherwise be a 500 instead of an empty page."""

    max_limit = 500
    max_offset = 2**31 - 1

    def get_offset(self, request):
        return min(super().get_offset(request), self.max_offset)
