//! Turning a file into compiled code, once. A core module that carries
//! wit-bindgen's component-type section (what `cargo build --target
//! wasm32-unknown-unknown` gives) is wrapped into a component here, so a
//! plugin needs no extra build step; compiled code is kept on disk under
//! the file's content hash, so a restart or a reload of an unchanged file
//! compiles nothing.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The SHA-256 of a file's bytes: a plugin version's identity.
pub(crate) type ContentHash = [u8; 32];

/// The content hash of `bytes`.
pub(crate) fn content_hash(bytes: &[u8]) -> ContentHash {
    Sha256::digest(bytes).into()
}

/// True for a component, false for a core module (by the header's layer).
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

/// `bytes` as a component: a core module is wrapped (its component-type
/// section says which world it implements).
pub(crate) fn componentize(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    if is_component(bytes) || !bytes.starts_with(b"\0asm") {
        // Components, and anything else for wasmtime to reject with its
        // own message.
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    wit_component::ComponentEncoder::default()
        .module(bytes)
        .and_then(|e| e.validate(true).encode())
        .map(std::borrow::Cow::Owned)
        .map_err(|e| format!("cannot make a component of this core module: {e:#}"))
}

/// Compiles `bytes` (a component or a core module to wrap), through the
/// on-disk cache in `cache` if given. Cache failures are logged and
/// compiled around: the cache only saves time.
pub(crate) fn compile(
    engine: &Engine,
    bytes: &[u8],
    hash: &ContentHash,
    cache: Option<&Path>,
) -> Result<Component, String> {
    let entry = cache.map(|dir| dir.join(entry_name(engine, hash)));
    if let Some(path) = &entry
        && path.exists()
    {
        match load_precompiled(engine, path) {
            Ok(component) => return Ok(component),
            Err(e) => tracing::warn!(
                message = "Plugin cache entry unusable; compiling again.",
                path = %path.display(),
                error = %e,
            ),
        }
    }
    let component_bytes = componentize(bytes)?;
    let component = Component::new(engine, &component_bytes).map_err(|e| format!("{e:#}"))?;
    if let Some(path) = &entry
        && let Err(e) = store_precompiled(&component, path)
    {
        tracing::warn!(
            message = "Cannot write the plugin cache.",
            path = %path.display(),
            error = %e,
        );
    }
    Ok(component)
}

/// `HASH-ENGINE.cwasm`: the content hash, and a hash of everything in the
/// engine that makes compiled code incompatible (wasmtime version, target,
/// settings), so an upgrade never loads stale code.
fn entry_name(engine: &Engine, hash: &ContentHash) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let mut name = String::with_capacity(64 + 1 + 16 + 6);
    for b in hash {
        name.push_str(&format!("{b:02x}"));
    }
    name.push_str(&format!("-{:016x}.cwasm", h.finish()));
    name
}

/// Writes compiled code next to its final name and renames it into place,
/// so a reader never sees half a file.
fn store_precompiled(component: &Component, path: &Path) -> Result<(), String> {
    let code = component.serialize().map_err(|e| format!("{e:#}"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let tmp: PathBuf = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, code).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

/// Loads code this process (or an earlier one) compiled into the cache.
#[allow(unsafe_code)]
fn load_precompiled(engine: &Engine, path: &Path) -> Result<Component, String> {
    // Read, not mapped: a mapped file that someone truncates later would
    // bring the process down (SIGBUS) under a live call.
    let code = std::fs::read(path).map_err(|e| e.to_string())?;
    // SAFETY: wasmtime runs deserialized code as it is, so the bytes must
    // come from `Component::serialize` of a compatible engine. Only
    // Tandem writes the cache directory (operations.md: it must be as
    // trusted as the binary); the name carries the content hash and the
    // engine's compatibility hash, and wasmtime checks its own version
    // and settings header before using the code.
    unsafe { Component::deserialize(engine, &code) }.map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_and_component_headers() {
        assert!(is_component(b"\0asm\x0d\x00\x01\x00"));
        assert!(!is_component(b"\0asm\x01\x00\x00\x00"));
        assert!(!is_component(b"\0as"));
    }

    #[test]
    fn a_core_module_without_metadata_is_refused_clearly() {
        // An import no world describes.
        let module = wat::parse_str(r#"(module (import "env" "f" (func)))"#).expect("wat");
        let e = componentize(&module).expect_err("no component type");
        assert!(e.contains("core module"), "{e}");
    }
}
