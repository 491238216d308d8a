//! No import cycles among the crate's modules.
//!
//! Reads every `src/**/*.rs` file as Rust (with `syn`), builds the graph of which module
//! uses which, and fails, listing each cycle with the lines that make it, when there is one.
//!
//! The rules:
//!
//! - **A file is a module.** `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`, `src/lib.rs` is the
//!   crate root. An inline `mod x { .. }` belongs to its file.
//! - **A reference** is a `use` path, or a path of two segments or more in code (also inside
//!   macro calls such as `format!`), that starts with `crate::`, `super::`, `self::`, or with a
//!   name the module declares or imports. Paths that start elsewhere (`std::`, other crates,
//!   local variables) are not references. Code under `#[cfg(test)]` is not counted: tests
//!   may reach anywhere. Comments, doc comments and intra-doc links are not code.
//! - **A reference goes to the module that defines the name**, followed through imports and
//!   re-exports: `super::TokenFingerprint` written in `token/revoked.rs` is an edge to
//!   `token::fingerprint` when `token/mod.rs` re-exports it from there, and an edge to `token`
//!   (the folder's face) when `token/mod.rs` defines it.
//! - **A folder's face** (`mod.rs`, `lib.rs`, or `a.rs` next to a folder `a/`) re-exporting
//!   something from below itself (`pub use child::X`, `pub(crate) use child::X`) makes no
//!   edge: presenting its children is what a face is for. Whatever else a face uses of its
//!   children (a private `use`, a path in code) is an edge like any other.
//! - **Two levels, in fact every folder:** an edge between two files is an edge between the
//!   two children of their nearest common folder that hold them. `oauth/request.rs` using
//!   `event/model.rs` is `oauth -> event` in the crate root's graph; `oauth/request.rs` using
//!   `oauth/form.rs` is `oauth::request -> oauth::form` in the graph of `oauth`. Every
//!   folder's graph (the root's included) must be free of cycles.
//!
//! `MODULE_GRAPH=1` prints every edge with one place that makes it
//! (`scripts/module-graph` does that).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::Path;

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;
use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// A module's path from the crate root: `["oauth", "request"]`; the root is empty.
type ModPath = Vec<String>;

/// How often imports are followed before a name is given up on (`use a::b as c` chains).
const MAX_HOPS: usize = 16;

/// What one module declares.
#[derive(Debug, Default)]
struct Module {
    /// The file it is written in (itself, unless it is an inline `mod x { .. }`).
    file: ModPath,
    /// Modules declared in it (`mod x;` and `mod x { .. }`).
    children: BTreeSet<String>,
    /// Names of the items it defines.
    items: BTreeSet<String>,
    /// Names it imports, with the path as written.
    imports: BTreeMap<String, Vec<String>>,
    /// Targets of its `use path::*`, as written.
    globs: Vec<Vec<String>>,
}

/// A path as written, and where.
#[derive(Debug)]
struct Reference {
    module: ModPath,
    path: Vec<String>,
    location: String,
    /// A `use` with any visibility but private: a re-export.
    reexport: bool,
}

/// Every module of a crate and every reference between them.
#[derive(Debug, Default)]
struct Crate {
    modules: BTreeMap<ModPath, Module>,
    references: Vec<Reference>,
}

/// Edges between file modules, each with the places that make it.
type Edges = BTreeMap<(ModPath, ModPath), Vec<String>>;

/// A folder's graph: edges between its children (and its face), by display name.
type FolderGraph = BTreeMap<(String, String), Vec<String>>;

/// A cycle found in one folder's graph.
#[derive(Debug)]
struct Cycle {
    folder: String,
    /// The members of the strongly connected component, sorted.
    members: Vec<String>,
    /// One closed walk through the component, first node repeated at the end.
    walk: Vec<String>,
    /// Every edge inside the component, with its first location.
    edges: Vec<(String, String, String)>,
}

impl Crate {
    /// Reads `files` (paths relative to `src/`, with `/` separators, and their text).
    fn parse<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Crate, String> {
        let mut krate = Crate::default();
        for (path, text) in files {
            let file = module_path(path);
            let ast = syn::parse_file(text).map_err(|e| format!("src/{path}: {e}"))?;
            krate.modules.entry(file.clone()).or_default().file = file.clone();
            let mut collector = Collector {
                krate: &mut krate,
                file: file.clone(),
                display: format!("src/{path}"),
                stack: file,
                blocks: 0,
            };
            for item in &ast.items {
                collector.visit_item(item);
            }
        }
        Ok(krate)
    }

    /// `path`, written in `module`, from the crate root; `None` when it names nothing in
    /// this crate.
    fn absolute(&self, module: &[String], path: &[String], hops: usize) -> Option<ModPath> {
        let first = path.first()?;
        match first.as_str() {
            "crate" => return Some(path[1..].to_vec()),
            "self" => return Some([module, &path[1..]].concat()),
            "super" => {
                let supers = path.iter().take_while(|s| *s == "super").count();
                let base = module.get(..module.len().checked_sub(supers)?)?;
                return Some([base, &path[supers..]].concat());
            }
            _ => {}
        }
        let info = self.modules.get(module)?;
        if info.children.contains(first) || info.items.contains(first) {
            return Some([module, path].concat());
        }
        if hops >= MAX_HOPS {
            return None;
        }
        if let Some(imported) = info.imports.get(first) {
            let target = self.absolute(module, imported, hops + 1)?;
            return Some([&target[..], &path[1..]].concat());
        }
        for glob in &info.globs {
            let Some(base) = self.absolute(module, glob, hops + 1) else {
                continue;
            };
            if self.declares(&base, first) {
                return Some([&base[..], path].concat());
            }
        }
        None
    }

    fn declares(&self, module: &[String], name: &str) -> bool {
        self.modules.get(module).is_some_and(|m| {
            m.children.contains(name) || m.items.contains(name) || m.imports.contains_key(name)
        })
    }

    /// The module that defines what the absolute `path` names, through imports and
    /// re-exports.
    fn locate(&self, path: &[String], hops: usize) -> ModPath {
        let mut module: ModPath = Vec::new();
        for (i, segment) in path.iter().enumerate() {
            let Some(info) = self.modules.get(&module) else {
                return module;
            };
            if info.children.contains(segment) {
                module.push(segment.clone());
                continue;
            }
            if info.items.contains(segment) || hops >= MAX_HOPS {
                return module;
            }
            if let Some(imported) = info.imports.get(segment) {
                if let Some(target) = self.absolute(&module, imported, hops + 1) {
                    return self.locate(&[&target[..], &path[i + 1..]].concat(), hops + 1);
                }
                return module;
            }
            for glob in &info.globs {
                if let Some(base) = self.absolute(&module, glob, hops + 1) {
                    if self.declares(&base, segment) {
                        return self.locate(&[&base[..], &path[i..]].concat(), hops + 1);
                    }
                }
            }
            return module;
        }
        module
    }

    /// The file a (possibly inline, possibly undeclared) module is written in.
    fn file_of(&self, module: &[String]) -> ModPath {
        let mut module = module.to_vec();
        loop {
            if let Some(info) = self.modules.get(&module) {
                return info.file.clone();
            }
            if module.pop().is_none() {
                return Vec::new();
            }
        }
    }

    /// Which file uses which, with the places that make each edge.
    fn edges(&self) -> Edges {
        let mut edges = Edges::new();
        for reference in &self.references {
            let Some(absolute) = self.absolute(&reference.module, &reference.path, 0) else {
                continue;
            };
            let from = self.file_of(&reference.module);
            let to = self.file_of(&self.locate(&absolute, 0));
            if from == to || (reference.reexport && to.starts_with(&from)) {
                continue;
            }
            let places = edges.entry((from, to)).or_default();
            if !places.contains(&reference.location) {
                places.push(reference.location.clone());
            }
        }
        edges
    }
}

/// `oauth/request.rs` is `oauth::request`, `oauth/mod.rs` is `oauth`, `lib.rs` the root.
fn module_path(path: &str) -> ModPath {
    let mut segments: ModPath = path
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if segments.last().is_some_and(|s| s == "mod") || segments == ["lib"] {
        segments.pop();
    }
    segments
}

/// How a module is shown: `oauth::request`; the root is `crate`.
fn shown(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// The graph of every folder, keyed by the folder's name. A file edge lands in the graph of
/// the files' nearest common folder, between the two children that hold them; a face
/// (`mod.rs`) stands for itself under the folder's own name.
fn folder_graphs(edges: &Edges) -> BTreeMap<String, FolderGraph> {
    let mut graphs: BTreeMap<String, FolderGraph> = BTreeMap::new();
    for ((from, to), places) in edges {
        let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
        let folder = &from[..common];
        let from = shown(&from[..(common + 1).min(from.len())]);
        let to = shown(&to[..(common + 1).min(to.len())]);
        graphs
            .entry(shown(folder))
            .or_default()
            .entry((from, to))
            .or_default()
            .extend(places.iter().cloned());
    }
    graphs
}

/// Every cycle of every folder graph: one per strongly connected component.
fn cycles(graphs: &BTreeMap<String, FolderGraph>) -> Vec<Cycle> {
    let mut found = Vec::new();
    for (folder, graph) in graphs {
        let mut digraph = DiGraphMap::<&str, ()>::new();
        for (from, to) in graph.keys() {
            digraph.add_edge(from.as_str(), to.as_str(), ());
        }
        for component in tarjan_scc(&digraph) {
            if component.len() < 2 {
                continue;
            }
            let members: BTreeSet<&str> = component.iter().copied().collect();
            let edges = graph
                .iter()
                .filter(|((a, b), _)| members.contains(a.as_str()) && members.contains(b.as_str()))
                .map(|((a, b), places)| (a.clone(), b.clone(), places[0].clone()))
                .collect();
            found.push(Cycle {
                folder: folder.clone(),
                members: members.iter().map(|m| (*m).to_owned()).collect(),
                walk: closed_walk(&digraph, &members),
                edges,
            });
        }
    }
    found
}

/// The shortest way from the component's first member back to itself, inside it.
fn closed_walk(graph: &DiGraphMap<&str, ()>, members: &BTreeSet<&str>) -> Vec<String> {
    let Some(&start) = members.first() else {
        return Vec::new();
    };
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for next in graph.neighbors(node) {
            if !members.contains(next) {
                continue;
            }
            if next == start {
                let mut walk = vec![start.to_owned()];
                let mut at = node;
                while at != start {
                    walk.push(at.to_owned());
                    at = came_from[at];
                }
                walk.push(start.to_owned());
                walk.reverse();
                return walk;
            }
            if !came_from.contains_key(next) {
                came_from.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    Vec::new()
}

fn report(cycles: &[Cycle]) -> String {
    let mut out = String::new();
    for cycle in cycles {
        let _ = writeln!(
            out,
            "cycle in `{}` among {}: {}",
            cycle.folder,
            cycle.members.join(", "),
            cycle.walk.join(" -> ")
        );
        for (from, to, place) in &cycle.edges {
            let _ = writeln!(out, "    {from} -> {to}    ({place})");
        }
    }
    out
}

fn print_graphs(graphs: &BTreeMap<String, FolderGraph>) {
    for (folder, graph) in graphs {
        println!("[{folder}]");
        for ((from, to), places) in graph {
            let more = match places.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            println!("    {from} -> {to}    ({}{more})", places[0]);
        }
    }
}

/// Walks one file's syntax tree, recording declarations and references.
struct Collector<'a> {
    krate: &'a mut Crate,
    file: ModPath,
    display: String,
    /// The module being walked (the file's, or an inline module inside it).
    stack: ModPath,
    /// Depth inside function bodies and other blocks, whose items are not the module's.
    blocks: usize,
}

impl Collector<'_> {
    fn module(&mut self) -> &mut Module {
        let file = &self.file;
        self.krate
            .modules
            .entry(self.stack.clone())
            .or_insert_with(|| Module {
                file: file.clone(),
                ..Module::default()
            })
    }

    fn reference(&mut self, path: Vec<String>, line: usize, reexport: bool) {
        self.krate.references.push(Reference {
            module: self.stack.clone(),
            path,
            location: format!("{}:{line}", self.display),
            reexport,
        });
    }

    fn use_tree(&mut self, tree: &syn::UseTree, mut prefix: Vec<String>, reexport: bool) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(&p.tree, prefix, reexport);
            }
            syn::UseTree::Name(n) => {
                let line = n.ident.span().start().line;
                self.import(prefix, n.ident.to_string(), None, line, reexport);
            }
            syn::UseTree::Rename(r) => {
                let line = r.ident.span().start().line;
                let alias = r.rename.to_string();
                self.import(prefix, r.ident.to_string(), Some(alias), line, reexport);
            }
            syn::UseTree::Glob(g) => {
                let line = g.star_token.spans[0].start().line;
                if self.blocks == 0 {
                    self.module().globs.push(prefix.clone());
                }
                self.reference(prefix, line, reexport);
            }
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(tree, prefix.clone(), reexport);
                }
            }
        }
    }

    fn import(
        &mut self,
        mut path: Vec<String>,
        name: String,
        alias: Option<String>,
        line: usize,
        reexport: bool,
    ) {
        let bound = if name == "self" {
            path.last().cloned()
        } else {
            path.push(name.clone());
            Some(name)
        };
        if let Some(bound) = alias.or(bound).filter(|b| b != "_") {
            if self.blocks == 0 {
                self.module().imports.insert(bound, path.clone());
            }
        }
        self.reference(path, line, reexport);
    }

    /// `crate::a::b` and `super::a` paths inside a macro call's tokens.
    fn macro_tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(group) => self.macro_tokens(group.stream()),
                TokenTree::Ident(ident) if ident == "crate" || ident == "super" => {
                    let line = ident.span().start().line;
                    let mut path = vec![ident.to_string()];
                    let mut j = i + 1;
                    while let (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) =
                        (tokens.get(j), tokens.get(j + 1))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        let Some(TokenTree::Ident(next)) = tokens.get(j + 2) else {
                            break;
                        };
                        path.push(next.to_string());
                        j += 3;
                    }
                    if path.len() > 1 {
                        self.reference(path, line, false);
                    }
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// `#[cfg(test)]`, or a `cfg` that needs `test` (`all(test, ..)`).
fn test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        if !attr.path().is_ident("cfg") {
            return false;
        }
        let Ok(list) = attr.meta.require_list() else {
            return false;
        };
        let text = list.tokens.to_string();
        text == "test"
            || (text.starts_with("all") && text.contains("test") && !text.contains("not"))
    })
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::ForeignMod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::TraitAlias(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(i) => &i.ident,
        syn::Item::Enum(i) => &i.ident,
        syn::Item::Fn(i) => &i.sig.ident,
        syn::Item::Macro(i) => i.ident.as_ref()?,
        syn::Item::Static(i) => &i.ident,
        syn::Item::Struct(i) => &i.ident,
        syn::Item::Trait(i) => &i.ident,
        syn::Item::TraitAlias(i) => &i.ident,
        syn::Item::Type(i) => &i.ident,
        syn::Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if test_only(item_attrs(item)) {
            return;
        }
        match item {
            syn::Item::Mod(m) => {
                let name = m.ident.to_string();
                if self.blocks == 0 {
                    self.module().children.insert(name.clone());
                }
                if let Some((_, items)) = &m.content {
                    self.stack.push(name);
                    self.module();
                    for item in items {
                        self.visit_item(item);
                    }
                    self.stack.pop();
                }
            }
            syn::Item::Use(u) => {
                if u.leading_colon.is_none() {
                    let reexport = !matches!(u.vis, syn::Visibility::Inherited);
                    self.use_tree(&u.tree, Vec::new(), reexport);
                }
            }
            _ => {
                if let Some(name) = item_name(item).filter(|_| self.blocks == 0) {
                    self.module().items.insert(name);
                }
                syn::visit::visit_item(self, item);
            }
        }
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs: &[syn::Attribute] = match item {
            syn::ImplItem::Const(i) => &i.attrs,
            syn::ImplItem::Fn(i) => &i.attrs,
            syn::ImplItem::Type(i) => &i.attrs,
            _ => &[],
        };
        if !test_only(attrs) {
            syn::visit::visit_impl_item(self, item);
        }
    }

    fn visit_block(&mut self, block: &'ast syn::Block) {
        self.blocks += 1;
        syn::visit::visit_block(self, block);
        self.blocks -= 1;
    }

    fn visit_stmt(&mut self, stmt: &'ast syn::Stmt) {
        let attrs: &[syn::Attribute] = match stmt {
            syn::Stmt::Local(l) => &l.attrs,
            syn::Stmt::Macro(m) => &m.attrs,
            _ => &[],
        };
        if !test_only(attrs) {
            syn::visit::visit_stmt(self, stmt);
        }
    }

    // Attributes hold `derive(..)`, `allow(..)` and doc text, none of which is a use.
    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}

    fn visit_path(&mut self, path: &'ast syn::Path) {
        // One segment is a local name, a variable or an import already counted at its `use`.
        if path.leading_colon.is_none() && path.segments.len() > 1 {
            let line = path.segments[0].ident.span().start().line;
            let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
            self.reference(segments, line, false);
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.macro_tokens(mac.tokens.clone());
    }
}

/// Every `.rs` file under `dir`, as (path relative to `root` with `/`, text).
fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            read_tree(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(root)
                .map_err(std::io::Error::other)?
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((relative, std::fs::read_to_string(&path)?));
        }
    }
    Ok(())
}

#[test]
fn src_has_no_import_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_tree(&src, &src, &mut files).expect("read src/");
    files.sort();
    let krate = Crate::parse(files.iter().map(|(p, t)| (p.as_str(), t.as_str()))).expect("parse");
    let edges = krate.edges();
    let graphs = folder_graphs(&edges);
    if std::env::var_os("MODULE_GRAPH").is_some_and(|v| !v.is_empty() && v != "0") {
        print_graphs(&graphs);
    }

    // The check reads the real tree: edges every version of the crate has.
    let root = &graphs["crate"];
    for (from, to) in [("layer", "oauth"), ("layer", "event"), ("oauth", "token")] {
        assert!(
            root.contains_key(&(from.to_owned(), to.to_owned())),
            "the module graph lost the edge {from} -> {to}: the reader is broken"
        );
    }

    let found = cycles(&graphs);
    assert!(
        found.is_empty(),
        "import cycles in src/:\n{}",
        report(&found)
    );
}

#[cfg(test)]
mod logic {
    use super::*;

    fn graphs(files: &[(&str, &str)]) -> BTreeMap<String, FolderGraph> {
        folder_graphs(&Crate::parse(files.iter().copied()).expect("parse").edges())
    }

    fn edges_of(graphs: &BTreeMap<String, FolderGraph>, folder: &str) -> Vec<(String, String)> {
        graphs
            .get(folder)
            .map(|g| g.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    #[test]
    fn two_top_level_modules_that_use_each_other_are_a_cycle() {
        let g = graphs(&[
            ("lib.rs", "mod a; mod b;"),
            ("a.rs", "use crate::b::B; pub struct A;"),
            (
                "b.rs",
                "pub struct B; fn f() -> crate::a::A { crate::a::A }",
            ),
        ]);
        assert_eq!(edges_of(&g, "crate"), [pair("a", "b"), pair("b", "a")]);
        let found = cycles(&g);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].folder, "crate");
        assert_eq!(found[0].members, ["a", "b"]);
        assert_eq!(found[0].walk, ["a", "b", "a"]);
        assert!(report(&found).contains("src/a.rs:1"), "{}", report(&found));
    }

    #[test]
    fn a_three_module_ring_is_one_cycle() {
        let g = graphs(&[
            ("lib.rs", "mod a; mod b; mod c; mod d;"),
            ("a.rs", "use crate::b::B; pub struct A;"),
            ("b.rs", "use crate::c::C; pub struct B;"),
            ("c.rs", "use crate::a::A; pub struct C;"),
            ("d.rs", "use crate::a::A;"),
        ]);
        let found = cycles(&g);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].members, ["a", "b", "c"]);
        assert_eq!(found[0].walk, ["a", "b", "c", "a"]);
    }

    #[test]
    fn a_chain_is_not_a_cycle() {
        let g = graphs(&[
            ("lib.rs", "mod a; mod b; mod c;"),
            ("a.rs", "use crate::b::B;"),
            ("b.rs", "use crate::c::C; pub struct B;"),
            ("c.rs", "pub struct C;"),
        ]);
        assert_eq!(edges_of(&g, "crate"), [pair("a", "b"), pair("b", "c")]);
        assert!(cycles(&g).is_empty());
    }

    #[test]
    fn siblings_in_a_folder_that_use_each_other_are_a_cycle_of_that_folder() {
        let g = graphs(&[
            ("lib.rs", "mod oauth;"),
            ("oauth/mod.rs", "mod form; mod request;"),
            (
                "oauth/form.rs",
                "use super::request::Exchange; pub struct Form;",
            ),
            (
                "oauth/request.rs",
                "use super::form::Form; pub struct Exchange;",
            ),
        ]);
        assert!(edges_of(&g, "crate").is_empty());
        let found = cycles(&g);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].folder, "oauth");
        assert_eq!(found[0].members, ["oauth::form", "oauth::request"]);
    }

    #[test]
    fn a_face_re_exporting_its_children_is_not_a_cycle_with_them() {
        let g = graphs(&[
            ("lib.rs", "mod token; pub use token::Inspector;"),
            (
                "token/mod.rs",
                "mod inspector; mod fingerprint; pub use inspector::Inspector;\n\
                 pub(crate) use fingerprint::Fingerprint; pub enum ConfigError {}",
            ),
            // `super::ConfigError` is the face's own item; `super::Fingerprint` is the
            // sibling it re-exports.
            (
                "token/inspector.rs",
                "use super::{ConfigError, Fingerprint}; pub struct Inspector;",
            ),
            ("token/fingerprint.rs", "pub struct Fingerprint;"),
        ]);
        assert_eq!(
            edges_of(&g, "token"),
            [
                pair("token::inspector", "token"),
                pair("token::inspector", "token::fingerprint")
            ]
        );
        assert!(edges_of(&g, "crate").is_empty());
        assert!(cycles(&g).is_empty());
    }

    #[test]
    fn a_face_that_uses_a_child_in_code_is_an_edge() {
        let g = graphs(&[
            ("lib.rs", "mod layer;"),
            (
                "layer/mod.rs",
                "mod service; pub use service::Service;\n\
                 pub struct Shared;\nfn make() { service::Service::new(); }",
            ),
            ("layer/service.rs", "use super::Shared; pub struct Service;"),
        ]);
        assert_eq!(
            edges_of(&g, "layer"),
            [
                pair("layer", "layer::service"),
                pair("layer::service", "layer")
            ]
        );
        assert_eq!(cycles(&g).len(), 1);
    }

    #[test]
    fn a_re_export_of_another_module_is_an_edge() {
        let g = graphs(&[
            ("lib.rs", "mod a; mod b;"),
            ("a.rs", "pub use crate::b::B;"),
            ("b.rs", "pub struct B;"),
        ]);
        assert_eq!(edges_of(&g, "crate"), [pair("a", "b")]);
    }

    #[test]
    fn names_are_followed_through_the_crate_root() {
        let g = graphs(&[
            ("lib.rs", "mod error; mod a; pub use error::ConfigError;"),
            ("error.rs", "pub struct ConfigError;"),
            ("a.rs", "fn f() -> crate::ConfigError { todo!() }"),
        ]);
        assert_eq!(edges_of(&g, "crate"), [pair("a", "error")]);
    }

    #[test]
    fn nested_files_count_in_every_folder_above_them() {
        let g = graphs(&[
            ("lib.rs", "mod backend; mod event;"),
            ("event.rs", "pub struct Event;"),
            ("backend/mod.rs", "mod http; mod nats;"),
            ("backend/http/mod.rs", "mod format;"),
            (
                "backend/http/format.rs",
                "use crate::event::Event; use crate::backend::nats::Subject;",
            ),
            ("backend/nats.rs", "pub struct Subject;"),
        ]);
        assert_eq!(edges_of(&g, "crate"), [pair("backend", "event")]);
        assert_eq!(
            edges_of(&g, "backend"),
            [pair("backend::http", "backend::nats")]
        );
    }

    #[test]
    fn test_code_comments_and_doc_links_are_not_uses() {
        let g = graphs(&[
            ("lib.rs", "mod a; mod b;"),
            (
                "a.rs",
                "//! See [`B`](crate::b::B), or crate::b::B in prose.\n\
                 /// Also [`crate::b::B`].\n\
                 pub struct A;\n\
                 // crate::b::B\n\
                 #[cfg(test)]\nmod tests { use crate::b::B; }\n\
                 impl A { #[cfg(test)] fn t() { crate::b::f(); } }",
            ),
            ("b.rs", "use crate::a::A; pub struct B; pub fn f() {}"),
        ]);
        assert_eq!(edges_of(&g, "crate"), [pair("b", "a")]);
        assert!(cycles(&g).is_empty());
    }

    #[test]
    fn paths_inside_macro_calls_are_uses() {
        let g = graphs(&[
            ("lib.rs", "mod a; mod b;"),
            (
                "a.rs",
                "fn f() { let _ = format!(\"{}\", crate::b::name()); }",
            ),
            ("b.rs", "pub fn name() -> &'static str { \"b\" }"),
        ]);
        assert_eq!(edges_of(&g, "crate"), [pair("a", "b")]);
    }

    #[test]
    fn code_paths_through_imported_modules_are_uses() {
        let g = graphs(&[
            ("lib.rs", "mod a; mod b;"),
            ("a.rs", "use crate::b; fn f() { b::g(); }"),
            ("b.rs", "pub fn g() {}"),
        ]);
        assert_eq!(edges_of(&g, "crate"), [pair("a", "b")]);
    }

    #[test]
    fn super_in_an_inline_module_names_its_file() {
        let g = graphs(&[
            ("lib.rs", "mod a; mod b;"),
            (
                "a.rs",
                "pub struct A; pub mod fuzz { pub fn f() -> super::A { super::A } }",
            ),
            ("b.rs", "fn f() { crate::a::fuzz::f(); }"),
        ]);
        assert_eq!(edges_of(&g, "crate"), [pair("b", "a")]);
    }

    #[test]
    fn renamed_self_and_glob_imports_are_followed() {
        let g = graphs(&[
            ("lib.rs", "mod a; mod b; mod c; mod d; mod e;"),
            ("a.rs", "use crate::b::{self as bee}; fn f() { bee::g(); }"),
            ("b.rs", "pub fn g() {}"),
            ("c.rs", "pub struct Hop;"),
            ("d.rs", "pub use crate::c::*;"),
            // `Hop` is `c`'s, re-exported by `d`'s glob: the edge goes to `c`, not `d`.
            ("e.rs", "use crate::d::Hop;"),
        ]);
        assert_eq!(
            edges_of(&g, "crate"),
            [pair("a", "b"), pair("d", "c"), pair("e", "c")]
        );
    }

    #[test]
    fn a_cycle_through_a_folder_face_is_found_at_the_top() {
        // `b` uses `a`'s child only through `a`'s face: still an edge to `a`.
        let g = graphs(&[
            ("lib.rs", "mod a; mod b;"),
            ("a/mod.rs", "mod inner; pub use inner::Inner;"),
            ("a/inner.rs", "use crate::b::B; pub struct Inner;"),
            ("b.rs", "use crate::a::Inner; pub struct B;"),
        ]);
        let found = cycles(&g);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].members, ["a", "b"]);
        assert!(
            report(&found).contains("src/a/inner.rs:1"),
            "{}",
            report(&found)
        );
    }

    #[test]
    fn other_crates_are_not_modules() {
        let g = graphs(&[
            ("lib.rs", "mod a;"),
            (
                "a.rs",
                "use std::sync::Arc; use http::HeaderMap; fn f() { std::mem::drop(1); }",
            ),
        ]);
        assert!(g.is_empty(), "{g:?}");
    }
}
