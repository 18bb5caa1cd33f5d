"""The webhook ingress: authenticates, validates and publishes provider webhooks to Kafka."""
