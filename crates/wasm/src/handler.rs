//! A plugin as the call handler: it answers each new call with edits and a
//! decision, which are played to the call as the API's commands; `pass`
//! falls back to the static routes.

use crate::plugin::{Decision, Plugin};
use api::{CallHandler, CallLink, CallView, Command, HandlerError, Host, ScriptError, ScriptRun};
use std::sync::Arc;

/// Routes every new call through one plugin.
pub struct PluginHandler {
    plugin: Arc<Plugin>,
    host: Arc<dyn Host>,
}

impl std::fmt::Debug for PluginHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHandler")
            .field("plugin", &self.plugin.label())
            .finish()
    }
}

impl PluginHandler {
    /// A handler asking `plugin`, with `host` behind its imports.
    pub fn new(plugin: Plugin, host: Arc<dyn Host>) -> PluginHandler {
        PluginHandler {
            plugin: Arc::new(plugin),
            host,
        }
    }
}

impl CallHandler for PluginHandler {
    fn start(&self, view: CallView, link: CallLink) -> Result<(String, ScriptRun), HandlerError> {
        let plugin = self.plugin.clone();
        let host = self.host.clone();
        let label = plugin.label().to_string();
        let run = async move {
            let done = match plugin.route(&view, &host) {
                Ok(route) => {
                    for edit in route.edits {
                        link.send(edit);
                    }
                    match route.decision {
                        Decision::Dial(request) => {
                            let result = link.dial(request).await;
                            if let Err(e) = plugin.hangup(&view.call_id, &result, &host) {
                                tracing::warn!(message = "Plugin failed on hangup.", error = %e);
                            }
                        }
                        Decision::Reject(code, reason) => {
                            link.send(Command::Reject { code, reason });
                        }
                        Decision::Pass => {
                            // The next handler: the static routes.
                            if let Some(route) = host.route(&view.user) {
                                link.dial(api::DialRequest {
                                    targets: route
                                        .targets
                                        .into_iter()
                                        .map(|uri| api::DialTarget {
                                            uri,
                                            headers: Vec::new(),
                                        })
                                        .collect(),
                                    mode: route.mode,
                                    timeout: Some(route.timeout),
                                    headers: Vec::new(),
                                    anchor_media: route.anchor_media,
                                })
                                .await;
                            }
                        }
                    }
                    Ok(())
                }
                Err(e) => Err(ScriptError {
                    script: plugin.label().to_string(),
                    line: None,
                    message: e.to_string(),
                }),
            };
            link.send(Command::Done(done));
        };
        Ok((label, Box::pin(run)))
    }

    fn version(&self) -> String {
        self.plugin.label().to_string()
    }
}
