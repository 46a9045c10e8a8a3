"""The serving process's garbage collector (matchmaking_site/gc_tuning.py): what importing the ASGI
application leaves the collector set to, each setting's off switch, and a malformed value."""

import subprocess
import sys

import pytest

from matchmaking_site.gc_tuning import parse_thresholds
from tests.test_settings import ROOT, run_manage

PROBE = (
    "import os, gc; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'matchmaking_site.settings'); "
    "before = gc.get_freeze_count(); import matchmaking_site.asgi; "
    "print(*gc.get_threshold(), gc.get_freeze_count() > before)"
)


def _serving_process(**env: str) -> list[str]:
    run = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.split()


def test_the_asgi_application_freezes_start_up_and_keeps_pythons_thresholds():
    assert _serving_process() == ["700", "10", "10", "True"]


def test_each_part_can_be_set():
    assert _serving_process(GC_FREEZE="false") == ["700", "10", "10", "False"]
    assert _serving_process(GC_THRESHOLDS="50000,20,20") == ["50000", "20", "20", "True"]
    assert _serving_process(GC_THRESHOLDS="20000") == ["20000", "10", "10", "True"]
    # set but empty is unset (a compose file passes ${GC_THRESHOLDS:-} through as ""): the default
    assert _serving_process(GC_THRESHOLDS="") == ["700", "10", "10", "True"]


@pytest.mark.parametrize(("value", "expected"), [("off", None), (" OFF ", None), (" 1000, 5 ", (1000, 5))])
def test_thresholds_parse(value, expected):
    assert parse_thresholds(value) == expected


@pytest.mark.parametrize("value", ["", "1,2,3,4", "-5", "a,b"])
def test_thresholds_refuse_what_is_not_one_to_three_positive_integers(value):
    with pytest.raises(ValueError, match="GC_THRESHOLDS must be off or one to three positive integers"):
        parse_thresholds(value)


def test_a_malformed_value_stops_start_up_with_one_line():
    run = run_manage("check", GC_THRESHOLDS="50000,0")
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == [
        "error: GC_THRESHOLDS must be off or one to three positive integers like 50000,20,20, got '50000,0'"
    ]
