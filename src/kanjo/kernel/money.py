"""Currencies and their minor-unit scales. A ledger number is the ISO 4217 numeric code of its currency."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    ledger: int  # ISO 4217 numeric code; the ledger's number
    scale: int  # digits after the decimal point of one major unit; JPY has none

    def format_minor(self, amount_minor: int) -> str:
        if self.scale == 0:
            return f"{amount_minor:,} {self.code}"
        sign = "-" if amount_minor < 0 else ""
        whole, frac = divmod(abs(amount_minor), 10**self.scale)
        return f"{sign}{whole:,}.{frac:0{self.scale}d} {self.code}"


CURRENCIES: dict[int, Currency] = {
    c.ledger: c
    for c in (
        Currency("JPY", 392, 0),
        Currency("USD", 840, 2),
        Currency("EUR", 978, 2),
        Currency("GBP", 826, 2),
        Currency("CNY", 156, 2),
        Currency("AUD", 36, 2),
    )
}


def currency_for_ledger(ledger: int) -> Currency | None:
    return CURRENCIES.get(ledger)
