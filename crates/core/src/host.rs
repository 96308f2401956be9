//! The host services dial plans use ([`api::Host`]): the key-value store,
//! HTTP (async, on the runtime: no thread waits) and the static routes.

use crate::route::Router;
use api::host::BoxFuture;
use api::{Host, HttpRequest, HttpResponse, KvStore, MemoryKv, RouteInfo};
use std::sync::Arc;

/// Largest HTTP response body a script gets (bigger ones are an error).
const MAX_HTTP_BODY: usize = 1024 * 1024;

/// The host of the binary.
pub struct CoreHost {
    kv: Arc<dyn KvStore>,
    http: reqwest::Client,
    router: Router,
    /// The plugins (`tandem.plugin(name)`), once loaded.
    plugins: std::sync::OnceLock<Arc<dyn api::Routers>>,
    /// The registrar (`tandem.registrar.lookup`).
    users: Arc<crate::users::UserServices>,
}

impl std::fmt::Debug for CoreHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreHost").finish_non_exhaustive()
    }
}

impl CoreHost {
    /// A host with an in-memory store, the static routes of `router` and
    /// the registrar of `users`.
    pub fn new(router: Router, users: Arc<crate::users::UserServices>) -> CoreHost {
        let http = reqwest::Client::builder()
            .user_agent(sip::USER_AGENT)
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        CoreHost {
            kv: Arc::new(MemoryKv::default()),
            http,
            router,
            plugins: std::sync::OnceLock::new(),
            users,
        }
    }

    /// Makes the loaded plugins reachable from dial plans. Only the first
    /// call counts (plugins are loaded once; reloads happen inside).
    pub fn set_plugins(&self, plugins: Arc<dyn api::Routers>) {
        let _ = self.plugins.set(plugins);
    }
}

impl Host for CoreHost {
    fn kv(&self) -> &dyn KvStore {
        &*self.kv
    }

    fn lookup(&self, user: &str) -> Vec<api::Contact> {
        self.users.lookup(user)
    }

    fn http(&self, request: HttpRequest) -> BoxFuture<'static, Result<HttpResponse, String>> {
        let client = self.http.clone();
        Box::pin(async move {
            let method = reqwest::Method::from_bytes(request.method.as_bytes())
                .map_err(|_| format!("bad method `{}`", request.method))?;
            let mut builder = client
                .request(method, &request.url)
                .timeout(request.timeout);
            for (n, v) in &request.headers {
                builder = builder.header(n, v);
            }
            if !request.body.is_empty() {
                builder = builder.body(request.body);
            }
            let mut response = builder.send().await.map_err(describe)?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(describe)? {
                if body.len() + chunk.len() > MAX_HTTP_BODY {
                    return Err(format!("response body larger than {MAX_HTTP_BODY} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(HttpResponse {
                status,
                headers,
                body,
            })
        })
    }

    fn plugin(&self, name: &str) -> Result<Arc<dyn api::Router>, api::RouterError> {
        match self.plugins.get() {
            Some(plugins) => plugins.get(name),
            None => Err(api::RouterError::Unknown(name.to_string())),
        }
    }

    /// A registered user's route rings their phones (`user:NAME`), like a
    /// call without a dial plan; otherwise the static route.
    fn route(&self, user: &str) -> Option<RouteInfo> {
        if !user.is_empty() && !self.users.lookup(user).is_empty() {
            return Some(RouteInfo {
                targets: vec![format!("user:{user}")],
                mode: api::DialMode::Parallel,
                timeout: crate::call::DEFAULT_RING_TIMEOUT,
                anchor_media: None,
            });
        }
        let d = self.router.route(user).ok()?;
        Some(RouteInfo {
            targets: d.targets.iter().map(|t| t.uri.to_string()).collect(),
            mode: d.mode.into(),
            timeout: d.timeout,
            anchor_media: d.media.map(|m| m == crate::config::MediaMode::Anchored),
        })
    }
}

/// A short reason for a failed request: `timeout`, or what failed and
/// the innermost cause (`connection failed: Connection refused …`).
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "timeout".into();
    }
    let what = if e.is_connect() {
        "connection failed"
    } else if e.is_builder() {
        "bad request"
    } else {
        "request failed"
    };
    let mut cause: &dyn std::error::Error = &e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    format!("{what}: {cause}")
}
