"""A real S3-compatible server on 127.0.0.1: moto in server mode, in a
process of its own, with its state in memory (nothing is written to disk).

``s3_server()`` yields an object with ``.url`` (the endpoint), ``.proc``,
``.log()``, ``.stop()`` and ``.client()``: a boto3 S3 client for it, with
throwaway credentials."""

import contextlib
import sys

import boto3
from botocore.config import Config

from tests.servers import free_port, process_server, read_log

CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "region_name": "us-east-1",
}


class S3Server:
    def __init__(self, url, proc):
        self.url, self.proc = url, proc

    def log(self):
        return read_log(self.proc)

    def stop(self):
        self._stop.close()

    def client(self, **config):
        return boto3.client(
            "s3", endpoint_url=self.url, config=Config(**config), **CREDENTIALS
        )


@contextlib.contextmanager
def s3_server():
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with contextlib.ExitStack() as stack:
        proc = stack.enter_context(process_server(argv, port))
        server = S3Server(f"http://127.0.0.1:{port}", proc)
        server._stop = stack.pop_all()
        try:
            yield server
        finally:
            server.stop()
