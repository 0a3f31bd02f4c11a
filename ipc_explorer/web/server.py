"""The web server behind ``ipc-explorer serve``: textual-serve's page and terminal, one app
process per tab up to a limit, requests only for this server's own name and from its own
page, and each tab's app ended and waited for when the tab closes or the server stops."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import itertools
import json
import os
import re
import shlex
import signal
import socket
import sys
from collections.abc import Callable
from html import escape

import aiohttp_jinja2
from aiohttp import WSCloseCode, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

#: How long a tab's app has to go after SIGTERM (its clean quit, with a hard exit of its own
#: 4 s later), then after SIGKILL.
END_STEP_S = 5.0
#: The Host headers the server answers: a name or an address, and a port.
HOST_HEADER = re.compile(r"([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:\d+)?")
WILDCARDS = {"0.0.0.0", "::", ""}
REFUSAL_PAGE = """<!DOCTYPE html>
<html><head><title>{title}: every session in use</title></head>
<body style="background:#0c181f;color:#eee;font:20px monospace;padding:3em">
<p>{message}</p></body></html>
"""


class ServeError(Exception):
    """The server cannot start: said in one line."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def urls_for(host: str, port: int) -> list[str]:
    """What to open: on every address, this machine's loopback and its name for the others."""
    here = "::1" if host == "::" else "127.0.0.1"  # "::" is IPv6 only, as asyncio binds it
    names = [here, os.uname().nodename] if host in WILDCARDS else [host]
    return [f"http://[{n}]:{port}/" if ":" in n else f"http://{n}:{port}/" for n in names]


class TabServer(Server):
    """textual-serve's server with the limit and the checks ``serve`` promises."""

    def __init__(
        self,
        app_args: list[str],
        *,
        host: str,
        port: int,
        max_sessions: int,
        title: str,
        say: Callable[[str], None] = print,
        warn: Callable[[str], None] = print,
    ) -> None:
        tab = [sys.executable, "-m", "ipc_explorer.web.tab", "--server-pid", str(os.getpid())]
        # textual-serve runs the command through a shell; exec leaves no shell in between.
        command = "exec " + shlex.join([*tab, "--", *app_args])
        super().__init__(command, host=host, port=port, title=title)
        self.max_sessions = max_sessions
        self.say, self.warn = say, warn
        self.loopback_only = is_loopback(host)
        self.urls: list[str] = []
        self._tabs: dict[web.WebSocketResponse, TabApp] = {}
        self._sockets: set[web.WebSocketResponse] = set()  # refused pages' too
        self._numbers = itertools.count(1)

    @property
    def full(self) -> bool:
        return len(self._tabs) >= self.max_sessions

    def refusal(self) -> str:
        return (
            f"Every session of this ipc-explorer server is in use ({self.max_sessions} at most): "
            "no app was started for this tab. Reload the page when another tab has closed."
        )

    # -- serving -------------------------------------------------------------------------------
    def run(self) -> None:
        """Serve until SIGINT, SIGTERM or SIGHUP, then end every tab; ServeError if the
        address cannot be listened on."""
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        runner = web.AppRunner(
            await self._make_app(),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=2 * END_STEP_S + 5,  # every tab's end, at once
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            if isinstance(exc, socket.gaierror):  # the address is no address
                reason = exc.strerror
            else:  # asyncio's strerror repeats the address
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
            if exc.errno == errno.EADDRINUSE:
                reason += " (another server? --port chooses another)"
            raise ServeError(f"cannot listen on {self.host} port {self.port}: {reason}") from None
        self.urls = urls_for(self.host, runner.addresses[0][1])
        if not self.loopback_only:
            self.warn(
                f"serving on {self.host}: anyone who can reach it can drive processes on "
                "this machine"
            )
        limit = f"at most {self.max_sessions} at once"
        self.say(f"{self.title}: each tab runs its own app, {limit} (ctrl+c stops)")
        self.say(f"open {' or '.join(self.urls)} in a web browser")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        if self._tabs:
            self.say(f"stopping: ending {len(self._tabs)} tab(s)")
        await runner.cleanup()
        self.say("stopped")

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._only_our_name)
        return app

    async def on_startup(self, app: web.Application) -> None:
        """Nothing: ``_serve`` says where to go once it listens (textual-serve prints a logo)."""

    async def on_shutdown(self, app: web.Application) -> None:
        """Every page's socket closed: each tab's handler then ends its app."""
        closing = [
            ws.close(code=WSCloseCode.GOING_AWAY, message=b"the server stopped")
            for ws in list(self._sockets)
        ]
        await asyncio.gather(*closing, return_exceptions=True)

    @web.middleware
    async def _only_our_name(self, request: web.Request, handler) -> web.StreamResponse:
        """On loopback, requests for another name are refused: a page elsewhere cannot reach
        this server through a DNS name of its own that points here (DNS rebinding)."""
        host = request.headers.get("Host", "")
        match = HOST_HEADER.fullmatch(host)
        if match is None:
            raise web.HTTPBadRequest(text="bad Host header")
        if self.loopback_only and not is_loopback(match.group(1)):
            raise web.HTTPForbidden(text="this server answers for this machine's loopback only")
        return await handler(request)

    # -- a page and its tab --------------------------------------------------------------------
    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        """The page, with addresses as the browser reached us (not as we were bound)."""
        if self.full:
            self.say("a tab was refused: every session is in use")
            page = REFUSAL_PAGE.format(title=escape(self.title), message=escape(self.refusal()))
            return web.Response(status=503, text=page, content_type="text/html")
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"ws://{request.host}/ws",
            "config": {"static": {"url": f"{request.scheme}://{request.host}/static/"}},
            "application": {"name": self.title},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One tab: an app process of its own, or the refusal when every session is in use.
        Only this server's page may open one (browsers let any site open a websocket)."""
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            raise web.HTTPForbidden(text="only this server's own page may open a session")
        ws = web.WebSocketResponse(heartbeat=15)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            if self.full:
                await self._refuse(ws)
            else:
                width = to_int(request.query.get("width", "80"), 80)
                height = to_int(request.query.get("height", "24"), 24)
                await self._run_tab(ws, min(max(width, 20), 1000), min(max(height, 5), 500))
        finally:
            self._sockets.discard(ws)
        return ws

    async def _refuse(self, ws: web.WebSocketResponse) -> None:
        """The refusal in the page's terminal; the socket stays open until the page goes (a
        closed one would cover the page with textual-serve's "Session ended")."""
        self.say("a tab was refused: every session is in use")
        await ws.send_bytes(f"\r\n  {self.refusal()}\r\n".encode())
        async for _message in ws:
            pass

    async def _run_tab(self, ws: web.WebSocketResponse, width: int, height: int) -> None:
        tab = TabApp(
            self.command,
            write_bytes=ws.send_bytes,
            write_str=ws.send_str,
            close=ws.close,
            download_manager=self.download_manager,
        )
        self._tabs[ws] = tab
        name = f"tab {next(self._numbers)}"
        self.say(f"{name} opened ({len(self._tabs)} of {self.max_sessions} sessions)")
        try:
            await tab.start(width, height)
            await self._process_messages(ws, tab)
        except Exception as exc:  # a page that sends what no page of ours sends
            self.say(f"{name}: {type(exc).__name__} {exc}".rstrip())
        finally:
            await self._end(tab, name)
            del self._tabs[ws]
            self.say(f"{name} closed ({len(self._tabs)} of {self.max_sessions} sessions)")

    async def _end(self, tab: TabApp, name: str) -> None:
        """End the app (its clean quit, see TabApp) and wait for the process itself; one that
        has not gone in time, though its own hard exit comes 4 s after SIGTERM, gets SIGKILL."""

        async def gone() -> None:
            await tab.stop()  # SIGTERM, then its output to the end
            if tab.process is not None:
                await tab.process.wait()

        ending = asyncio.ensure_future(gone())
        await asyncio.wait({ending}, timeout=END_STEP_S)
        if not ending.done() and tab.process is not None:
            self.say(f"{name}: its app did not quit in {END_STEP_S:g} s; SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                tab.process.kill()
            await asyncio.wait({ending}, timeout=END_STEP_S)
        if not ending.done():
            ending.cancel()
            self.say(f"{name}: its app could not be ended")
        elif not ending.cancelled() and ending.exception() is not None:
            self.say(f"{name}: {ending.exception()}")


class TabApp(AppService):
    """textual-serve's app process, ended the app's own clean way: SIGTERM (children stopped,
    kernel objects removed, a private broker stopped) instead of textual-serve's quit message,
    which exits at once and leaves that to the app's exit hook; and its output read to the end
    even once the page has gone, so that the app never blocks writing it."""

    page_gone = False
    #: The app said it is leaving (q in the tab): a SIGTERM now would find it half gone.
    app_leaving = False

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        return getattr(self, "_process", None)  # where textual-serve 1.1 keeps it

    async def send_meta(self, data: dict[str, str | None | int | bool]) -> bool:
        if data.get("type") != "quit" or self.process is None:
            return await super().send_meta(data)
        if self.app_leaving:
            return True
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        return True

    async def on_data(self, payload: bytes) -> None:
        if not self.page_gone:
            try:
                await super().on_data(payload)
            except ConnectionError:
                self.page_gone = True

    async def on_meta(self, data: bytes) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            self.app_leaving |= json.loads(data).get("type") == "exit"
        if not self.page_gone:
            try:
                await super().on_meta(data)
            except ConnectionError:
                self.page_gone = True
