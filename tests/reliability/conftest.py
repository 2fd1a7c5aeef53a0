"""Fixtures of the reliability suite: a ledger server, seeded randomness, and for the
security tests a TLS-only Redis (certificates made with openssl) and ACL users.

The fault scenarios themselves live in ``tests.chaos`` (so ``python -m tests.chaos``
runs the same code at full scale); these tests run them at CI scale and assert on
their reports. Each scenario starts its own Redis for the faults, the ``servers``
fixture adds the ledger server that no fault touches.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.chaos import Servers
from tests.support.ports import free_port
from tests.support.servers import RedisServer

SEED_VAR = "BANANAS_CHAOS_SEED"


@pytest.fixture
def servers(single_redis: RedisServer) -> Servers:
    """The binary the scenarios start Redis from, and the shared server as the ledger."""
    return Servers(single_redis.binary, single_redis)


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """Randomness for kill choices; the seed is printed, and ``BANANAS_CHAOS_SEED`` replays it."""
    seed = int(os.environ.get(SEED_VAR) or random.SystemRandom().randrange(2**32))
    print(f"{request.node.name}: {SEED_VAR}={seed}")
    return random.Random(seed)


# -- TLS -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """A throw-away CA, a server certificate it signed (for 127.0.0.1 and localhost), a
    client certificate it signed (for mutual TLS), and an unrelated CA that must not be
    trusted."""

    ca: str
    cert: str
    key: str
    client_cert: str
    client_key: str
    other_ca: str


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: str) -> Certificates:
    """Generate the files with the openssl command line (EC keys: quick to make)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for name in ("ca", "other-ca"):
        _openssl(
            "req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.crt",
            "-days", "2", "-subj", f"/CN=Bananas test {name}", cwd=folder,
        )  # fmt: skip
    _openssl(
        "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
        cwd=folder,
    )  # fmt: skip
    Path(folder, "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.cnf",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", *ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=bananas",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "client.crt", "-days", "2", cwd=folder,
    )  # fmt: skip
    names = ("ca.crt", "server.crt", "server.key", "client.crt", "client.key", "other-ca.crt")
    return Certificates(*(os.path.join(folder, f) for f in names))


@dataclass
class TLSRedisServer(RedisServer):
    """redis-server serving TLS only (``--port 0 --tls-port``). Clients are authenticated
    by the password or ACL user (``--tls-auth-clients no``), or with ``mutual`` also by
    a certificate signed by the CA (``--tls-auth-clients yes``)."""

    certs: Certificates | None = None
    mutual: bool = False

    def start(self, timeout: float = 10.0) -> TLSRedisServer:
        assert self.certs is not None
        self.port = self.port or free_port()
        self.extra_args = [
            "--port", "0", "--tls-port", str(self.port),
            "--tls-cert-file", self.certs.cert, "--tls-key-file", self.certs.key,
            "--tls-ca-cert-file", self.certs.ca,
            "--tls-auth-clients", "yes" if self.mutual else "no",
        ]  # fmt: skip
        super().start(timeout)
        return self

    def client(self) -> redis.Redis:
        assert self.certs is not None
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            ssl=True,
            ssl_ca_certs=self.certs.ca,
            ssl_certfile=self.certs.client_cert if self.mutual else None,
            ssl_keyfile=self.certs.client_key if self.mutual else None,
            decode_responses=True,
        )

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"rediss://{auth}127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    return make_certificates(str(tmp_path_factory.mktemp("tls")))


def _tls_server(certs: Certificates, mutual: bool) -> TLSRedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server (built with TLS) is not on PATH")
    server = TLSRedisServer(binary, password=f"tls-{uuid.uuid4().hex}", certs=certs, mutual=mutual)
    try:
        return server.start()
    except RuntimeError as exc:
        if "tls" in str(exc).lower():
            pytest.skip(f"this redis-server has no TLS support: {exc}")
        raise


@pytest.fixture(scope="session")
def tls_redis(certificates: Certificates) -> Iterator[TLSRedisServer]:
    """A TLS-only redis-server with a password (``redis-server`` from PATH: Valkey's
    embedded build is not needed here)."""
    server = _tls_server(certificates, mutual=False)
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def mtls_redis(certificates: Certificates) -> Iterator[TLSRedisServer]:
    """The same, but every client must also show a certificate signed by the CA."""
    server = _tls_server(certificates, mutual=True)
    yield server
    server.cleanup()


# -- ACL -------------------------------------------------------------------------------------

#: What each Bananas role runs on Redis, command by command (docs/reliability.md explains
#: them). Scripts run with the caller's rights, so the commands inside the Lua scripts a
#: role uses are listed as well as the ones it sends itself.
WORKER_COMMANDS = (
    "ping evalsha eval blpop smembers sadd hgetall hget hset hdel hexists hmget hincrby "
    "exists get set del incr pexpire lindex llen lrange ltrim lpush lrem rpush zadd zcard "
    "zrange zrangebyscore zrem zremrangebyscore zscore time type info zcount hlen persist "
    "zrevrange hsetnx zrangebylex zremrangebyrank zmscore"
)
CLIENT_COMMANDS = (
    "ping evalsha eval blpop smembers sadd hget hset hdel hexists hmget hincrby exists "
    "pexpire lindex llen lrem rpush zadd zcard zrange zrem zscore time type info zcount "
    "hlen persist hgetall del lrange zrevrange zrangebyscore get set hsetnx hkeys srem"
)
OPERATOR_COMMANDS = "evalsha eval hget hmget llen lindex zcard zcount zscore time info get"


def acl_rules(prefix: str, password: str, commands: str, *selectors: str) -> list[str]:
    """ACL SETUSER arguments: keys under ``prefix`` only, no channels, ``commands`` only."""
    return [
        "reset", "on", f">{password}", f"~{prefix}:*", "resetchannels", "-@all",
        *(f"+{c}" for c in commands.split()), *selectors,
    ]  # fmt: skip


def operator_rules(prefix: str, password: str) -> list[str]:
    """The operator reads everything under the prefix but writes schedules only."""
    selector = f"(~{prefix}:schedules ~{prefix}:schedule-status +hset +hdel)"
    return acl_rules(prefix, password, OPERATOR_COMMANDS, selector)


@dataclass(frozen=True)
class AclUsers:
    """URLs of a worker, a client and an operator user, each limited to one prefix."""

    prefix: str
    worker: str
    client: str
    operator: str


@pytest.fixture(scope="session")
def acl_redis() -> Iterator[RedisServer]:
    """A redis-server whose default user needs a password (the admin of these tests)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("ACL selectors need redis-server 7 on PATH")
    server = RedisServer(binary, password=f"admin-{uuid.uuid4().hex}").start()
    yield server
    server.cleanup()


@pytest.fixture
def acl_users(acl_redis: RedisServer, prefix: str) -> AclUsers:
    """Three users for this test's prefix, created with ACL SETUSER."""
    urls = {}
    with acl_redis.client() as admin:
        for role, rules in (
            ("worker", acl_rules(prefix, f"w-{prefix}", WORKER_COMMANDS)),
            ("client", acl_rules(prefix, f"c-{prefix}", CLIENT_COMMANDS)),
            ("operator", operator_rules(prefix, f"o-{prefix}")),
        ):
            user = f"{role}-{prefix}"
            admin.execute_command("ACL", "SETUSER", user, *rules)
            urls[role] = f"redis://{user}:{role[0]}-{prefix}@127.0.0.1:{acl_redis.port}"
    return AclUsers(prefix, urls["worker"], urls["client"], urls["operator"])
