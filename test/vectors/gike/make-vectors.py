#!/usr/bin/python3
"""
Golden vectors for the RFC 9838 payload bodies, built WITHOUT our TypeScript encoder:
the IKEv2 substructures that RFC 9838 reuses (ID payload body, transform substructures, traffic
selectors) come from scapy's independent IKEv2 implementation; the RFC 9838 framing around them
(GSA policy / GW policy / key bag headers, attributes) is packed here by hand, field by field, from
the figures of RFC 9838 §4.4.2, §4.4.3, §4.5.2, §4.5.3 and §4.5.4.

Run: /usr/bin/python3 test/vectors/gike/make-vectors.py > test/vectors/gike/vectors.json
"""
import json
import struct

from scapy.all import raw
from scapy.contrib.ikev2 import IKEv2_payload_IDi, IKEv2_payload_Transform, IPv4TrafficSelector

GIKE_UPDATE, ESP = 6, 3


def body(pkt):
    """scapy payloads carry the 4-octet generic payload header; RFC 9838 bodies start after it."""
    return raw(pkt)[4:]


def tv(t, v):  # RFC 7296 §3.3.5, AF=1
    return struct.pack('!HH', 0x8000 | t, v)


def tlv(t, v):  # RFC 7296 §3.3.5, AF=0
    return struct.pack('!HH', t, len(v)) + v


def transform(last, ttype, tid, attrs=b''):
    if attrs == b'':
        return raw(IKEv2_payload_Transform(next_payload=last, transform_type=ttype, transform_id=tid, length=8))
    if len(attrs) == 4 and attrs[:2] == b'\x80\x0e':  # Key Length: scapy's own attribute field
        return raw(IKEv2_payload_Transform(next_payload=last, transform_type=ttype, transform_id=tid,
                                           key_length=struct.unpack('!I', attrs)[0], length=12))
    # Other attributes (Signature Algorithm Identifier): scapy models only Key Length, so pack by hand (§3.3.2).
    return struct.pack('!BBHBBH', last, 0, 8 + len(attrs), ttype, 0, tid) + attrs


def ts4(proto, sport, eport, start, end):
    return raw(IPv4TrafficSelector(IP_protocol_ID=proto, start_port=sport, end_port=eport,
                                   starting_address_v4=start, ending_address_v4=end))


def gsa_policy(protocol, spi, src, dst, transforms, attrs):  # RFC 9838 §4.4.2
    rest = spi + src + dst + transforms + attrs
    return struct.pack('!BBH', protocol, len(spi), 4 + len(rest)) + rest


def gw_policy(attrs):  # RFC 9838 §4.4.3
    return struct.pack('!BBH', 0, 0, 4 + len(attrs)) + attrs


def group_key_bag(protocol, spi, attrs):  # RFC 9838 §4.5.2
    return struct.pack('!BBH', protocol, len(spi), 4 + len(spi) + len(attrs)) + spi + attrs


def member_key_bag(attrs):  # RFC 9838 §4.5.3
    return struct.pack('!BBH', 0, 0, 4 + len(attrs)) + attrs


def wrapped_key(key_id, kwk_id, enc):  # RFC 9838 §4.5.4
    return struct.pack('!II', key_id, kwk_id) + enc


vectors = {}

# IDg (RFC 9838 §4.2) = IKEv2 ID payload body, ID_KEY_ID.
vectors['idg_key_id'] = {
    'hex': body(IKEv2_payload_IDi(IDtype=11, ID=b'video-group', length=8 + 11)).hex(),
    'value': {'idType': 11, 'data': b'video-group'.hex()},
}

ecdsa_sha256 = bytes.fromhex('300a06082a8648ce3d040302')  # AlgorithmIdentifier ecdsa-with-SHA256 (RFC 7427 App. A)
kek_spi = bytes(range(0x10, 0x20))
tek_spi = bytes.fromhex('deadbeef')
kek = gsa_policy(
    GIKE_UPDATE, kek_spi,
    ts4(17, 4500, 4500, '10.0.0.1', '10.0.0.1'),
    ts4(17, 4500, 4500, '239.1.1.1', '239.1.1.1'),
    transform(3, 1, 20, tv(14, 256))          # ENCR_AES_GCM_16, Key Length 256
    + transform(3, 13, 3)                      # KWA KW_5649_256
    + transform(0, 14, 2, tlv(18, ecdsa_sha256)),  # GCAUTH Digital Signature + Signature Algorithm Identifier
    tlv(1, struct.pack('!I', 3600)) + tlv(2, struct.pack('!I', 7)),  # GSA_KEY_LIFETIME, GSA_INITIAL_MESSAGE_ID
)
tek = gsa_policy(
    ESP, tek_spi,
    ts4(0, 0, 65535, '10.0.0.0', '10.0.0.255'),
    ts4(17, 5000, 5000, '239.2.2.2', '239.2.2.2'),
    transform(3, 1, 20, tv(14, 128))  # ENCR_AES_GCM_16, Key Length 128
    + transform(0, 5, 2),             # SN "32-bit Unspecified Numbers"
    tlv(1, struct.pack('!I', 900))
    + tv(16384, 3) + tv(16385, 4) + tv(16386, 4500),  # private: direction, address preservation, UDP encap
)
gw = gw_policy(tv(1, 15) + tv(2, 30) + tv(3, 8))  # GWP_ATD, GWP_DTD, GWP_SENDER_ID_BITS
vectors['gsa_kek_tek_gw'] = {
    'hex': (kek + tek + gw).hex(),
    'expect': {
        'kek': {'spi': kek_spi.hex(), 'encr': 20, 'keyLength': 256, 'kwa': 3, 'gcauth': 2,
                'signatureAlgorithm': ecdsa_sha256.hex(), 'keyLifetime': 3600, 'initialMessageId': 7},
        'tek': {'spi': tek_spi.hex(), 'encr': 20, 'keyLength': 128, 'sn': 2, 'keyLifetime': 900,
                'direction': 3, 'addressPreservation': 4, 'udpEncapsulationPort': 4500,
                'srcStart': '0a000000', 'srcEnd': '0a0000ff', 'dst': 'ef020202', 'dstPort': 5000},
        'gw': {'atd': 15, 'dtd': 30, 'senderIdBits': 8},
    },
}

sa_key_kek = wrapped_key(0, 0, bytes([0xa1]) * 72)
sa_key_tek = wrapped_key(0, 0, bytes([0xb2]) * 24)
wrap1 = wrapped_key(5, 0, bytes([0xc3]) * 24)
wrap2 = wrapped_key(2, 5, bytes([0xd4]) * 24)
spki = bytes([0x30]) * 91
vectors['kd_group_and_member'] = {
    'hex': (group_key_bag(GIKE_UPDATE, kek_spi, tlv(1, sa_key_kek))
            + group_key_bag(ESP, tek_spi, tlv(1, sa_key_tek))
            + member_key_bag(tlv(1, wrap1) + tlv(1, wrap2) + tlv(2, spki) + tlv(3, struct.pack('!I', 3)))).hex(),
    'expect': {
        'kekSaKey': sa_key_kek.hex(), 'tekSaKey': sa_key_tek.hex(),
        'wrapKeys': [wrap1.hex(), wrap2.hex()], 'authKey': spki.hex(), 'senderIds': [3],
    },
}

print(json.dumps(vectors, indent=2))
