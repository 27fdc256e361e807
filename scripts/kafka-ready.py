"""Readiness probe for a Kafka broker: exit 0 when HOST:PORT answers an ApiVersions request, 1 otherwise.

ApiVersions v0 is the first request every Kafka client sends (Kafka 4 still accepts v0 of it, so any broker can
answer); a broker that answers with our correlation id and error code 0 serves clients. Standard library only, so
scripts/kafka-broker.sh needs no virtualenv.
"""

import socket
import struct
import sys

CORRELATION_ID = 7


def answers(address: str, timeout: float = 1.0) -> bool:
    host, port = address.rsplit(":", 1)
    client = b"ready"
    body = struct.pack(">hhih", 18, 0, CORRELATION_ID, len(client)) + client  # api key 18 = ApiVersions, v0
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as connection:
            connection.sendall(struct.pack(">i", len(body)) + body)
            header = connection.recv(4)
            if len(header) < 4:
                return False
            size = struct.unpack(">i", header)[0]
            data = b""
            while len(data) < size:
                chunk = connection.recv(size - len(data))
                if not chunk:
                    break
                data += chunk
    except OSError:
        return False
    if len(data) < 6:
        return False
    correlation, error = struct.unpack(">ih", data[:6])
    return correlation == CORRELATION_ID and error == 0


if __name__ == "__main__":
    sys.exit(0 if answers(sys.argv[1]) else 1)
