"""``kei serve`` as a user runs it: the real command in a child process, tokens made with
``kei tokens``, a revoked token refused from the next request on, one-line errors."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "nan"], "kei: error: --rate and --reverify must be 0 or more, and finite"),
        (["--reverify", "inf"], "kei: error: --rate and --reverify must be 0 or more, and finite"),
        (["--rate", "-1"], "kei: error: --rate and --reverify must be 0 or more, and finite"),
        (["--host", "999.1.1.1"], "kei: error: --host '999.1.1.1' is not an address"),
    ],
)
def test_kei_serve_refuses_bad_options_before_it_serves(
    tmp_path: Path, args: list[str], message: str
) -> None:
    env = cli_env(tmp_path / "home")
    assert kei(["init"], env).returncode == 0
    done = kei(["serve", "--port", str(free_port()), *args], env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(message) and "serving on" not in done.stderr
    assert "Traceback" not in done.stderr


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM), made with the cryptography package."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))  # fmt: skip
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.mark.slow
def test_kei_serve_speaks_tls_with_the_given_pair(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    assert kei(["init"], env).returncode == 0
    reader = _token(env, "reader", "read")
    cert, key = _self_signed(tmp_path)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "kei", "serve", "--port", str(port), "--tls-cert", str(cert),
         "--tls-key", str(key)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        trusted = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trusted,
                          timeout=30) as c:  # fmt: skip
            for _ in range(600):
                try:
                    if c.get("/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
            assert c.get("/v1/token", headers=bearer(reader)).json()["scope"] == "read"
        with pytest.raises(httpx.TransportError):  # plain HTTP gets no answer
            httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5)
    finally:
        server.terminate()
        server.wait(timeout=30)
