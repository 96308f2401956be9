//! Test plugins in WAT, encoded as components of the `router` world (no
//! wasm toolchain needed): shared by the tests and the benchmark.

#![allow(dead_code)]

/// A core module in WAT, encoded as a component of the `router` world.
pub(crate) fn component(body: &str) -> Vec<u8> {
    wit_component::ComponentEncoder::default()
        .module(&core_module(body))
        .expect("module")
        .validate(true)
        .encode()
        .expect("component")
}

/// A core module in WAT carrying the `router` world's component-type
/// section, as `cargo build --target wasm32-unknown-unknown` of a
/// wit-bindgen guest gives it.
pub(crate) fn core_module(body: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 8192))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and
      (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
      (i32.sub (i32.const 0) (local.get 2))))
    (global.set $bump (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "on-hangup") (param i32 i32 i32 i32 i32 i32 i64))
  {body}
)"#
    );
    let mut module = wat::parse_str(&wat).expect("valid WAT");
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../api/wit"))
        .expect("WIT");
    let world = resolve.select_world(&[pkg], Some("router")).expect("world");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("metadata");
    module
}

/// `on-invite` answers the route at address 1024: no edits, then the
/// decision (discriminant at +8, payload at +12).
pub(crate) const REJECT_403: &str = r#"
  (data (i32.const 1024) "\00\00\00\00\00\00\00\00\01\00\00\00\93\01\00\00\00\08\00\00\09\00\00\00")
  (data (i32.const 2048) "Forbidden")
  (func (export "on-invite") (param i32) (result i32) (i32.const 1024))
"#;

pub(crate) const PASS: &str = r#"
  (data (i32.const 1024) "\00\00\00\00\00\00\00\00\02")
  (func (export "on-invite") (param i32) (result i32) (i32.const 1024))
"#;

/// Rejects with 480 + the number of calls this instance has seen: a fresh
/// instance per call always says 480.
pub(crate) const COUNTER: &str = r#"
  (global $calls (mut i32) (i32.const 0))
  (data (i32.const 1024) "\00\00\00\00\00\00\00\00\01\00\00\00\00\00\00\00\00\08\00\00\01\00\00\00")
  (data (i32.const 2048) "x")
  (func (export "on-invite") (param i32) (result i32)
    (i32.store16 (i32.const 1036) (i32.add (i32.const 480) (global.get $calls)))
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.const 1024))
"#;

pub(crate) const TRAP: &str = r#"(func (export "on-invite") (param i32) (result i32) unreachable)"#;

pub(crate) const LOOP: &str =
    r#"(func (export "on-invite") (param i32) (result i32) (loop (br 0)) unreachable)"#;

pub(crate) const BOMB: &str = r#"(func (export "on-invite") (param i32) (result i32)
    (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable)"#;

/// A reject code a SIP answer cannot have (200).
pub(crate) const BAD_CODE: &str = r#"
  (data (i32.const 1024) "\00\00\00\00\00\00\00\00\01\00\00\00\c8\00\00\00\00\08\00\00\01\00\00\00")
  (data (i32.const 2048) "x")
  (func (export "on-invite") (param i32) (result i32) (i32.const 1024))
"#;

/// Dials `uri` (serial, no timeout, no headers): the dial payload at
/// +12 of the route, its one target at 2048, the URI at 3072.
pub(crate) fn dial_body(uri: &str) -> String {
    let len = uri.len();
    let escaped: String = uri.bytes().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"
  (data (i32.const 1036) "\00\08\00\00\01\00\00\00")
  (data (i32.const 2048) "\00\0c\00\00{len_le}")
  (data (i32.const 3072) "{escaped}")
  (func (export "on-invite") (param i32) (result i32) (i32.const 1024))
"#,
        len_le = (len as u32)
            .to_le_bytes()
            .iter()
            .map(|b| format!("\\{b:02x}"))
            .collect::<String>()
    )
}

/// A host with an in-memory store and nothing else.
pub(crate) struct TestHost(pub(crate) api::MemoryKv);

impl api::Host for TestHost {
    fn kv(&self) -> &dyn api::KvStore {
        &self.0
    }
    fn http(
        &self,
        _: api::HttpRequest,
    ) -> api::host::BoxFuture<'static, Result<api::HttpResponse, String>> {
        Box::pin(async { Err("no http".to_string()) })
    }
    fn route(&self, _: &str) -> Option<api::RouteInfo> {
        None
    }
}

/// A [`TestHost`] behind the trait.
pub(crate) fn host() -> std::sync::Arc<dyn api::Host> {
    std::sync::Arc::new(TestHost(api::MemoryKv::default()))
}
