#!/usr/bin/env python3
"""An independent gRPC health server for pathwatch's grpc tests (Python grpcio and
grpcio-health-checking: the gRPC project's own server and health servicer, not pathwatch's).

Serves grpc.health.v1.Health on 127.0.0.1, plaintext on a port of its own choosing and, with
--tls-cert and --tls-key, TLS on a second one. Its first stdout line is
`listening PLAIN_PORT TLS_PORT` (TLS_PORT 0 without TLS). The overall health ("") and
--service start SERVING. Then it reads commands from stdin, one a line, and answers each with
`ok COMMAND` once applied:

  serving       the overall health and --service answer SERVING
  not_serving   both answer NOT_SERVING
  unknown       both answer SERVICE_UNKNOWN
  down          stop the server (connections are refused from then on) and exit

A service name the server never had answers the gRPC status NOT_FOUND (the servicer's own
behaviour).

(Not named grpc_health.py: the script's folder comes first on sys.path, and that name would
shadow the grpc_health package it imports.)
"""

import argparse
import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

STATES = {
    "serving": health_pb2.HealthCheckResponse.SERVING,
    "not_serving": health_pb2.HealthCheckResponse.NOT_SERVING,
    "unknown": health_pb2.HealthCheckResponse.SERVICE_UNKNOWN,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--service", default="pathwatch.test.Echo")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    opts = p.parse_args()

    servicer = health.HealthServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    plain = server.add_insecure_port("127.0.0.1:0")
    tls = 0
    if opts.tls_cert and opts.tls_key:
        with open(opts.tls_key, "rb") as k, open(opts.tls_cert, "rb") as c:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        tls = server.add_secure_port("127.0.0.1:0", creds)
    for name in ("", opts.service):
        servicer.set(name, STATES["serving"])
    server.start()
    print(f"listening {plain} {tls}", flush=True)

    for line in sys.stdin:
        command = line.strip()
        if command in STATES:
            for name in ("", opts.service):
                servicer.set(name, STATES[command])
        elif command == "down":
            server.stop(None).wait()
            print("ok down", flush=True)
            return
        elif command:
            print(f"unknown command {command!r}", flush=True)
            continue
        print(f"ok {command}", flush=True)
    # stdin closed (the test ended): stop.
    server.stop(None)


if __name__ == "__main__":
    main()
