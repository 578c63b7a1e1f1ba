"""A ROMFS image of a bundle's /lib (the agent's .mpy files), for boards that mount one at /rom.

The image is written by mpremote's own writer (mpremote.romfs.VfsRomWriter, the pinned
mpremote), so `mpremote romfs deploy` and the firmware read the same format; read() parses
it back from the format itself (records of kind, length, payload; lengths as 7-bit varints),
so a test can check what went in without trusting the writer.
"""

from pathlib import Path

from dmagent.firmware_build.mpy import BuildError

HEADER = b"\xd2\xcd\x31"
KIND_PADDING, KIND_VERBATIM, KIND_POINTER, KIND_DIR, KIND_FILE = 1, 2, 3, 4, 5
IMAGE = "romfs.img"


def make_image(folder):
    """The ROMFS image (bytes) of every file under folder, names and layout kept."""
    from mpremote.romfs import VfsRomWriter

    writer = VfsRomWriter()
    _add(writer, Path(folder))
    return writer.finalise()


def _add(writer, folder):
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            writer.opendir(path.name)
            _add(writer, path)
            writer.closedir()
        else:
            writer.mkfile(path.name, path.read_bytes())


def check_fits(image, partition_bytes, board):
    """BuildError in one line when the image is larger than the board's ROMFS partition."""
    if len(image) > partition_bytes:
        raise BuildError("the ROMFS image is %d bytes, board %s's ROMFS partition holds %d: "
                         "cut the agent or give the partition more flash" % (len(image), board, partition_bytes))


def _uint(data, pos):
    value = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated length at byte %d" % pos)
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos


def read(image):
    """{path: bytes} of every file in a ROMFS image ("lib/agent/app.mpy", ...); ValueError
    when it is not one."""
    image = bytes(image)
    if not image.startswith(HEADER):
        raise ValueError("not a ROMFS image (no header)")
    size, pos = _uint(image, len(HEADER))
    if pos + size > len(image):
        raise ValueError("ROMFS image is cut short: %d bytes of %d" % (len(image) - pos, size))
    files = {}
    _read_records(image, pos, pos + size, "", files)
    return files


def _read_records(data, pos, end, prefix, files):
    while pos < end:
        kind, pos = _uint(data, pos)
        length, pos = _uint(data, pos)
        payload_end = pos + length
        if payload_end > end:
            raise ValueError("record at %d runs past its directory" % pos)
        if kind in (KIND_DIR, KIND_FILE):
            name_len, p = _uint(data, pos)
            name = data[p:p + name_len].decode("ascii")
            if name in ("", ".", "..") or "/" in name:
                raise ValueError("bad name %r in ROMFS image" % name)  # unpack() stays in its folder
            p += name_len
            if kind == KIND_DIR:
                _read_records(data, p, payload_end, prefix + name + "/", files)
            else:
                files[prefix + name] = _file_data(data, p, payload_end)
        pos = payload_end


def _file_data(data, pos, end):
    while pos < end:
        kind, pos = _uint(data, pos)
        length, pos = _uint(data, pos)
        if kind == KIND_VERBATIM:
            return data[pos:pos + length]
        pos += length
    raise ValueError("a file record without data")


def unpack(image, folder):
    """Write an image's files under folder (what a board sees at /rom); returns the paths."""
    folder = Path(folder)
    files = read(image)
    for name, data in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return sorted(files)
