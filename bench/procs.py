"""The three processes of a benchmark: fake Slack, fake OpenAI and the real bot.

Each runs as `python -m ...` with only environment variables and flags, its output in a
log file of the run's work directory. Children get SIGTERM when the benchmark dies
(PR_SET_PDEATHSIG), and every stop ends in a kill after a timeout: nothing outlives it.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BOT_ROOT = ROOT  # the checkout whose `python -m bot` is measured (--bot-root)
BOT_TOKEN = "xoxb-bench-bot-token"
SIGNING_SECRET = "bench-signing-secret"
API_KEY = "sk-bench-key"
TEAM = "T1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_PR_SET_PDEATHSIG = 1


class ProcessFailed(RuntimeError):
    pass


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(workdir: Path, *roots: Path) -> dict[str, str]:
    """A clean environment: nothing of the caller's but the basics; temp files in workdir."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    tmp = workdir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(dict.fromkeys(str(root) for root in (*roots, ROOT)))
    env.update(PYTHONPATH=path, PYTHONUNBUFFERED="1", TMPDIR=str(tmp))
    return env


def seed(workdir: Path, database_url: str, openai_url: str, users: list[str]) -> dict[str, str]:
    """Create the users' assistants with the measured checkout's own code."""
    argv = [sys.executable, "-m", "bench.seed", database_url, openai_url, API_KEY, TEAM, *users]
    done = subprocess.run(
        argv,
        cwd=workdir,
        env=base_env(workdir, BOT_ROOT),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_die_with_parent,
    )
    if done.returncode != 0:
        raise ProcessFailed(f"seeding failed: {done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@dataclass
class Proc:
    """A child process with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    started_at: float
    url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        return self.popen.returncode

    # --- resource use, from /proc -------------------------------------------------

    def cpu_seconds(self) -> float:
        """user + system CPU time of the process (all its threads) so far."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def memory_kb(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak since start or the last reset_peak) in kB."""
        found: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
        return found

    def rss_mb(self) -> float:
        return self.memory_kb()["VmRSS"] / 1024

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux `clear_refs` 5); False if not allowed."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False


def _spawn(name: str, argv: list[str], env: dict[str, str], workdir: Path) -> Proc:
    log, n = workdir / f"{name}.log", 1
    while log.exists():
        n += 1
        log = workdir / f"{name}-{n}.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    return Proc(name, popen, log, time.time())


def _wait_ready(proc: Proc, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in proc.output().splitlines():
            if line.startswith("READY "):
                return line.split(None, 1)[1].strip()
        if not proc.alive():
            raise ProcessFailed(f"{proc.name} exited: {proc.output()[-2000:]}")
        time.sleep(0.02)
    proc.stop()
    raise ProcessFailed(f"{proc.name} never printed READY")


# Spawn in the main thread: PR_SET_PDEATHSIG fires when the *thread* that forked exits.
# Waiting for READY / healthy may then happen in a worker thread.


def spawn_fake_slack(workdir: Path) -> Proc:
    argv = [sys.executable, "-m", "tests.fakes.slack_server", "--port", "0"]
    argv += ["--bot-token", BOT_TOKEN, "--team-id", TEAM]
    return _spawn("fake-slack", argv, base_env(workdir), workdir)


def spawn_fake_openai(workdir: Path, ttft_ms: float, tokens_per_second: float) -> Proc:
    argv = [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0"]
    argv += ["--api-key", API_KEY, "--ttft-ms", str(ttft_ms)]
    argv += ["--tokens-per-second", str(tokens_per_second)]
    return _spawn("fake-openai", argv, base_env(workdir), workdir)


def wait_ready(proc: Proc) -> Proc:
    """Wait for the fake's READY line; its URL (…/api/ or …/v1) goes to proc.url."""
    proc.url = _wait_ready(proc)
    return proc


@dataclass
class BotConfig:
    slack_api_url: str
    openai_base_url: str
    database_url: str
    max_file_mb: int = 256
    extra_env: dict[str, str] = field(default_factory=dict)
    program: str = "bot"  # or "bench.floor": the bare-I/O floor, configured the same way

    def env(self, port: int, workdir: Path) -> dict[str, str]:
        # the floor is this checkout's own; the bot the measured one's
        env = base_env(workdir, BOT_ROOT) if self.program == "bot" else base_env(workdir)
        env.update(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=self.slack_api_url,
            OPENAI_API_KEY=API_KEY,
            OPENAI_BASE_URL=self.openai_base_url,
            DATABASE_URL=self.database_url,
            PORT=str(port),
            HOST="127.0.0.1",
            MAX_FILE_MB=str(self.max_file_mb),
            MARKET_DATA="fixed",  # offline stock prices: bot/demo_market.py
            LOG_LEVEL="WARNING",
            **self.extra_env,
        )
        return env


def spawn_bot(config: BotConfig, workdir: Path) -> Proc:
    """Start `python -m bot` in HTTP mode on a free port (proc.started_at: the spawn)."""
    port = free_port()
    argv = [sys.executable, "-m", config.program]
    proc = _spawn(config.program.rpartition(".")[2], argv, config.env(port, workdir), workdir)
    proc.url = f"http://127.0.0.1:{port}"
    return proc


def wait_healthy(proc: Proc, timeout: float = 30.0) -> float:
    """Wait for /healthz 200; returns the cold start (spawn -> 200) in seconds."""
    spawned = proc.started_at
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if not proc.alive():
                raise ProcessFailed(f"bot exited: {proc.output()[-3000:]}")
            try:
                if client.get(f"{proc.url}/healthz").status_code == 200:
                    return time.time() - spawned
            except httpx.TransportError:
                pass
            time.sleep(0.005)
    proc.stop()
    raise ProcessFailed(f"bot never became healthy: {proc.output()[-3000:]}")
