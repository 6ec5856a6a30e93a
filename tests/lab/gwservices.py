"""What a school filter runs on the gateway, one mode per process (asyncio).

    python -m tests.lab.gwservices blockpage --listen 10.77.1.1:80 [--tls-listen A:443 --cert PEM]
    python -m tests.lab.gwservices intercept --listen 10.77.1.1:8443 --cert FOREIGN_PEM
    python -m tests.lab.gwservices sever --listen 10.77.1.1:18765 --after 2
    python -m tests.lab.gwservices proxy --listen 10.77.1.1:3128

- ``blockpage``: every HTTP request gets ``403`` and a page naming ``BLOCK_PAGE_MARKER``;
  with ``--tls-listen`` the same behind the filter's own certificate.
- ``intercept``: transparent TLS man-in-the-middle. Connections redirected here (iptables
  DNAT) are answered with the filter's certificate, then relayed over a new TLS
  connection to the original destination (SO_ORIGINAL_DST) and SNI.
- ``sever``: transparent TCP relay to the original destination that resets both sides
  ``--after`` seconds after the connection opened (a firewall session limit).
- ``proxy``: explicit HTTP proxy: ``CONNECT host:port`` tunnels and absolute-URI requests;
  ``GET /proxy.pac`` returns a PAC file pointing at itself.

Each prints ``ready`` on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import ssl
import struct
import sys
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

BLOCK_PAGE_MARKER = "Blocked by Lab Filter"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
SO_ORIGINAL_DST = 80
HEAD_LIMIT = 65536


def hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def original_dst(writer: asyncio.StreamWriter) -> tuple[str, int]:
    """Where the client meant to go before the gateway's DNAT sent it here."""
    sock: socket.socket = writer.get_extra_info("socket")
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, addr = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(addr), port


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        if not writer.can_write_eof():
            writer.close()


async def relay(a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                b: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    try:
        await asyncio.gather(pipe(a[0], b[1]), pipe(b[0], a[1]))
    finally:
        for w in (a[1], b[1]):
            w.close()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a firewall dropping the session does."""
    sock: socket.socket | None = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def respond(writer: asyncio.StreamWriter, status: str, body: bytes = b"",
            ctype: str = "text/plain") -> None:
    """Write a whole ``Connection: close`` response and close."""
    writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                 "Connection: close\r\n\r\n".encode() + body)
    writer.close()


# ------------------------------------------------------------------ modes
async def blockpage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                             ConnectionError, ssl.SSLError):
        head = await read_head(reader)
        host = next((line.split(b":", 1)[1].strip().decode("latin-1")
                     for line in head.split(b"\r\n") if line.lower().startswith(b"host:")), "?")
        body = (f"<html><body><h1>{BLOCK_PAGE_MARKER}</h1><p>{host} is not allowed on this "
                "network.</p></body></html>").encode()
        respond(writer, "403 Forbidden", body, "text/html; charset=utf-8")
        return
    writer.close()


def make_intercept(sni: dict[int, str]) -> Handler:
    upstream_ctx = ssl.create_default_context()
    upstream_ctx.check_hostname = False
    upstream_ctx.verify_mode = ssl.CERT_NONE

    async def intercept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        addr, port = original_dst(writer)
        name = sni.pop(id(writer.get_extra_info("ssl_object")), None)
        try:
            upstream = await asyncio.open_connection(addr, port, ssl=upstream_ctx,
                                                     server_hostname=name or addr)
        except (OSError, ssl.SSLError):
            writer.close()
            return
        await relay((reader, writer), upstream)

    return intercept


def make_sever(after_s: float) -> Handler:
    async def sever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        addr, port = original_dst(writer)
        try:
            upstream = await asyncio.open_connection(addr, port)
        except OSError:
            reset(writer)
            return
        try:
            await asyncio.wait_for(relay((reader, writer), upstream), after_s)
        except TimeoutError:
            reset(writer)
            reset(upstream[1])

    return sever


def make_proxy(listen: tuple[str, int]) -> Handler:
    pac = (f'function FindProxyForURL(url, host) {{ return "PROXY {listen[0]}:{listen[1]}"; }}\n'
           ).encode()

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await read_head(reader)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        method, target, _version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        if method == "CONNECT":
            await tunnel(reader, writer, target)
        elif target.startswith("http://"):
            await forward(reader, writer, method, target, head)
        elif target == "/proxy.pac":
            respond(writer, "200 OK", pac, "application/x-ns-proxy-autoconfig")
        else:
            respond(writer, "400 Bad Request", f"cannot proxy {target!r}".encode())

    return proxy


async def tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: str) -> None:
    host, port = hostport(target)
    try:
        upstream = await asyncio.open_connection(host, port)
    except OSError as e:
        respond(writer, "502 Bad Gateway", f"{target}: {e}".encode())
        return
    writer.write(b"HTTP/1.1 200 Connection established\r\nVia: 1.1 lab-proxy\r\n\r\n")
    await writer.drain()
    await relay((reader, writer), upstream)


async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str,
                  target: str, head: bytes) -> None:
    url = urlsplit(target)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    lines = [line for line in head.split(b"\r\n")[1:] if line and not line.lower().startswith(
        (b"proxy-connection:", b"connection:"))]
    request = (f"{method} {path} HTTP/1.1\r\n".encode() + b"\r\n".join(lines)
               + b"\r\nConnection: close\r\nVia: 1.1 lab-proxy\r\n\r\n")
    try:
        upstream = await asyncio.open_connection(url.hostname, url.port or 80)
    except OSError as e:
        respond(writer, "502 Bad Gateway", f"{target}: {e}".encode())
        return
    upstream[1].write(request)
    await relay((reader, writer), upstream)


# ------------------------------------------------------------------ main
def tls_context(cert: str, sni: dict[int, str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert)
    if sni is not None:
        def remember(obj: ssl.SSLObject | ssl.SSLSocket, name: str | None,
                     _ctx: ssl.SSLContext) -> None:
            if name:
                sni[id(obj)] = name

        ctx.sni_callback = remember  # type: ignore[assignment]
    return ctx


async def serve(args: argparse.Namespace) -> None:
    listen = hostport(args.listen)
    servers = []
    if args.mode == "blockpage":
        servers.append(await asyncio.start_server(blockpage, *listen))
        if args.tls_listen:
            servers.append(await asyncio.start_server(blockpage, *hostport(args.tls_listen),
                                                      ssl=tls_context(args.cert)))
    elif args.mode == "intercept":
        sni: dict[int, str] = {}
        servers.append(await asyncio.start_server(make_intercept(sni), *listen,
                                                  ssl=tls_context(args.cert, sni)))
    elif args.mode == "sever":
        servers.append(await asyncio.start_server(make_sever(args.after), *listen))
    else:
        servers.append(await asyncio.start_server(make_proxy(listen), *listen))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.lab.gwservices", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["blockpage", "intercept", "sever", "proxy"])
    p.add_argument("--listen", required=True, help="ADDRESS:PORT")
    p.add_argument("--tls-listen", help="blockpage: also serve HTTPS here")
    p.add_argument("--cert", help="PEM with key and chain (the filter's own CA)")
    p.add_argument("--after", type=float, default=60.0, help="sever: seconds before the reset")
    args = p.parse_args(argv)
    if args.mode == "intercept" and not args.cert or args.tls_listen and not args.cert:
        p.error("--cert is required for intercept and --tls-listen")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
