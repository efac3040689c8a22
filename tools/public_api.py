#!/usr/bin/env python3
# Usage: RUSTC_BOOTSTRAP=1 cargo rustdoc --lib --all-features -- -Z unstable-options --output-format json
#        python3 tools/public_api.py $CARGO_TARGET_DIR/doc/aliyun_guard.json   (or target/doc/...)
"""List the public paths of the crate from rustdoc's JSON (target/doc/aliyun_guard.json).
Walks the module tree from the root through public items and `pub use` re-exports, and lists
every item reachable by a public path, including associated items of inherent impls
(methods, associated consts) and struct fields/enum variants."""
import json, sys
d = json.load(open(sys.argv[1]))
idx = d["index"]; root = d["root"]
out = set()
def vis(it): return it.get("visibility") == "public"
def walk(iid, path, seen):
    it = idx.get(str(iid)) or idx.get(iid)
    if it is None: return
    if iid in seen: return
    seen = seen | {iid}
    inner = it["inner"]; kind = next(iter(inner))
    if kind == "module":
        for c in inner["module"]["items"]:
            ci = idx.get(str(c)) or idx.get(c)
            if ci is None or not vis(ci): continue
            k = next(iter(ci["inner"]))
            if k == "use":
                u = ci["inner"]["use"]
                if u["id"] is None: continue
                name = u["name"]
                if u.get("is_glob"):
                    walk_glob(u["id"], path, seen); continue
                tgt = idx.get(str(u["id"])) or idx.get(u["id"])
                if tgt is None:
                    out.add(f"{'::'.join(path+[name])} (extern re-export {u['source']})"); continue
                walk_named(u["id"], path+[name], seen)
            elif k == "impl":
                continue
            else:
                walk_named(c, path+[ci["name"]], seen)
def walk_glob(iid, path, seen):
    walk(iid, path, seen)
def walk_named(iid, path, seen):
    it = idx.get(str(iid)) or idx.get(iid)
    kind = next(iter(it["inner"]))
    out.add(f"{kind} {'::'.join(path)}")
    if kind == "module":
        walk(iid, path, seen); return
    inner = it["inner"][kind]
    impls = inner.get("impls", []) if isinstance(inner, dict) else []
    if kind == "struct":
        sk = inner["kind"]
        fields = []
        if isinstance(sk, dict):
            if "plain" in sk: fields = sk["plain"]["fields"]
            elif "tuple" in sk: fields = [f for f in sk["tuple"] if f is not None]
        for f in fields:
            fi = idx.get(str(f)) or idx.get(f)
            if fi and vis(fi): out.add(f"field {'::'.join(path)}.{fi['name']}")
    if kind == "enum":
        for v in inner["variants"]:
            vi = idx.get(str(v)) or idx.get(v)
            out.add(f"variant {'::'.join(path)}::{vi['name']}")
            vk = vi["inner"]["variant"]["kind"]
            if isinstance(vk, dict) and "struct" in vk:
                for f in vk["struct"]["fields"]:
                    fi = idx.get(str(f)) or idx.get(f)
                    out.add(f"field {'::'.join(path)}::{vi['name']}.{fi['name']}")
    if kind == "trait":
        for m in inner["items"]:
            mi = idx.get(str(m)) or idx.get(m)
            out.add(f"{next(iter(mi['inner']))} {'::'.join(path)}::{mi['name']}")
    for im in impls:
        ii = idx.get(str(im)) or idx.get(im)
        imp = ii["inner"]["impl"]
        if imp["trait"] is not None: continue
        for m in imp["items"]:
            mi = idx.get(str(m)) or idx.get(m)
            if mi and vis(mi):
                out.add(f"{next(iter(mi['inner']))} {'::'.join(path)}::{mi['name']}")
walk(root, ["aliyun_guard"], set())
for p in sorted(out, key=lambda s: s.split(" ",1)[1]): print(p)
