#!/usr/bin/env python3
"""A TLS terminator in front of a plaintext Kafka-protocol broker.

Tansu speaks plaintext only, so the TLS tests put this in front of it, as a
load balancer or a service mesh terminates TLS in front of a broker: clients
connect with TLS to --listen, the proxy verifies their certificate when
--client-ca is given (mutual TLS) and forwards the bytes to --upstream. Start
the broker with `scripts/broker.sh start --port UPSTREAM --advertise LISTEN`
so that its metadata sends clients back through the proxy.

Prints `listening HOST:PORT` once it accepts connections, then one line per
connection: `accepted CN` (the client certificate's common name, `-` without
one) or `handshake failed: REASON`.

    scripts/tls_proxy.py --listen 127.0.0.1:19093 --upstream 127.0.0.1:19092 \
        --cert server.crt --key server.key [--client-ca ca.crt]
"""

import argparse
import socket
import ssl
import sys
import threading


def address(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def say(line):
    print(line, flush=True)


def pump(src, dst):
    """Copies src to dst until either side closes, then closes both."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def common_name(cert):
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return "-"


def serve(conn, ctx, upstream):
    conn.settimeout(10)
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as e:
        say(f"handshake failed: {getattr(e, 'reason', None) or e}")
        conn.close()
        return
    tls.settimeout(None)
    say(f"accepted {common_name(tls.getpeercert())}")
    try:
        plain = socket.create_connection(upstream, timeout=10)
    except OSError as e:
        say(f"upstream {upstream[0]}:{upstream[1]} refused: {e}")
        tls.close()
        return
    plain.settimeout(None)
    threading.Thread(target=pump, args=(tls, plain), daemon=True).start()
    pump(plain, tls)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", type=address, required=True)
    p.add_argument("--upstream", type=address, required=True)
    p.add_argument("--cert", required=True, help="server certificate (PEM)")
    p.add_argument("--key", required=True, help="server private key (PEM)")
    p.add_argument("--client-ca", help="require client certificates signed by this CA (PEM)")
    args = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args.client_ca)

    server = socket.create_server(args.listen, reuse_port=False)
    say(f"listening {args.listen[0]}:{server.getsockname()[1]}")
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn, ctx, args.upstream), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
