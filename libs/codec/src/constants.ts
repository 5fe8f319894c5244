/**
 * Protocol numbers used by @app/codec. Specification constants carry the RFC section they come
 * from; implementation limits are grouped at the end. Add new groups in their own section so that
 * parallel work on ESP and IKEv2 does not collide.
 */

// ---------------------------------------------------------------------------------------------
// IP (RFC 791, RFC 8200)
// ---------------------------------------------------------------------------------------------

/** IP version field values (RFC 791 §3.1, RFC 8200 §3). */
export const IPV4_VERSION = 4;
export const IPV6_VERSION = 6;
/** IPv4 header without options, in bytes (RFC 791 §3.1: IHL 5). */
export const IPV4_MIN_HEADER_LENGTH = 20;
/** IPv4 header with the most options an IHL of 15 allows (RFC 791 §3.1). */
export const IPV4_MAX_HEADER_LENGTH = 60;
/** Largest IPv4 total length / IPv6 payload length (16-bit fields, RFC 791, RFC 8200). */
export const IP_MAX_LENGTH_FIELD = 0xffff;
/** IPv4 flags and fragment offset (RFC 791 §3.1). */
export const IPV4_FLAG_DF = 0x4000;
export const IPV4_FLAG_MF = 0x2000;
export const IPV4_FRAGMENT_OFFSET_MASK = 0x1fff;
/** IPv4 address length in bytes. */
export const IPV4_ADDRESS_LENGTH = 4;
/** Fixed IPv6 header length (RFC 8200 §3). */
export const IPV6_HEADER_LENGTH = 40;
/** IPv6 address length in bytes. */
export const IPV6_ADDRESS_LENGTH = 16;
/** Default TTL / hop limit for headers we construct (RFC 1700 recommended 64, RFC 8200 §3). */
export const IP_DEFAULT_TTL = 64;

/** IANA Assigned Internet Protocol Numbers used here (RFC 8200 §4, RFC 4303, RFC 4302). */
export const IPPROTO_HOPOPTS = 0; // IPv6 Hop-by-Hop Options (RFC 8200 §4.3)
export const IPPROTO_ICMP = 1;
export const IPPROTO_IPV4 = 4; // IPv4 in IP, tunnel mode inner IPv4 (RFC 4303 §2.6)
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41; // IPv6 in IP, tunnel mode inner IPv6 (RFC 4303 §2.6)
export const IPPROTO_ROUTING = 43; // IPv6 Routing header (RFC 8200 §4.4)
export const IPPROTO_FRAGMENT = 44; // IPv6 Fragment header (RFC 8200 §4.5)
export const IPPROTO_ESP = 50; // RFC 4303
export const IPPROTO_AH = 51; // RFC 4302; its length counts 4-octet units minus 2 (RFC 4302 §2.2)
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_NONE = 59; // No Next Header (RFC 8200 §4.7); ESP dummy packets (RFC 4303 §2.6)
export const IPPROTO_DSTOPTS = 60; // IPv6 Destination Options (RFC 8200 §4.6)
export const IPPROTO_MOBILITY = 135; // RFC 6275
export const IPPROTO_HIP = 139; // RFC 7401
export const IPPROTO_SHIM6 = 140; // RFC 5533
export const IPPROTO_EXPERIMENT1 = 253; // RFC 3692
export const IPPROTO_EXPERIMENT2 = 254; // RFC 3692
/** IPv6 extension headers are counted in 8-octet units beyond the first 8 (RFC 8200 §4). */
export const IPV6_EXT_UNIT = 8;
/** IPv6 Fragment header length (RFC 8200 §4.5). */
export const IPV6_FRAGMENT_HEADER_LENGTH = 8;
/** UDP header length (RFC 768). */
export const UDP_HEADER_LENGTH = 8;

// ---------------------------------------------------------------------------------------------
// ESP and UDP encapsulation (RFC 4303, RFC 3948)
// ---------------------------------------------------------------------------------------------

/** ESP header: SPI (4) and Sequence Number (4) (RFC 4303 §2). */
export const ESP_HEADER_LENGTH = 8;
/** ESP trailer: Pad Length (1) and Next Header (1) (RFC 4303 §2.4, §2.6). */
export const ESP_TRAILER_LENGTH = 2;
/** SPIs 1..255 are reserved by IANA and 0 is local-only (RFC 4303 §2.1). */
export const ESP_SPI_MIN = 256;
/** The ciphertext ends 4-byte aligned (RFC 4303 §2.4). */
export const ESP_ALIGNMENT = 4;
/** Padding may hold at most 255 bytes (RFC 4303 §2.4). */
export const ESP_MAX_PAD_LENGTH = 255;
/** AES-GCM in ESP: 8-byte explicit IV, 4-byte salt, 16-byte ICV (RFC 4106 §3.1, §4, §8.1). */
export const GCM_EXPLICIT_IV_LENGTH = 8;
export const GCM_SALT_LENGTH = 4;
export const GCM_ICV_LENGTH = 16;
/** GCM's nonce = salt || explicit IV (RFC 4106 §4). */
export const GCM_NONCE_LENGTH = 12;
/** AES block size, also the CBC IV length (RFC 3602 §3). */
export const AES_BLOCK_LENGTH = 16;
/** HMAC-SHA-256-128: 32-byte key, 16-byte truncated ICV (RFC 4868 §2.1.1, §2.3). */
export const HMAC_SHA256_KEY_LENGTH = 32;
export const HMAC_SHA256_128_ICV_LENGTH = 16;
/** ESP in UDP and IKE share port 4500 (RFC 3948 §2). */
export const UDP_ENCAP_PORT = 4500;
/** The non-ESP marker: four zero octets where an SPI would be (RFC 3948 §2.2). */
export const NON_ESP_MARKER_LENGTH = 4;
/** A NAT keepalive is a single octet 0xFF (RFC 3948 §2.3). */
export const NAT_KEEPALIVE_OCTET = 0xff;
/** The smallest ESP packet a receiver can parse: header only (RFC 3948 §2.1, SPI non-zero). */
export const UDP_ENCAP_MIN_ESP_LENGTH = ESP_HEADER_LENGTH;

// ---------------------------------------------------------------------------------------------
// IKEv2 (RFC 7296, RFC 7427, RFC 5282)
// ---------------------------------------------------------------------------------------------
// Code points confirmed against IANA "Internet Key Exchange Version 2 (IKEv2) Parameters"
// (last updated 2025-05-23). Section numbers are RFC 7296 unless stated.

/** IKE header size in octets (§3.1). */
export const IKE_HEADER_LENGTH = 28;
/** Generic payload header size in octets (§3.2). */
export const IKE_PAYLOAD_HEADER_LENGTH = 4;
/** IKE SPI size in octets (§3.1). */
export const IKE_SPI_LENGTH = 8;
/** Major version 2, minor version 0 (§3.1). */
export const IKE_MAJOR_VERSION = 2;
export const IKE_MINOR_VERSION = 0;
/** Header flags (§3.1): Initiator (bit 3), Version (bit 4), Response (bit 5). */
export const IKE_FLAG_INITIATOR = 0x08;
export const IKE_FLAG_VERSION = 0x10;
export const IKE_FLAG_RESPONSE = 0x20;
/** Critical bit in the generic payload header (§2.5, §3.2). */
export const IKE_PAYLOAD_CRITICAL = 0x80;
// NON_ESP_MARKER_LENGTH and NAT_KEEPALIVE_OCTET (RFC 3948 §2.2-2.3) live in the ESP section.
/** IKE ports: 500, and 4500 for NAT traversal / MOBIKE (§2.23, RFC 3948). */
export const IKE_PORT = 500;
export const IKE_NATT_PORT = 4500;

/** Exchange types (§3.1; IANA "IKEv2 Exchange Types"; GSA_* RFC 9838). */
export const IkeExchange = {
  IKE_SA_INIT: 34,
  IKE_AUTH: 35,
  CREATE_CHILD_SA: 36,
  INFORMATIONAL: 37,
  IKE_SESSION_RESUME: 38, // RFC 5723
  GSA_AUTH: 39, // RFC 9838
  GSA_REGISTRATION: 40, // RFC 9838
  GSA_REKEY: 41, // RFC 9838
  GSA_INBAND_REKEY: 42, // RFC 9838
  IKE_INTERMEDIATE: 43, // RFC 9242
} as const;

/** Payload types (§3.2; IANA "IKEv2 Payload Types"; IDg/GSA/KD RFC 9838). */
export const IkePayload = {
  NONE: 0,
  SA: 33,
  KE: 34,
  IDi: 35,
  IDr: 36,
  CERT: 37,
  CERTREQ: 38,
  AUTH: 39,
  NONCE: 40,
  NOTIFY: 41,
  DELETE: 42,
  VENDOR_ID: 43,
  TSi: 44,
  TSr: 45,
  SK: 46,
  CP: 47,
  EAP: 48,
  IDg: 50, // RFC 9838
  GSA: 51, // RFC 9838
  KD: 52, // RFC 9838
} as const;

/** Security protocol identifiers (§3.3.1). */
export const IkeProtocol = { IKE: 1, AH: 2, ESP: 3 } as const;

/** Transform types (§3.3.2; KWA and GCAUTH RFC 9838). */
export const TransformType = {
  ENCR: 1,
  PRF: 2,
  INTEG: 3,
  KE: 4, // "D-H" in RFC 7296, renamed Key Exchange Method (RFC 9370)
  SN: 5, // "ESN" in RFC 7296, renamed Sequence Numbers
  KWA: 13, // RFC 9838
  GCAUTH: 14, // RFC 9838
} as const;

/** Transform attribute types (§3.3.5): Key Length, always TV format. */
export const TRANSFORM_ATTR_KEY_LENGTH = 14;
/** Attribute Format bit: set for TV (2-octet value), clear for TLV (§3.3.5). */
export const TRANSFORM_ATTR_TV = 0x8000;

/** Encryption transform IDs (§3.3.2; ENCR_AES_GCM_* RFC 5282 §7). */
export const EncrId = {
  ENCR_AES_CBC: 12,
  ENCR_AES_CTR: 13,
  ENCR_AES_GCM_8: 18,
  ENCR_AES_GCM_12: 19,
  ENCR_AES_GCM_16: 20,
} as const;

/** PRF transform IDs (§3.3.2; SHA-2 RFC 4868). */
export const PrfId = {
  PRF_HMAC_SHA1: 2,
  PRF_HMAC_SHA2_256: 5,
  PRF_HMAC_SHA2_384: 6,
  PRF_HMAC_SHA2_512: 7,
} as const;

/** Integrity transform IDs (§3.3.2; SHA-2 RFC 4868). */
export const IntegId = {
  NONE: 0,
  AUTH_HMAC_SHA1_96: 2,
  AUTH_HMAC_SHA2_256_128: 12,
  AUTH_HMAC_SHA2_384_192: 13,
  AUTH_HMAC_SHA2_512_256: 14,
} as const;

/** Key exchange method IDs (§3.3.2; ECP RFC 5903, Curve25519 RFC 8031). */
export const KeGroup = {
  MODP_2048: 14,
  ECP_256: 19,
  ECP_384: 20,
  CURVE25519: 31,
} as const;

/** Sequence Numbers transform IDs (§3.3.2, "ESN"). */
export const SnId = { NO_ESN: 0, ESN: 1 } as const;

/** Proposal and transform substructure "last" markers (§3.3.1, §3.3.2). */
export const SA_LAST = 0;
export const SA_MORE_PROPOSAL = 2;
export const SA_MORE_TRANSFORM = 3;

/** Identification types (§3.5). */
export const IdType = {
  ID_IPV4_ADDR: 1,
  ID_FQDN: 2,
  ID_RFC822_ADDR: 3,
  ID_IPV6_ADDR: 5,
  ID_DER_ASN1_DN: 9,
  ID_DER_ASN1_GN: 10,
  ID_KEY_ID: 11,
} as const;

/** Certificate encodings (§3.6). */
export const CertEncoding = {
  X509_SIGNATURE: 4,
  RAW_RSA_KEY: 11,
  HASH_URL_X509: 12,
} as const;

/** Authentication methods (§3.8; 9-11 RFC 4754; 14 RFC 7427). */
export const AuthMethod = {
  RSA_SIG: 1,
  PSK: 2,
  DSS: 3,
  ECDSA_SHA256_P256: 9,
  ECDSA_SHA384_P384: 10,
  ECDSA_SHA512_P521: 11,
  DIGITAL_SIGNATURE: 14,
} as const;

/** Hash algorithm identifiers for SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4). */
export const HashAlgorithm = { SHA1: 1, SHA2_256: 2, SHA2_384: 3, SHA2_512: 4, IDENTITY: 5 } as const;

/** Notify message types below 16384 are errors, the rest status (§3.10.1). */
export const NOTIFY_STATUS_MIN = 16384;
/** Notify message types (§3.10.1; IANA "Notify Message Error/Status Types"). */
export const NotifyType = {
  UNSUPPORTED_CRITICAL_PAYLOAD: 1,
  INVALID_IKE_SPI: 4,
  INVALID_MAJOR_VERSION: 5,
  INVALID_SYNTAX: 7,
  INVALID_MESSAGE_ID: 9,
  INVALID_SPI: 11,
  NO_PROPOSAL_CHOSEN: 14,
  INVALID_KE_PAYLOAD: 17,
  AUTHENTICATION_FAILED: 24,
  SINGLE_PAIR_REQUIRED: 34,
  NO_ADDITIONAL_SAS: 35,
  INTERNAL_ADDRESS_FAILURE: 36,
  FAILED_CP_REQUIRED: 37,
  TS_UNACCEPTABLE: 38,
  INVALID_SELECTORS: 39,
  TEMPORARY_FAILURE: 43,
  CHILD_SA_NOT_FOUND: 44,
  INVALID_GROUP_ID: 45, // RFC 9838
  AUTHORIZATION_FAILED: 46, // RFC 9838
  INITIAL_CONTACT: 16384,
  SET_WINDOW_SIZE: 16385,
  ADDITIONAL_TS_POSSIBLE: 16386,
  IPCOMP_SUPPORTED: 16387,
  NAT_DETECTION_SOURCE_IP: 16388,
  NAT_DETECTION_DESTINATION_IP: 16389,
  COOKIE: 16390,
  USE_TRANSPORT_MODE: 16391,
  HTTP_CERT_LOOKUP_SUPPORTED: 16392,
  REKEY_SA: 16393,
  ESP_TFC_PADDING_NOT_SUPPORTED: 16394,
  NON_FIRST_FRAGMENTS_ALSO: 16395,
  MOBIKE_SUPPORTED: 16396, // RFC 4555
  MULTIPLE_AUTH_SUPPORTED: 16404, // RFC 4739
  REDIRECT_SUPPORTED: 16406, // RFC 5685
  CHILDLESS_IKEV2_SUPPORTED: 16418, // RFC 6023
  GROUP_SENDER: 16429, // RFC 9838
  IKEV2_FRAGMENTATION_SUPPORTED: 16430, // RFC 7383
  SIGNATURE_HASH_ALGORITHMS: 16431, // RFC 7427
} as const;

/** Traffic selector types (§3.13.1). */
export const TsType = { TS_IPV4_ADDR_RANGE: 7, TS_IPV6_ADDR_RANGE: 8 } as const;

/** Largest COOKIE notification data an initiator echoes (§2.6: 1 to 64 octets). */
export const IKE_COOKIE_MAX_LENGTH = 64;
/** Nonce length bounds (§3.9: 16 to 256 octets). */
export const IKE_NONCE_MIN_LENGTH = 16;
export const IKE_NONCE_MAX_LENGTH = 256;

// ---------------------------------------------------------------------------------------------
// G-IKEv2 (RFC 9838): IDg, GSA, KD payloads, group policy attributes, key bags
// ---------------------------------------------------------------------------------------------
// Values the draft left "TBA" come from IANA's "IKEv2 Parameters" registry (stored copy updated
// 2025-05-23: GSA_INBAND_REKEY 42, transform types 13/14, the GSA/GWP/key bag registries); the
// remaining ones (GIKE_UPDATE 6, REGISTRATION_FAILED 49, Signature Algorithm Identifier 18,
// "32-bit Unspecified Numbers" 2) agree in two independent transcriptions of that registry.

/** Security Protocol Identifier of the Rekey SA (RFC 9838 §4.4.2, IANA "Security Protocol Identifiers"). */
export const GIKE_UPDATE_PROTOCOL = 6;
/** Protocols a GSA policy / group key bag may name: Rekey SA, or AH/ESP Data-Security SAs (RFC 9838 §4.4.2). */
export const GikeProtocol = { AH: 2, ESP: 3, GIKE_UPDATE: GIKE_UPDATE_PROTOCOL } as const;
/** Protocol value 0 marks a GW policy substructure / Member Key Bag (RFC 9838 §4.4.3, §4.5.3). */
export const GIKE_PROTOCOL_NONE = 0;
/** SPI sizes: GIKE_UPDATE carries the 16-octet IKE SPI pair, AH/ESP 4 octets (RFC 9838 §4.4.2). */
export const GIKE_REKEY_SPI_LENGTH = 16;
export const GIKE_IPSEC_SPI_LENGTH = 4;
/** Header of a GSA policy, GW policy and key bag substructure: Protocol, SPI Size/RESERVED, Length (§4.4.2). */
export const GIKE_SUBSTRUCTURE_HEADER_LENGTH = 4;

/** Key Wrap Algorithm transform IDs (RFC 9838 §4.4.2.1.2; Transform Type 13). */
export const KwaId = { KW_5649_128: 1, KW_5649_192: 2, KW_5649_256: 3, KW_ARX: 4 } as const;
/** Group Controller Authentication Method transform IDs (RFC 9838 §4.4.2.1.1; Transform Type 14). */
export const GcAuthId = { IMPLICIT: 1, DIGITAL_SIGNATURE: 2 } as const;
/** Sequence Numbers transform ID "32-bit Unspecified Numbers" for multi-sender SAs (RFC 9838 §4.4.2.1.3). */
export const SN_32BIT_UNSPECIFIED = 2;
/** Transform attribute "Signature Algorithm Identifier", TLV, DER AlgorithmIdentifier (RFC 9838 §4.4.2.1.1). */
export const TRANSFORM_ATTR_SIGNATURE_ALGORITHM_ID = 18;

/** GSA policy attributes (RFC 9838 §4.4.2.2; IANA "GSA Attributes"). All TLV. */
export const GsaAttr = {
  GSA_KEY_LIFETIME: 1, // 4-octet seconds (§4.4.2.2.1)
  GSA_INITIAL_MESSAGE_ID: 2, // 4-octet Message ID, GIKE_UPDATE only (§4.4.2.2.2)
  GSA_NEXT_SPI: 3, // SPI of SPI Size octets, multi-valued (§4.4.2.2.3)
} as const;
/**
 * Private-use GSA attributes (IANA "GSA Attributes" 16384-32767) carrying the RFC 5374 §4.4.2 SA
 * attributes that RFC 9838 has no field for. All TV (16-bit value), per Data-Security SA.
 */
export const GsaPrivateAttr = {
  /** SA direction, values as GDOI/RFC 5374: GsaDirection. */
  DIRECTION: 16384,
  /** Tunnel-mode address preservation (RFC 5374 §3.1): GsaAddressPreservation. */
  ADDRESS_PRESERVATION: 16385,
  /** ESP-in-UDP encapsulation (RFC 3948): the UDP port, 0 = none (RFC 9838 §4.4.2 says none). */
  UDP_ENCAPSULATION_PORT: 16386,
  /**
   * IPsec mode of a Data-Security SA: GsaMode. RFC 9838 §4.4.2.2 defines no mode attribute, and
   * RFC 7296 §3.10.1 USE_TRANSPORT_MODE is a CHILD_SA notify, not usable in a GSA; so a private
   * one. Absent = tunnel, the RFC 5374 default for group SAs (§3.1); the GCKS sends it for
   * transport only, and then no ADDRESS_PRESERVATION (preservation is tunnel mode only, §3.1).
   */
  MODE: 16387,
} as const;
/** Values of GsaPrivateAttr.MODE. */
export const GsaMode = { TUNNEL: 1, TRANSPORT: 2 } as const;
/** RFC 5374 §4.4.2 SA direction values (as GDOI "SA Direction"). */
export const GsaDirection = { SENDER_ONLY: 1, RECEIVER_ONLY: 2, SYMMETRIC: 3 } as const;
/** RFC 5374 §3.1 address preservation values (as GDOI "Address Preservation"). */
export const GsaAddressPreservation = { NONE: 1, SOURCE_ONLY: 2, DESTINATION_ONLY: 3, SOURCE_AND_DESTINATION: 4 } as const;

/** Group-wide policy attributes (RFC 9838 §4.4.3.1; IANA "Group-wide Policy Attributes"). All TV. */
export const GwpAttr = {
  GWP_ATD: 1, // activation time delay, seconds (§4.4.3.1.1)
  GWP_DTD: 2, // deactivation time delay, seconds (§4.4.3.1.1)
  GWP_SENDER_ID_BITS: 3, // IV bits holding the Sender-ID (§4.4.3.1.2)
} as const;
/**
 * Private-use GW policy attribute (16384-32767): the Group Owner's signed policy token (RFC 4534),
 * TLV, DER. Group-wide, so it rides in the GSA payload of GSA_AUTH, GSA_REGISTRATION, GSA_REKEY
 * and GSA_INBAND_REKEY alike (see libs/crypto/src/policy-token.ts).
 */
export const GWP_PRIV_POLICY_TOKEN = 16384;

/** Group Key Bag attributes (RFC 9838 §4.5.2; IANA "Group Key Bag Attributes"). TLV. */
export const GroupKeyBagAttr = { SA_KEY: 1 } as const;
/** Member Key Bag attributes (RFC 9838 §4.5.3; IANA "Member Key Bag Attributes"). TLV. */
export const MemberKeyBagAttr = { WRAP_KEY: 1, AUTH_KEY: 2, GM_SENDER_ID: 3 } as const;
/** GM_SENDER_ID value size we send (RFC 9838 §4.5.3.3 leaves it open; GDOI used 4 octets). */
export const GM_SENDER_ID_LENGTH = 4;
/** Notify error REGISTRATION_FAILED (RFC 9838 §4.7.3; IANA value 49). */
export const NOTIFY_REGISTRATION_FAILED = 49;
/** GROUP_SENDER notification data: 4-octet count of requested Sender-IDs (RFC 9838 §4.7.4). */
export const GROUP_SENDER_COUNT_LENGTH = 4;
/** Key ID / KWK ID zero: SA keying material / default KWK GSK_w (RFC 9838 §4.5.4). */
export const GIKE_DEFAULT_KEY_ID = 0;
/** prf+ label for GSK_w, 20 ASCII octets without NUL (RFC 9838 §3.1.1). */
export const GIKE_GSK_W_LABEL = 'Key Wrap for G-IKEv2';

// G-IKEv2 implementation limits (ours, not the RFC's); kept here so this section stays one hunk.
/** Most policies (GSA + GW substructures) in one GSA payload. */
export const GIKE_MAX_POLICIES = 32;
/** Most key bags in one KD payload. */
export const GIKE_MAX_KEY_BAGS = 64;
/** Most attributes in one GSA/GW policy or key bag (LKH paths put many WRAP_KEYs in one bag). */
export const GIKE_MAX_ATTRIBUTES = 128;
/** Most transforms in one GSA policy (RFC 9838 §4.4.2.1 allows at most one of each type). */
export const GIKE_MAX_TRANSFORMS = 16;
/** Most attributes inside one transform. */
export const GIKE_MAX_TRANSFORM_ATTRIBUTES = 8;
/** Largest group identity in an IDg payload. */
export const GIKE_MAX_IDG_LENGTH = 255;

// ---------------------------------------------------------------------------------------------
// Wrapped keys and LKH (RFC 9838 key management, RFC 5649)
// ---------------------------------------------------------------------------------------------

/** Wrapped Key (RFC 9838 §4.5.4): Key ID (4) + KWK ID (4) precede the Encrypted Key. */
export const WRAPPED_KEY_HEADER_LENGTH = 8;
/** RFC 9838 §4.5.4: Key ID zero names the SA keying material (SA_KEY), never an intermediate key. */
export const WRAPPED_KEY_ID_SA_KEY = 0;
/** RFC 9838 §4.5.4: KWK ID zero means the key was wrapped under the default KWK GSK_w (§3.1.1). */
export const WRAPPED_KEY_KWK_DEFAULT = 0;
/** RFC 5649 §4.1: the smallest AES-KWP output (one 64-bit AIV block plus one semiblock). */
export const WRAPPED_KEY_MIN_AES_KWP_LENGTH = 16;
/** Ours: largest Encrypted Key we decode (RFC 5649 output of 1024 octets of keying material). */
export const WRAPPED_KEY_MAX_ENCRYPTED_LENGTH = 1032;

// ---------------------------------------------------------------------------------------------
// Implementation limits
// ---------------------------------------------------------------------------------------------

/** IP/ESP: most IPv6 extension headers walked before refusing a packet (a bound, not a spec value). */
export const MAX_IPV6_EXTENSION_HEADERS = 8;

// IKEv2 implementation limits (ours, not the RFC's).
/** Largest IKE message we decode (UDP datagram without fragmentation). */
export const IKE_MAX_MESSAGE_LENGTH = 65_535;
/** Most payloads in one IKE message (inner SK payloads included). */
export const IKE_MAX_PAYLOADS = 64;
/** Most proposals in one SA payload, transforms in one proposal, attributes in one transform. */
export const IKE_MAX_PROPOSALS = 32;
export const IKE_MAX_TRANSFORMS = 64;
export const IKE_MAX_ATTRIBUTES = 8;
/** Most SPIs in one Delete payload and traffic selectors in one TS payload. */
export const IKE_MAX_DELETE_SPIS = 256;
export const IKE_MAX_TRAFFIC_SELECTORS = 64;
