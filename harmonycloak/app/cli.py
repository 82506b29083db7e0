"""`harmonycloak serve`: the app on this computer only, unless `--host` says otherwise.

    harmonycloak serve [--host 127.0.0.1] [--port 8000] [--max-upload-mb N] [--max-queue N]

The server's packages (FastAPI, uvicorn, python-multipart) come with the `app` extra and are
imported only when the command runs.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys

from harmonycloak import settings as defaults
from harmonycloak.app.app_settings import AppSettings
from harmonycloak.errors import HarmonyCloakError, SettingsError
from harmonycloak.settings import ProtectionSettings

LOOPBACK_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def add_serve_command(commands: argparse._SubParsersAction, command) -> None:
    """Add `serve`, made by the main parser's ``command(subparsers, name, help, *examples)``."""
    serve = command(commands, "serve", "a web page to protect music in your browser (this computer only)",
                    "harmonycloak serve                 # then open the address it prints",
                    "harmonycloak serve --port 0 --max-upload-mb 200")
    serve.add_argument("--host", default=LOOPBACK_HOST,
                       help=f"address to listen on (default {LOOPBACK_HOST}: this computer only; "
                            "0.0.0.0 lets anyone on your network use it, with no password)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free one)")
    serve.add_argument("--max-upload-mb", type=float, default=AppSettings.max_upload_mb,
                       help=f"largest file a page may upload, in MB (default {AppSettings.max_upload_mb:g})")
    serve.add_argument("--max-queue", type=int, default=AppSettings.max_queue,
                       help=f"files waiting or running at once (default {AppSettings.max_queue})")
    serve.add_argument("--device", choices=defaults.DEVICES, default=ProtectionSettings.device,
                       help="where protection runs: auto (a CUDA GPU when there is one), cpu or cuda")
    serve.add_argument("--preset", choices=defaults.MODEL_PRESETS, default=ProtectionSettings.model_preset,
                       help=argparse.SUPPRESS)
    serve.set_defaults(run=run_serve)


def run_serve(arguments: argparse.Namespace) -> int:
    try:
        import uvicorn

        from harmonycloak.app.server import create_app
    except ImportError as error:
        raise HarmonyCloakError(f"harmonycloak serve needs the app's packages ({error.name} is missing): "
                                "pip install 'harmonycloak[app]'") from None
    app = create_app(AppSettings(max_upload_mb=arguments.max_upload_mb, max_queue=arguments.max_queue,
                                 model_preset=arguments.preset, device=arguments.device))
    listening = bind(arguments.host, arguments.port)
    print(f"harmonycloak app: open {address(listening)} in your browser (Ctrl-C stops it and removes its files)",
          flush=True)
    if not is_loopback(arguments.host):
        print(f"warning: listening on {arguments.host}: other computers can reach this page, with no password",
              file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    try:
        server.run(sockets=[listening])
    except KeyboardInterrupt:  # Ctrl-C is how the app stops: uvicorn has shut it down (files removed) by now
        pass
    print("harmonycloak app: stopped, its files removed", flush=True)
    return 0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 takes a free one.

    Raises:
        SettingsError: the address cannot be used (taken, not this computer's, bad port).
    """
    if not 0 <= port <= 65535:
        raise SettingsError(f"the port must be 0 to 65535, not {port}")
    try:
        family, kind, protocol, _name, where = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listening = socket.socket(family, kind, protocol)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(where)
        listening.listen(64)
    except OSError as error:
        raise SettingsError(f"cannot listen on {host}:{port} ({error.strerror or error})") from None
    return listening


def address(listening: socket.socket) -> str:
    """The page's address on a bound socket, e.g. http://127.0.0.1:8000/."""
    host, port = listening.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
