from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from .models import Event


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"events": Event.objects.order_by("name")[:50]})


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and the fault tests."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any database error means "not ready"; say which
        return JsonResponse({"status": "unavailable", "database": type(exc).__name__}, status=503)
    return JsonResponse({"status": "ok"})
