"""serve reads form bodies by hand, with caps: what browsers and mail providers send, and nothing costly."""

from __future__ import annotations

import io

from broadsheet.serve.http import MAX_PARTS, Request
from broadsheet.serve.security import mailbox_of


def form(body: bytes, content_type: str) -> dict[str, str]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/u/x",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    return Request.read(environ, 1 << 20).form()  # type: ignore[arg-type]


def multipart(*parts: tuple[str, str], boundary: str = "----formdata-x7") -> bytes:
    lines = []
    for disposition, value in parts:
        lines += [f"--{boundary}", f"Content-Disposition: {disposition}", "", value]
    return ("\r\n".join([*lines, f"--{boundary}--", ""])).encode()


def test_a_one_click_post_as_gmail_sends_it_multipart_and_urlencoded():
    body = multipart(('form-data; name="List-Unsubscribe"', "One-Click"))
    assert form(body, "multipart/form-data; boundary=----formdata-x7") == {"List-Unsubscribe": "One-Click"}
    assert form(b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded") == {"List-Unsubscribe": "One-Click"}


def test_fields_files_quoted_boundaries_and_utf8():
    body = multipart(
        ('form-data; name="email"', "ann@example.org"),
        ('form-data; name="upload"; filename="x.txt"', "not a field"),
        ("form-data; name=name", "Zoë"),
        ('form-data; name="email"', "second@example.org"),  # the first value of a field is kept
        boundary="a b'c",
    )
    assert form(body, 'multipart/form-data; boundary="a b\'c"') == {"email": "ann@example.org", "name": "Zoë"}


def test_hostile_forms_are_read_as_nothing_or_capped_never_costly():
    many_params = "multipart/form-data; " + "a=b; " * 6000 + "boundary=x"
    assert form(multipart(('form-data; name="a"', "1"), boundary="x"), many_params) == {}
    nested = "form-data; name" + "(" * 15_000
    assert form(multipart((nested, "1"), boundary="x"), "multipart/form-data; boundary=x") == {}
    crowd = multipart(*((f'form-data; name="f{i}"', str(i)) for i in range(200)), boundary="x")
    assert len(form(crowd, "multipart/form-data; boundary=x")) == MAX_PARTS
    assert form(multipart(('form-data; name="a"', "1"), boundary="x"), "multipart/form-data") == {}  # no boundary
    bad_bytes = multipart(('form-data; name="a"', "1"), boundary="x").replace(b"1", b"\xff")
    assert form(bad_bytes, "multipart/form-data; boundary=x") == {}


def test_the_mailbox_an_address_reaches():
    assert mailbox_of("Ann+news@Example.org") == "ann@example.org"
    assert mailbox_of("a.n.n+x@googlemail.com") == mailbox_of("ann@gmail.com") == "ann@gmail.com"
    assert mailbox_of("a.n.n@example.org") == "a.n.n@example.org"  # dots matter elsewhere
    assert mailbox_of("+only@example.org") == "+only@example.org"
