"""kanjo (勘定): an open-source core banking system — the accounts, the money and the channels of a bank."""

__version__ = "0.1.0"
