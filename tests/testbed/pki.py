"""A throw-away CA and a server certificate signed by it, made with the openssl command.

Made once per test process (EC P-256 keys take milliseconds) and shared by every testbed in it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from typing import Optional

SERVER_NAME = "server.test"

_made: dict[str, dict[str, str]] = {}


def openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_pki(server_ip: str, directory: Optional[str] = None) -> dict[str, str]:
    """Paths {"ca", "cert", "key"}: a CA and a cert for server.test and `server_ip`, valid 30 days."""
    if server_ip in _made and directory is None:
        return _made[server_ip]
    if directory is None:
        directory = tempfile.mkdtemp(prefix="netprobe-pki-")
        atexit.register(shutil.rmtree, directory, True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
            "-subj", "/CN=netprobe testbed CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)  # fmt: skip
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={SERVER_NAME}", cwd=directory)
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write(
            f"subjectAltName=DNS:{SERVER_NAME},IP:{server_ip}\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
        )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "30", "-extfile", "server.ext", cwd=directory)  # fmt: skip
    paths = {
        name: os.path.join(directory, f)
        for name, f in (("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key"))
    }
    _made[server_ip] = paths
    return paths
