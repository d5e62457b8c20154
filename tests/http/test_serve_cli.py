"""``kei serve`` as a user runs it: the real command in a child process, tokens made with
``kei tokens``, a revoked token refused from the next request on, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cli_helpers import cli_env, kei
from http_server import bearer, free_port, wait_up


def _token(env: dict[str, str], name: str, scope: str) -> str:
    made = kei(["tokens", "create", name, "--scope", scope], env)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.mark.slow
def test_kei_serve_answers_with_tokens_from_the_log(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    assert kei(["init"], env).returncode == 0
    reader, writer = _token(env, "reader", "read"), _token(env, "writer", "write")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "kei", "serve", "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base)
        with httpx.Client(base_url=base, timeout=30) as c:
            assert c.get("/v1/agents", headers=bearer(reader)).json()["agents"] == []
            fork = c.post("/v1/agents/a1/fork", headers=bearer(writer), json={"branch": "b"})
            assert fork.status_code == 201, fork.text
            assert c.post("/v1/agents/a2/fork", headers=bearer(reader),
                          json={"branch": "b"}).status_code == 403  # fmt: skip
            assert kei(["tokens", "revoke", "writer"], env).returncode == 0
            late = c.post("/v1/agents/a3/fork", headers=bearer(writer), json={"branch": "b"})
            assert late.status_code == 401 and "revoked" in late.json()["detail"]
            assert c.get("/").status_code == 200  # the dashboard
            assert c.get("/v1/token", headers=bearer(reader)).json()["name"] == "reader"
    finally:
        server.terminate()
        server.wait(timeout=30)
    shown = kei(["events", "tail", "-n", "50"], env).stdout
    assert "agent/a1" in shown and "agent/a2" not in shown and "agent/a3" not in shown


def test_kei_serve_refuses_half_a_tls_pair_in_one_line(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    (tmp_path / "cert.pem").write_text("x")
    done = kei(["serve", "--tls-cert", str(tmp_path / "cert.pem")], env)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[0].startswith("kei: error: TLS needs both")
    assert "Traceback" not in done.stderr


def test_kei_serve_without_a_ledger_says_so(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    done = kei(["serve", "--port", str(free_port())], env)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "kei init" in done.stderr
