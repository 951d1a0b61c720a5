#!/usr/bin/env python3
"""Builds the hostile corpus fixtures/malformed/ and its manifest.json.

Every file is named for what it attacks; manifest.json says, for each, the entry point it goes
through, the fixture keys it is decrypted with and the exact ErrorKind (ErrorKind::as_str()) dpwrap
must return. tests/malformed.rs runs them all.

The cryptography here is pyca/cryptography (`pip install cryptography`), not dpwrap: every
crypto-level case is built, and checked to fail at the intended stage and no earlier, by this
independent implementation (the unwrap succeeds and yields the length we meant, the padding byte is
the one we meant, ...). The `ok-*` files are controls built the same way: they must decrypt to the
plaintext recorded in the manifest, which proves the corrupted siblings fail for the reason named.

Randomness (IVs, content keys, padding strings) comes from a seeded generator, so re-running the
script rewrites the same bytes, except for the wrong-key RSA cases, whose throwaway key is fresh.

Usage: python3 scripts/make_malformed.py      (from the repository root; rewrites the folder)
"""

import base64
import hashlib
import json
import os
import random
import shutil
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

try:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # older pyca
    TripleDES = algorithms.TripleDES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "malformed")
KEYS_DIR = os.path.join(ROOT, "fixtures", "keys")
SHARED = os.path.join(ROOT, "..", "shared", "vectors")

RNG = random.Random(0x64707772)  # "dpwr"

XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
DS = "http://www.w3.org/2000/09/xmldsig#"
DP = "http://schemas.asp.net/2015/03/dataProtection"
TYPE_ELEMENT = XENC + "Element"
TYPE_CONTENT = XENC + "Content"
TYPE_EK = XENC + "EncryptedKey"

CONTENT = {
    "aes128-cbc": (XENC + "aes128-cbc", 16, 16),
    "aes192-cbc": (XENC + "aes192-cbc", 24, 16),
    "aes256-cbc": (XENC + "aes256-cbc", 32, 16),
    "tripledes-cbc": (XENC + "tripledes-cbc", 24, 8),
    "aes128-gcm": (XENC11 + "aes128-gcm", 16, 12),
    "aes192-gcm": (XENC11 + "aes192-gcm", 24, 12),
    "aes256-gcm": (XENC11 + "aes256-gcm", 32, 12),
}
KW = {
    "kw-aes128": (XENC + "kw-aes128", 16),
    "kw-aes192": (XENC + "kw-aes192", 24),
    "kw-aes256": (XENC + "kw-aes256", 32),
    "kw-tripledes": (XENC + "kw-tripledes", 24),
}
RSA_1_5 = XENC + "rsa-1_5"
RSA_OAEP = XENC + "rsa-oaep-mgf1p"

# The fixture keys: the vectors' symmetric keys under their KeyNames (as in src/fuzzing.rs,
# cross-checked below against ../shared/vectors when it is there) and the test-only RSA key.
SYMMETRIC = {
    "jed": bytes.fromhex("6162636465666768696a6b6c6d6e6f707172737475767778797a303132333435"),
    "job": bytes.fromhex("6162636465666768696a6b6c6d6e6f70"),
    "jeb": bytes.fromhex("6162636465666768696a6b6c6d6e6f707172737475767778"),
    "bob": bytes.fromhex("6162636465666768696a6b6c6d6e6f707172737475767778"),
    "my-aes256-key": bytes.fromhex("661678bf7465c1394210ea48ac77cb295c893810ed10938e4036adff8c51d5b0"),
    "Test Key 1": bytes.fromhex("feffe9928665731c6d6a8f9467308308"),
}
SHARED_KEY_FILES = {
    "jed": "xmlenc/merlin-xmlenc-five/sym-jed-aes256.key",
    "job": "xmlenc/merlin-xmlenc-five/sym-job-aes128.key",
    "jeb": "xmlenc/merlin-xmlenc-five/sym-jeb-aes192.key",
    "bob": "xmlenc/merlin-xmlenc-five/sym-bob-tripledes.key",
    "my-aes256-key": "xmlenc/01-phaos-xmlenc-3/sym-my-aes256-key.key",
    "Test Key 1": "xmlenc/xmlenc11-interop-2012/xenc11-example-AES128-GCM.key",
}
RSA_NAME = "test-only-rsa-2048"

with open(os.path.join(KEYS_DIR, "test-only-rsa-2048.pk8.der"), "rb") as f:
    RSA_KEY = serialization.load_der_private_key(f.read(), password=None)
with open(os.path.join(KEYS_DIR, "test-only-rsa-2048.cert.der"), "rb") as f:
    RSA_CERT = f.read()
RSA_N = RSA_KEY.public_key().public_numbers().n
RSA_E = RSA_KEY.public_key().public_numbers().e
K = (RSA_N.bit_length() + 7) // 8

# A master key like ASP.NET's (64 random bytes), inside the element .NET encrypts.
MASTER_VALUE = base64.b64encode(RNG.randbytes(64)).decode()
MASTER_KEY_XML = (
    '<masterKey xmlns:d1p1="http://schemas.asp.net/2015/03/dataProtection" '
    'd1p1:requiresEncryption="true"><!-- Warning: the key below is in an unencrypted form. -->'
    "<value>" + MASTER_VALUE + "</value></masterKey>"
)

DESERIALIZER = (
    "Microsoft.AspNetCore.DataProtection.AuthenticatedEncryption.ConfigurationModel."
    "AuthenticatedEncryptorDescriptorDeserializer, Microsoft.AspNetCore.DataProtection, "
    "Version=8.0.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60"
)


def decryptor(name):
    return (
        "Microsoft.AspNetCore.DataProtection.XmlEncryption." + name
        + ", Microsoft.AspNetCore.DataProtection, Version=8.0.0.0, Culture=neutral, "
        "PublicKeyToken=adb9793829ddae60"
    )


# ----------------------------------------------------------------------------- primitives


def b64(b):
    return base64.b64encode(b).decode()


def block_cipher(alg, key, iv):
    if alg == "tripledes-cbc":
        return Cipher(TripleDES(key), modes.CBC(iv))
    return Cipher(algorithms.AES(key), modes.CBC(iv))


def cbc_raw_encrypt(alg, key, iv, padded):
    e = block_cipher(alg, key, iv).encryptor()
    return e.update(padded) + e.finalize()


def cbc_raw_decrypt(alg, key, iv, ct):
    d = block_cipher(alg, key, iv).decryptor()
    return d.update(ct) + d.finalize()


def iso10126_pad(data, block, pad_byte=None):
    """ISO 10126 as xmlenc writes it: random filler, last byte = count. `pad_byte` forces a last
    byte (for the bad-padding cases)."""
    n = block - len(data) % block
    filler = RNG.randbytes(n - 1)
    return data + filler + bytes([n if pad_byte is None else pad_byte])


def content_encrypt(alg, key, plaintext, pad_byte=None):
    """IV ‖ ciphertext (‖ tag), as in a CipherValue."""
    _, key_len, iv_len = CONTENT[alg]
    assert len(key) == key_len, (alg, len(key))
    iv = RNG.randbytes(iv_len)
    if alg.endswith("gcm"):
        return iv + AESGCM(key).encrypt(iv, plaintext, None)
    block = 8 if alg == "tripledes-cbc" else 16
    return iv + cbc_raw_encrypt(alg, key, iv, iso10126_pad(plaintext, block, pad_byte))


def content_decrypt(alg, key, data):
    """The independent reference decryption (None on any failure)."""
    _, key_len, iv_len = CONTENT[alg]
    if len(key) != key_len or len(data) < iv_len:
        return None
    iv, rest = data[:iv_len], data[iv_len:]
    if alg.endswith("gcm"):
        try:
            return AESGCM(key).decrypt(iv, rest, None)
        except Exception:
            return None
    block = 8 if alg == "tripledes-cbc" else 16
    if not rest or len(rest) % block:
        return None
    pt = cbc_raw_decrypt(alg, key, iv, rest)
    n = pt[-1]
    if n == 0 or n > block:
        return None
    return pt[:-n]


TDES_KW_IV = bytes.fromhex("4adda22c79e82105")


def tdes_wrap(kek, key):
    icv = hashlib.sha1(key).digest()[:8]
    iv = RNG.randbytes(8)
    temp1 = cbc_raw_encrypt("tripledes-cbc", kek, iv, key + icv)
    temp3 = (iv + temp1)[::-1]
    return cbc_raw_encrypt("tripledes-cbc", kek, TDES_KW_IV, temp3)


def tdes_unwrap(kek, wrapped):
    if len(wrapped) < 24 or len(wrapped) % 8:
        return None
    temp3 = cbc_raw_decrypt("tripledes-cbc", kek, TDES_KW_IV, wrapped)[::-1]
    iv, temp1 = temp3[:8], temp3[8:]
    wkcks = cbc_raw_decrypt("tripledes-cbc", kek, iv, temp1)
    key, icv = wkcks[:-8], wkcks[-8:]
    return key if hashlib.sha1(key).digest()[:8] == icv else None


def kw_wrap(alg, kek, key):
    if alg == "kw-tripledes":
        return tdes_wrap(kek, key)
    return aes_key_wrap(kek, key)


def kw_unwrap(alg, kek, wrapped):
    if alg == "kw-tripledes":
        return tdes_unwrap(kek, wrapped)
    try:
        return aes_key_unwrap(kek, wrapped)
    except Exception:
        return None


def probable_prime(bits):
    while True:
        c = RNG.getrandbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if all(c % p for p in (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)) and all(
            pow(a, c - 1, c) == 1 for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
        ):
            if (c - 1) % RSA_E:
                return c


def other_rsa_modulus():
    """The modulus of another RSA-2048 key, from the seeded generator (so that the wrong-key cases
    are the same bytes on every run); its private half is never needed."""
    while True:
        n = probable_prime(1024) * probable_prime(1024)
        if n.bit_length() == 2048:
            return n


def rsa_raw(m_bytes, n=None, e=None):
    n = n or RSA_N
    e = e or RSA_E
    k = (n.bit_length() + 7) // 8
    return pow(int.from_bytes(m_bytes, "big"), e, n).to_bytes(k, "big")


def pkcs1v15_encrypt(key, n=None, e=None):
    n = n or RSA_N
    k = (n.bit_length() + 7) // 8
    ps = bytes(RNG.randrange(1, 256) for _ in range(k - 3 - len(key)))
    return rsa_raw(b"\x00\x02" + ps + b"\x00" + key, n, e)


def mgf1(seed, length, h):
    out = b""
    counter = 0
    while len(out) < length:
        out += h(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def oaep_encrypt(key, label=b"", h=hashlib.sha1, mgf_h=hashlib.sha1, n=None, e=None):
    n = n or RSA_N
    k = (n.bit_length() + 7) // 8
    hlen = h().digest_size
    lhash = h(label).digest()
    db = lhash + b"\x00" * (k - len(key) - 2 * hlen - 2) + b"\x01" + key
    seed = RNG.randbytes(hlen)
    masked_db = bytes(a ^ b for a, b in zip(db, mgf1(seed, k - hlen - 1, mgf_h)))
    masked_seed = bytes(a ^ b for a, b in zip(seed, mgf1(masked_db, hlen, mgf_h)))
    return rsa_raw(b"\x00" + masked_seed + masked_db, n, e)


def rsa_decrypt_reference(ct, oaep=False, label=None, h=hashes.SHA1()):
    """pyca's own RSA decryption with the fixture key: the check that our encodings are right."""
    try:
        if oaep:
            return RSA_KEY.decrypt(
                ct, rsa_padding.OAEP(mgf=rsa_padding.MGF1(hashes.SHA1()), algorithm=h, label=label)
            )
        return RSA_KEY.decrypt(ct, rsa_padding.PKCS1v15())
    except Exception:
        return None


# ----------------------------------------------------------------------------- XML builders


def ek_xml(method_uri, key_info, cipher_b64, attrs="", method_children="", extra=""):
    ki = f'<KeyInfo xmlns="{DS}">{key_info}</KeyInfo>' if key_info is not None else ""
    if method_children:
        method = f'<EncryptionMethod Algorithm="{method_uri}">{method_children}</EncryptionMethod>'
    else:
        method = f'<EncryptionMethod Algorithm="{method_uri}" />'
    return (
        f'<EncryptedKey xmlns="{XENC}"{attrs}>{method}{ki}'
        f"<CipherData><CipherValue>{cipher_b64}</CipherValue></CipherData>{extra}</EncryptedKey>"
    )


def ed_xml(method_uri, key_info, cipher_b64, data_type=TYPE_ELEMENT, cipher_data=None, attrs=""):
    t = f' Type="{data_type}"' if data_type else ""
    method = f'<EncryptionMethod Algorithm="{method_uri}" />' if method_uri else ""
    ki = f'<KeyInfo xmlns="{DS}">{key_info}</KeyInfo>' if key_info is not None else ""
    cd = cipher_data if cipher_data is not None else (
        f"<CipherData><CipherValue>{cipher_b64}</CipherValue></CipherData>"
    )
    return f'<EncryptedData{t} xmlns="{XENC}"{attrs}>{method}{ki}{cd}</EncryptedData>'


def x509_key_info():
    return f"<X509Data><X509Certificate>{b64(RSA_CERT)}</X509Certificate></X509Data>"


def key_name(name):
    return f"<KeyName>{name}</KeyName>"


def key_file(inner_descriptor, key_id="3a6d4e0c-43b4-4d6b-9a57-0d0c7c5b2a11",
             dates=None, deserializer=DESERIALIZER, bom=True):
    if dates is None:
        dates = (
            "<creationDate>2024-05-04T19:16:30.3590154Z</creationDate>"
            "<activationDate>2024-05-04T19:16:30.3487875Z</activationDate>"
            "<expirationDate>2024-08-02T19:16:30.3487875Z</expirationDate>"
        )
    des = f' deserializerType="{deserializer}"' if deserializer is not None else ""
    text = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<key id="{key_id}" version="1">{dates}'
        f"<descriptor{des}><descriptor>"
        '<encryption algorithm="AES_256_CBC" /><validation algorithm="HMACSHA256" />'
        f"{inner_descriptor}</descriptor></descriptor></key>"
    )
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def plain_master_key(value=MASTER_VALUE, extra=""):
    return (
        f'<masterKey p4:requiresEncryption="true" xmlns:p4="{DP}">'
        "<!-- Warning: the key below is in an unencrypted form. -->"
        f"<value>{value}</value>{extra}</masterKey>"
    )


def encrypted_secret(decryptor_type, inner):
    attr = f' decryptorType="{decryptor_type}"' if decryptor_type is not None else ""
    return f'<encryptedSecret{attr} xmlns="{DP}">{inner}</encryptedSecret>'


def null_protected(inner=None):
    inner = inner if inner is not None else plain_master_key()
    return encrypted_secret(
        decryptor("NullXmlDecryptor"),
        f'<unencryptedKey xmlns=""><!-- This key is not encrypted. -->{inner}</unencryptedKey>',
    )


# ----------------------------------------------------------------------------- the corpus

CASES = []


def case(file, data, attacks, entry, expected, keys=(), decryptors=(), **extra):
    # Any extension: certificate and Key Vault cases (.pem, .pfx, .json) will join the XML ones.
    assert file.startswith(("fail-", "ok-")) and "/" not in file, file
    if isinstance(data, str):
        data = data.encode()
    entry_obj = {
        "file": file,
        "attacks": attacks,
        "entry": entry,
        "keys": list(keys),
        "expected": expected,
    }
    if decryptors:
        entry_obj["decryptors"] = list(decryptors)
    entry_obj.update(extra)
    CASES.append((file, data, entry_obj))


def xml_cases():
    laughs = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    case("fail-billion-laughs.xml",
         f'<?xml version="1.0"?><!DOCTYPE key [{laughs}]><key>&lol9;</key>',
         "exponential entity expansion (10^9 'lol's from a 1 KB file)", "xml", "xml",
         max_peak_bytes=64 << 10)
    big = "A" * 50_000
    case("fail-quadratic-blowup.xml",
         f'<?xml version="1.0"?><!DOCTYPE key [<!ENTITY a "{big}">]><key>' + "&a;" * 2000 + "</key>",
         "quadratic blowup: one 50 KB entity referenced 2000 times (100 MB expanded)", "xml", "xml",
         max_peak_bytes=64 << 10)
    case("fail-external-entity-system.xml",
         '<?xml version="1.0"?><!DOCTYPE key [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><key>&xxe;</key>',
         "external entity (SYSTEM file:///etc/passwd)", "xml", "xml")
    case("fail-external-entity-public.xml",
         '<?xml version="1.0"?><!DOCTYPE key [<!ENTITY xxe PUBLIC "-//X//Y" "http://127.0.0.1:1/x">]><key>&xxe;</key>',
         "external entity (PUBLIC id with an http URL)", "xml", "xml")
    case("fail-external-parameter-entity.xml",
         '<?xml version="1.0"?><!DOCTYPE key [<!ENTITY % dtd SYSTEM "http://127.0.0.1:1/evil.dtd"> %dtd;]><key/>',
         "external parameter entity (out-of-band exfiltration setup)", "xml", "xml")
    case("fail-external-dtd.xml",
         '<?xml version="1.0"?><!DOCTYPE key SYSTEM "file:///etc/passwd"><key/>',
         "external DTD subset", "xml", "xml")
    case("fail-doctype-alone.xml", "<!DOCTYPE key><key/>",
         "a bare DOCTYPE without declarations", "xml", "xml")
    case("fail-undeclared-entity.xml", "<key>&xxe;</key>",
         "an entity reference without any DTD", "xml", "xml")
    case("fail-deep-nesting.xml", "<a>" * 100_000 + "</a>" * 100_000,
         "100,000 nested elements (stack exhaustion in recursive parsers)", "xml", "limit",
         max_peak_bytes=24 << 20)
    case("fail-deep-nesting-unclosed.xml", "<a>" * 200_000,
         "200,000 unclosed nested elements (the node bound stops it before the end)", "xml", "limit",
         max_peak_bytes=24 << 20)
    case("fail-huge-attribute.xml", '<key id="' + "A" * (2 << 20) + '"/>',
         "a 2 MiB attribute value", "xml", "limit", max_peak_bytes=64 << 10)
    case("fail-many-attributes.xml",
         "<key " + " ".join(f'a{i}="x"' for i in range(5000)) + "/>",
         "5000 attributes on one element", "xml", "limit", max_peak_bytes=2 << 20)
    case("fail-many-namespace-declarations.xml",
         "<key " + " ".join(f'xmlns:p{i}="urn:p{i}"' for i in range(5000)) + "/>",
         "5000 namespace declarations on one element", "xml", "limit", max_peak_bytes=2 << 20)
    case("fail-too-many-nodes.xml", "<r>" + "<a/>" * 250_000 + "</r>",
         "250,000 sibling elements (node count)", "xml", "limit", max_peak_bytes=24 << 20)
    case("fail-huge-text-node.xml", "<key>" + "A" * (3 << 19) + "</key>",
         "a 1.5 MiB text node", "xml", "limit", max_peak_bytes=64 << 10)
    case("fail-huge-comment.xml", "<key><!--" + "A" * (3 << 19) + "--></key>",
         "a 1.5 MiB comment", "xml", "limit", max_peak_bytes=64 << 10)
    case("fail-truncated-document.xml", key_file(plain_master_key())[:300],
         "a key file cut short", "xml", "xml")
    case("fail-two-root-elements.xml", "<key/><key/>", "two root elements", "xml", "xml")
    case("fail-unbound-prefix.xml", "<p:key/>", "an undeclared namespace prefix", "xml", "xml")
    # Encodings.
    case("fail-utf16-without-bom.xml", '<key id="x"/>'.encode("utf-16-le"),
         "UTF-16LE without BOM or '<?' start (read as UTF-8: NUL characters)", "xml", "xml")
    case("fail-declared-iso-8859-1-latin1-bytes.xml",
         b'<?xml version="1.0" encoding="ISO-8859-1"?><key>caf\xe9</key>',
         "ISO-8859-1 declared, a non-ASCII Latin-1 byte (not UTF-8)", "xml", "xml")
    case("fail-declared-iso-8859-1-utf8-bytes.xml",
         '<?xml version="1.0" encoding="ISO-8859-1"?><key>café</key>'.encode(),
         "ISO-8859-1 declared over non-ASCII UTF-8 text (.NET would read other characters)",
         "xml", "xml")
    case("fail-declared-ebcdic.xml", b'<?xml version="1.0" encoding="IBM037"?><key/>',
         "an encoding dpwrap does not read (EBCDIC)", "xml", "xml")
    case("fail-utf8-bom-declared-utf16.xml",
         b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-16"?><key/>',
         "a UTF-8 BOM with encoding=\"utf-16\" declared (.NET refuses: no Unicode byte order mark)",
         "xml", "xml")
    case("fail-utf8-declared-utf16.xml",
         b'<?xml version="1.0" encoding="utf-16"?><key/>',
         "UTF-8 bytes declaring encoding=\"utf-16\" without a BOM", "xml", "xml")
    case("fail-utf8-bom-twice.xml", b"\xef\xbb\xbf\xef\xbb\xbf<key/>",
         "two UTF-8 byte order marks", "xml", "xml")
    case("fail-overlong-utf8.xml", b"<key>\xc0\xbcscript\xc0\xbe</key>",
         "overlong UTF-8 encodings of '<' and '>'", "xml", "xml")
    case("fail-utf8-surrogate.xml", b"<key>\xed\xa0\x80</key>",
         "a UTF-8 encoded surrogate (CESU-8)", "xml", "xml")
    case("fail-nul-byte.xml", b"<key>a\x00b</key>", "a NUL byte in text", "xml", "xml")
    case("fail-control-character-reference.xml", "<key>&#0;</key>",
         "a character reference to U+0000", "xml", "xml")
    case("fail-utf16-odd-length.xml", b"\xff\xfe" + "<key/>".encode("utf-16-le") + b"<",
         "UTF-16 with an odd number of bytes", "xml", "xml")
    case("fail-utf16-unpaired-surrogate.xml",
         b"\xff\xfe" + "<key>".encode("utf-16-le") + b"\x00\xd8" + "</key>".encode("utf-16-le"),
         "UTF-16 with an unpaired surrogate", "xml", "xml")


def key_file_cases():
    good_null = null_protected()
    case("ok-key-null-protected.xml", key_file(good_null),
         "control: a key protected with the null decryptor", "key_file", "ok",
         decryptors=["null"], expected_master_key=MASTER_VALUE)
    case("fail-key-id-disagrees-with-file-name.xml", key_file(plain_master_key()),
         "a key whose id is not the guid in its file name (copied or planted file)",
         "key_file", "format", save_as="key-00000000-0000-0000-0000-000000000001.xml")
    case("fail-key-not-a-key-element.xml",
         b"<keys>" + key_file(plain_master_key(), bom=False).split(b"?>", 1)[1] + b"</keys>",
         "a <keys> element wrapping a key (not a ring element)", "key_file", "format")
    case("fail-key-two-master-keys.xml", key_file(plain_master_key() + plain_master_key()),
         "two masterKey elements (which one is used?)", "key_file", "format")
    case("fail-key-master-key-inside-master-key.xml",
         key_file(plain_master_key(extra=plain_master_key())),
         "a masterKey nested in a masterKey", "key_file", "format")
    case("fail-key-no-master-key.xml", key_file("<other/>"),
         "a descriptor without masterKey or encryptedSecret", "key_file", "format")
    case("fail-key-empty-master-key.xml", key_file(plain_master_key(value="")),
         "an empty masterKey value", "key_file", "format")
    case("fail-key-master-key-bad-base64.xml", key_file(plain_master_key(value="not*base64!")),
         "a masterKey value that is not base64", "key_file", "format")
    case("fail-key-master-key-over-1kib.xml",
         key_file(plain_master_key(value=b64(RNG.randbytes(4096)))),
         "a 4 KiB master key (bounded at 1 KiB)", "key_file", "limit")
    case("fail-key-master-key-1025-bytes.xml",
         key_file(plain_master_key(value=b64(random.Random(1025).randbytes(1025)))),
         "a 1025-byte master key: one byte over the bound, within the same base64 length",
         "key_file", "limit")
    case("fail-key-master-key-two-values.xml",
         key_file(plain_master_key(extra="<value>AAAA</value>")),
         "a masterKey with two <value> children", "key_file", "format")
    case("fail-key-unknown-deserializer.xml",
         key_file(plain_master_key(), deserializer="Contoso.EvilDescriptorDeserializer, Contoso"),
         "a descriptor deserializer ASP.NET does not define", "key_file", "unknown-deserializer")
    case("fail-key-no-deserializer.xml", key_file(plain_master_key(), deserializer=None),
         "a descriptor without deserializerType", "key_file", "format")
    case("fail-key-unknown-decryptor.xml",
         key_file(encrypted_secret("Contoso.EvilDecryptor, Contoso", '<x xmlns="" />')),
         "an encryptedSecret naming an unknown decryptor", "key_file", "unknown-decryptor",
         decryptors=["null", "xmlenc"])
    case("fail-key-null-decryptor-not-registered.xml", key_file(good_null),
         "a null-protected key read without the null decryptor registered", "key_file",
         "unknown-decryptor")
    case("fail-key-dpapi-windows-only.xml",
         key_file(encrypted_secret(decryptor("DpapiXmlDecryptor"),
                                   '<encryptedKey xmlns=""><!-- This key is encrypted with Windows DPAPI. --><value>AQAAANCMnd8BFdERjHoAwE/Cl+sBAAAA</value></encryptedKey>')),
         "a DPAPI-protected key (only Windows can decrypt)", "key_file", "windows-only",
         decryptors=["null", "xmlenc"])
    case("fail-key-dpapi-ng-windows-only.xml",
         key_file(encrypted_secret(decryptor("DpapiNGXmlDecryptor"),
                                   '<encryptedKey xmlns=""><!-- This key is encrypted with Windows DPAPI-NG. --><!-- Rule: SID=S-1-5-21 --><value>MIIB</value></encryptedKey>')),
         "a DPAPI-NG-protected key (only Windows can decrypt)", "key_file", "windows-only",
         decryptors=["null", "xmlenc"])
    case("fail-key-encryptedsecret-two-children.xml",
         key_file(encrypted_secret(decryptor("NullXmlDecryptor"),
                                   '<unencryptedKey xmlns="">' + plain_master_key() + '</unencryptedKey><unencryptedKey xmlns="" />')),
         "an encryptedSecret with two child elements", "key_file", "format", decryptors=["null"])
    case("fail-key-encryptedsecret-no-decryptor-type.xml",
         key_file(encrypted_secret(None, '<unencryptedKey xmlns="">' + plain_master_key() + "</unencryptedKey>")),
         "an encryptedSecret without decryptorType", "key_file", "format", decryptors=["null"])
    case("fail-key-encryptedsecret-empty.xml",
         key_file(encrypted_secret(decryptor("NullXmlDecryptor"), "")),
         "an empty encryptedSecret", "key_file", "format", decryptors=["null"])
    case("fail-key-unencryptedkey-two-children.xml",
         key_file(encrypted_secret(decryptor("NullXmlDecryptor"),
                                   '<unencryptedKey xmlns="">' + plain_master_key() + "<extra/></unencryptedKey>")),
         "a null-protected secret with two elements", "key_file", "format", decryptors=["null"])
    case("fail-key-decrypted-secret-has-no-master-key.xml",
         key_file(null_protected("<notAMasterKey>AAAA</notAMasterKey>")),
         "a protected secret that decrypts to something other than a masterKey", "key_file",
         "format", decryptors=["null"])
    dates = {
        "c": "<creationDate>2024-05-04T19:16:30.3590154Z</creationDate>",
        "a": "<activationDate>2024-05-04T19:16:30.3487875Z</activationDate>",
        "e": "<expirationDate>2024-08-02T19:16:30.3487875Z</expirationDate>",
    }
    case("fail-key-missing-creation-date.xml", key_file(plain_master_key(), dates=dates["a"] + dates["e"]),
         "a key without creationDate", "key_file", "format")
    case("fail-key-duplicate-activation-date.xml",
         key_file(plain_master_key(), dates=dates["c"] + dates["a"] + dates["a"] + dates["e"]),
         "two activationDate elements (which one counts?)", "key_file", "format")
    case("fail-key-unparseable-expiration-date.xml",
         key_file(plain_master_key(), dates=dates["c"] + dates["a"] + "<expirationDate>next tuesday</expirationDate>"),
         "an expirationDate that is not a date", "key_file", "format")
    case("fail-key-date-eight-fraction-digits.xml",
         key_file(plain_master_key(), dates=dates["c"] + "<activationDate>2024-05-04T19:16:30.12345678Z</activationDate>" + dates["e"]),
         "a date with more fractional digits than DateTimeOffset holds", "key_file", "format")
    case("fail-key-date-month-13.xml",
         key_file(plain_master_key(), dates=dates["c"] + dates["a"] + "<expirationDate>2024-13-02T19:16:30Z</expirationDate>"),
         "a date with month 13", "key_file", "format")
    case("fail-key-id-not-a-guid.xml", key_file(plain_master_key(), key_id="not-a-guid"),
         "a key id that is not a GUID", "key_file", "format")
    case("fail-key-descriptor-two-elements.xml",
         key_file(plain_master_key()).replace(b"</descriptor></descriptor>", b"</descriptor><descriptor/></descriptor>"),
         "an outer descriptor holding two descriptors", "key_file", "format")
    # Revocations.
    case("fail-revocation-bad-id.xml",
         '<revocation version="1"><revocationDate>2024-05-04T19:16:30Z</revocationDate><key id="everything" /><reason>x</reason></revocation>',
         "a revocation whose key id is neither a GUID nor '*'", "key_file", "format")
    case("fail-revocation-missing-date.xml",
         '<revocation version="1"><key id="*" /><reason>x</reason></revocation>',
         "a revocation without a revocationDate", "key_file", "format")
    case("fail-revocation-two-keys.xml",
         '<revocation version="1"><revocationDate>2024-05-04T19:16:30Z</revocationDate><key id="*" /><key id="3a6d4e0c-43b4-4d6b-9a57-0d0c7c5b2a11" /></revocation>',
         "a revocation naming two targets", "key_file", "format")
    case("fail-revocation-bad-date.xml",
         '<revocation version="1"><revocationDate>yesterday</revocationDate><key id="*" /></revocation>',
         "a revocation whose date is not a date", "key_file", "format")
    # The envelope directly (a descriptor, as key rings hand it to envelope::decrypt_element).
    descriptor = lambda inner: (
        '<descriptor><encryption algorithm="AES_256_CBC" /><validation algorithm="HMACSHA256" />'
        + inner + "</descriptor>"
    )
    case("fail-envelope-encryptedsecret-two-children.xml",
         descriptor(encrypted_secret(decryptor("NullXmlDecryptor"), '<unencryptedKey xmlns="" /><unencryptedKey xmlns="" />')),
         "an encryptedSecret with two child elements, through the envelope", "envelope", "format",
         decryptors=["null", "xmlenc"])
    case("fail-envelope-no-decryptor-type.xml",
         descriptor(encrypted_secret(None, '<unencryptedKey xmlns="" />')),
         "an encryptedSecret without decryptorType, through the envelope", "envelope", "format",
         decryptors=["null", "xmlenc"])
    case("fail-envelope-unknown-decryptor.xml",
         descriptor(encrypted_secret("Contoso.EvilDecryptor, Contoso", '<x xmlns="" />')),
         "an unknown decryptor, through the envelope", "envelope", "unknown-decryptor",
         decryptors=["null", "xmlenc"])
    # As in .NET, what a decryptor returns is not decrypted again: a secret hidden in a secret is
    # not followed, and the key then has no master key.
    case("fail-key-nested-encryptedsecret.xml",
         key_file(null_protected(encrypted_secret("Contoso.EvilDecryptor, Contoso", '<x xmlns="" />'))),
         "an encryptedSecret inside an encryptedSecret (not followed, as in .NET: no master key)",
         "key_file", "format", decryptors=["null"])


# --- crypto-level cases -------------------------------------------------------------------


def check(cond, what):
    if not cond:
        sys.exit(f"generator self-check failed: {what}")


def rsa15_ek(cek, key_info=None):
    ct = pkcs1v15_encrypt(cek)
    check(rsa_decrypt_reference(ct) == cek, "pkcs1v15 encoding")
    return ek_xml(RSA_1_5, key_info if key_info is not None else x509_key_info(), b64(ct))


def oaep_ek(cek, label=None, key_info=None):
    ct = oaep_encrypt(cek, label or b"")
    check(rsa_decrypt_reference(ct, oaep=True, label=label) == cek, "oaep encoding")
    children = f"<OAEPparams>{b64(label)}</OAEPparams>" if label else ""
    children += f'<DigestMethod xmlns="{DS}" Algorithm="http://www.w3.org/2000/09/xmldsig#sha1" />'
    return ek_xml(RSA_OAEP, key_info if key_info is not None else key_name(RSA_NAME), b64(ct),
                  method_children=children)


def kw_ek(alg, kek_name, cek, wrapped=None):
    uri, kek_len = KW[alg]
    kek = SYMMETRIC[kek_name]
    check(len(kek) == kek_len, f"{kek_name} is not a {alg} key")
    w = wrapped if wrapped is not None else kw_wrap(alg, kek, cek)
    return ek_xml(uri, key_name(kek_name), b64(w))


def stage_ok(content_alg, cek, data, plaintext):
    check(content_decrypt(content_alg, cek, data) == plaintext, f"{content_alg} control")


def xmlenc_cases():
    pt = MASTER_KEY_XML.encode()
    # Controls: each transport, each content algorithm family.
    controls = [
        ("ok-rsa15-aes256cbc.xml", "aes256-cbc", "rsa15", [RSA_NAME]),
        ("ok-oaep-aes128gcm.xml", "aes128-gcm", "oaep", [RSA_NAME]),
        ("ok-kwaes256-tripledes.xml", "tripledes-cbc", "kw-aes256:jed", ["jed"]),
        ("ok-kwtripledes-aes192cbc.xml", "aes192-cbc", "kw-tripledes:bob", ["bob"]),
        ("ok-kwaes128-aes256gcm.xml", "aes256-gcm", "kw-aes128:job", ["job"]),
        ("ok-direct-aes128gcm.xml", "aes128-gcm", "name:Test Key 1", ["Test Key 1"]),
    ]
    templates = {}
    for file, alg, transport, keys in controls:
        cek = RNG.randbytes(CONTENT[alg][1])
        if transport == "name:Test Key 1":
            cek = SYMMETRIC["Test Key 1"]
        data = content_encrypt(alg, cek, pt)
        stage_ok(alg, cek, data, pt)
        if transport == "rsa15":
            ki = rsa15_ek(cek)
        elif transport == "oaep":
            ki = oaep_ek(cek)
        elif transport.startswith("kw-"):
            kw, name = transport.split(":")
            ki = kw_ek(kw, name, cek)
        else:
            ki = key_name(transport.split(":", 1)[1])
        doc = ed_xml(CONTENT[alg][0], ki, b64(data))
        case(file, doc, "control: decrypts with the fixture keys", "xmlenc", "ok", keys=keys,
             expected_plaintext=MASTER_KEY_XML)
        templates[file] = (alg, cek, data, ki)

    def variant(file, attacks, content_alg, cek, data, key_info, keys, expected="decrypt",
                reaches=None, **extra):
        doc = ed_xml(CONTENT[content_alg][0], key_info, b64(data))
        if reaches:
            extra["reaches"] = reaches
        case(file, doc, attacks, "xmlenc", expected, keys=keys, **extra)

    write_splice_seeds(templates)
    write_decrypt_seeds(templates)

    # Ciphertext length: the key unwraps fine (KW integrity checked), the content fails.
    alg, cek, data, ki = templates["ok-kwaes256-tripledes.xml"]
    check(kw_unwrap("kw-aes256", SYMMETRIC["jed"], base64.b64decode(ki.split("<CipherValue>")[1].split("<")[0])) == cek, "kw")
    variant("fail-ciphervalue-not-block-multiple.xml",
            "a 3DES-CBC ciphertext 5 bytes short of a block multiple (the KW unwrap succeeds)",
            alg, cek, data[:-5], ki, ["jed"], reaches="content-decrypt")
    variant("fail-ciphervalue-iv-only.xml", "a CipherValue holding only the IV",
            alg, cek, data[:8], ki, ["jed"], reaches="content-decrypt")
    variant("fail-ciphervalue-shorter-than-iv.xml", "a CipherValue shorter than the IV (5 bytes)",
            alg, cek, data[:5], ki, ["jed"], reaches="content-decrypt")
    variant("fail-ciphervalue-empty.xml", "an empty CipherValue",
            alg, cek, b"", ki, ["jed"], reaches="content-decrypt")
    # Over-long: a block appended whose decryption ends in an invalid pad byte.
    while True:
        extra_block = RNG.randbytes(8)
        longer = data + extra_block
        last = cbc_raw_decrypt(alg, cek, longer[-16:-8], longer[-8:])[-1]
        if last == 0 or last > 8:
            break
    check(content_decrypt(alg, cek, longer) is None, "extra block fails")
    variant("fail-ciphervalue-extra-block.xml",
            "a 3DES-CBC ciphertext with a block appended (pad byte of the new last block > 8)",
            alg, cek, longer, ki, ["jed"], reaches="content-decrypt")

    # Bad padding, right key: ISO 10126 last byte 0, 17 (AES), 9 (3DES).
    alg, cek, data, ki = templates["ok-rsa15-aes256cbc.xml"]
    for pad, name in [(0, "zero"), (17, "over-block-size"), (255, "255")]:
        bad = content_encrypt(alg, cek, pt, pad_byte=pad)
        check(content_decrypt(alg, cek, bad) is None, f"pad {pad}")
        variant(f"fail-padding-{name}-aes256cbc.xml",
                f"AES-256-CBC with last pad byte {pad}, under the right key (rsa-1_5 transport)",
                alg, cek, bad, ki, [RSA_NAME], reaches="content-unpad")
    alg3, cek3, _, ki3 = templates["ok-kwaes256-tripledes.xml"]
    bad = content_encrypt(alg3, cek3, pt, pad_byte=9)
    check(content_decrypt(alg3, cek3, bad) is None, "3des pad 9")
    variant("fail-padding-over-block-size-tripledes.xml",
            "3DES-CBC with last pad byte 9 (> the 8-byte block), under the right key",
            alg3, cek3, bad, ki3, ["jed"], reaches="content-unpad")

    # Right key and padding, plaintext that is not what the Type says.
    for file, text, attacks in [
        ("fail-plaintext-not-xml-aes256cbc.xml", b"\xff\xfe not xml at all",
         "correct key and padding, Type Element, plaintext not UTF-8 XML"),
        ("fail-plaintext-two-elements.xml", b"<a/><b/>",
         "correct key and padding, Type Element, plaintext of two elements"),
        ("fail-plaintext-has-doctype.xml",
         b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
         "correct key, Type Element, plaintext with a DTD and an external entity"),
    ]:
        d = content_encrypt(alg, cek, text)
        check(content_decrypt(alg, cek, d) == text, file)
        variant(file, attacks, alg, cek, d, ki, [RSA_NAME], reaches="plaintext-check")

    # GCM: tag and ciphertext tampering, short data.
    alg, cek, data, ki = templates["ok-oaep-aes128gcm.xml"]
    tag_bad = data[:-1] + bytes([data[-1] ^ 0x01])
    ct_bad = data[:13] + bytes([data[13] ^ 0x80]) + data[14:]
    iv_bad = bytes([data[0] ^ 0x01]) + data[1:]
    for file, d, attacks in [
        ("fail-gcm-tag-mismatch.xml", tag_bad, "AES-128-GCM with one tag bit flipped (right key via OAEP)"),
        ("fail-gcm-ciphertext-tampered.xml", ct_bad, "AES-128-GCM with one ciphertext bit flipped"),
        ("fail-gcm-iv-tampered.xml", iv_bad, "AES-128-GCM with one IV bit flipped"),
        ("fail-gcm-tag-truncated.xml", data[:-4], "AES-128-GCM with a 12-byte tag"),
        ("fail-gcm-shorter-than-tag.xml", data[:12 + 8], "AES-128-GCM data shorter than IV + tag"),
    ]:
        check(content_decrypt(alg, cek, d) is None, file)
        variant(file, attacks, alg, cek, d, ki, [RSA_NAME], reaches="content-decrypt")

    # Unwrapped keys of the wrong length for the content algorithm.
    for file, kw, kek_name, key_len, content_alg, attacks in [
        ("fail-kw-aes128-unwraps-16-byte-key-for-aes256cbc.xml", "kw-aes128", "job", 16, "aes256-cbc",
         "kw-aes128 unwrapping a 16-byte key for aes256-cbc"),
        ("fail-kw-aes256-unwraps-32-byte-key-for-tripledes.xml", "kw-aes256", "jed", 32, "tripledes-cbc",
         "kw-aes256 unwrapping a 32-byte key for tripledes-cbc"),
        ("fail-kw-tripledes-unwraps-24-byte-key-for-aes128gcm.xml", "kw-tripledes", "bob", 24, "aes128-gcm",
         "kw-tripledes unwrapping a 24-byte key for aes128-gcm"),
        ("fail-kw-aes192-unwraps-40-byte-key-for-aes256gcm.xml", "kw-aes192", "jeb", 40, "aes256-gcm",
         "kw-aes192 unwrapping a 40-byte key for aes256-gcm"),
    ]:
        wrong = RNG.randbytes(key_len)
        real = RNG.randbytes(CONTENT[content_alg][1])
        ek = kw_ek(kw, kek_name, wrong)
        check(kw_unwrap(kw, SYMMETRIC[kek_name], base64.b64decode(ek.split("<CipherValue>")[1].split("<")[0])) == wrong, file)
        variant(file, attacks, content_alg, real, content_encrypt(content_alg, real, pt), ek,
                [kek_name], reaches="key-length")
    for file, transport, key_len, content_alg, attacks in [
        ("fail-rsa15-unwraps-16-byte-key-for-aes256cbc.xml", "rsa15", 16, "aes256-cbc",
         "rsa-1_5 unwrapping a 16-byte key for aes256-cbc"),
        ("fail-oaep-unwraps-24-byte-key-for-aes128gcm.xml", "oaep", 24, "aes128-gcm",
         "rsa-oaep unwrapping a 24-byte key for aes128-gcm"),
        ("fail-oaep-unwraps-empty-key.xml", "oaep", 0, "aes256-cbc",
         "rsa-oaep unwrapping an empty key"),
    ]:
        wrong = RNG.randbytes(key_len)
        real = RNG.randbytes(CONTENT[content_alg][1])
        ek = rsa15_ek(wrong) if transport == "rsa15" else oaep_ek(wrong)
        variant(file, attacks, content_alg, real, content_encrypt(content_alg, real, pt), ek,
                [RSA_NAME], reaches="key-length")

    # Wrong keys and tampered wrapped keys.
    on = other_rsa_modulus()
    alg, cek, data, _ = templates["ok-rsa15-aes256cbc.xml"]
    ek = ek_xml(RSA_1_5, x509_key_info(), b64(pkcs1v15_encrypt(cek, n=on)))
    variant("fail-rsa15-wrong-key.xml",
            "rsa-1_5 to another RSA key, naming the fixture certificate (implicit rejection)",
            alg, cek, data, ek, [RSA_NAME], reaches="rsa-decrypt")
    alg, cek, data, _ = templates["ok-oaep-aes128gcm.xml"]
    ek = ek_xml(RSA_OAEP, key_name(RSA_NAME), b64(oaep_encrypt(cek, n=on)))
    variant("fail-oaep-wrong-key.xml", "rsa-oaep to another RSA key, naming the fixture key",
            alg, cek, data, ek, [RSA_NAME], reaches="rsa-decrypt")
    ct = oaep_encrypt(cek, b"label-a")
    check(rsa_decrypt_reference(ct, oaep=True, label=b"label-a") == cek, "oaep label")
    ek = ek_xml(RSA_OAEP, key_name(RSA_NAME), b64(ct),
                method_children=f"<OAEPparams>{b64(b'label-b')}</OAEPparams>")
    variant("fail-oaep-label-mismatch.xml", "rsa-oaep encrypted with one label, declaring another",
            alg, cek, data, ek, [RSA_NAME], reaches="rsa-decrypt")
    ct = oaep_encrypt(cek)
    ek = ek_xml(RSA_OAEP, key_name(RSA_NAME), b64(ct),
                method_children=f'<DigestMethod xmlns="{DS}" Algorithm="http://www.w3.org/2001/04/xmlenc#sha256" />')
    variant("fail-oaep-digest-mismatch.xml", "rsa-oaep with SHA-1, declaring SHA-256",
            alg, cek, data, ek, [RSA_NAME], reaches="rsa-decrypt")
    ek = ek_xml(RSA_OAEP, key_name(RSA_NAME), b64(oaep_encrypt(cek)[1:]))
    variant("fail-rsa-ciphertext-one-byte-short.xml", "an RSA ciphertext of 255 bytes for a 2048-bit key",
            alg, cek, data, ek, [RSA_NAME], reaches="rsa-decrypt")
    over = (RSA_N + 5).to_bytes(K, "big")
    ek = ek_xml(RSA_OAEP, key_name(RSA_NAME), b64(over))
    variant("fail-rsa-ciphertext-above-modulus.xml", "an RSA ciphertext larger than the modulus",
            alg, cek, data, ek, [RSA_NAME], reaches="rsa-decrypt")
    alg, cek, data, ki = templates["ok-kwaes128-aes256gcm.xml"]
    w = kw_wrap("kw-aes128", SYMMETRIC["job"], cek)
    tampered = w[:5] + bytes([w[5] ^ 0x04]) + w[6:]
    check(kw_unwrap("kw-aes128", SYMMETRIC["job"], tampered) is None, "kw integrity")
    variant("fail-kw-integrity.xml", "an AES-KW wrapped key with one bit flipped (integrity check)",
            alg, cek, data, kw_ek("kw-aes128", "job", cek, wrapped=tampered), ["job"],
            reaches="key-unwrap")
    w3 = kw_wrap("kw-tripledes", SYMMETRIC["bob"], RNG.randbytes(32))
    t3 = w3[:20] + bytes([w3[20] ^ 0x10]) + w3[21:]
    check(kw_unwrap("kw-tripledes", SYMMETRIC["bob"], t3) is None, "3des kw integrity")
    variant("fail-kw-tripledes-integrity.xml", "a 3DES-KW wrapped key with one bit flipped (ICV)",
            alg, cek, data, kw_ek("kw-tripledes", "bob", cek, wrapped=t3), ["bob"],
            reaches="key-unwrap")
    wrong_keks = "".join(
        kw_ek("kw-aes128", "job", cek, wrapped=aes_key_wrap(RNG.randbytes(16), cek)) for _ in range(6)
    )
    variant("fail-duplicate-encryptedkeys-all-wrong.xml",
            "six EncryptedKeys naming the KEK 'job', each wrapped under another key",
            alg, cek, data, wrong_keks, ["job"], reaches="key-unwrap")
    variant("fail-encryptedkeys-over-budget.xml",
            "40 EncryptedKeys before the right one (the engine tries at most 32)",
            alg, cek, data, kw_ek("kw-aes128", "job", cek, wrapped=aes_key_wrap(RNG.randbytes(16), cek)) * 40
            + kw_ek("kw-aes128", "job", cek), ["job"], expected="limit")
    variant("fail-symmetric-key-wrong-length.xml",
            "a direct KeyName whose key has the wrong length for the algorithm (jed, 32 bytes, for aes128-gcm)",
            "aes128-gcm", SYMMETRIC["Test Key 1"], content_encrypt("aes128-gcm", SYMMETRIC["Test Key 1"], pt),
            key_name("jed"), ["jed"], reaches="key-length")
    variant("fail-direct-key-wrong-key.xml",
            "a direct KeyName resolving to a key of the right length that is not the key",
            "aes256-gcm", SYMMETRIC["jed"], content_encrypt("aes256-gcm", RNG.randbytes(32), pt),
            key_name("jed"), ["jed"], reaches="content-decrypt")

    # Algorithms: swapped, unknown, contradictory.
    alg, cek, data, ki = templates["ok-kwaes256-tripledes.xml"]
    case("fail-content-algorithm-in-encryptedkey.xml",
         ed_xml(CONTENT[alg][0], ek_xml(XENC + "aes256-cbc", key_name("jed"), b64(kw_wrap("kw-aes256", SYMMETRIC["jed"], cek))), b64(data)),
         "an EncryptedKey whose EncryptionMethod is a content algorithm", "xmlenc",
         "unsupported-algorithm", keys=["jed"])
    case("fail-key-transport-in-encrypteddata.xml", ed_xml(RSA_OAEP, ki, b64(data)),
         "an EncryptedData whose EncryptionMethod is RSA-OAEP key transport", "xmlenc",
         "unsupported-algorithm", keys=["jed"])
    case("fail-key-wrap-in-encrypteddata.xml", ed_xml(XENC + "kw-aes256", ki, b64(data)),
         "an EncryptedData whose EncryptionMethod is a key wrap algorithm", "xmlenc",
         "unsupported-algorithm", keys=["jed"])
    case("fail-unknown-content-algorithm.xml", ed_xml("http://www.w3.org/2001/04/xmlenc#camellia256-cbc", ki, b64(data)),
         "an unknown content algorithm URI", "xmlenc", "unsupported-algorithm", keys=["jed"])
    case("fail-unknown-key-wrap-algorithm.xml",
         ed_xml(CONTENT[alg][0], ek_xml("http://www.w3.org/2001/04/xmldsig-more#kw-camellia256", key_name("jed"), b64(RNG.randbytes(40))), b64(data)),
         "an unknown key wrap URI", "xmlenc", "unsupported-algorithm", keys=["jed"])
    case("fail-oaep-unknown-digest.xml",
         ed_xml(CONTENT[alg][0], ek_xml(RSA_OAEP, key_name(RSA_NAME), b64(oaep_encrypt(cek)),
                                         method_children=f'<DigestMethod xmlns="{DS}" Algorithm="http://www.w3.org/2001/04/xmldsig-more#md5" />'), b64(data)),
         "RSA-OAEP with an MD5 DigestMethod", "xmlenc", "unsupported-algorithm", keys=[RSA_NAME])
    case("fail-oaep-mgf-contradicts-mgf1p.xml",
         ed_xml(CONTENT[alg][0], ek_xml(RSA_OAEP, key_name(RSA_NAME), b64(oaep_encrypt(cek)),
                                         method_children=f'<MGF xmlns="{XENC11}" Algorithm="{XENC11}mgf1sha256" />'), b64(data)),
         "rsa-oaep-mgf1p (MGF1-SHA-1 by definition) with an MGF saying SHA-256", "xmlenc",
         "unsupported-algorithm", keys=[RSA_NAME])
    case("fail-no-encryption-method.xml", ed_xml(None, ki, b64(data)),
         "an EncryptedData without EncryptionMethod", "xmlenc", "format", keys=["jed"])
    case("fail-encryption-method-no-algorithm.xml",
         ed_xml(CONTENT[alg][0], ki, b64(data)).replace(f'<EncryptionMethod Algorithm="{CONTENT[alg][0]}" />', "<EncryptionMethod />"),
         "an EncryptionMethod without Algorithm", "xmlenc", "format", keys=["jed"])
    case("fail-no-cipher-data.xml", ed_xml(CONTENT[alg][0], ki, None, cipher_data=""),
         "an EncryptedData without CipherData", "xmlenc", "format", keys=["jed"])
    case("fail-cipher-data-empty.xml", ed_xml(CONTENT[alg][0], ki, None, cipher_data="<CipherData/>"),
         "a CipherData with neither CipherValue nor CipherReference", "xmlenc", "format", keys=["jed"])
    case("fail-ciphervalue-bad-base64.xml", ed_xml(CONTENT[alg][0], ki, "****"),
         "a CipherValue that is not base64", "xmlenc", "format", keys=["jed"])
    case("fail-ciphervalue-huge.xml", ed_xml(CONTENT[alg][0], ki, "QUFB" * ((3 << 20) // 8)),
         "a 1.5 MiB base64 CipherValue (one text node)", "xmlenc", "limit", keys=["jed"],
         max_peak_bytes=64 << 10)
    case("fail-encryptedkey-ciphervalue-over-limit.xml",
         ed_xml(CONTENT[alg][0], ek_xml(RSA_1_5, x509_key_info(), b64(RNG.randbytes(2000))), b64(data)),
         "a 2000-byte wrapped key (the bound is 1024, an RSA-8192 ciphertext)", "xmlenc", "limit",
         keys=[RSA_NAME])
    case("fail-no-key-info.xml", ed_xml(CONTENT[alg][0], None, b64(data)),
         "an EncryptedData that names no key", "xmlenc", "no-matching-key", keys=["jed"])
    case("fail-unknown-key-name.xml", ed_xml(CONTENT[alg][0], key_name("nobody"), b64(data)),
         "a KeyName no configured key has", "xmlenc", "no-matching-key", keys=["jed"])
    case("fail-rsa-certificate-not-configured.xml",
         ed_xml(CONTENT[alg][0], ek_xml(RSA_1_5, "<X509Data><X509Certificate>" + b64(b"some other certificate") + "</X509Certificate></X509Data>", b64(RNG.randbytes(256))), b64(data)),
         "an EncryptedKey for a certificate that is not configured", "xmlenc", "no-matching-key",
         keys=[RSA_NAME])
    case("fail-keyinfo-too-many-children.xml", ed_xml(CONTENT[alg][0], key_name("nobody") * 100, b64(data)),
         "a KeyInfo with 100 children (bound 64)", "xmlenc", "limit", keys=["jed"])
    nested = kw_ek("kw-aes256", "jed", cek)
    for _ in range(8):
        nested = ek_xml(XENC + "kw-aes256", nested, b64(RNG.randbytes(40)))
    case("fail-encryptedkey-nesting-too-deep.xml", ed_xml(CONTENT[alg][0], nested, b64(data)),
         "EncryptedKeys nested 9 deep (bound 4)", "xmlenc", "limit", keys=["jed"])

    # CPU amplification: every KeyName of every KeyInfo looked for EncryptedKeys carrying that
    # name by scanning the whole document (2.4 s for this 600 KB file before the scan was done
    # once per decryption).
    names = key_name("jed") * 63
    carriers = ek_xml(XENC + "kw-aes256", names, b64(RNG.randbytes(40)),
                      extra="<CarriedKeyName>jed</CarriedKeyName>") * 40
    case("fail-carried-key-name-amplification.xml",
         "<doc>" + ed_xml(CONTENT[alg][0], names, b64(data)) + carriers + "<f/>" * 150_000 + "</doc>",
         "63 KeyNames per KeyInfo, 40 EncryptedKeys carrying that name and 150,000 other "
         "elements: one document scan per KeyName would cost seconds", "xmlenc", "limit",
         keys=["jed"], max_millis=5000)

    # References: RetrievalMethod and CipherReference.
    def rm(uri, t=TYPE_EK):
        return f'<RetrievalMethod URI="{uri}" Type="{t}" />'

    def doc_with(ed, *siblings):
        return f"<doc>{ed}{''.join(siblings)}</doc>"

    wrapped = b64(kw_wrap("kw-aes256", SYMMETRIC["jed"], cek))
    ek_a_to_b = ek_xml(XENC + "kw-aes256", rm("#b"), wrapped, attrs=' Id="a"')
    ek_b_to_a = ek_xml(XENC + "kw-aes256", rm("#a"), wrapped, attrs=' Id="b"')
    ek_self = ek_xml(XENC + "kw-aes256", rm("#a"), wrapped, attrs=' Id="a"')
    case("fail-retrievalmethod-self-loop.xml",
         doc_with(ed_xml(CONTENT[alg][0], rm("#a"), b64(data)), ek_self),
         "an EncryptedKey whose key is retrieved from itself", "xmlenc", "format", keys=["jed"])
    case("fail-retrievalmethod-two-cycle.xml",
         doc_with(ed_xml(CONTENT[alg][0], rm("#a"), b64(data)), ek_a_to_b, ek_b_to_a),
         "RetrievalMethods A → B → A", "xmlenc", "format", keys=["jed"])
    chain = [ek_xml(XENC + "kw-aes256", rm(f"#k{i + 1}"), wrapped, attrs=f' Id="k{i}"') for i in range(12)]
    case("fail-retrievalmethod-chain-too-deep.xml",
         doc_with(ed_xml(CONTENT[alg][0], rm("#k0"), b64(data)), *chain),
         "a chain of 12 RetrievalMethods (bound 4)", "xmlenc", "limit", keys=["jed"])
    good_ek = ek_xml(XENC + "kw-aes256", key_name("jed"), wrapped, attrs=' Id="k"')
    for file, uri, attacks in [
        ("fail-retrievalmethod-http.xml", "http://127.0.0.1:1/keys.xml#k", "a RetrievalMethod to an http: URL"),
        ("fail-retrievalmethod-file.xml", "file:///etc/passwd", "a RetrievalMethod to a file: URL"),
        ("fail-retrievalmethod-relative.xml", "keys.xml#k", "a RetrievalMethod to a relative URI"),
        ("fail-retrievalmethod-xpointer.xml", "#xpointer(id('k'))", "a RetrievalMethod with an XPointer"),
        ("fail-retrievalmethod-whole-document.xml", "", "a RetrievalMethod to the whole document (URI=\"\")"),
    ]:
        case(file, doc_with(ed_xml(CONTENT[alg][0], rm(uri), b64(data)), good_ek), attacks,
             "xmlenc", "unsupported-algorithm", keys=["jed"])
    case("fail-retrievalmethod-duplicate-ids.xml",
         doc_with(ed_xml(CONTENT[alg][0], rm("#k"), b64(data)), good_ek, good_ek),
         "two EncryptedKeys with the Id a RetrievalMethod names (ambiguous: wrapping attacks)",
         "xmlenc", "format", keys=["jed"])
    case("fail-retrievalmethod-to-non-key.xml",
         doc_with(ed_xml(CONTENT[alg][0], rm("#n"), b64(data)), '<note Id="n">hello</note>'),
         "a RetrievalMethod pointing at an element that is not an EncryptedKey", "xmlenc",
         "format", keys=["jed"])
    case("fail-retrievalmethod-with-transforms.xml",
         doc_with(ed_xml(CONTENT[alg][0],
                         f'<RetrievalMethod URI="#k" Type="{TYPE_EK}"><Transforms><Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116" /></Transforms></RetrievalMethod>',
                         b64(data)), good_ek),
         "a RetrievalMethod with (XSLT) transforms", "xmlenc", "unsupported-algorithm", keys=["jed"])

    b64_transform = f'<Transforms><Transform xmlns="{DS}" Algorithm="http://www.w3.org/2000/09/xmldsig#base64" /></Transforms>'
    for file, uri, attacks in [
        ("fail-cipherreference-file.xml", "file:///etc/passwd", "a CipherReference to a local file"),
        ("fail-cipherreference-http.xml", "http://127.0.0.1:1/cipher.bin", "a CipherReference to an http: URL"),
        ("fail-cipherreference-relative.xml", "../../../etc/passwd", "a CipherReference to a relative path"),
        ("fail-cipherreference-whole-document.xml", "", "a CipherReference to the whole document without XPath"),
    ]:
        case(file, doc_with(ed_xml(CONTENT[alg][0], ki, None,
                                   cipher_data=f'<CipherData><CipherReference URI="{uri}">{b64_transform}</CipherReference></CipherData>')),
             attacks, "xmlenc", "unsupported-algorithm", keys=["jed"])
    case("fail-cipherreference-xslt.xml",
         doc_with(ed_xml(CONTENT[alg][0], ki, None,
                         cipher_data=f'<CipherData><CipherReference URI="#v"><Transforms><Transform xmlns="{DS}" Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116" /></Transforms></CipherReference></CipherData>'),
                  f'<v Id="v">{b64(data)}</v>'),
         "a CipherReference with an XSLT transform", "xmlenc", "unsupported-algorithm", keys=["jed"])
    case("fail-cipherreference-xpath-function.xml",
         doc_with(ed_xml(CONTENT[alg][0], ki, None,
                         cipher_data=f'<CipherData><CipherReference URI=""><Transforms><Transform xmlns="{DS}" Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><XPath>document(\'file:///etc/passwd\')</XPath></Transform></Transforms></CipherReference></CipherData>')),
         "a CipherReference XPath calling document()", "xmlenc", "unsupported-algorithm", keys=["jed"])
    case("fail-cipherreference-duplicate-ids.xml",
         doc_with(ed_xml(CONTENT[alg][0], ki, None,
                         cipher_data=f'<CipherData><CipherReference URI="#v">{b64_transform}</CipherReference></CipherData>'),
                  f'<v Id="v">{b64(data)}</v>', f'<v Id="v">{b64(data)}</v>'),
         "a CipherReference to an Id two elements carry", "xmlenc", "format", keys=["jed"])
    case("ok-cipherreference-same-document.xml",
         doc_with(ed_xml(CONTENT[alg][0], ki, None,
                         cipher_data=f'<CipherData><CipherReference URI="#v">{b64_transform}</CipherReference></CipherData>'),
                  f'<v Id="v">{b64(data)}</v>'),
         "control: a same-document CipherReference decrypts", "xmlenc", "ok", keys=["jed"],
         expected_plaintext=MASTER_KEY_XML)

    # Through a key file and the envelope: the same failures, the same error.
    def xmlenc_key(ed):
        return key_file(encrypted_secret(decryptor("EncryptedXmlDecryptor"), ed))

    alg, cek, data, ki = templates["ok-rsa15-aes256cbc.xml"]
    case("ok-key-xmlenc-rsa15.xml", xmlenc_key(ed_xml(CONTENT[alg][0], ki, b64(data))),
         "control: an ASP.NET-style certificate-protected key", "key_file", "ok",
         keys=[RSA_NAME], decryptors=["xmlenc"], expected_master_key=MASTER_VALUE)
    bad = content_encrypt(alg, cek, pt, pad_byte=0)
    case("fail-key-xmlenc-bad-padding.xml", xmlenc_key(ed_xml(CONTENT[alg][0], ki, b64(bad))),
         "a certificate-protected key with a bad pad byte under the right key", "key_file",
         "decrypt", keys=[RSA_NAME], decryptors=["xmlenc"], reaches="content-unpad")
    ek = ek_xml(RSA_1_5, x509_key_info(), b64(pkcs1v15_encrypt(cek, n=on)))
    case("fail-key-xmlenc-wrong-rsa-key.xml", xmlenc_key(ed_xml(CONTENT[alg][0], ek, b64(data))),
         "a certificate-protected key encrypted to another RSA key", "key_file", "decrypt",
         keys=[RSA_NAME], decryptors=["xmlenc"], reaches="rsa-decrypt")
    case("fail-key-xmlenc-truncated.xml", xmlenc_key(ed_xml(CONTENT[alg][0], ki, b64(data[:-3]))),
         "a certificate-protected key with a truncated ciphertext", "key_file", "decrypt",
         keys=[RSA_NAME], decryptors=["xmlenc"], reaches="content-decrypt")
    wrong_pt = b"<notAMasterKey>AAAA</notAMasterKey>"
    case("fail-key-xmlenc-decrypts-to-no-master-key.xml",
         xmlenc_key(ed_xml(CONTENT[alg][0], ki, b64(content_encrypt(alg, cek, wrong_pt)))),
         "a certificate-protected key that decrypts to an element without masterKey", "key_file",
         "format", keys=[RSA_NAME], decryptors=["xmlenc"])


# The templates of the decrypt_spliced fuzz target, in the order of src/fuzzing.rs
# (SPLICE_TEMPLATES): its seeds select each template and slot with the original bytes (replace
# slots) or a zero mask (XOR slots), so the fuzzer starts from inputs that decrypt.
SPLICE_ORDER = [
    "ok-rsa15-aes256cbc.xml", "ok-oaep-aes128gcm.xml", "ok-kwaes256-tripledes.xml",
    "ok-kwtripledes-aes192cbc.xml", "ok-kwaes128-aes256gcm.xml", "ok-direct-aes128gcm.xml",
]
SPLICE_SEEDS = {}


def write_splice_seeds(templates):
    for t, file in enumerate(SPLICE_ORDER):
        alg, cek, data, ki = templates[file]
        iv_len = CONTENT[alg][2]
        wrapped = None
        if "<CipherValue>" in ki:
            wrapped = base64.b64decode(ki.split("<CipherValue>")[1].split("<")[0])
        stem = file[len("ok-"):-len(".xml")]
        slots = [
            (0, "content", data), (1, "content-xor", bytes(16)), (2, "iv", data[:iv_len]),
            (3, "tail-xor", bytes(16)),
        ]
        if wrapped is not None:
            slots += [(4, "key", wrapped), (5, "key-xor", bytes(16))]
        for slot, what, payload in slots:
            SPLICE_SEEDS[f"{t}-{stem}-{what}"] = bytes([(t << 3) | slot]) + payload


# Seeds of the decrypt_fixed_key and xmlenc_model fuzz targets: documents that decrypt with the
# fixture keys through each way of finding a key, so that mutations start deep in the engine.
DECRYPT_SEEDS = {}


def write_decrypt_seeds(templates):
    pt = MASTER_KEY_XML.encode()
    rsa_t = templates["ok-rsa15-aes256cbc.xml"]
    kw_t = templates["ok-kwaes256-tripledes.xml"]
    ed1 = ed_xml(CONTENT[rsa_t[0]][0], rsa_t[3], b64(rsa_t[2]))
    ed2 = ed_xml(CONTENT[kw_t[0]][0], kw_t[3], b64(kw_t[2]))
    DECRYPT_SEEDS["two-encrypted-data.xml"] = f"<doc><a>{ed1}</a><b>{ed2}</b></doc>"
    cek = RNG.randbytes(16)
    text = content_encrypt("aes128-cbc", cek, b"secret <b>text</b> &amp; more")
    DECRYPT_SEEDS["content-type-kw-aes128.xml"] = (
        "<p>before " + ed_xml(CONTENT["aes128-cbc"][0], kw_ek("kw-aes128", "job", cek), b64(text), TYPE_CONTENT)
        + " after</p>"
    )
    cek = RNG.randbytes(32)
    data = content_encrypt("aes256-gcm", cek, pt)
    wrapped = b64(kw_wrap("kw-aes256", SYMMETRIC["jed"], cek))
    DECRYPT_SEEDS["retrieval-method.xml"] = (
        "<doc>" + ed_xml(CONTENT["aes256-gcm"][0], f'<RetrievalMethod URI="#k" Type="{TYPE_EK}" />', b64(data))
        + ek_xml(XENC + "kw-aes256", key_name("jed"), wrapped, attrs=' Id="k"') + "</doc>"
    )
    DECRYPT_SEEDS["carried-key-name.xml"] = (
        "<doc>" + ed_xml(CONTENT["aes256-gcm"][0], key_name("carried"), b64(data))
        + ek_xml(XENC + "kw-aes256", key_name("jed"), wrapped, extra="<CarriedKeyName>carried</CarriedKeyName>")
        + "</doc>"
    )
    inner = ed_xml(CONTENT["aes256-gcm"][0], key_name("carried"), b64(data))
    outer_cek = RNG.randbytes(24)
    outer = content_encrypt("tripledes-cbc", outer_cek, f"<wrapper>{inner}</wrapper>".encode())
    DECRYPT_SEEDS["nested-encryption.xml"] = (
        "<doc>" + ed_xml(CONTENT["tripledes-cbc"][0], kw_ek("kw-tripledes", "bob", outer_cek), b64(outer))
        + ek_xml(XENC + "kw-aes256", key_name("jed"), wrapped, extra="<CarriedKeyName>carried</CarriedKeyName>")
        + "</doc>"
    )
    octets = content_encrypt("aes128-gcm", SYMMETRIC["Test Key 1"], bytes(range(40)))
    DECRYPT_SEEDS["octets.xml"] = ed_xml(CONTENT["aes128-gcm"][0], key_name("Test Key 1"), b64(octets), data_type=None)
    b64_transform = f'<Transforms><Transform xmlns="{DS}" Algorithm="http://www.w3.org/2000/09/xmldsig#base64" /></Transforms>'
    DECRYPT_SEEDS["cipher-reference.xml"] = (
        "<doc>" + ed_xml(CONTENT["aes256-gcm"][0], ek_xml(XENC + "kw-aes256", key_name("jed"), wrapped), None,
                         cipher_data=f'<CipherData><CipherReference URI="#v">{b64_transform}</CipherReference></CipherData>')
        + f'<v Id="v">{b64(data)}</v></doc>'
    )
    ek = oaep_ek(cek, label=b"label", key_info=x509_key_info())
    DECRYPT_SEEDS["oaep-label-x509.xml"] = ed_xml(CONTENT["aes256-gcm"][0], ek, b64(data))
    DECRYPT_SEEDS["key-file-rsa15.xml"] = key_file(
        encrypted_secret(decryptor("EncryptedXmlDecryptor"), ed1)).decode("utf-8-sig")
    for name, text in DECRYPT_SEEDS.items():
        DECRYPT_SEEDS[name] = text.encode() if isinstance(text, str) else text


# Small hand-picked seeds of the parsing targets, from the corpus (the replay test runs the whole
# corpus anyway; these are what the fuzzer starts from besides the vectors).
COPIED_SEEDS = {
    "xml_parse": ["fail-utf8-bom-declared-utf16.xml", "fail-utf16-odd-length.xml",
                  "fail-declared-iso-8859-1-utf8-bytes.xml", "fail-unbound-prefix.xml",
                  "ok-key-null-protected.xml", "fail-cipherreference-xpath-function.xml"],
    "key_file": ["ok-key-null-protected.xml", "ok-key-xmlenc-rsa15.xml",
                 "fail-key-dpapi-ng-windows-only.xml", "fail-revocation-two-keys.xml",
                 "fail-key-date-eight-fraction-digits.xml", "fail-key-nested-encryptedsecret.xml"],
}


def main():
    if os.path.isdir(SHARED):
        for name, rel in SHARED_KEY_FILES.items():
            with open(os.path.join(SHARED, rel), "rb") as f:
                check(f.read() == SYMMETRIC[name], f"{name} differs from {rel}")
    xml_cases()
    key_file_cases()
    xmlenc_cases()
    names = [c[0] for c in CASES]
    check(len(names) == len(set(names)), "duplicate file names")
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for file, data, _ in CASES:
        with open(os.path.join(OUT, file), "wb") as f:
            f.write(data)
    manifest = {
        "about": "The hostile corpus: each file, what it attacks, the entry point it goes through, "
                 "the fixture keys and decryptors it is read with, and the exact ErrorKind "
                 "(ErrorKind::as_str()) dpwrap returns, or \"ok\" for controls. Built by "
                 "scripts/make_malformed.py; run by tests/malformed.rs.",
        "entries": {
            "xml": "dpwrap::xml::parse",
            "key_file": "parse, RingElement::from_element, then Key::master_key with `decryptors` "
                        "(saved under `save_as` first and read with key_file::read_file when given)",
            "envelope": "parse, then envelope::decrypt_element with `decryptors`",
            "xmlenc": "parse, then xmlenc::decrypt_encrypted_data on the first EncryptedData "
                      "(the root or its first descendant) with `keys`",
        },
        "extending": "A new entry point (certificate loading, the Key Vault encryptedKey, ...) is a "
                     "new `entry` name handled in run() of tests/malformed.rs (the test refuses "
                     "names it does not know); files may have any extension; a case may carry "
                     "extra fields its entry point needs (a password, a kid, save_as) and "
                     "max_peak_bytes to bound its peak allocation, max_millis its running time.",
        "decryptors": {
            "null": "NullXmlDecryptor",
            "xmlenc": "an XML Encryption decryptor over `keys` (EncryptedXmlDecryptor's type name)",
        },
        "keys": {
            **{name: {"kind": "symmetric", "hex": SYMMETRIC[name].hex(),
                      "source": "../shared/vectors/" + SHARED_KEY_FILES[name]} for name in SYMMETRIC},
            RSA_NAME: {"kind": "rsa", "pkcs8_der": "../keys/test-only-rsa-2048.pk8.der",
                       "certificate_der": "../keys/test-only-rsa-2048.cert.der",
                       "source": "fixtures/keys (openssl, test-only)"},
        },
        "reaches": {
            "rsa-decrypt": "the RSA key named is configured and is tried",
            "key-unwrap": "the KEK named is configured and is tried",
            "key-length": "the key unwraps (checked by the test) to a length wrong for the content algorithm",
            "content-decrypt": "the content key is right (checked by the test); the ciphertext is wrong",
            "content-unpad": "the content key is right (checked by the test); only the pad byte is wrong",
            "plaintext-check": "key and padding right (checked by the test); the plaintext is not what Type says",
        },
        "cases": [c[2] for c in CASES],
    }
    seeds = os.path.join(ROOT, "fuzz", "seeds", "decrypt_spliced")
    if os.path.isdir(seeds):
        shutil.rmtree(seeds)
    os.makedirs(seeds)
    for name, data in SPLICE_SEEDS.items():
        with open(os.path.join(seeds, name), "wb") as f:
            f.write(data)
    for target in ("decrypt_fixed_key", "xmlenc_model"):
        d = os.path.join(ROOT, "fuzz", "seeds", target)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
        for name, data in DECRYPT_SEEDS.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    for target, files in COPIED_SEEDS.items():
        d = os.path.join(ROOT, "fuzz", "seeds", target)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
        for name in files:
            shutil.copy(os.path.join(OUT, name), os.path.join(d, name))
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    fails = sum(1 for n in names if n.startswith("fail-"))
    print(f"{len(names)} files ({fails} hostile, {len(names) - fails} controls) in {OUT}")


if __name__ == "__main__":
    main()
