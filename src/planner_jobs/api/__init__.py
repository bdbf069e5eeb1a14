"""The HTTP API: exports, push subscriptions, the way in of other services (`/internal/`),
probes and metrics, and the operators' dashboard (`/admin`)."""
