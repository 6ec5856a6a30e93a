import hashlib
import hmac

import pytest

from agent.probes.wifi_bssload import (
    BssLoad,
    find_bss_load,
    iter_elements,
    parse_bss_load,
    utilisation_consistent,
)
from agent.probes.wifi_model import (
    band_from_text,
    band_of,
    channel_of,
    freq_of,
    hash_identifier,
    normalise_mac,
    number,
)


def test_hash_is_keyed_hmac_sha256_truncated():
    expected = hmac.new(b"site-salt", b"SchoolNet", hashlib.sha256).hexdigest()[:16]
    assert hash_identifier("site-salt", "SchoolNet") == expected
    assert hash_identifier("other-salt", "SchoolNet") != expected
    with pytest.raises(ValueError, match="non-empty site salt"):
        hash_identifier("", "SchoolNet")


def test_normalise_mac():
    assert normalise_mac("0C-8D-DB-00-00-36") == "0c:8d:db:00:00:36"
    assert normalise_mac("not a mac") is None
    assert normalise_mac(None) is None


@pytest.mark.parametrize(("freq", "channel", "band"), [
    (2412, 1, 2.4), (2437, 6, 2.4), (2484, 14, 2.4), (5180, 36, 5.0), (5825, 165, 5.0),
    (5955, 1, 6.0), (5935, 2, 6.0), (6115, 33, 6.0), (7115, 233, 6.0)])
def test_channel_and_band_of_frequency(freq: int, channel: int, band: float):
    assert (channel_of(freq), band_of(freq)) == (channel, band)
    assert freq_of(channel, band) == freq


def test_text_helpers():
    assert band_from_text("2,4 GHz") == 2.4
    assert band_from_text("6 GHz") == 6.0
    assert band_from_text("60 GHz") is None
    assert number("960,7") == 960.7
    assert number("96%") == 96.0
    assert number("none") is None


def test_bss_load_element_layout():
    load = parse_bss_load(bytes([0x17, 0x00, 0x73, 0xD4, 0x30]))
    assert load == BssLoad(23, 115, 12500)
    assert load.utilisation_pct == 45.1
    assert BssLoad(0, 255).utilisation_pct == 100.0
    assert BssLoad(0, 0).utilisation_pct == 0.0
    with pytest.raises(ValueError, match="length 4, expected 5"):
        parse_bss_load(b"\x01\x00\x02\x03")


def test_element_walk_finds_bss_load_and_rejects_overruns():
    ies = b"\x00\x06School" + b"\x03\x01\x06" + b"\x0b\x05" + bytes([3, 0, 40, 0, 0])
    assert [eid for eid, _ in iter_elements(ies)] == [0, 3, 11]
    assert find_bss_load(ies) == BssLoad(3, 40, 0)
    assert find_bss_load(b"\x00\x06School") is None
    with pytest.raises(ValueError, match="claims 9 bytes, only 2 remain"):
        list(iter_elements(b"\x0b\x09\x01\x02"))


def test_utilisation_consistency_check():
    assert utilisation_consistent(115, 45)   # 45.1 % truncated
    assert utilisation_consistent(10, 3)     # 3.9 % truncated
    assert utilisation_consistent(10, 4)     # 3.9 % rounded
    assert not utilisation_consistent(150, 12)
