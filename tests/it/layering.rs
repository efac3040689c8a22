//! The module layering of the library (issue 13, point 4): the top-level modules of `src/` (not
//! `src/bin/`) import one another without a cycle, and only downwards in the planned order.
//!
//! The graph is read from the sources: `crate::…` paths (`use` or inline, `crate::{a, b}` groups,
//! names the crate root re-exports resolved to their module) and `super::…` paths that climb out
//! of a top-level module. Comments, doc comments, string and character literals and
//! `#[cfg(test)]` modules are skipped: a unit test may build its inputs with any part of the
//! crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges allowed although they close a cycle, each until the work that removes it lands (none
/// left: the credentials providers call STS without the client since branch `sts`).
const KNOWN_EXCEPTIONS: &[(&str, &str)] = &[];

/// The planned order (LAYERS.md), bottom first: a module imports only from modules on its own
/// level or below (never upwards), and the whole graph has no cycle.
const LEVELS: &[&[&str]] = &[
    &["fs_safe", "encode"],
    &["secret"],
    &["redact", "error"],
    &["endpoint", "response"],
    &["request", "retry"],
    &["signing"],
    &["guard"],
    &["credentials"],
    &["client"],
    &["paginate", "feed", "testkit"],
];

/// An edge `from → to` with the files that make it.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules: `src/<name>.rs` and `src/<name>/`, without `lib.rs` and `bin/`.
fn top_level_modules(src: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            if name != "bin" {
                out.insert(name);
            }
        } else if let Some(stem) = name.strip_suffix(".rs")
            && stem != "lib"
            && stem != "main"
        {
            out.insert(stem.to_string());
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source with comments and the contents of string and character literals blanked out
/// (newlines kept), so that only code is searched for paths and braces match.
fn strip(source: &str) -> String {
    let b = source.as_bytes();
    let mut out = String::with_capacity(b.len());
    let blank = |out: &mut String, bytes: &[u8]| {
        for &c in bytes {
            out.push(if c == b'\n' { '\n' } else { ' ' });
        }
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            let mut j = 0;
            while j < rest.len() {
                if rest[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &rest[..j.min(rest.len())]);
            i += j.min(rest.len());
        } else if let Some(len) = raw_string_len(rest, i > 0 && is_ident(b[i - 1])) {
            out.push('"');
            blank(&mut out, &rest[1..len - 1]);
            out.push('"');
            i += len;
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            out.push('"');
            blank(&mut out, &rest[1..end.saturating_sub(1).max(1)]);
            if end > 1 {
                out.push('"');
            }
            i += end;
        } else if rest[0] == b'\''
            && (i == 0
                || !is_ident(b[i - 1])
                || (b[i - 1] == b'b' && (i < 2 || !is_ident(b[i - 2]))))
        {
            // A character or byte literal ('x', b'x', '\n', '\u{7f}', '{') or a lifetime ('a).
            let len = if rest.get(1) == Some(&b'\\') {
                rest.get(3..)
                    .and_then(|r| r.iter().position(|&c| c == b'\''))
                    .map(|p| p + 4)
            } else {
                source[i + 1..].chars().next().and_then(|c| {
                    let n = 1 + c.len_utf8();
                    (rest.get(n) == Some(&b'\'')).then_some(n + 1)
                })
            };
            match len {
                Some(len) => {
                    out.push('\'');
                    blank(&mut out, &rest[1..len - 1]);
                    out.push('\'');
                    i += len;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = source[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The length of a raw (byte) string literal starting here (`r"…"`, `r#"…"#`, `br"…"`), if any.
fn raw_string_len(rest: &[u8], after_ident: bool) -> Option<usize> {
    if after_ident {
        return None;
    }
    let start = if rest.starts_with(b"br") {
        2
    } else if rest.starts_with(b"r") {
        1
    } else {
        return None;
    };
    let hashes = rest[start..].iter().take_while(|&&c| c == b'#').count();
    if rest.get(start + hashes) != Some(&b'"') {
        return None;
    }
    let body = start + hashes + 1;
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let end = rest[body..]
        .windows(close.len())
        .position(|w| w == close.as_slice())?;
    // Report the literal as `"` + body + `"` in length terms: prefix and hashes count as body.
    Some(body + end + close.len())
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Blanks out `#[cfg(test)] mod name { … }` (in stripped code, where braces match).
fn without_test_modules(code: &str) -> String {
    let mut out = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]") {
        let start = from + at;
        let after = code[start + "#[cfg(test)]".len()..].trim_start();
        let after = after.strip_prefix("pub(crate) ").unwrap_or(after);
        let is_mod = after.strip_prefix("mod ").is_some_and(|m| {
            let m = m.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
            m.trim_start().starts_with('{')
        });
        from = start + 1;
        if !is_mod {
            continue;
        }
        let open = start + code[start..].find('{').unwrap();
        let mut depth = 0usize;
        let mut end = code.len();
        for (k, c) in code[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        for byte in &mut out[start..end] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
        from = end;
    }
    String::from_utf8(out).unwrap()
}

/// The first segments named by the path that starts at `rest` (just after `crate::` or the last
/// `super::`): `a::b` gives `a`; `{a::b, c as d, e::{f, g}}` gives `a`, `c`, `e`.
fn first_segments(rest: &str) -> Vec<String> {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        let mut out = Vec::new();
        let mut depth = 0usize;
        let mut at_start = true;
        for (k, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => at_start = true,
                c if at_start && !c.is_whitespace() => {
                    at_start = false;
                    out.extend(first_segments(&group[k..]).into_iter().take(1));
                }
                _ => {}
            }
        }
        return out;
    }
    let ident: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if ident.is_empty() {
        Vec::new()
    } else {
        vec![ident]
    }
}

/// Names the crate root re-exports (`pub use module::…` in lib.rs), by the module they come from.
fn root_reexports(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let code = strip(lib);
    let mut out = BTreeMap::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("pub use ") {
        let start = from + at + "pub use ".len();
        let end = start + code[start..].find(';').unwrap();
        from = end;
        let path = &code[start..end];
        let Some((module, tail)) = path.split_once("::") else {
            continue;
        };
        let module = module.trim();
        if !modules.contains(module) {
            continue;
        }
        // Every name the statement brings in: the last ident of each leaf, or its `as` alias.
        let leaves = tail.replace(['{', '}'], ",");
        for leaf in leaves.split(',') {
            let leaf = leaf.trim();
            let name = match leaf.split_once(" as ") {
                Some((_, alias)) => alias.trim(),
                None => leaf.rsplit("::").next().unwrap_or("").trim(),
            };
            if !name.is_empty() && name != "self" && name != "*" {
                out.insert(name.to_string(), module.to_string());
            }
        }
    }
    out
}

/// The module path depth of a file (`foo.rs`, `foo/mod.rs`: 1; `foo/bar.rs`: 2).
fn file_depth(relative: &Path) -> usize {
    let parts = relative.components().count();
    if relative.file_name().is_some_and(|n| n == "mod.rs") {
        parts - 1
    } else {
        parts
    }
}

/// The edges out of one file of top-level module `module`.
fn edges_of_file(
    code: &str,
    module: &str,
    depth: usize,
    modules: &BTreeSet<String>,
    reexports: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let resolve = |name: &str| -> Option<String> {
        if modules.contains(name) {
            Some(name.to_string())
        } else {
            reexports.get(name).cloned()
        }
    };
    let bytes = code.as_bytes();
    let mut targets = BTreeSet::new();
    // Inline `mod name { … }` blocks deepen the module path: a stack of brace depths.
    let mut braces = 0usize;
    let mut inline_mods: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let before_ok = i == 0 || !(is_ident(bytes[i - 1]) || bytes[i - 1] == b'$');
        let rest = &code[i..];
        if bytes[i] == b'{' {
            braces += 1;
            i += 1;
        } else if bytes[i] == b'}' {
            if inline_mods.last() == Some(&braces) {
                inline_mods.pop();
            }
            braces = braces.saturating_sub(1);
            i += 1;
        } else if before_ok && rest.starts_with("mod ") {
            let name_end = rest[4..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(rest.len(), |p| p + 4);
            if rest[name_end..].trim_start().starts_with('{') {
                inline_mods.push(braces + 1);
            }
            i += name_end;
        } else if before_ok && rest.starts_with("crate::") {
            for name in first_segments(&rest["crate::".len()..]) {
                targets.extend(resolve(&name));
            }
            i += "crate::".len();
        } else if before_ok && rest.starts_with("super::") {
            let mut ups = 0;
            let mut tail = rest;
            while let Some(t) = tail.strip_prefix("super::") {
                ups += 1;
                tail = t.trim_start();
            }
            if ups >= depth + inline_mods.len() {
                for name in first_segments(tail) {
                    targets.extend(resolve(&name));
                }
            }
            i += rest.len() - tail.len();
        } else {
            i += rest.chars().next().unwrap().len_utf8();
        }
    }
    targets.remove(module);
    targets
}

/// The import graph of the library's top-level modules.
fn library_graph() -> Graph {
    let src = src_dir();
    let modules = top_level_modules(&src);
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let reexports = root_reexports(&lib, &modules);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap().to_path_buf();
        let first = relative.components().next().unwrap().as_os_str();
        let first = first.to_string_lossy();
        if first == "bin" || first == "lib.rs" || first == "main.rs" {
            continue;
        }
        let module = first.strip_suffix(".rs").unwrap_or(&first).to_string();
        let source = std::fs::read_to_string(&file).unwrap();
        let code = without_test_modules(&strip(&source));
        let depth = file_depth(&relative);
        for target in edges_of_file(&code, &module, depth, &modules, &reexports) {
            graph
                .entry(module.clone())
                .or_default()
                .entry(target)
                .or_default()
                .insert(format!("src/{}", relative.display()));
        }
    }
    graph
}

/// The cycles of a graph: one elementary cycle per strongly connected component that has one,
/// as the list of its modules (the first repeated at the end).
fn find_cycles(graph: &Graph) -> Vec<Vec<String>> {
    // Tarjan's strongly connected components.
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        components: Vec<Vec<&'g str>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                component.push(w);
                if w == v {
                    break;
                }
            }
            s.components.push(component);
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    let mut cycles = Vec::new();
    for component in &state.components {
        let members: BTreeSet<&str> = component.iter().copied().collect();
        let start = *members.iter().next().unwrap();
        let self_loop = graph
            .get(start)
            .is_some_and(|e| e.contains_key(start) && members.len() == 1);
        if members.len() < 2 && !self_loop {
            continue;
        }
        // A shortest way back to `start` inside the component (breadth first).
        let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut closing = None;
        'search: while let Some(v) = queue.pop_front() {
            for w in graph.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !members.contains(w) {
                    continue;
                }
                if w == start {
                    closing = Some(v);
                    break 'search;
                }
                if !previous.contains_key(w) {
                    previous.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        let mut middle = Vec::new();
        let mut v = closing.unwrap();
        while v != start {
            middle.push(v.to_string());
            v = previous[v];
        }
        middle.reverse();
        let mut path = vec![start.to_string()];
        path.extend(middle);
        path.push(start.to_string());
        cycles.push(path);
    }
    cycles
}

fn describe(graph: &Graph, cycle: &[String]) -> String {
    let mut text = format!("cycle: {}\n", cycle.join(" -> "));
    for pair in cycle.windows(2) {
        let files = &graph[&pair[0]][&pair[1]];
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        text.push_str(&format!(
            "  {} -> {}: {}\n",
            pair[0],
            pair[1],
            files.join(", ")
        ));
    }
    text
}

#[test]
fn the_top_level_modules_have_no_import_cycle() {
    let mut graph = library_graph();
    assert!(
        graph.contains_key("client") && graph.contains_key("signing"),
        "the graph was not read: {graph:?}"
    );
    for (from, to) in KNOWN_EXCEPTIONS {
        let removed = graph.get_mut(*from).and_then(|e| e.remove(*to));
        assert!(
            removed.is_some(),
            "the known exception {from} -> {to} is gone: delete it from KNOWN_EXCEPTIONS"
        );
    }
    let cycles = find_cycles(&graph);
    let report: String = cycles.iter().map(|c| describe(&graph, c)).collect();
    assert!(
        cycles.is_empty(),
        "import cycles among top-level modules:\n{report}"
    );
}

#[test]
fn imports_point_down_the_planned_layers() {
    let graph = library_graph();
    let level = |m: &str| LEVELS.iter().position(|l| l.contains(&m));
    let modules = top_level_modules(&src_dir());
    let unplaced: Vec<&String> = modules.iter().filter(|m| level(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "modules missing from LEVELS (and LAYERS.md): {unplaced:?}"
    );
    let mut upward = String::new();
    for (from, targets) in &graph {
        for (to, files) in targets {
            let exception = KNOWN_EXCEPTIONS.contains(&(from.as_str(), to.as_str()));
            if level(to) > level(from) && !exception {
                let files: Vec<&str> = files.iter().map(String::as_str).collect();
                upward.push_str(&format!("  {from} -> {to}: {}\n", files.join(", ")));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports pointing up the layers:\n{upward}"
    );
}

fn graph_of(edges: &[(&str, &str)]) -> Graph {
    let mut graph = Graph::new();
    for (from, to) in edges {
        graph
            .entry(from.to_string())
            .or_default()
            .entry(to.to_string())
            .or_default()
            .insert(format!("src/{from}.rs"));
    }
    graph
}

#[test]
fn the_cycle_finder_finds_cycles_and_only_cycles() {
    // A diamond and a tail: no cycle.
    let acyclic = graph_of(&[("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e")]);
    assert!(find_cycles(&acyclic).is_empty());

    // Two separate cycles, a -> b -> c -> a and d <-> e, and an edge between them.
    let cyclic = graph_of(&[
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("c", "d"),
        ("d", "e"),
        ("e", "d"),
        ("e", "f"),
    ]);
    let mut cycles = find_cycles(&cyclic);
    cycles.sort();
    assert_eq!(
        cycles,
        [vec!["a", "b", "c", "a"], vec!["d", "e", "d"]],
        "{cycles:?}"
    );
    let text = describe(&cyclic, &cycles[1]);
    assert_eq!(
        text,
        "cycle: d -> e -> d\n  d -> e: src/d.rs\n  e -> d: src/e.rs\n"
    );
}

#[test]
fn the_path_reader_sees_code_only() {
    let modules: BTreeSet<String> = ["client", "error", "guard", "secret", "request"]
        .into_iter()
        .map(String::from)
        .collect();
    let reexports = BTreeMap::from([("Client".to_string(), "client".to_string())]);
    let source = r##"
//! Docs mention [`crate::client`].
use crate::{error::Error, secret::{Credentials, mask_key_id}};
/// See [`crate::guard`].
fn f() {
    let s = "crate::guard::Guard"; // crate::guard
    let r = r#"crate::guard"#;
    let c = '{';
    let b = b'}';
    let q = b'"';
    /* crate::guard */
    let _ = crate::Client::builder();
    let _ = $crate::guard::x;
}
mod inner {
    use super::super::request::RpcRequest;
}
#[cfg(test)]
mod tests {
    use crate::guard::Guard;
}
"##;
    let code = without_test_modules(&strip(source));
    let edges = edges_of_file(&code, "signing", 1, &modules, &reexports);
    let edges: Vec<&str> = edges.iter().map(String::as_str).collect();
    assert_eq!(edges, ["client", "error", "request", "secret"]);
}
