"""``ipc-explorer serve``: the app in a real browser (the distribution's Chromium), each tab its
own app process, the limit on tabs, and nothing left behind when a tab or the server goes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from .browser import (
    CHROMIUM,
    launch,
    open_tab,
    press,
    start_serve,
    stop_serve,
    wait_for_screen,
)
from .conftest import run_cli, shm_entries, temp_dirs, wait_until

pytestmark = pytest.mark.timeout(60)

if not os.access(CHROMIUM, os.X_OK):
    missing = f"{CHROMIUM} not found: `apt-get install chromium` (as .ci/run does)"
    if os.environ.get("IPCX_REQUIRE_CHROMIUM"):  # .ci/run: a failure there, not a skip
        pytest.fail(missing, pytrace=False)
    pytest.skip(missing, allow_module_level=True)

sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def browser(chromium):
    """A fresh browser profile for each test; its pages are closed whatever the test did."""
    context = chromium.new_context()
    yield context
    context.close()


@dataclass
class Served:
    proc: subprocess.Popen
    server: psutil.Process
    url: str


@pytest.fixture
def serve():
    """Start ``serve`` with the given options; stopped (as ctrl+c does) after the test."""
    started: list[Served] = []

    def start(*args: str) -> Served:
        proc, url = start_serve(*args)
        started.append(Served(proc, psutil.Process(proc.pid), url))
        return started[-1]

    yield start
    for served in started:
        stop_serve(served.proc)


def tabs_of(server: psutil.Process) -> list[psutil.Process]:
    """The server's app processes (one per tab), not those that have just ended."""
    tabs = []
    for child in server.children():
        try:
            if "ipc_explorer" in child.cmdline():
                tabs.append(child)
        except psutil.NoSuchProcess:  # a zombie too, until the server reaps it
            pass
    return tabs


def gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def ipcx_shm() -> set[str]:
    return {name for name in shm_entries() if "ipcx" in name}


def nothing_left(server: psutil.Process, shm_before: set[str]) -> bool:
    return not server.children(recursive=True) and not ipcx_shm() - shm_before


def test_a_tab_runs_the_app_its_keys_reach_it_and_closing_it_leaves_nothing(browser, serve):
    shm_before, tmp_before = ipcx_shm(), temp_dirs()
    served = serve("-m", "shm", "-f", "json")
    server, url = served.server, served.url
    page, response = open_tab(browser, url)
    assert response.status == 200
    wait_for_screen(page, r"shm · json.*\n(.*\n)*.*Flow")  # the app draws, on the options given
    (app,) = tabs_of(server)
    assert app.cmdline()[1:3] == ["-m", "ipc_explorer"]
    assert "--mechanism" in app.cmdline()
    assert wait_until(lambda: ipcx_shm() - shm_before, 10)  # its own ring and semaphores
    press(page, "Space")
    wait_for_screen(page, "flow paused")
    press(page, "?")
    wait_for_screen(page, r"Keys(.*\n)*.*Quit")
    page.close()
    assert wait_until(lambda: nothing_left(server, shm_before), 10), (
        f"left: {server.children(recursive=True)}, {ipcx_shm() - shm_before}"
    )
    assert not temp_dirs() - tmp_before


def test_q_in_a_tab_quits_its_app_and_the_page_says_the_session_ended(browser, serve):
    shm_before = ipcx_shm()
    served = serve("-m", "shm")
    page, _ = open_tab(browser, served.url)
    wait_for_screen(page, "Flow")
    assert wait_until(lambda: ipcx_shm() - shm_before, 10)
    press(page, "q")
    page.wait_for_selector("body.-closed", state="attached", timeout=10_000)  # "Session ended"
    assert wait_until(lambda: nothing_left(served.server, shm_before), 10)
    out = stop_serve(served.proc)
    assert "tab 1 closed (0 of 8 sessions)" in out and "Traceback" not in out


def test_a_tab_beyond_the_limit_is_told_so_and_starts_nothing(browser, serve):
    served = serve("--max-sessions", "1")
    server, url = served.server, served.url
    first, _ = open_tab(browser, url)
    wait_for_screen(first, "Flow")
    second, response = open_tab(browser, url)
    assert response.status == 503
    assert "Every session of this ipc-explorer server is in use (1 at most)" in second.inner_text(
        "body"
    )
    # A page loaded before the last session went is told in its terminal instead.
    told = first.evaluate(
        """url => new Promise(done => {
            const ws = new WebSocket(url);
            ws.binaryType = "arraybuffer";
            ws.onmessage = m => { done(new TextDecoder().decode(m.data)); ws.close(); };
            setTimeout(() => done("nothing within 10 s"), 10000);
        })""",
        url.replace("http:", "ws:") + "ws",
    )
    assert "Every session of this ipc-explorer server is in use" in told
    assert len(tabs_of(server)) == 1
    second.close()
    first.close()
    assert wait_until(lambda: not tabs_of(server), 10)


def test_stopping_the_server_ends_every_tab(browser, serve):
    shm_before = ipcx_shm()
    served = serve("-m", "shm")
    page, _ = open_tab(browser, served.url)
    wait_for_screen(page, "Flow")
    (app,) = tabs_of(served.server)
    assert wait_until(lambda: ipcx_shm() - shm_before, 10)
    out = stop_serve(served.proc)  # ctrl+c
    assert served.proc.returncode == 0
    assert "stopping: ending 1 tab(s)" in out and out.rstrip().endswith("stopped")
    assert gone(app)  # the server waited for it
    assert wait_until(lambda: not ipcx_shm() - shm_before, 5)
    page.wait_for_selector("body.-closed", state="attached", timeout=5000)  # "Session ended"
    page.close()


def test_a_server_killed_outright_still_ends_its_tabs(browser, serve):
    """SIGKILL gives the server no say: each app is tied to it and quits cleanly on its own."""
    shm_before = ipcx_shm()
    served = serve("-m", "shm")
    page, _ = open_tab(browser, served.url)
    wait_for_screen(page, "Flow")
    (app,) = tabs_of(served.server)
    assert wait_until(lambda: ipcx_shm() - shm_before, 10)
    served.server.kill()
    served.proc.wait(5)
    assert wait_until(lambda: gone(app), 10)
    assert wait_until(lambda: not ipcx_shm() - shm_before, 5)
    page.close()


def test_serve_on_a_port_in_use_says_so_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), timeout=20)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert f"cannot listen on 127.0.0.1 port {port}: Address already in use" in result.stderr
    assert result.stdout == ""


def test_only_the_servers_own_page_may_open_a_session(serve):
    served = serve()
    server, url = served.server, served.url
    port = url.rsplit(":", 1)[1].strip("/")

    def status(path: str, **headers: str) -> int:
        request = urllib.request.Request(url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"}
    upgrade["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
    assert status("", Host=f"rebound.example:{port}") == 403  # DNS rebinding
    assert status("ws", Origin="http://elsewhere.example", **upgrade) == 403
    assert not tabs_of(server)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-m", "bogus"], "unknown mechanism 'bogus'"),
        (["--theme", "bogus"], "unknown theme 'bogus'"),
        (["--replay", "/nonexistent.ipcx"], "cannot read /nonexistent.ipcx: No such file"),
        (["--replay", "/"], "/ is a directory, not a recording"),
        (["--replay", "/etc/hostname", "-m", "tcp"], "--mechanism does not apply"),
        (["--record", "x.ipcx"], "--record would have every tab write the same file"),
        (["--host", "192.0.2.999"], "cannot listen on 192.0.2.999 port 0: "),  # no address
        (["--host", "192.0.2.1"], "port 0: Cannot assign requested address"),  # not ours
    ],
)
def test_bad_serve_options_are_one_line_and_exit_2(args, said):
    result = run_cli("serve", "--port", "0", *args, timeout=20)
    assert result.returncode == 2
    assert said in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "Unknown error" not in result.stderr


def test_another_address_than_loopback_is_served_with_a_warning(serve):
    served = serve("--host", "0.0.0.0")
    with urllib.request.urlopen(served.url, timeout=5) as response:  # any name: no check
        assert response.status == 200
    served.proc.send_signal(signal.SIGINT)
    _, err = served.proc.communicate(timeout=20)
    assert err.decode().strip() == (
        "warning: serving on 0.0.0.0: anyone who can reach it can drive processes on this machine"
    )


def test_a_recording_is_served_to_each_tab(browser, serve, tmp_path: Path):
    recording = tmp_path / "run.ipcx"
    made = run_cli("run", "-n", "300", "--rate", "1000", "--record", str(recording))
    assert made.returncode == 0, made.stderr
    served = serve("--replay", str(recording))
    server, url = served.server, served.url
    first, _ = open_tab(browser, url)
    second, _ = open_tab(browser, url)
    for page in (first, second):
        wait_for_screen(page, r"ipc-explorer replay — run\.ipcx · pipe · msgpack")
        wait_for_screen(page, "received 300")
    tabs = tabs_of(server)
    assert len(tabs) == 2
    assert all(t.cmdline()[3:5] == ["replay", str(recording)] for t in tabs)
    assert not [p for t in tabs for p in t.children()]  # a replay starts no processes
    first.close()
    second.close()
    assert wait_until(lambda: not tabs_of(server), 10)
