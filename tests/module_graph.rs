//! `telemetry-core/src` is layered and has no import cycle.
//!
//! A module is a file directly in `src/` or in a layer folder (`engine/registry/*.rs` is one
//! module, `engine::registry`). Its edges are its `crate::...` paths, resolved through the
//! `pub use` re-exports of the crate root and of the layers (`crate::Counter` is
//! `engine::handles`). Two properties are checked:
//! - the module graph is acyclic, so every module can be read knowing only those below it;
//! - every edge points to the module's own layer or one below it, in the order the crate docs
//!   give: the process-wide modules (`fork`, `process`, `state`), then `engine`, `privacy`,
//!   `product`, `export`, and `testing` on top.
//!
//! Test modules and comments are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers from the bottom up; a module of a layer may use its own layer and those before it.
const LAYERS: &[&[&str]] = &[
    &["diagnostics", "fork", "process", "state"],
    &["engine"],
    &["privacy"],
    &["product"],
    &["export", "bridge"],
    &["testing", "fuzzing"],
];

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

/// The source without comments and without its `#[cfg(test)] mod tests`.
fn code(text: &str) -> String {
    let text = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    text.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module a file belongs to: `engine/registry/loading.rs` is `engine::registry`,
/// `engine/mod.rs` is `engine`, `fork.rs` is `fork`, `lib.rs` is the root (`""`).
fn module_of(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] {
        parts.clear();
    }
    parts.truncate(2);
    parts.join("::")
}

/// The paths after each `crate::` in `code`, as segments.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    code.match_indices("crate::")
        .map(|(i, _)| {
            code[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect::<String>()
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// The names a module re-exports (`pub use a::b::{C, D};`), each mapped to the crate path it
/// names. Paths are relative to the module unless they start with `crate::`.
fn reexports(module: &str, code: &str) -> BTreeMap<String, Vec<String>> {
    let code = code.split("pub mod __private").next().unwrap_or_default();
    let base: Vec<String> = module
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut names = BTreeMap::new();
    for statement in code.split("pub use ").skip(1) {
        let statement: String = statement
            .split(';')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let (prefix, list) = match statement.split_once("::{") {
            Some((prefix, list)) => (prefix.to_owned(), list.trim_end_matches('}').to_owned()),
            None => match statement.rsplit_once("::") {
                Some((prefix, name)) => (prefix.to_owned(), name.to_owned()),
                None => continue,
            },
        };
        let mut path: Vec<String> = match prefix.strip_prefix("crate::") {
            Some(absolute) => absolute.split("::").map(str::to_owned).collect(),
            None => base
                .iter()
                .cloned()
                .chain(prefix.split("::").map(str::to_owned))
                .collect(),
        };
        if path.first().is_some_and(|p| p == "telemetry_macros") {
            continue;
        }
        for name in list.split(',').filter(|n| !n.is_empty()) {
            let name = name.rsplit(" as ").next().unwrap_or(name);
            path.push(name.to_owned());
            names.insert(name.to_owned(), path.clone());
            path.pop();
        }
    }
    names
}

/// The module a crate path leads to, following re-exports; `None` outside the crate's modules.
fn resolve(
    path: &[String],
    modules: &BTreeSet<String>,
    exports: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
    depth: usize,
) -> Option<String> {
    if depth > 8 {
        return None;
    }
    let mut module = String::new();
    let mut used = 0;
    for (i, segment) in path.iter().enumerate() {
        let longer = if module.is_empty() {
            segment.clone()
        } else {
            format!("{module}::{segment}")
        };
        if modules.contains(&longer) {
            module = longer;
            used = i + 1;
        } else {
            break;
        }
    }
    if let Some(next) = path.get(used)
        && let Some(target) = exports.get(&module).and_then(|e| e.get(next))
    {
        let mut target = target.clone();
        target.extend(path[used + 1..].iter().cloned());
        if let Some(found) = resolve(&target, modules, exports, depth + 1) {
            return Some(found);
        }
    }
    (!module.is_empty()).then_some(module)
}

fn layer_of(module: &str) -> usize {
    let top = module.split("::").next().unwrap_or_default();
    LAYERS
        .iter()
        .position(|layer| layer.contains(&top))
        .unwrap_or_else(|| panic!("module {module} is in no layer: add it to LAYERS"))
}

/// The crate's module graph: each module's edges to other modules.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("telemetry-core/src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            (module_of(&root, path), code(&text))
        })
        .collect();
    let modules: BTreeSet<String> = sources
        .iter()
        .map(|(m, _)| m.clone())
        .filter(|m| !m.is_empty() && m != "__private")
        .collect();
    let mut exports: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (module, code) in &sources {
        exports
            .entry(module.clone())
            .or_default()
            .extend(reexports(module, code));
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in &sources {
        if !modules.contains(module) {
            continue;
        }
        let targets = edges.entry(module.clone()).or_default();
        for path in crate_paths(code) {
            if let Some(target) = resolve(&path, &modules, &exports, 0)
                && target != *module
                // A layer's own `mod.rs` declares and re-exports its modules.
                && !target.starts_with(&format!("{module}::"))
            {
                targets.insert(target);
            }
        }
    }
    edges
}

#[test]
fn the_core_has_no_import_cycle() {
    let edges = module_graph();
    // Depth-first search for a back edge; the path to it is the cycle.
    fn visit(
        module: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in edges.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for module in edges.keys() {
        let cycle = visit(module, &edges, &mut done, &mut Vec::new());
        assert!(
            cycle.is_none(),
            "import cycle: {}",
            cycle.unwrap().join(" -> ")
        );
    }
    // The graph was read: the registry is used by the hot path and the call sites, and root
    // re-exports are followed to their module.
    assert!(
        edges["engine::local_shard"].contains("engine::registry"),
        "{edges:?}"
    );
    assert!(
        edges["engine::callsite"].contains("engine::registry"),
        "{edges:?}"
    );
    assert!(
        edges["product::crash"].contains("engine::handles"),
        "{edges:?}"
    );
}

#[test]
fn every_import_points_down_the_layers() {
    let edges = module_graph();
    let upward: Vec<String> = edges
        .iter()
        .flat_map(|(from, targets)| targets.iter().map(move |to| (from, to)))
        .filter(|(from, to)| layer_of(to) > layer_of(from))
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    assert!(upward.is_empty(), "imports up the layers: {upward:?}");
    // The check sees edges between layers.
    assert!(
        edges["product::report"].contains("engine::snapshot"),
        "{edges:?}"
    );
    assert!(
        edges["export::prometheus"].contains("engine::snapshot"),
        "{edges:?}"
    );
}
