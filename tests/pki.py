"""Certificates for the tests of the HTTPS examples, made with the openssl
command line tool (EC P-256, valid two days).

    paths = make_pki(directory)   # {"ca.pem": ..., "server.key": ..., ...}
"""

import os
import subprocess


def make_pki(d):
    """Two CAs and, in d, certificates made with openssl: a server
    certificate for 127.0.0.1 and a client certificate signed by "ca", and a
    client certificate signed by "other-ca". Returns {name: path}."""

    def run(*args):
        p = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise AssertionError(f"openssl {' '.join(args)}:\n{p.stderr}")

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        run("req", "-x509", *ec, "-days", "2", "-subj", f"/CN=healthd test {ca}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", f"{ca}.key", "-out", f"{ca}.pem")
    for name, ca, ext in (("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                           "extendedKeyUsage=serverAuth\n"),
                          ("client", "ca", "extendedKeyUsage=clientAuth\n"),
                          ("foreign", "other-ca", "extendedKeyUsage=clientAuth\n")):
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext)
        run("req", *ec, "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    return {f"{n}.{x}": os.path.join(d, f"{n}.{x}")
            for n in ("ca", "other-ca", "server", "client", "foreign") for x in ("pem", "key")}
