"""The open API channel: the Backend-for-Frontend of third-party providers (電子決済等代行業者, docs/openapi.md)."""
