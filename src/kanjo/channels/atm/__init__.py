"""The ATM channel: the Backend-for-Frontend of cash machines (docs/atm-protocol.md)."""
