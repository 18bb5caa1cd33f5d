"""callstream: OMICall call events from webhook to Kafka topics, call state and metrics."""

__version__ = "0.1.0"
