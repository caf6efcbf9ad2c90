"""Platform: settings, database access, the embedded PostgreSQL, telemetry — the plumbing under every context."""
