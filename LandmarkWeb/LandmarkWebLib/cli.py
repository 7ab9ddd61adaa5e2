"""``landmark-detection-web``: the front door. Each new browser tab gets its own session process (its own
MRML scene, Logic objects and event loop) on a free loopback port, and is redirected to it."""

from __future__ import annotations

import argparse
import http.server
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from .session import IDLE_SECONDS

MAX_SESSIONS = 8


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_listening(host: str, port: int, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Block until the session answers on ``port``; RuntimeError when it died first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"session process ended with status {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("session did not start in time")


class Sessions:
    """The session processes this front door started; ended with it."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.processes: list[subprocess.Popen] = []
        self.lock = threading.Lock()

    def start(self) -> int:
        with self.lock:
            self.processes = [p for p in self.processes if p.poll() is None]
            if len(self.processes) >= MAX_SESSIONS:
                raise RuntimeError(f"{MAX_SESSIONS} sessions are open; close a tab first")
            port = free_port(self.args.host)
            command = [sys.executable, "-m", "LandmarkWebLib.session", "--port", str(port),
                       "--host", self.args.host, "--max-upload-mb", str(self.args.max_upload_mb),
                       "--idle-seconds", str(self.args.idle_seconds)]  # fmt: skip
            if self.args.data_folder:
                command += ["--data-folder", str(self.args.data_folder)]
            process = subprocess.Popen(command)
            self.processes.append(process)
        wait_listening(self.args.host, port, process)
        return port

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=10)


def handler(sessions: Sessions) -> type:
    class FrontDoor(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            try:
                port = sessions.start()
            except RuntimeError as error:
                self.send_error(503, str(error))
                return
            self.send_response(302)
            host = (self.headers.get("Host") or sessions.args.host).rsplit(":", 1)[0]
            self.send_header("Location", f"http://{host}:{port}/index.html")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    return FrontDoor


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="landmark-detection-web", description=__doc__)
    parser.add_argument("--port", type=int, default=8080, help="front-door port (default 8080)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    parser.add_argument("--data-folder", type=Path, help="server-side folder the pages may read files from")
    parser.add_argument("--max-upload-mb", type=float, default=200.0, help="largest upload accepted (MiB)")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=IDLE_SECONDS,
        help=f"a tab's session ends this long after the tab closed (default {IDLE_SECONDS:g})",
    )
    args = parser.parse_args(argv)
    if args.data_folder is not None and not args.data_folder.is_dir():
        parser.error(f"--data-folder: '{args.data_folder}' is not a folder")
    if not 1 <= args.idle_seconds <= 86400:
        parser.error(f"--idle-seconds: must be in [1, 86400], got {args.idle_seconds}")
    return args


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sessions = Sessions(args)
    signal.signal(signal.SIGTERM, _interrupt)  # a terminated front door ends its sessions too
    server = http.server.ThreadingHTTPServer((args.host, args.port), handler(sessions))
    print(f"landmark-detection-web: open http://{args.host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sessions.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
