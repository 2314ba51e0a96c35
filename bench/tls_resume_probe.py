#!/usr/bin/env python3
"""Does a TLS client resume sessions? A probe server for bench/https_bench.sh.

    tls_resume_probe.py CERT KEY PORT_FILE

Serves HTTPS on a free 127.0.0.1 port (written to PORT_FILE once listening) with Python's
ssl module, that is OpenSSL: TLS 1.2 and 1.3, session ids and tickets (two per TLS 1.3
handshake, OpenSSL's default), so any client that offers a session gets it resumed. Every
request but /-/stats gets a small HTTP/1.1 200 with a Content-Length, closed after the answer
when the client sends `Connection: close` or speaks HTTP/1.0 (so ab, h2load, wrk and
`openssl s_time` all get one request per connection if they ask for it). GET /-/stats answers
one line, OpenSSL's counters for the context (SSL_CTX_sess_*):

    accept=N hits=N misses=N

`hits` counts resumed handshakes, by session id or ticket; `accept` all handshakes (the
/-/stats request itself included). The difference of two readings around one client's run
says how many of its connections resumed. Runs until killed.
"""

import http.server
import socketserver
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/-/stats":
            s = self.server.context.session_stats()
            body = f"accept={s['accept']} hits={s['hits']} misses={s['misses']}\n".encode()
        else:
            body = b'{"token":"probe"}\n'
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, context):
        self.context = context
        super().__init__(("127.0.0.1", 0), Handler)

    def get_request(self):
        sock, addr = super().get_request()
        # The handshake happens in the handler's thread, on first read.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def shutdown_request(self, request):
        # close_notify first: OpenSSL clients drop a session whose connection ended in a
        # bare EOF, and would then have nothing to resume.
        try:
            request.unwrap()
        except (OSError, ValueError):
            pass
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        pass  # a client closing mid-handshake is none of the probe's business


def main():
    cert, key, port_file = sys.argv[1:4]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Server(context)
    with open(port_file, "w") as f:
        f.write(f"{server.server_address[1]}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
