"""Settings of the teller channel (KANJO_TELLER_*): the maker-checker thresholds, how long a request waits for a
checker, how long a session lasts. Each is bounded by its named limit."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kanjo.channels.teller.limits import (
    APPROVAL_THRESHOLD_MAX_MINOR,
    PENDING_EXPIRY_S_MAX,
    SESSION_IDLE_S_MAX,
    SESSION_TTL_S_MAX,
)
from kanjo.channels.teller.model import APPROVAL_THRESHOLD_DEFAULT_MINOR, MONETARY, Kind, Policy


class TellerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KANJO_TELLER_", extra="ignore")

    approval_threshold_minor: int = Field(
        default=APPROVAL_THRESHOLD_DEFAULT_MINOR, ge=0, le=APPROVAL_THRESHOLD_MAX_MINOR,
        description="a request moving more than this (yen) waits for a supervisor's approval")
    approval_thresholds_minor: dict[Kind, int] = Field(
        default_factory=dict,
        description='per kind, as JSON: {"cash_withdrawal": 500000}; kinds not named use approval_threshold_minor')
    pending_expiry_s: int = Field(default=1_800, ge=1, le=PENDING_EXPIRY_S_MAX,
                                  description="a request nobody checked within this expires")
    session_ttl_s: int = Field(default=28_800, ge=60, le=SESSION_TTL_S_MAX)
    session_idle_s: int = Field(default=1_800, ge=60, le=SESSION_IDLE_S_MAX)

    @field_validator("approval_thresholds_minor")
    @classmethod
    def _monetary_and_bounded(cls, value: dict[Kind, int]) -> dict[Kind, int]:
        for kind, threshold in value.items():
            if kind not in MONETARY:
                raise ValueError(f"{kind.value} moves no money: only {sorted(k.value for k in MONETARY)} have"
                                 " thresholds")
            if not 0 <= threshold <= APPROVAL_THRESHOLD_MAX_MINOR:
                raise ValueError(f"the threshold of {kind.value} must be 0..{APPROVAL_THRESHOLD_MAX_MINOR}")
        return value

    def policy(self) -> Policy:
        return Policy(self.approval_threshold_minor, dict(self.approval_thresholds_minor), self.pending_expiry_s)
