//! The WIT world (`wit/plugin.wit`) parses, and it mirrors the Lua API:
//! the same call fields, the same edits, the same host services.

use wit_parser::{Resolve, WorldItem, WorldKey};

fn resolve() -> (Resolve, wit_parser::PackageId) {
    let mut resolve = Resolve::default();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/wit");
    let (pkg, _) = resolve.push_dir(dir).expect("the WIT package parses");
    (resolve, pkg)
}

fn key_name(resolve: &Resolve, key: &WorldKey) -> String {
    match key {
        WorldKey::Name(n) => n.clone(),
        WorldKey::Interface(id) => resolve.interfaces[*id].name.clone().unwrap_or_default(),
    }
}

#[test]
fn the_package_is_versioned() {
    let (resolve, pkg) = resolve();
    let name = &resolve.packages[pkg].name;
    assert_eq!(name.namespace, "tandem");
    assert_eq!(name.name, "plugin");
    assert_eq!(
        name.version.as_ref().map(ToString::to_string).as_deref(),
        Some(api::API_VERSION),
        "the WIT package and the Lua API move together"
    );
}

#[test]
fn the_router_world_imports_only_the_host_and_exports_the_events() {
    let (resolve, pkg) = resolve();
    let world = resolve
        .select_world(&[pkg], Some("router"))
        .expect("world router");
    let world = &resolve.worlds[world];
    let imports: Vec<String> = world
        .imports
        .iter()
        .filter(|(_, item)| matches!(item, WorldItem::Interface { .. }))
        .map(|(k, _)| key_name(&resolve, k))
        .collect();
    // `types` comes in through `use`; nothing like WASI is imported.
    let mut imports = imports;
    imports.sort();
    assert_eq!(imports, vec!["host", "types"]);
    let exports: Vec<String> = world
        .exports
        .keys()
        .map(|k| key_name(&resolve, k))
        .collect();
    assert_eq!(exports, vec!["on-invite", "on-hangup"]);
}

#[test]
fn the_call_view_has_the_fields_of_the_lua_call() {
    let (resolve, _) = resolve();
    let view = resolve
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some("call-view"))
        .map(|(_, t)| t)
        .expect("call-view");
    let wit_parser::TypeDefKind::Record(record) = &view.kind else {
        panic!("call-view is a record");
    };
    let fields: Vec<String> = record
        .fields
        .iter()
        .map(|f| f.name.replace('-', "_"))
        .collect();
    for lua in [
        "user",
        "ruri",
        "from",
        "from_user",
        "from_name",
        "to",
        "call_id",
        "source_ip",
        "source_port",
        "transport",
        "auth_user",
        "headers",
    ] {
        assert!(fields.iter().any(|f| f == lua), "call-view lacks `{lua}`");
    }
}
