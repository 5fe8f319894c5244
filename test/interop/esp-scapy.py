#!/usr/bin/python3
"""Builds ESP packets with scapy (an independent implementation) for SAs described on stdin.

Input: a JSON list of cases
  {spi, mode: tunnel|transport, family: 4|6, transform: gcm|cbc, encKey, intKey (hex),
   innerSrc, innerDst, outerSrc, outerDst, udp: bool, seq, iv (hex), payload (hex), sport, dport}
Output: a JSON list of {inner (hex, the plain IP packet), packet (hex, the outer IP packet)}.

Scapy's NAT-T header gets the UDP length wrong (REFERENCES.md), so for UDP encapsulation the
ESP bytes are cut out and wrapped in IP()/UDP()/Raw() here.
"""
import json
import sys

from scapy.all import IP, IPv6, UDP, Raw, raw
from scapy.layers.ipsec import ESP, SecurityAssociation


def build(case):
    family = case["family"]
    ip = IP if family == 4 else IPv6
    payload = bytes.fromhex(case["payload"])
    if family == 4:
        inner = IP(src=case["innerSrc"], dst=case["innerDst"], ttl=9, id=0x4242, flags="DF") / UDP(
            sport=case["sport"], dport=case["dport"]) / Raw(payload)
    else:
        inner = IPv6(src=case["innerSrc"], dst=case["innerDst"], hlim=9) / UDP(
            sport=case["sport"], dport=case["dport"]) / Raw(payload)
    inner = ip(raw(inner))  # freeze lengths and checksums
    kwargs = {}
    if case["transform"] == "gcm":
        kwargs.update(crypt_algo="AES-GCM", crypt_key=bytes.fromhex(case["encKey"]))
    else:
        kwargs.update(crypt_algo="AES-CBC", crypt_key=bytes.fromhex(case["encKey"]),
                      auth_algo="SHA2-256-128", auth_key=bytes.fromhex(case["intKey"]))
    if case["mode"] == "tunnel":
        kwargs["tunnel_header"] = ip(src=case["outerSrc"], dst=case["outerDst"])
    if case.get("esn") is not None:
        # RFC 4303 ESN: the high 32 bits are authenticated but not sent.
        kwargs.update(esn_en=True, esn=case["esn"])
    sa = SecurityAssociation(ESP, spi=case["spi"], **kwargs)
    enc = sa.encrypt(inner, seq_num=case["seq"], iv=bytes.fromhex(case["iv"]))
    enc = ip(raw(enc))
    if case["udp"]:
        if family == 4:
            esp_bytes = raw(enc[ESP])
            hdr = enc.copy()
            hdr.remove_payload()
            hdr.proto = 17
            del hdr.len
            del hdr.chksum
            outer = hdr / UDP(sport=4500, dport=4500) / Raw(esp_bytes)
        else:
            esp_bytes = raw(enc[ESP])
            hdr = enc.copy()
            hdr.remove_payload()
            hdr.nh = 17
            del hdr.plen
            outer = hdr / UDP(sport=4500, dport=4500) / Raw(esp_bytes)
        enc = ip(raw(outer))
    return {"inner": raw(inner).hex(), "packet": raw(enc).hex()}


def main():
    cases = json.load(sys.stdin)
    json.dump([build(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
