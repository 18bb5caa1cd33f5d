"""Traffic for an ingress: simulated provider webhooks with their ground truth, recorded bodies
replayed, and topics captured to replay (docs/traffic.md)."""
