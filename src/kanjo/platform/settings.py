"""Typed settings from the environment (KANJO_*), with safe defaults for a laptop."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KANJO_", extra="ignore")

    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; when unset kanjo starts an embedded PostgreSQL under var/"
    )
    var_dir: Path = Field(default=Path("var"), description="where the embedded PostgreSQL and run files live")
    embedded_pg_port: int = Field(default=55432, ge=1024, le=65535)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    db_pool_size_max: int = Field(default=16, ge=2, le=200)
    expiry_sweep_interval_ms: int = Field(default=1000, ge=10, le=60_000)
    batch_linger_us: int = Field(default=0, ge=0, le=100_000)
    log_level: str = "info"
    environment: str = Field(default="development", pattern="^(development|test|production)$")
    pin_key_hex: str | None = Field(
        default=None, pattern="^[0-9a-fA-F]{64}$",
        description="the 256-bit key of PIN verification values (KANJO_PIN_KEY_HEX); required in production,"
        " generated under var/ for development and tests",
    )
    atm_ack_timeout_s: int = Field(default=60, ge=1, le=60,
                                   description="an ATM confirms a cash-out within this, or the hold is voided")
    batch_scheduler: bool = Field(default=True, description="run each business date's jobs by themselves; off: a"
                                  " job starts only when an operator runs it (kanjo batch run)")
    batch_cut_off_time: str = Field(default="21:00", pattern="^([01][0-9]|2[0-3]):[0-5][0-9]$",
                                    description="not before this time in Japan does online move to the next date")
    batch_stale_after_s: float = Field(default=30.0, ge=2, le=3_600,
                                       description="a running job whose process has not beaten for this long is taken"
                                       " over (resumed from its checkpoint) by a live process")
    batch_first_business_date: dt.date | None = Field(default=None, description="the business date a new database"
                                                      " opens on (default: today's); an existing one keeps its own")
    capacity: str = Field(default="", max_length=2_000, pattern=r"^[a-z0-9_]+=[0-9]+(,[a-z0-9_]+=[0-9]+)*$|^$",
                          description="provisioned capacity limits, name=maximum[,name=maximum] (e.g."
                          " ledger_transfers_stored_max=500000000)")
    ops_evaluation_interval_s: float = Field(default=60.0, ge=0.5, le=3_600,
                                             description="how often alert rules and sources are evaluated (a drill"
                                             " shortens it to see its alerts within seconds)")
    faults_enabled: bool = Field(default=False, description="drills and benches: fault injection and seeding routes")


def load_settings() -> Settings:
    return Settings()
