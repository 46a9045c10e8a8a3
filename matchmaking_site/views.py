from django.http import JsonResponse
from django.views import defaults


def handler404(request, exception):
    """API clients get JSON even for a path no route matches (a malformed event slug, a
    non-numeric id): the schema promises JSON errors on every /api/ path."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
