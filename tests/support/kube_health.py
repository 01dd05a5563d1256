"""A stand-in for kube-proxy's health check server on a node (the Service's healthCheckNodePort).

kube-proxy answers ``GET /healthz`` with 200 when the node has ready local endpoints for the Service
and 503 when it has none; the JSON body counts them, and since Kubernetes 1.28 the header
``X-Load-Balancing-Endpoint-Weight`` carries the same count. ``endpoints`` can change while it runs.
"""

import http.server
import json
import threading

from anycastlb.lab.ports import free_port


class KubeProxyHealth:
    def __init__(self, address: str, endpoints: int, port: int | None = None, header: bool = True) -> None:
        self.address = address
        self.port = port or free_port()
        self.endpoints = endpoints
        self.header = header
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                count = owner.endpoints
                body = json.dumps(
                    {
                        "service": {"namespace": "default", "name": "web"},
                        "localEndpoints": count,
                        "serviceProxyHealthy": True,
                    }
                ).encode()
                self.send_response(200 if count > 0 else 503)
                self.send_header("Content-Type", "application/json")
                if owner.header:
                    self.send_header("X-Load-Balancing-Endpoint-Weight", str(count))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((address, self.port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "KubeProxyHealth":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
