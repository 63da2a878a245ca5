//! The house plan, checked: no import cycles between the modules of any crate.
//!
//! Why: a cycle (`a` uses `b`, `b` uses `a`) means two modules are one concept split in
//! two, or that a shared item lives in the wrong one; either way neither can be read,
//! tested or moved alone, and the layout stops telling the architecture. Issue 22 found
//! eleven; this check keeps the count at zero (`.ci/run` runs it with the default suite).
//!
//! How: every product source file of every crate is read as text (no compiler needed):
//! its module path comes from its place in `src/` (`a/b.rs` and `a/b/mod.rs` are
//! `a::b`), its edges from every `crate::`, `super::` and `self::` path it names and from
//! paths through the child modules it declares, each resolved to the longest known
//! module. Test code is left out: `#[cfg(test)]` items (the rest of the file after a
//! `#[cfg(test)] mod`, test-only files declared `#[cfg(test)] mod x;`). The crate root
//! (`lib.rs`, `main.rs`) is its facade of re-exports, not a node. Cycles are the strongly
//! connected components of more than one module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One crate's module graph: module path (`a::b`) -> modules it uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The crates of the workspace, by their `src/` directories.
const CRATES: &[&str] = &[
    "src",
    "formats/src",
    "generator/src",
    "replayer/src",
    "analyzer/src",
    "simulator/src",
];

/// Cycles still being taken apart (issue 22), per crate: the check fails when a crate
/// has more, and when it has fewer (lower the number). Empty when the plan holds.
const KNOWN_CYCLES: &[(&str, usize)] = &[];

#[test]
fn no_crate_has_an_import_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut wrong = Vec::new();
    for dir in CRATES {
        let graph = module_graph(&root.join(dir));
        assert!(graph.len() > 1, "{dir}: no modules found");
        let found = cycles(&graph);
        let known = KNOWN_CYCLES
            .iter()
            .find(|(d, _)| d == dir)
            .map_or(0, |(_, n)| *n);
        if found.len() != known {
            wrong.push(format!(
                "{dir}: {} import cycle(s), {known} known{}",
                found.len(),
                if found.len() < known {
                    " (lower KNOWN_CYCLES)"
                } else {
                    ""
                }
            ));
            for cycle in &found {
                wrong.push(format!("  {}", describe(&graph, cycle)));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_deliberate_cycle_is_found_and_a_chain_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |p: &str, s: &str| {
        let path = src.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, s).unwrap();
    };
    write(
        "lib.rs",
        "mod a;\nmod b;\nmod c;\nmod d;\nmod e;\npub use a::A;\n",
    );
    write("a.rs", "use crate::b::B;\npub struct A;\n");
    write("b.rs", "pub struct B;\nfn f() { crate::c::g() }\n");
    write(
        "c.rs",
        "use crate::{d::{self, D}, b};\npub fn g() {}\n#[cfg(test)]\nmod tests { use crate::a::A; }\n",
    );
    write(
        "d/mod.rs",
        "mod inner;\npub struct D;\nfn h() { inner::x() }\n",
    );
    write("d/inner.rs", "pub fn x() { let _ = super::super::e::y; }\n");
    write(
        "e.rs",
        "pub fn y() {} // crate::a::A in a comment\nconst S: &str = \"crate::b\";\n",
    );
    let graph = module_graph(src);
    assert_eq!(graph["d::inner"], BTreeSet::from(["e".to_string()]));
    assert!(graph["e"].is_empty(), "{:?}", graph["e"]);
    assert_eq!(
        graph["c"],
        BTreeSet::from(["b".to_string(), "d".to_string()])
    );
    assert_eq!(graph["d"], BTreeSet::from(["d::inner".to_string()]));
    let found: Vec<String> = cycles(&graph).iter().map(|c| describe(&graph, c)).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0], "b -> c, c -> b");
    // Without b's use of c, no cycle: a -> b, c -> b, c -> d -> d::inner -> e.
    write("b.rs", "pub struct B;\n");
    assert!(cycles(&module_graph(src)).is_empty());
}

/// Reads every product module under `src` and the edges between them.
fn module_graph(src: &Path) -> Graph {
    let files = rust_files(src);
    let modules: BTreeMap<String, PathBuf> = files
        .iter()
        .filter_map(|f| module_path(src, f).map(|m| (m, f.clone())))
        .collect();
    let test_only = test_only_modules(&modules);
    let known: BTreeSet<&str> = modules
        .keys()
        .filter(|m| !test_only.contains(*m))
        .map(String::as_str)
        .collect();
    let mut graph = Graph::new();
    for (module, file) in &modules {
        if module.is_empty() || test_only.contains(module) {
            continue;
        }
        let text = product_code(&std::fs::read_to_string(file).unwrap());
        let is_dir_module = file.ends_with("mod.rs");
        let children = declared_children(&text);
        let mut uses = BTreeSet::new();
        for path in referenced_paths(&text) {
            let absolute = absolutize(module, is_dir_module, &children, &path);
            if let Some(target) = absolute.and_then(|p| longest_known(&known, &p))
                && target != module.as_str()
                && !target.is_empty()
            {
                uses.insert(target.to_string());
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `a/b.rs`, `a/b/mod.rs` -> `a::b`; the crate root -> ``; `bin/` targets -> none.
fn module_path(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    let is_root = parts.is_empty() && matches!(stem, "lib" | "main");
    if stem != "mod" && !is_root {
        parts.push(stem.to_string());
    }
    Some(parts.join("::"))
}

/// Modules declared `#[cfg(test)] mod x;` (or `#[path = ..]` test files named
/// `*tests`): test code, not part of the plan.
fn test_only_modules(modules: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (module, file) in modules {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = mod_declaration(line) else {
                continue;
            };
            let attrs = lines[..i].iter().rev().take_while(|l| l.starts_with("#["));
            if attrs.clone().any(|a| a.starts_with("#[cfg(test)]")) {
                let child = if module.is_empty() {
                    name.to_string()
                } else {
                    format!("{module}::{name}")
                };
                out.insert(child);
            }
        }
        if file
            .file_stem()
            .is_some_and(|s| s.to_string_lossy().ends_with("tests"))
        {
            out.insert(module.clone());
        }
    }
    out
}

/// `mod name;` or `pub(crate) mod name;` -> `name`.
fn mod_declaration(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("pub ").or_else(|| {
        line.strip_prefix("pub(crate) ")
            .or_else(|| line.strip_prefix("pub(super) "))
    });
    let rest = rest.unwrap_or(line).strip_prefix("mod ")?;
    let name = rest.strip_suffix(';')?.trim();
    name.chars()
        .all(|c| c.is_alphanumeric() || c == '_')
        .then_some(name)
}

/// The file's text without comments, string contents and test code (everything from a
/// top-level `#[cfg(test)]` attribute on: test modules close the files of this workspace).
fn product_code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        // A top-level `#[cfg(test)]` opens the file's test module, which ends the file
        // in this workspace; an indented one marks a single test-only item (its lines
        // still count: conservative).
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(strip_strings(line).split("//").next().unwrap_or(""));
        out.push('\n');
    }
    out
}

/// Blanks the contents of "..." literals on one line (paths inside strings are text).
fn strip_strings(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let (mut in_str, mut escaped) = (false, false);
    for c in line.chars() {
        match (in_str, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => {
                in_str = false;
                out.push(c);
            }
            (true, false, _) => {}
            (false, _, '"') => {
                in_str = true;
                out.push(c);
            }
            (false, _, _) => out.push(c),
        }
    }
    out
}

/// The child modules a file declares (`mod x;`, whatever its attributes).
fn declared_children(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| mod_declaration(l.trim()))
        .map(str::to_string)
        .collect()
}

/// Every path the code names that starts with `crate`, `super` or `self`, or with a
/// plain identifier (a child module, checked later), with `{..}` groups expanded:
/// `crate::{a::B, c}` gives `crate::a::B` and `crate::c`.
fn referenced_paths(text: &str) -> Vec<Vec<String>> {
    let tokens = tokenize(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let starts_path = is_ident(&tokens[i])
            && tokens.get(i + 1).is_some_and(|t| t == "::")
            && (i == 0 || tokens[i - 1] != "::");
        if starts_path {
            i = parse_path(&tokens, i, Vec::new(), &mut out);
        } else {
            i += 1;
        }
    }
    out
}

/// Parses `seg (:: seg)* (:: { list })?` from `i` after `prefix`; returns the index after.
fn parse_path(
    tokens: &[String],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        match tokens.get(i) {
            Some(t) if t == "{" => {
                i += 1;
                loop {
                    match tokens.get(i).map(String::as_str) {
                        Some("}") => return i + 1,
                        Some(",") => i += 1,
                        Some(t) if is_ident(t) => i = parse_path(tokens, i, prefix.clone(), out),
                        Some(_) => i += 1,
                        None => return i,
                    }
                }
            }
            Some(t) if is_ident(t) => {
                prefix.push(t.clone());
                i += 1;
                if tokens.get(i).is_some_and(|t| t == "::") {
                    i += 1;
                } else {
                    out.push(prefix);
                    return i;
                }
            }
            _ => {
                out.push(prefix);
                return i;
            }
        }
    }
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Identifiers, `::`, and single punctuation characters.
fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push("::".into());
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
            i += 1;
        }
    }
    out
}

/// Resolves a path named in `module` to a path from the crate root, or `None` when it
/// leads outside the crate (another crate, std, a local item).
fn absolutize(
    module: &str,
    is_dir_module: bool,
    children: &BTreeSet<String>,
    path: &[String],
) -> Option<Vec<String>> {
    let mut here: Vec<String> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_string).collect()
    };
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            here.clear();
            rest = &rest[1..];
        }
        Some("super") | Some("self") => {
            // In `a/b.rs` (module a::b), `super` is `a`; inline modules aside.
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "super" => {
                        here.pop()?;
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
            let _ = is_dir_module;
        }
        Some(first) if children.contains(first) => {}
        _ => return None,
    }
    here.extend(rest.iter().cloned());
    Some(here)
}

/// The longest prefix of `path` that is a known module (`a::b::Item` -> `a::b`).
fn longest_known<'a>(known: &BTreeSet<&'a str>, path: &[String]) -> Option<&'a str> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find_map(|p| known.get(p.as_str()).copied())
}

/// Strongly connected components of more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.graph.contains_key(w) {
                    continue;
                }
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    scc.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

/// `a -> b, b -> a` for the edges inside one cycle.
fn describe(graph: &Graph, scc: &[String]) -> String {
    let members: BTreeSet<&String> = scc.iter().collect();
    let mut edges = Vec::new();
    for from in scc {
        for to in &graph[from] {
            if members.contains(to) {
                edges.push(format!("{from} -> {to}"));
            }
        }
    }
    edges.join(", ")
}
