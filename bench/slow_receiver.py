#!/usr/bin/env python3
"""A receiver that answers every request after a delay, for holding
thousands of deliveries in flight at once (bench/run's memory measure).

    slow_receiver.py [--cert C --key K] --delay 5 --port-file F [--log L]

HTTPS with a certificate, else plain HTTP (as nginx's upstream). HTTP/1.1
only (ALPN offers nothing else), so each request in flight holds its own
connection, as a slow customer endpoint would. asyncio on one thread:
10,000 connections cost a few hundred bytes of Python each, where the test
receiver (libmicrohttpd, a thread per connection) could not accept them all
at once. Each finished request appends one line, "<unix seconds>", to the log.
"""
import argparse
import asyncio
import os
import ssl
import time

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


async def serve(reader, writer, delay, log):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            await asyncio.sleep(delay)
            writer.write(RESPONSE)
            await writer.drain()
            log.write("%.3f\n" % time.time())
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, ValueError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--delay", type=float, default=5.0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", default=os.devnull)
    a = ap.parse_args()
    tls = {}
    if a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
        ctx.set_alpn_protocols(["http/1.1"])
        tls = {"ssl": ctx, "ssl_handshake_timeout": 60}
    log = open(a.log, "a", buffering=1)
    server = await asyncio.start_server(lambda r, w: serve(r, w, a.delay, log), "127.0.0.1", 0,
                                        backlog=65535, **tls)
    port = server.sockets[0].getsockname()[1]
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, a.port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
