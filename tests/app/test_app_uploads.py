"""Upload names and sizes, below the HTTP layer: what a browser may never send is refused too."""

import asyncio

import pytest

from harmonycloak.app.uploads import (
    UploadRefusedError,
    UploadTooLargeError,
    limited_receive,
    path_inside,
    upload_name,
)
from harmonycloak.errors import HarmonyCloakError


@pytest.mark.parametrize("name", ["../song.wav", "/etc/song.wav", "a/../../song.wav", "C:\\music\\song.wav",
                                  "..", ".", ".song.wav", "song\x00.wav", "song\n.wav", "song\u202e.wav", "",
                                  None, "   ", "song.exe", "song", "x" * 300 + ".wav"])
def test_names_that_are_not_a_plain_readable_file_name_are_refused(name):
    with pytest.raises(UploadRefusedError) as caught:
        upload_name(name)
    assert isinstance(caught.value, HarmonyCloakError)


@pytest.mark.parametrize("name, stored", [("song.wav", "song.wav"), ("Mon Café – live.FLAC", "Mon Café – live.FLAC"),
                                          ("Cafe\u0301.mp3", "Café.mp3"), ("bwv1.6.mid", "bwv1.6.mid"),
                                          ("..song.ogg", None)])
def test_plain_names_are_kept_as_given_in_nfc(name, stored):
    if stored is None:
        with pytest.raises(UploadRefusedError):
            upload_name(name)
    else:
        assert upload_name(name) == stored


def test_a_path_inside_stays_directly_in_its_folder(tmp_path):
    assert path_inside(tmp_path, "song.wav") == (tmp_path / "song.wav").resolve()
    for name in ["../song.wav", "/tmp/song.wav", "sub/../../song.wav"]:
        with pytest.raises(UploadRefusedError):
            path_inside(tmp_path, name)
    (tmp_path / "link.wav").symlink_to("/etc/hostname")  # a link planted in the folder leads out: refused
    with pytest.raises(UploadRefusedError):
        path_inside(tmp_path, "link.wav")


def body_messages(sizes):
    """An ASGI receive that hands out request-body messages of the given sizes in bytes."""
    messages = [{"type": "http.request", "body": b"x" * size, "more_body": i < len(sizes) - 1}
                for i, size in enumerate(sizes)]

    async def receive():
        return messages.pop(0)

    return receive


def drain(receive):
    async def run():
        total = 0
        while True:
            message = await receive()
            total += len(message["body"])
            if not message["more_body"]:
                return total

    return asyncio.run(run())


def test_the_body_limit_counts_every_chunk_and_allows_exactly_the_limit():
    assert drain(limited_receive(body_messages([400, 400, 200]), 1000, 0.001)) == 1000
    with pytest.raises(UploadTooLargeError, match="0.001 MB"):
        drain(limited_receive(body_messages([400, 400, 201]), 1000, 0.001))
