"""The local Apache Kafka broker: pinned jars from Maven, a KRaft single node on 127.0.0.1."""
