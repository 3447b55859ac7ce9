//! The shape of `src/`, checked on every `cargo test`:
//!
//! - the import graph between src/'s top-level modules (a folder counts as one module) has no
//!   strongly connected component of more than two modules;
//! - nothing but the crate root imports the builder (the module that defines `pub struct
//!   Sandbox`), and every `impl Sandbox` block lives in it;
//! - ARCHITECTURE.md names every top-level module, and every `src/…` path it names exists.
//!
//! The sources are read as text by a small lexer (comments and literals dropped), so the checks
//! hold for any layout and need no dependency. Their own tests are at the end of this file, so a
//! checker that stopped seeing imports would fail there. To see the whole graph:
//! `cargo test --test architecture -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

/// The largest strongly connected component allowed: two modules may know each other (the
/// builder and the plan, say); three or more in a loop cannot be read or changed one at a time.
const MAX_COMPONENT: usize = 2;

/// The builder's type: the module that defines `pub struct Sandbox` is the builder.
const BUILDER: &str = "Sandbox";

/// Top-level modules, besides the crate root (src/lib.rs, which re-exports it), that may import
/// the builder. Empty on purpose: data flows builder → plan → child, so feature modules hand the
/// builder their types and never read it back. If `Child` (`process`) ever must name the
/// builder, add "process" here, with the reason beside it.
const BUILDER_IMPORTERS_ALLOWED: &[&str] = &[];

// ---------------------------------------------------------------------------------------------
// Lexer: identifiers and punctuation with their line; comments dropped, literals made opaque.

#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    line: u32,
}

/// Stands for every string, char and byte literal, whose contents are never read.
const LITERAL: &str = "<literal>";

fn lex(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let mut push = |text: &str, line: u32| out.push(Token { text: text.to_string(), line });
    while i < c.len() {
        let ch = c[i];
        let start_line = line;
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += u32::from(c[i] == '\n');
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(&c, i + 1, &mut line);
            push(LITERAL, start_line);
        } else if ch == '\'' {
            match char_literal_end(&c, i) {
                Some(end) => {
                    i = end;
                    push(LITERAL, start_line);
                }
                None => i += 1, // a lifetime: its name lexes as a word next
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let hashes = c[i..].iter().take_while(|&&h| h == '#').count();
            match (word.as_str(), at(i)) {
                ("b" | "c", '"') => {
                    i = skip_string(&c, i + 1, &mut line);
                    push(LITERAL, start_line);
                }
                ("b", '\'') => {
                    i = char_literal_end(&c, i).unwrap_or(i + 1);
                    push(LITERAL, start_line);
                }
                ("r" | "br" | "cr", '"' | '#') if at(i + hashes) == '"' => {
                    i = skip_raw_string(&c, i + hashes + 1, hashes, &mut line);
                    push(LITERAL, start_line);
                }
                ("r", '#') => i += 1, // a raw identifier, r#type: the word after it is the name
                _ => push(&word, start_line),
            }
        } else if ch == ':' && at(i + 1) == ':' {
            push("::", line);
            i += 2;
        } else {
            push(&ch.to_string(), line);
            i += 1;
        }
    }
    out
}

/// From just after the opening quote to just after the closing one.
fn skip_string(c: &[char], mut i: usize, line: &mut u32) -> usize {
    while i < c.len() {
        match c[i] {
            '\\' => i += 1, // the escaped char is skipped below
            '"' => return i + 1,
            _ => {}
        }
        if c.get(i) == Some(&'\n') {
            *line += 1;
        }
        i += 1;
    }
    i
}

/// From just after the opening quote of `r##"…"##` to just after its closing hashes.
fn skip_raw_string(c: &[char], mut i: usize, hashes: usize, line: &mut u32) -> usize {
    while i < c.len() {
        if c[i] == '"' && c[i + 1..].iter().take(hashes).filter(|&&h| h == '#').count() == hashes {
            return i + 1 + hashes;
        }
        *line += u32::from(c[i] == '\n');
        i += 1;
    }
    i
}

/// `'x'`, `'\n'`, `'\u{1F600}'` starting at the quote at `i`: where it ends; `None` for a
/// lifetime (`'a`, `'static`).
fn char_literal_end(c: &[char], i: usize) -> Option<usize> {
    if c.get(i + 1) == Some(&'\\') {
        let close = c[i + 3..].iter().position(|&q| q == '\'')?;
        Some(i + 3 + close + 1)
    } else if c.get(i + 2) == Some(&'\'') {
        Some(i + 3)
    } else {
        None
    }
}

fn is_word(text: &str) -> bool {
    text.starts_with(|ch: char| ch.is_alphabetic() || ch == '_')
}

fn text_at(t: &[Token], k: usize) -> &str {
    t.get(k).map_or("", |tok| tok.text.as_str())
}

// ---------------------------------------------------------------------------------------------
// Paths that reach the crate root.

/// A path from the crate root found in a file: `crate::name…`, a use-tree head in
/// `crate::{name, …}`, or `super::name…` that climbs out of its top-level module.
#[derive(Debug, Clone, PartialEq)]
struct RootRef {
    /// The path's first segment after the root: a module, a root re-export, `self` or `*`.
    name: String,
    line: u32,
    /// The inline modules around it, e.g. `tests`; empty at the file's top.
    scope: String,
}

/// Every path in `tokens` that starts at the crate root. `depth` is how deep the file is below
/// the root: 1 for src/x.rs and src/x/mod.rs, 2 for src/x/y.rs, ….
fn root_refs(tokens: &[Token], depth: usize) -> Vec<RootRef> {
    let text = |k| text_at(tokens, k);
    let mut out = Vec::new();
    let mut braces = 0;
    // Inline `mod name { … }` bodies: the brace depth inside each, and its name.
    let mut mods: Vec<(usize, String)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let continues_a_path = i > 0 && text(i - 1) == "::";
        let scope = || mods.iter().map(|m| m.1.as_str()).collect::<Vec<_>>().join("::");
        match text(i) {
            "{" => {
                braces += 1;
                if i >= 2 && text(i - 2) == "mod" && is_word(text(i - 1)) {
                    mods.push((braces, text(i - 1).to_string()));
                }
            }
            "}" => {
                if mods.last().is_some_and(|m| m.0 == braces) {
                    mods.pop();
                }
                braces = usize::saturating_sub(braces, 1);
            }
            // `$crate::` in a macro is `crate::` too: the `$` is a token of its own.
            "crate" if !continues_a_path && text(i + 1) == "::" => {
                let scope = scope();
                for (name, line) in heads(tokens, i + 2) {
                    out.push(RootRef { name, line, scope: scope.clone() });
                }
            }
            "super" if !continues_a_path && text(i + 1) == "::" => {
                let mut j = i;
                let mut ups = 0;
                while text(j) == "super" && text(j + 1) == "::" {
                    ups += 1;
                    j += 2;
                }
                // Climbing exactly to the root; fewer stays inside the module (ignored).
                if ups == depth + mods.len() {
                    let scope = scope();
                    for (name, line) in heads(tokens, j) {
                        out.push(RootRef { name, line, scope: scope.clone() });
                    }
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The first segment of the path or use-tree at `k`: `a` for `a::b`, `a` and `d` for
/// `{a::{b, c}, d}`.
fn heads(t: &[Token], k: usize) -> Vec<(String, u32)> {
    let text = |k| text_at(t, k);
    match text(k) {
        "{" => {
            let mut out = Vec::new();
            let mut k = k + 1;
            loop {
                match text(k) {
                    "}" | "" => return out,
                    "," => k += 1,
                    _ => {
                        out.extend(heads(t, k));
                        k = end_of_use_item(t, k);
                    }
                }
            }
        }
        name if is_word(name) || name == "*" => vec![(name.to_string(), t[k].line)],
        _ => Vec::new(),
    }
}

/// The `,` or `}` that ends the use-tree item starting at `k`.
fn end_of_use_item(t: &[Token], mut k: usize) -> usize {
    let mut nest = 0;
    loop {
        match text_at(t, k) {
            "" => return k,
            "," | "}" if nest == 0 => return k,
            "{" => nest += 1,
            "}" => nest -= 1,
            _ => {}
        }
        k += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// The crate root: what src/lib.rs makes visible, so `crate::Sandbox` resolves to its module.

#[derive(Debug, Default)]
struct Root {
    /// Names lib.rs imports (`pub use x::Y`, `use x::{Y as Z}`) → the first segment of the path.
    imported: BTreeMap<String, String>,
    /// First segments of glob imports (`pub use x::*`).
    globs: Vec<String>,
    /// Items lib.rs defines itself (functions, types, inline `mod x { }`, …).
    defined: BTreeSet<String>,
}

fn parse_root(lib_rs: &str) -> Root {
    let t = lex(lib_rs);
    let text = |k| text_at(&t, k);
    let mut root = Root::default();
    let mut braces = 0usize;
    for k in 0..t.len() {
        match text(k) {
            "{" => braces += 1,
            "}" => braces = braces.saturating_sub(1),
            "use" if braces == 0 => {
                let mut leaves = Vec::new();
                use_leaves(&t, k + 1, Vec::new(), &mut leaves);
                for (name, first) in leaves {
                    if name == "*" {
                        root.globs.push(first);
                    } else {
                        root.imported.insert(name, first);
                    }
                }
            }
            "fn" | "struct" | "enum" | "union" | "trait" | "type" | "const" | "static"
            | "macro_rules" | "mod"
                if braces == 0 =>
            {
                let mut n = k + 1;
                while matches!(text(n), "!" | "mut") {
                    n += 1;
                }
                let is_file_module = text(k) == "mod" && text(n + 1) == ";";
                if is_word(text(n)) && !is_file_module {
                    root.defined.insert(text(n).to_string());
                }
            }
            _ => {}
        }
    }
    root
}

/// The names a use-tree at `k` brings into scope, each with the first segment of its path
/// (`crate::`, `self::` and a leading `::` skipped). Returns the index after the tree.
fn use_leaves(
    t: &[Token],
    mut k: usize,
    mut path: Vec<String>,
    out: &mut Vec<(String, String)>,
) -> usize {
    let text = |k| text_at(t, k);
    let first = |path: &[String]| {
        path.iter().find(|s| !matches!(s.as_str(), "crate" | "self")).cloned().unwrap_or_default()
    };
    loop {
        match text(k) {
            "::" => k += 1,
            "{" => {
                k += 1;
                loop {
                    match text(k) {
                        "}" => return k + 1,
                        "," => k += 1,
                        "" => return k,
                        _ => k = use_leaves(t, k, path.clone(), out),
                    }
                }
            }
            "*" => {
                out.push(("*".to_string(), first(&path)));
                return k + 1;
            }
            word if is_word(word) => {
                path.push(word.to_string());
                k += 1;
                if text(k) == "::" {
                    continue;
                }
                let mut name = word.to_string();
                if name == "self" && path.len() >= 2 {
                    name = path[path.len() - 2].clone();
                }
                if text(k) == "as" {
                    name = text(k + 1).to_string();
                    k += 2;
                }
                out.push((name, first(&path)));
                return k;
            }
            _ => return k,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The graph.

/// One source file of a top-level module.
#[derive(Debug, Clone)]
struct SourceFile {
    /// Relative to the repository, e.g. `src/plan/describe.rs`.
    path: String,
    /// The top-level module it belongs to, e.g. `plan`.
    module: String,
    /// How deep its module is below the root: 1 for src/x.rs and src/x/mod.rs, 2 for src/x/y.rs.
    depth: usize,
    text: String,
}

/// A place in the sources.
#[derive(Debug, Clone, PartialEq)]
struct Site {
    file: String,
    line: u32,
    scope: String,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if !self.scope.is_empty() {
            write!(f, " (in mod {})", self.scope)?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Graph {
    modules: BTreeSet<String>,
    /// (importer, imported) → the first place that makes the edge, and how many places do.
    edges: BTreeMap<(String, String), (Site, usize)>,
    /// Root paths the checker could not place: each one is a possible missed edge.
    unresolved: Vec<String>,
    /// Where `pub struct Sandbox` is defined, and in which module.
    builder_defs: Vec<(String, Site)>,
    /// Every `impl … Sandbox {` block, and its module.
    builder_impls: Vec<(String, Site)>,
}

impl Graph {
    fn imports_of(&self, module: &str) -> Vec<&str> {
        self.edges.keys().filter(|(a, _)| a == module).map(|(_, b)| b.as_str()).collect()
    }
}

fn build_graph(lib_rs: &str, files: &[SourceFile]) -> Graph {
    let root = parse_root(lib_rs);
    let modules: BTreeSet<String> = files.iter().map(|f| f.module.clone()).collect();
    let lexed: Vec<Vec<Token>> = files.iter().map(|f| lex(&f.text)).collect();

    // `#[macro_export]` macros live at the root, wherever they are written.
    let mut exported_macros = BTreeMap::new();
    for (file, t) in files.iter().zip(&lexed) {
        for k in 0..t.len() {
            let exported = t[k.saturating_sub(8)..k].iter().any(|tok| tok.text == "macro_export");
            if t[k].text == "macro_rules" && text_at(t, k + 1) == "!" && exported {
                exported_macros.insert(text_at(t, k + 2).to_string(), file.module.clone());
            }
        }
    }

    let mut g = Graph { modules: modules.clone(), ..Graph::default() };
    for (file, t) in files.iter().zip(&lexed) {
        let site = |line, scope: &str| Site { file: file.path.clone(), line, scope: scope.into() };
        for r in root_refs(t, file.depth) {
            let target = if r.name == "self" || root.defined.contains(&r.name) {
                None
            } else if modules.contains(&r.name) {
                Some(r.name.clone())
            } else if let Some(first) = root.imported.get(&r.name) {
                // A re-export of an external crate's item is no module of src/.
                modules.contains(first).then(|| first.clone())
            } else if let Some(m) = exported_macros.get(&r.name) {
                Some(m.clone())
            } else {
                g.unresolved.push(format!(
                    "{}: `{}` at the crate root is neither a module of src/ nor a name src/lib.rs \
                     defines or imports, so the checker cannot tell which module it imports",
                    site(r.line, &r.scope),
                    r.name
                ));
                None
            };
            if let Some(to) = target.filter(|to| *to != file.module) {
                g.edges
                    .entry((file.module.clone(), to))
                    .and_modify(|e| e.1 += 1)
                    .or_insert((site(r.line, &r.scope), 1));
            }
        }
        for k in 0..t.len() {
            let text = |k| text_at(t, k);
            if text(k) == "struct" && text(k + 1) == BUILDER && k > 0 && text(k - 1) == "pub" {
                g.builder_defs.push((file.module.clone(), site(t[k].line, "")));
            }
            let at_item = k == 0 || matches!(text(k - 1), "{" | "}" | ";" | "]" | "unsafe");
            if text(k) == "impl" && at_item && impl_self_type(t, k) == Some(BUILDER) {
                g.builder_impls.push((file.module.clone(), site(t[k].line, "")));
            }
        }
    }
    g
}

/// The type an `impl` block at `k` is for: `Sandbox` in `impl Sandbox {`, `impl crate::Sandbox {`
/// and `impl<T> From<T> for Sandbox {`.
fn impl_self_type(t: &[Token], k: usize) -> Option<&str> {
    let mut ty = None;
    let mut angle = 0usize;
    for j in k + 1..t.len() {
        match text_at(t, j) {
            "{" | ";" | "where" => break,
            "for" if angle == 0 => ty = None,
            "<" => angle += 1,
            ">" if text_at(t, j - 1) != "-" => angle = angle.saturating_sub(1),
            word if angle == 0 && is_word(word) => ty = Some(word),
            _ => {}
        }
    }
    ty
}

/// Strongly connected components (Tarjan), each sorted, of the graph's modules.
fn components(g: &Graph) -> Vec<Vec<String>> {
    let names: Vec<&String> = g.modules.iter().collect();
    let index_of = |m: &str| names.iter().position(|n| *n == m);
    let mut adj = vec![Vec::new(); names.len()];
    for (a, b) in g.edges.keys() {
        if let (Some(a), Some(b)) = (index_of(a), index_of(b)) {
            adj[a].push(b);
        }
    }

    struct Tarjan<'a> {
        adj: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut Tarjan<'_>, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on_stack[v] = true;
        let adj = t.adj;
        for &w in &adj[v] {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on_stack[w] => t.low[v] = t.low[v].min(iw),
                Some(_) => {}
            }
        }
        if t.index[v] == Some(t.low[v]) {
            let mut component = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            t.out.push(component);
        }
    }

    let n = names.len();
    let mut t = Tarjan {
        adj: &adj,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    let mut out: Vec<Vec<String>> = t
        .out
        .into_iter()
        .map(|c| {
            let mut c: Vec<String> = c.into_iter().map(|i| names[i].clone()).collect();
            c.sort();
            c
        })
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// The checks: each returns what is wrong, empty when all is well.

fn graph_report(g: &Graph) -> String {
    let mut s =
        String::from("import graph of src/ (a module -> the top-level modules it imports):\n");
    for m in &g.modules {
        s += &format!("  {m} -> {}\n", g.imports_of(m).join(", "));
    }
    for c in components(g).iter().filter(|c| c.len() == 2) {
        s += &format!("  (allowed: {} and {} import each other)\n", c[0], c[1]);
    }
    s
}

fn cycle_problems(g: &Graph) -> Vec<String> {
    let mut problems = g.unresolved.clone();
    for c in components(g).into_iter().filter(|c| c.len() > MAX_COMPONENT) {
        let mut s = format!(
            "{} modules import each other in a loop (at most {MAX_COMPONENT} may): {}\n  \
             the imports inside the loop, one place that makes each:\n",
            c.len(),
            c.join(", ")
        );
        for ((a, b), (site, count)) in &g.edges {
            if c.contains(a) && c.contains(b) {
                let more =
                    if *count > 1 { format!(" (+{} more)", count - 1) } else { String::new() };
                s += &format!("    {a} -> {b}: {site}{more}\n");
            }
        }
        problems.push(s);
    }
    problems
}

fn builder_problems(g: &Graph) -> Vec<String> {
    let builder = match g.builder_defs.as_slice() {
        [(m, _)] => m,
        [] => return vec![format!("no module of src/ defines `pub struct {BUILDER}`")],
        many => {
            let sites: Vec<String> = many.iter().map(|(_, s)| s.to_string()).collect();
            return vec![format!("`pub struct {BUILDER}` is defined more than once: {sites:?}")];
        }
    };
    let mut problems = Vec::new();
    for ((from, to), (site, count)) in &g.edges {
        if to == builder && !BUILDER_IMPORTERS_ALLOWED.contains(&from.as_str()) {
            let more = if *count > 1 { format!(" (+{} more)", count - 1) } else { String::new() };
            problems.push(format!(
                "{from} imports the builder ({builder}, where {BUILDER} lives): {site}{more}; a \
                 feature module gives the builder its types, never the other way round"
            ));
        }
    }
    for (module, site) in &g.builder_impls {
        if module != builder {
            problems.push(format!(
                "an `impl {BUILDER}` block is in {module}, not with the builder in {builder}: {site}"
            ));
        }
    }
    problems
}

/// What kind of entry a top-level module has in src/: a file `x.rs`, a folder `x/`, or both.
#[derive(Debug, Clone, Copy, Default)]
struct Kind {
    file: bool,
    folder: bool,
}

/// ARCHITECTURE.md matches the tree: it names each top-level module as `src/x/` (or a path in
/// it) or `src/x.rs`, and each `src/…` path it names exists.
fn architecture_problems(
    md: &str,
    modules: &BTreeMap<String, Kind>,
    exists: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mentions = src_paths(md);
    let mut problems = Vec::new();
    for (m, kind) in modules {
        let as_file = kind.file && mentions.iter().any(|p| *p == format!("src/{m}.rs"));
        let as_folder = kind.folder && mentions.iter().any(|p| p.starts_with(&format!("src/{m}/")));
        if !as_file && !as_folder {
            let want = if kind.folder { format!("src/{m}/") } else { format!("src/{m}.rs") };
            problems.push(format!("ARCHITECTURE.md does not mention the module {m} ({want})"));
        }
    }
    for p in &mentions {
        if !exists(p) {
            problems.push(format!("ARCHITECTURE.md mentions {p}, which does not exist"));
        }
    }
    problems
}

/// Every `src/…` path in a text, without the punctuation that ends a sentence.
fn src_paths(text: &str) -> BTreeSet<String> {
    let is_path_char = |ch: char| ch.is_alphanumeric() || "_./-".contains(ch);
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("src/") {
        if text[..i].chars().next_back().is_some_and(is_path_char) {
            continue; // part of a longer path, like tests/src/ or nscell/src/
        }
        let len = text[i..].find(|ch: char| !is_path_char(ch)).unwrap_or(text.len() - i);
        let path = text[i..i + len].trim_end_matches(['.', ',', '-']);
        if path != "src/" {
            out.insert(path.to_string());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The tree on disk.

struct Tree {
    lib_rs: String,
    files: Vec<SourceFile>,
    modules: BTreeMap<String, Kind>,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// src/'s top-level library modules: each src/x.rs and each folder src/x/ (but src/lib.rs,
/// src/main.rs and src/bin/), with every .rs file in them.
fn load() -> Tree {
    let src = repo().join("src");
    let mut tree =
        Tree { lib_rs: read(&src.join("lib.rs")), files: Vec::new(), modules: BTreeMap::new() };
    let mut entries: Vec<_> = std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() && name != "bin" {
            tree.modules.entry(name.clone()).or_default().folder = true;
            add_folder(&mut tree.files, &path, &name, std::slice::from_ref(&name));
        } else if let Some(stem) = name.strip_suffix(".rs").filter(|s| !["lib", "main"].contains(s))
        {
            tree.modules.entry(stem.to_string()).or_default().file = true;
            tree.files.push(SourceFile {
                path: format!("src/{name}"),
                module: stem.to_string(),
                depth: 1,
                text: read(&path),
            });
        }
    }
    tree
}

/// Every .rs file under `dir`, the folder of module path `path` (e.g. ["plan"]).
fn add_folder(files: &mut Vec<SourceFile>, dir: &Path, module: &str, path: &[String]) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let mut inner = path.to_vec();
        inner.push(name.clone());
        if p.is_dir() {
            add_folder(files, &p, module, &inner);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            let depth = if stem == "mod" { path.len() } else { path.len() + 1 };
            files.push(SourceFile {
                path: format!("src/{}", inner.join("/")),
                module: module.to_string(),
                depth,
                text: read(&p),
            });
        }
    }
}

fn fail_with(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n\n{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The checks, on this tree.

#[test]
fn no_more_than_two_modules_import_each_other_in_a_loop() {
    let tree = load();
    let g = build_graph(&tree.lib_rs, &tree.files);
    println!("{}", graph_report(&g));
    assert!(g.modules.len() >= 2, "found no modules in src/: {:?}", g.modules);
    assert!(!g.edges.is_empty(), "found no imports between src/'s modules: the checker is broken");
    fail_with("src/'s import graph has a loop of more than two modules", &cycle_problems(&g));
}

#[test]
fn only_the_crate_root_imports_the_builder() {
    let tree = load();
    let g = build_graph(&tree.lib_rs, &tree.files);
    fail_with("the builder is imported from outside it", &builder_problems(&g));
}

#[test]
fn architecture_md_matches_the_tree() {
    let tree = load();
    let path = repo().join("ARCHITECTURE.md");
    let md = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {} ({e}): it should map src/'s modules", path.display())
    });
    let problems = architecture_problems(&md, &tree.modules, |p| repo().join(p).exists());
    fail_with("ARCHITECTURE.md does not match the tree", &problems);
}

// ---------------------------------------------------------------------------------------------
// The checker's own tests: each would pass a broken tree if the checker went blind.

fn file(path: &str, text: &str) -> SourceFile {
    let inner: Vec<&str> =
        path.trim_start_matches("src/").trim_end_matches(".rs").split('/').collect();
    let depth = if inner.last() == Some(&"mod") { inner.len() - 1 } else { inner.len() };
    SourceFile { path: path.into(), module: inner[0].into(), depth, text: text.into() }
}

fn names(refs: &[RootRef]) -> Vec<&str> {
    refs.iter().map(|r| r.name.as_str()).collect()
}

fn edges(g: &Graph) -> Vec<String> {
    g.edges.iter().map(|((a, b), (site, _))| format!("{a}->{b} {site}")).collect()
}

#[test]
fn checker_reads_nested_multi_line_use_trees() {
    let src = "use crate::{\n    a::{b, c::{d, e}},\n    f,\n    Sandbox,\n};\nuse crate::g::h;\n";
    let refs = root_refs(&lex(src), 1);
    assert_eq!(names(&refs), ["a", "f", "Sandbox", "g"]);
    assert_eq!(refs.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3, 4, 6]);
    let expr = "fn x() { crate::sys::exit(1); let y: crate::Child = $crate::plan::new(); }";
    assert_eq!(names(&root_refs(&lex(expr), 2)), ["sys", "Child", "plan"]);
}

#[test]
fn checker_ignores_comments_and_literals() {
    let src = r####"
        // use crate::a;
        /// [`crate::b`]
        //! crate::c
        /* crate::d /* nested crate::e */ crate::f */
        let s = "crate::g \" crate::h";
        let r = r##"crate::i "# crate::j"##;
        let b = b"crate::k"; let c = c"crate::l"; let q = '"'; let e = '\'';
        fn f<'a>(x: &'a str) { crate::real::x(); }
        let t = "end";
    "####;
    let refs = root_refs(&lex(src), 1);
    assert_eq!(names(&refs), ["real"]);
    assert_eq!(refs[0].line, 9);
}

#[test]
fn checker_climbs_super_only_out_of_a_top_level_module() {
    // In src/x.rs, super is the root; in its mod tests, super is src/x.rs itself.
    let top = "use super::Sandbox;\n#[cfg(test)]\nmod tests {\n use super::*;\n use super::super::plan;\n}";
    let refs = root_refs(&lex(top), 1);
    assert_eq!(names(&refs), ["Sandbox", "plan"]);
    assert_eq!(refs[1].scope, "tests");
    // In src/x/y.rs, super is src/x/ (inside the module), super::super the root.
    let nested = "use super::helper;\nuse super::super::{sys, error::Step};\nuse self::z::w;";
    assert_eq!(names(&root_refs(&lex(nested), 2)), ["sys", "error"]);
    // src/x/mod.rs is as deep as src/x.rs.
    assert_eq!(file("src/x/mod.rs", "").depth, 1);
    assert_eq!(file("src/x/y.rs", "").depth, 2);
}

#[test]
fn checker_resolves_root_re_exports_to_their_modules() {
    let lib = "mod sandbox;\npub mod pty;\nmod error;\nmod sys;\npub use sandbox::Sandbox;\n\
               pub use error::{Error, Step as Stage};\npub use self::sys::{self as raw};\n\
               pub use rustix::fd::OwnedFd;\nfn helper() {}\n";
    let root = parse_root(lib);
    assert_eq!(root.imported["Sandbox"], "sandbox");
    assert_eq!(root.imported["Error"], "error");
    assert_eq!(root.imported["Stage"], "error");
    assert_eq!(root.imported["raw"], "sys");
    assert!(root.defined.contains("helper") && !root.defined.contains("pty"));

    let files = [
        file("src/sandbox.rs", "pub struct Sandbox;"),
        file("src/error.rs", "pub enum Error {}"),
        file("src/sys.rs", ""),
        file(
            "src/pty.rs",
            "use crate::{Sandbox, Stage, OwnedFd};\nfn f() -> crate::Error { crate::helper() }",
        ),
        file("src/mounts/mod.rs", "use super::raw;"),
        file("src/mounts/live.rs", "use crate::mounts::x; use super::super::Error;"),
    ];
    let g = build_graph(lib, &files);
    assert_eq!(
        edges(&g),
        [
            "mounts->error src/mounts/live.rs:1",
            "mounts->sys src/mounts/mod.rs:1",
            "pty->error src/pty.rs:1",
            "pty->sandbox src/pty.rs:1",
        ]
    );
    assert!(g.unresolved.is_empty(), "{:?}", g.unresolved);

    let g = build_graph(lib, &[file("src/a.rs", "use crate::Nowhere;")]);
    assert_eq!(g.unresolved.len(), 1, "an unknown root name must not pass silently");
}

#[test]
fn checker_fails_a_loop_of_three_and_allows_a_pair() {
    let files = [
        file("src/a.rs", "use crate::b;"),
        file("src/b.rs", "\nfn f() { crate::c::g() }"),
        file("src/c/mod.rs", "mod x;"),
        file("src/c/x.rs", "use super::super::a::A;"),
        file("src/d.rs", "use crate::{e, a};"),
        file("src/e.rs", "use crate::d;"),
    ];
    let g = build_graph("", &files);
    assert_eq!(components(&g), [vec!["a", "b", "c"], vec!["d", "e"]]);
    let problems = cycle_problems(&g);
    assert_eq!(problems.len(), 1, "{problems:?}");
    for part in
        ["3 modules", "a, b, c", "a -> b: src/a.rs:1", "b -> c: src/b.rs:2", "c -> a: src/c/x.rs:1"]
    {
        assert!(problems[0].contains(part), "{part:?} missing from {}", problems[0]);
    }
    assert!(graph_report(&g).contains("  d -> a, e\n"), "{}", graph_report(&g));

    // Break the loop: nothing left to report.
    let files = [
        file("src/a.rs", "use crate::b;"),
        file("src/b.rs", "use crate::c;"),
        file("src/c.rs", ""),
    ];
    assert!(cycle_problems(&build_graph("", &files)).is_empty());
}

#[test]
fn checker_finds_who_imports_the_builder_and_stray_impl_blocks() {
    let lib = "mod sandbox; mod fs; pub use sandbox::Sandbox;";
    let good = [
        file(
            "src/sandbox/mod.rs",
            "pub struct Sandbox { fs: crate::fs::FsConfig }\nimpl Sandbox {}",
        ),
        file(
            "src/sandbox/fs.rs",
            "use super::Sandbox;\nimpl Sandbox { pub fn bind(&mut self) {} }",
        ),
        file(
            "src/fs/mod.rs",
            "pub struct FsConfig;\nfn new(p: impl AsRef<str>) -> FsConfig { FsConfig }",
        ),
    ];
    assert_eq!(builder_problems(&build_graph(lib, &good)), Vec::<String>::new());

    let bad = [
        file("src/sandbox.rs", "pub struct Sandbox;"),
        file("src/fs.rs", "use crate::{Sandbox};\n\nimpl<'a> From<&'a str> for Sandbox {}"),
    ];
    let problems = builder_problems(&build_graph(lib, &bad));
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0]
            .starts_with("fs imports the builder (sandbox, where Sandbox lives): src/fs.rs:1")
    );
    assert!(
        problems[1].contains("`impl Sandbox` block is in fs")
            && problems[1].ends_with("src/fs.rs:3")
    );

    assert_eq!(builder_problems(&build_graph(lib, &[file("src/fs.rs", "")])).len(), 1);
}

#[test]
fn checker_matches_architecture_md_against_the_modules() {
    let modules: BTreeMap<String, Kind> = [
        ("plan".to_string(), Kind { file: false, folder: true }),
        ("kernel".to_string(), Kind { file: true, folder: false }),
    ]
    .into();
    let exists = |p: &str| ["src/plan/", "src/plan/describe.rs", "src/kernel.rs"].contains(&p);
    let md = "src/plan/ (see src/plan/describe.rs), and src/kernel.rs.\n";
    assert_eq!(architecture_problems(md, &modules, exists), Vec::<String>::new());

    let md = "`src/plan.rs` and `src/<feature>/` and src/gone/x.rs, not tests/src/x.\n";
    assert_eq!(
        architecture_problems(md, &modules, exists),
        [
            "ARCHITECTURE.md does not mention the module kernel (src/kernel.rs)",
            "ARCHITECTURE.md does not mention the module plan (src/plan/)",
            "ARCHITECTURE.md mentions src/gone/x.rs, which does not exist",
            "ARCHITECTURE.md mentions src/plan.rs, which does not exist",
        ]
    );
}
