"""The hub (取引メイン/メインハブ): every channel's calls to products, through bulkheads, breakers and deadlines."""

from kanjo.hub.faults import FaultMode, InjectedFault
from kanjo.hub.model import (
    DEFAULT_PARTITIONS,
    AdmissionPolicy,
    BreakerState,
    DeadlineExceeded,
    HubError,
    NotRouted,
    Partition,
    PartitionBusy,
    PartitionPolicy,
    Priority,
    ProductFailed,
    ProductPolicy,
    ProductUnavailable,
    Shed,
    ShedLevel,
    UnknownProduct,
)
from kanjo.hub.service import Hub

__all__ = [
    "DEFAULT_PARTITIONS",
    "AdmissionPolicy",
    "BreakerState",
    "DeadlineExceeded",
    "FaultMode",
    "Hub",
    "HubError",
    "InjectedFault",
    "NotRouted",
    "Partition",
    "PartitionBusy",
    "PartitionPolicy",
    "Priority",
    "ProductFailed",
    "ProductPolicy",
    "ProductUnavailable",
    "Shed",
    "ShedLevel",
    "UnknownProduct",
]
