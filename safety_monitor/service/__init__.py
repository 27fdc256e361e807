"""Service layer: handlers for batches of site messages, ports (Protocols) they need, delivery, read views."""
