"""The business calendar: which days a Japanese bank is open, and the business date kept apart from the clock."""

from kanjo.business_calendar.business_date import BusinessDate, FixedBusinessDate, business_date_of
from kanjo.business_calendar.model import YEAR_MAX, YEAR_MIN, BankCalendar, DateOutOfRange, DayInfo

__all__ = [
    "YEAR_MAX",
    "YEAR_MIN",
    "BankCalendar",
    "BusinessDate",
    "DateOutOfRange",
    "DayInfo",
    "FixedBusinessDate",
    "business_date_of",
]
