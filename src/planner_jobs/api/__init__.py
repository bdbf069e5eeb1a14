"""The small HTTP API: exports, push subscriptions, health and metrics."""
