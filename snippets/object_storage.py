# [recipe]
import contextlib
import os
import re

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask, Response, abort, redirect, request

app = Flask(__name__)
# boto3 reads the credentials, the region and AWS_ENDPOINT_URL
# (MinIO, R2...) from the environment.
s3 = boto3.client("s3")
BUCKET = os.environ.get("S3_BUCKET", "media")
CHUNK_BYTES = 64 * 1024
KEY = re.compile(r"[A-Za-z0-9._-]{1,200}")  # no "/": one folder
ONE_RANGE = re.compile(r"bytes=(\d+-\d*|-\d+)")


def open_object(key, **extra):
    """get_object, or a 404, 416 or 502 before the stream."""
    if not KEY.fullmatch(key):
        abort(404)
    try:
        return s3.get_object(Bucket=BUCKET, Key=key, **extra)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in ("NoSuchKey", "404"):
            abort(404)
        if code == "InvalidRange":
            abort(416)
        raise
    except BotoCoreError:  # no credentials, store unreachable
        abort(502, "the file store could not be reached")


@app.get("/files/<key>")
def download(key):
    extra = {}
    asked = request.headers.get("Range", "")
    if ONE_RANGE.fullmatch(asked):  # else: the whole file
        extra["Range"] = asked
    obj = open_object(key, **extra)
    body = obj["Body"]  # a botocore StreamingBody

    def chunks():
        with contextlib.closing(body):  # the client left: close
            yield from body.iter_chunks(CHUNK_BYTES)

    headers = {
        "Content-Length": obj["ContentLength"],
        "Accept-Ranges": "bytes",
        "ETag": obj["ETag"],
    }
    if "ContentRange" in obj:
        headers["Content-Range"] = obj["ContentRange"]
    return Response(
        chunks(),
        206 if "ContentRange" in obj else 200,
        headers=headers,
        mimetype=obj.get("ContentType", "application/octet-stream"),
    )


# [recipe-end]


# [presigned]
@app.get("/links/<key>")
def presigned(key):
    """Let the client fetch the object from the store itself."""
    if not KEY.fullmatch(key):
        abort(404)
    try:
        url = s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": BUCKET, "Key": key},
            ExpiresIn=300,  # seconds: long enough to start
        )
    except BotoCoreError:  # no credentials to sign with
        abort(502, "the file store is not configured")
    return redirect(url, 302)


# [presigned-end]
