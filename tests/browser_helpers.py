"""Helpers for the end-to-end browser tests: a throwaway JupyterLab server and Chromium.

The server runs in a subprocess on 127.0.0.1 with a random free port and token, a
temporary root folder, and its own config, data, runtime, settings and workspace
folders, so nothing from the machine's Jupyter set-up leaks in and nothing is left
behind. JupyterLab's news toast ("get notified about official Jupyter news?") would
cover the notebook's controls; it is driven by the ``fetchNews`` setting of
``@jupyterlab/apputils-extension:notification``, so the server's user settings set it to
"false" (and ``checkForUpdates`` off), and ``LabApp.news_url`` is emptied as well.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"

NOTIFICATION_SETTINGS = {"fetchNews": "false", "checkForUpdates": False}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """``jupyter lab`` in a subprocess; ``stop()`` always ends it (terminate, then kill)."""

    def __init__(self, root_dir: Path, home: Path, startup_timeout: float = 90.0,
                 user_settings: dict[str, dict] | None = None) -> None:
        self.root_dir = Path(root_dir)
        self.home = Path(home)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.log_path = self.home / "jupyterlab.log"
        settings = self.home / "user-settings"
        target = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(NOTIFICATION_SETTINGS), encoding="utf-8")
        # more user settings: {"@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"}, ...}
        for plugin, values in (user_settings or {}).items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values), encoding="utf-8")
        env = dict(os.environ)
        # The kernel imports the checkout (until nbtrain is installed in the environment).
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                          ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
            env[name] = str(self.home / sub)
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser", "--allow-root",
            "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={self.home / 'workspaces'}",
            "--LabApp.news_url=",
        ]
        self._log = open(self.log_path, "wb")
        # A session of its own, so stop() can also end the kernels the server started.
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self.root_dir, start_new_session=True
        )
        try:
            self._wait_ready(startup_timeout)
        except BaseException:
            self.stop()
            raise

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def setting(self, plugin: str, key: str):
        """The value of a JupyterLab setting as this server gives it to the page: the user's
        setting if any, else the schema's default (which the app's overrides replace)."""
        with urllib.request.urlopen(self.url(f"lab/api/settings/{plugin}"), timeout=30) as resp:
            answer = json.load(resp)
        user = answer.get("settings") or {}
        return user[key] if key in user else answer["schema"]["properties"][key].get("default")

    def shutdown_kernels(self) -> None:
        """End every session of this server and the kernel it holds (an opened notebook starts one)."""
        with urllib.request.urlopen(self.url("api/sessions"), timeout=30) as resp:
            sessions = json.load(resp)
        for session in sessions:
            request = urllib.request.Request(self.url(f"api/sessions/{session['id']}"), method="DELETE")
            urllib.request.urlopen(request, timeout=30).close()

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-n:]
        except OSError:
            return ""

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise TimeoutError(f"jupyter lab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the server (it shuts its kernels down), then kill whatever of its group is left."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group is this server's own session
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()


def sync_api_or_fail():
    """Playwright's sync API, once Chromium and playwright are both there (else ``ci.unavailable``)."""
    import importlib

    from ci import unavailable

    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is missing (install it with: apt-get install -y chromium, or make browser-deps)")
    try:
        return importlib.import_module("playwright.sync_api")
    except ImportError as exc:
        unavailable(f"the Python playwright package is not installed ({exc}); pip install -e '.[dev]'")
