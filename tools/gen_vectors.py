#!/usr/bin/env python3
"""Regenerate tests/vectors/rpc_v1.json, the golden RPC signature vectors of aliyun-guard.

The expected values come from an independent implementation: Alibaba's official
`aliyun-python-sdk-core` (the version is recorded in the output file). Its public
`rpc_signature_composer.get_signed_url` adds the common parameters, signs and builds the URL;
we pin its clock and nonce so the output is deterministic, then record, for each case:

  method, secret, params (every signed parameter, in the SDK's order of insertion),
  string_to_sign (as the SDK computed it) and signature (read back from the SDK's signed URL).

The Rust test `tests/golden_vectors.rs` recomputes every vector with `aliyun_guard::signing`.

Usage (from the repository root):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install aliyun-python-sdk-core
    /tmp/venv/bin/python tools/gen_vectors.py > tests/vectors/rpc_v1.json

The seed is fixed, so a rerun with the same SDK version gives the same file byte for byte.
"""
import json
import random
import sys
from urllib.parse import parse_qsl, urlsplit

try:
    from importlib.metadata import version
except ImportError:  # pragma: no cover
    version = None

from aliyunsdkcore.auth.composer import rpc_signature_composer as composer
from aliyunsdkcore.utils import parameter_helper as helper

SEED = 20261123
COUNT = 240

# Values that have broken real RPC signers: reserved and unreserved ASCII, percent signs,
# plus, space, unicode in several scripts, emoji (4-byte UTF-8), control characters.
TRICKY = [
    "", " ", "a b", "a+b", "a*b", "a~b", "a/b", "a=b", "a&b", "a%b", "%20", "%2A", "%7E",
    "100%", "~*+/=&%", "!'()", "[]{}", "\"quoted\"", "back\\slash", "tab\there", "line\nbreak",
    "semi;colon", "comma,list", "colon:x", "at@host", "hash#frag", "q?uery", "dollar$", "caret^",
    "pipe|", "`tick`", "<tag>", "中文", "日本語テキスト", "한국어", "Ünïcödé", "Ελληνικά",
    "emoji😀", "🔑🔒", "mixed 中 😀 * ~ +", "-_.~", "ABCxyz0123456789", "é", "\u00a0nbsp",
    "\u200bzero-width", "ÿ", "\u0001ctl",
]
NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
NAMES = ["RegionId", "InstanceId", "InstanceIds.1", "InstanceIds.2", "Tag.1.Key", "Tag.1.Value",
         "PageSize", "PageNumber", "Description", "Name", "a", "A", "Z", "z", "_x", "Key-Name",
         "Key.Name", "Key~Name", "Key_Name", "名字", "Filter.1.Value.1"]


def random_value(rng):
    kind = rng.random()
    if kind < 0.45:
        return rng.choice(TRICKY)
    if kind < 0.6:
        return "".join(rng.choice(TRICKY) for _ in range(rng.randint(2, 5)))
    if kind < 0.7:
        # long value: roughly 300 to 1,200 characters mixing every class above
        return "".join(rng.choice(TRICKY + ["x" * 8] * 10) for _ in range(rng.randint(60, 200)))
    if kind < 0.85:
        return "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(rng.randint(1, 40)))
    # random code points of 2, 3 and 4 UTF-8 bytes (surrogates are skipped by valid_unicode)
    return "".join(chr(rng.choice([rng.randint(0x80, 0x7FF), rng.randint(0x800, 0xFFFF),
                                   rng.randint(0x10000, 0x1FFFF)]))
                   for _ in range(rng.randint(1, 12)))


def random_name(rng, used):
    while True:
        if rng.random() < 0.6:
            name = rng.choice(NAMES)
        else:
            name = "".join(rng.choice(NAME_CHARS) for _ in range(rng.randint(1, 12)))
        if name not in used and name not in RESERVED:
            used.add(name)
            return name


RESERVED = {"Signature", "Timestamp", "SignatureMethod", "SignatureType", "SignatureVersion",
            "SignatureNonce", "AccessKeyId", "Format", "Action", "Version"}


def valid_unicode(s):
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def make_case(rng, index):
    method = "GET" if index % 2 == 0 else "POST"
    used = set()
    params = {"Action": rng.choice(["DescribeRegions", "DescribeInstances", "RunInstances", "SendSms"]),
              "Version": rng.choice(["2014-05-26", "2017-05-25", "2015-05-01"])}
    for _ in range(rng.randint(0, 10)):
        value = random_value(rng)
        while not valid_unicode(value):
            value = random_value(rng)
        params[random_name(rng, used)] = value
    if rng.random() < 0.3:
        params["SecurityToken"] = "STS-token/" + "".join(rng.choice(NAME_CHARS + "+/=") for _ in range(60))
    body = {}
    if method == "POST":
        for name in list(params):
            if name not in ("Action", "Version") and rng.random() < 0.5:
                body[name] = params.pop(name)
    secret = rng.choice(["testsecret", "s3cr3t+/=&%", "秘密", "x" * 30,
                         "".join(rng.choice(NAME_CHARS) for _ in range(30))])
    ak = rng.choice(["testid", "LTAI5tABCDEFGHIJKLMNOPQR", "STS.NTx9YourTemporaryKeyId"])
    nonce = "%08x-0000-4000-8000-%012x" % (rng.getrandbits(32), rng.getrandbits(48))
    stamp = "20%02d-%02d-%02dT%02d:%02d:%02dZ" % (rng.randint(16, 30), rng.randint(1, 12), rng.randint(1, 28),
                                                   rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))
    helper.get_uuid = lambda: nonce
    helper.get_iso_8061_date = lambda: stamp
    fmt = rng.choice(["JSON", "XML"])
    url, string_to_sign = composer.get_signed_url(dict(params), ak, secret, fmt, method, dict(body))
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    signature = query["Signature"]
    signed = dict(params)
    signed.update(body)
    signed.update({"Timestamp": stamp, "SignatureMethod": "HMAC-SHA1", "SignatureType": "",
                   "SignatureVersion": "1.0", "SignatureNonce": nonce, "AccessKeyId": ak, "Format": fmt})
    return {
        "name": "sdk-%03d" % index,
        "method": method,
        "secret": secret,
        "params": [[k, v] for k, v in signed.items()],
        "string_to_sign": string_to_sign,
        "signature": signature,
    }


def main():
    rng = random.Random(SEED)
    cases = [make_case(rng, i) for i in range(COUNT)]
    doc = {
        "generator": "tools/gen_vectors.py",
        "reference": "aliyun-python-sdk-core %s (rpc_signature_composer.get_signed_url)"
                     % (version("aliyun-python-sdk-core") if version else "unknown"),
        "seed": SEED,
        "cases": cases,
    }
    json.dump(doc, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
