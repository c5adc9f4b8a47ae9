import pytest

from scootpy.netacl import parse_allow_from


def test_empty_allows_everyone():
    assert parse_allow_from("") is None
    assert parse_allow_from(" , ") is None


def test_cidrs_and_single_addresses():
    allowed = parse_allow_from("127.0.0.0/8, 10.1.2.3 ,fd00::/8")
    assert allowed("127.0.0.1")
    assert allowed("127.200.0.9")
    assert allowed("10.1.2.3")
    assert not allowed("10.1.2.4")
    assert allowed("fd00::1")
    assert not allowed("::1")
    assert allowed("::ffff:127.0.0.1")
    assert not allowed("not-an-ip")


def test_bad_entry_is_named():
    with pytest.raises(ValueError, match="'10.0.0.0/33'"):
        parse_allow_from("127.0.0.1,10.0.0.0/33")
