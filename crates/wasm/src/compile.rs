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

/// Refuses a cache directory that others could write to: Tandem runs
/// what it finds there.
fn check_private(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| e.to_string())?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| e.to_string())?;
    if meta.uid() != rustix::process::getuid().as_raw() {
        return Err("owned by another user".into());
    }
    if meta.mode() & 0o022 != 0 {
        return Err("writable by group or others".into());
    }
    Ok(())
}

/// Writes compiled code under a unique temporary name and renames it into
/// place, so a reader never sees half a file. The file starts with the
/// SHA-256 of the code, checked before the code is trusted.
fn store_precompiled(component: &Component, path: &Path) -> Result<(), String> {
    use std::io::Write;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = path.parent().ok_or("no cache directory")?;
    check_private(dir)?;
    let code = component.serialize().map_err(|e| format!("{e:#}"))?;
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp: PathBuf = dir.join(format!(".tmp-{}-{n}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&content_hash(&code))?;
        file.write_all(&code)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| e.to_string())
}

/// Loads code this process (or an earlier one) compiled into the cache.
#[allow(unsafe_code)]
fn load_precompiled(engine: &Engine, path: &Path) -> Result<Component, String> {
    check_private(path.parent().ok_or("no cache directory")?)?;
    // Read, not mapped: a mapped file that someone truncates later would
    // bring the process down (SIGBUS) under a live call.
    let file = std::fs::read(path).map_err(|e| e.to_string())?;
    let (sum, code) = file
        .split_at_checked(32)
        .ok_or_else(|| "truncated entry".to_string())?;
    if sum != content_hash(code) {
        return Err("checksum mismatch".into());
    }
    // SAFETY: wasmtime runs deserialized code as it is, so the bytes must
    // come from `Component::serialize` of a compatible engine. Only
    // Tandem writes the cache directory (checked: private to our user);
    // the checksum above proves the bytes are the ones it wrote, the name
    // carries the content hash and the engine's compatibility hash, and
    // wasmtime checks its own version and settings header before use.
    unsafe { Component::deserialize(engine, code) }.map_err(|e| format!("{e:#}"))
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
