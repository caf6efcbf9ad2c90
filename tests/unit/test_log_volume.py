"""Log volume is a limit: the day's bytes are measured; past the maximum routine lines are left out (counted, and
announced once) while warnings and errors are still written; a new UTC day starts from nothing."""

from collections.abc import Iterator

import pytest

from kanjo.kernel.limits import limits
from kanjo.platform import logging as klog

NAME = "log_bytes_per_day_max"


@pytest.fixture
def small_limit() -> Iterator[None]:
    before = limits.get(NAME).maximum
    limits.set_maximum(NAME, 100)
    yield
    limits.set_maximum(NAME, before)


def test_routine_lines_stop_at_the_days_volume_and_warnings_still_go_out(small_limit: None) -> None:
    now = [86_400.0 * 20_000]
    volume = klog.LogVolume(lambda: now[0])
    assert volume.admit(60, True) == (True, False)
    assert limits.usage(NAME) == 60
    assert volume.admit(60, True) == (False, True)  # would pass 100: left out, and announced
    assert volume.admit(10, True) == (True, False)  # a short one still fits
    assert volume.admit(60, True) == (False, False)  # announced once a day
    assert volume.admit(500, False) == (True, False)  # a warning or an error is always written
    assert volume.dropped == 2
    now[0] += 86_400  # the next UTC day
    assert volume.admit(60, True) == (True, False)
    assert (volume.bytes, volume.dropped) == (60, 0)


def test_the_logger_leaves_out_info_but_writes_errors_past_the_limit(small_limit: None,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    saved = klog.VOLUME
    klog.VOLUME = klog.LogVolume()
    try:
        logger = klog._StderrLogger()
        logger.info("x" * 200)
        logger.error('{"event": "still here"}')
        err = capsys.readouterr().err
    finally:
        klog.VOLUME = saved
    assert "x" * 200 not in err
    assert "log_volume_limit_reached" in err and '"still here"' in err
