"""formats/zip: every member checks out with zipfile; ZIP64 without 4 GiB of disk."""

import bisect
import io
import os
import struct
import time
import zipfile
import zlib
from zipfile import ZIP_STORED

import pytest

from snippets import zip as zip_download
from snippets.zip import (
    CHUNK_SIZE,
    FILES_DIR,
    MAX_FILES,
    app,
    build_zip,
    regroup,
    squares_csv,
)
from tests.basics.test_csv_export import run_recipe_alone

MiB = 1024 * 1024
FOUR_GIB = 4 * 1024 * MiB


def open_zip(body):
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None  # every member's CRC checks out
    return archive


def test_sized_archive_has_exact_content_length_and_every_file():
    names = ["ndjson.py", "mjpeg.py", "zip.py"]
    query = "&".join(f"file={name}" for name in names)
    response = app.test_client().get(f"/bundle.zip?{query}")
    body = response.data
    assert response.mimetype == "application/zip"
    assert int(response.headers["Content-Length"]) == len(body)
    archive = open_zip(body)
    assert archive.namelist() == names
    for info in archive.infolist():
        expected = (FILES_DIR / info.filename).read_bytes()
        assert info.compress_type == ZIP_STORED  # a sized stream cannot compress
        assert info.file_size == len(expected)
        assert zlib.crc32(expected) == info.CRC
        assert archive.read(info) == expected


def test_generated_member_is_deflated_and_streamed_without_length():
    response = app.test_client().get("/bundle.zip?file=ndjson.py&rows=50000")
    assert "Content-Length" not in response.headers
    assert response.is_streamed
    archive = open_zip(response.data)
    assert archive.namelist() == ["ndjson.py", "squares.csv"]
    expected = b"".join(squares_csv(50_000))
    info = archive.getinfo("squares.csv")
    assert info.compress_type == zipfile.ZIP_DEFLATED
    assert info.compress_size < info.file_size == len(expected)
    assert archive.read("squares.csv") == expected
    assert archive.read("ndjson.py") == (FILES_DIR / "ndjson.py").read_bytes()


def test_chunks_are_regrouped_to_at_least_64_kib():
    response = app.test_client().get("/bundle.zip?rows=200000")
    sizes = [len(chunk) for chunk in response.response]
    assert len(sizes) > 3
    assert all(size >= CHUNK_SIZE for size in sizes[:-1])
    assert sizes[-1] > 0


def test_without_regroup_zipstream_yields_tiny_chunks():
    archive = build_zip(generated=[("squares.csv", squares_csv(1000))])
    sizes = [len(chunk) for chunk in archive]
    assert min(sizes) < 100  # headers, descriptors, deflate pieces
    assert len(sizes) > 3


def test_regroup_passes_big_chunks_through_and_keeps_every_byte():
    big = bytes(CHUNK_SIZE)
    pieces = [b"a", b"b" * 10, big, b"c", big, b"d"]
    out = list(regroup(iter(pieces)))
    assert b"".join(out) == b"".join(pieces)
    assert out[0] == b"a" + b"b" * 10 + big  # joined until >= 64 KiB
    assert out[-1] == b"d"
    assert next(regroup([big])) is big  # no copy


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("", 400, b"ask for at least one file or for rows"),
        ("file=../conftest.py", 404, b"no file named &#39;../conftest.py&#39;"),
        ("file=/etc/passwd", 404, b"is on offer"),
        ("file=templates", 404, b"is on offer"),
        ("file=ndjson.py&file=ndjson.py", 400, b"at most 20 different files"),
        ("rows=0", 400, b"rows must be a whole number from 1 to 1,000,000"),
        ("rows=1000001", 400, b"rows must be a whole number"),
        ("rows=-5", 400, b"rows must be a whole number"),
        ("rows=", 400, b"rows must be a whole number"),
        ("file=ndjson.py&rows=x", 400, b"rows must be a whole number"),
    ],
)
def test_bad_request_is_refused_before_streaming(query, status, message):
    response = app.test_client().get(f"/bundle.zip?{query}")
    assert response.status_code == status
    assert message in response.data


def test_too_many_files_is_a_400():
    query = "&".join(f"file=f{i}.py" for i in range(MAX_FILES + 1))
    assert app.test_client().get(f"/bundle.zip?{query}").status_code == 400


# --- the folder on offer: symlinks and special files ----------------------------


@pytest.fixture
def offered_folder(tmp_path, monkeypatch):
    """FILES_DIR is a folder of this test's own, holding one real file, a
    symlink out of it, a symlink within it, a FIFO and a folder, each named
    like a file on offer; beside it, the secret a symlink points at."""
    folder = tmp_path / "offered"
    folder.mkdir()
    (folder / "real.py").write_text("print('real')\n")
    (tmp_path / "secret.py").write_text("SECRET = 'outside the folder'\n")
    (folder / "escape.py").symlink_to(tmp_path / "secret.py")
    (folder / "passwd.py").symlink_to("/etc/passwd")
    (folder / "alias.py").symlink_to(folder / "real.py")
    os.mkfifo(folder / "pipe.py")
    (folder / "folder.py").mkdir()
    monkeypatch.setattr(zip_download, "FILES_DIR", folder)
    return folder


@pytest.mark.parametrize("name", ["escape.py", "passwd.py", "pipe.py", "folder.py"])
def test_symlinks_out_of_the_folder_and_special_files_are_not_on_offer(
    offered_folder, name
):
    """A symlink inside the folder that leads out of it, a FIFO (reading it
    would block for ever) and a folder are a 404, not a member."""
    response = app.test_client().get(f"/bundle.zip?file={name}")
    assert response.status_code == 404
    assert b"is on offer" in response.data


def test_a_symlink_within_the_folder_is_served(offered_folder):
    response = app.test_client().get("/bundle.zip?file=real.py&file=alias.py")
    assert response.status_code == 200
    archive = open_zip(response.data)
    assert archive.read("alias.py") == archive.read("real.py") == b"print('real')\n"


@pytest.mark.parametrize(
    "query", ["file=ndjson.py", "rows=10", "file=ndjson.py&rows=10"]
)
def test_head_answers_like_get_and_builds_nothing(query):
    client = app.test_client()
    get, head = client.get(f"/bundle.zip?{query}"), client.head(f"/bundle.zip?{query}")
    assert head.status_code == get.status_code == 200
    assert head.data == b""
    assert head.headers.get("Content-Length") == get.headers.get("Content-Length")
    get.close()
    head.close()


# --- ZIP64: a member over 4 GiB, streamed into a sparse file -----------------


def big_member():
    """4 GiB + 1 MiB + 3 bytes from one reused zero buffer: costs no memory."""
    zeros = bytes(MiB)
    yield b"BEGIN" + zeros[5:]
    for _ in range(4096):
        yield zeros
    yield b"END"


class Sparse(io.RawIOBase):
    """A stream's bytes as a seekable file, its all-zero chunks kept as
    lengths only: it reads back exactly as written, in a few MiB. (A sparse
    file on disk did the same, but the kernel took 17 s to read its 4 GiB of
    holes back.)"""

    def __init__(self, chunks):
        self.starts, self.pieces, self.size, self.pos = [], [], 0, 0
        for chunk in chunks:
            data = chunk if chunk != bytes(len(chunk)) else None  # memcmp speed
            if data is None and self.pieces and self.pieces[-1][0] is None:
                self.pieces[-1][1] += len(chunk)  # one hole, however long
            else:
                self.starts.append(self.size)
                self.pieces.append([data, len(chunk)])
            self.size += len(chunk)
        self.zeros = {}

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}
        self.pos = base[whence] + offset
        return self.pos

    def read(self, n=-1):
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        parts = []
        while self.pos < end:
            i = bisect.bisect_right(self.starts, self.pos) - 1
            data, length = self.pieces[i]
            take = min(end, self.starts[i] + length) - self.pos
            if data is None:  # the same zero bytes for every read of a size
                parts.append(self.zeros.setdefault(take, bytes(take)))
            else:
                offset = self.pos - self.starts[i]
                parts.append(data[offset : offset + take])
            self.pos += take
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def kept_bytes(self):
        return sum(length for data, length in self.pieces if data is not None)


def test_zip64_member_over_4_gib_streams_and_reads_back():
    """Without 4 GiB of disk: a 4 GiB + 1 MiB member (one reused zero-filled
    buffer, yielded again and again) and a small member go through
    build_zip and regroup into a sparse record in memory. Chunks that are
    not all zeros are kept with their offsets, each run of zeros only as its
    length, so it reads back exactly as streamed, seekable like a file, from
    under 64 MiB. The test finds the ZIP64 end records and has zipfile read
    every byte of both members, checking each CRC: the 4 GiB member's CRC-32
    is computed twice, once while streaming and once reading back."""
    started = time.monotonic()
    expected_size = 4097 * MiB + 3
    archive = build_zip(
        generated=[("big.bin", big_member()), ("after.txt", iter([b"still here"]))],
        compress_type=ZIP_STORED,  # deflating 4 GiB would take minutes
    )
    stored = Sparse(regroup(archive))
    total = stored.size
    assert total > FOUR_GIB + MiB
    assert stored.kept_bytes() < 64 * MiB  # no 4 GiB in memory

    # The records only ZIP64 has: the ZIP64 end of central directory and its
    # locator, and a classic end record whose 32-bit fields overflowed.
    stored.seek(-22, io.SEEK_END)
    end = stored.read(22)
    stored.seek(-22 - 20 - 56, io.SEEK_END)
    zip64_end = stored.read(56)
    locator = stored.read(20)
    assert end[:4] == b"PK\x05\x06"
    assert struct.unpack("<I", end[16:20])[0] == 0xFFFFFFFF  # offset overflowed
    assert zip64_end[:4] == b"PK\x06\x06"
    assert locator[:4] == b"PK\x06\x07"

    # zipfile reads it all back and checks the CRC of every byte.
    with zipfile.ZipFile(stored) as reread:
        big, after = reread.infolist()
        assert (big.filename, big.file_size) == ("big.bin", expected_size)
        assert big.compress_size == expected_size
        assert after.header_offset > FOUR_GIB  # a ZIP64 offset
        assert reread.read("after.txt") == b"still here"
        with reread.open("big.bin") as member:
            head = member.read(5)
            seen = len(head)
            while block := member.read(8 * MiB):
                seen += len(block)
                tail = block[-3:]
        # zipfile raises BadZipFile at EOF if the CRC does not match.
    assert (head, tail, seen) == (b"BEGIN", b"END", expected_size)
    elapsed = time.monotonic() - started
    print(f"ZIP64: {total:,} bytes streamed and verified in {elapsed:.1f} s")


def test_generated_zip_member_has_a_zip64_local_header():
    """zipstream-ng cannot know a generated member's size when it writes the
    header, so the local header carries a ZIP64 extra field (id 0x0001)."""
    body = b"".join(build_zip(generated=[("a.txt", iter([b"tiny"]))]))
    assert body[:4] == b"PK\x03\x04"
    name_length, extra_length = struct.unpack("<HH", body[26:30])
    extra = body[30 + name_length : 30 + name_length + extra_length]
    assert struct.unpack("<H", extra[:2])[0] == 0x0001
    assert zipfile.ZipFile(io.BytesIO(body)).read("a.txt") == b"tiny"


class WriteOnly(io.RawIOBase):
    """A stream that cannot seek or tell, like a socket."""

    def __init__(self):
        self.writes = []

    def writable(self):
        return True

    def write(self, data):
        self.writes.append(bytes(data))
        return len(data)


def test_zipfile_writes_to_an_unseekable_stream():
    out = WriteOnly()
    assert not out.seekable()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", "hello")
    assert len(out.writes) > 1  # many writes, not one iterator of chunks
    body = b"".join(out.writes)
    assert zipfile.ZipFile(io.BytesIO(body)).read("a.txt") == b"hello"


def test_the_recipe_alone_runs_as_a_file(tmp_path):
    """snippets/zip.py's recipe, pasted alone into app.py: a streamed 200
    with the exact Content-Length, whose archive holds app.py itself."""
    check = (
        "import io, zipfile\n"
        "from app import app\n"
        "response = app.test_client().get('/files.zip')\n"
        "assert response.status_code == 200 and response.is_streamed\n"
        "assert response.mimetype == 'application/zip'\n"
        "assert int(response.headers['Content-Length']) == len(response.data)\n"
        "archive = zipfile.ZipFile(io.BytesIO(response.data))\n"
        "assert archive.testzip() is None and archive.namelist() == ['app.py']\n"
        "assert archive.read('app.py') == open('app.py', 'rb').read()\n"
    )
    run_recipe_alone(tmp_path, "zip", check)


def test_files_zip_offers_only_regular_files_inside_the_folder(offered_folder):
    response = app.test_client().get("/files.zip")
    assert response.status_code == 200
    archive = open_zip(response.data)
    assert sorted(archive.namelist()) == ["alias.py", "real.py"]
