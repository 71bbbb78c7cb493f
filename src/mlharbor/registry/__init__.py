"""Model registry: versions, stages, transition requests and approvals, events (outbox)."""
