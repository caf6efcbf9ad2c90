"""The business calendar over real HTTP: open days, closures with their reason, ranges, bad dates."""

from __future__ import annotations

import httpx

from tests.e2e.server import KanjoProcess


def test_calendar_over_http(kanjo_server: KanjoProcess) -> None:
    with httpx.Client(base_url=kanjo_server.base_url, timeout=10) as api:
        r = api.get("/v1/calendar/days/2025-05-06")
        assert r.status_code == 200
        assert r.json() == {
            "date": "2025-05-06", "business_day": False, "reason": "振替休日",
            "next_business_day": "2025-05-07", "previous_business_day": "2025-05-02",
            "month_end_business_day": "2025-05-30", "gotobi": False,
        }
        r = api.get("/v1/calendar/business-days", params={"start": "2025-12-27", "end": "2026-01-06"})
        assert r.json()["business_days"] == ["2025-12-29", "2025-12-30", "2026-01-05", "2026-01-06"]

        for bad in ("2025-02-30", "20250506", "2100-01-04", "1989-01-01"):
            r = api.get(f"/v1/calendar/days/{bad}")
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["error"] == "invalid_field"
        r = api.get("/v1/calendar/business-days", params={"start": "2025-01-01", "end": "2030-01-01"})
        assert r.status_code == 413 and r.json()["limit"] == "calendar_range_days_max"
        r = api.get("/v1/calendar/business-days", params={"start": "2025-01-02", "end": "2025-01-01"})
        assert r.status_code == 422
