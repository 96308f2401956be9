//! REGISTER requests (RFC 3261 §10.3): authenticate the sender, check that
//! a user registers only their own AOR, ask the dial plan's `on_register`
//! hook, then update the registrar and answer with the current bindings.

use crate::users::{UserServices, unix_now};
use crate::view::call_id_text;
use api::{RegisterContact, RegisterDecision, RegisterView};
use sip::message::Message;
use sip::transaction::ServerTx;
use sip::transport::{Source, Transports};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Handles one out-of-dialog REGISTER. The hook, if any, runs on a task
/// of its own, so a slow script never holds up the dispatcher.
pub(crate) fn on_register(
    users: &Arc<UserServices>,
    transports: &Transports,
    request: Message,
    source: Source,
    tx: ServerTx,
) {
    let auth_user = match users.auth.check(
        &request,
        source.remote.ip(),
        auth::Kind::Www,
        Instant::now(),
    ) {
        auth::Verdict::Trusted | auth::Verdict::Open => None,
        auth::Verdict::Authenticated { user } => Some(user),
        auth::Verdict::Challenge(r) | auth::Verdict::Blocked(r) => {
            return tx.reply_with(r.code, r.reason, r.headers);
        }
        auth::Verdict::Forbidden { reply, why } => {
            tracing::info!(
                message = "Registration refused: authentication failed.",
                reason = %why,
                source = %source.remote,
            );
            return tx.reply_with(reply.code, reply.reason, reply.headers);
        }
    };
    let parsed = match registrar::parse_register(&request, users.registrar.config()) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(message = "Bad REGISTER.", error = %e, source = %source.remote);
            return tx.reply_with(e.code(), e.reason(), e.headers());
        }
    };
    let aor = parsed.aor.clone();
    if let Some(user) = &auth_user
        && *user != aor
    {
        tracing::warn!(
            message = "Registration for another user refused.",
            user = %user,
            aor = %aor,
            source = %source.remote,
        );
        return tx.reply(403, "Forbidden");
    }
    let run = users
        .register_hook()
        .and_then(|hook| hook.on_register(register_view(&request, &source, &parsed, auth_user)));
    let transports = transports.clone();
    match run {
        None if !users.durable_store => {
            store(users, &transports, &parsed, &source, &BTreeMap::new(), &tx)
        }
        None => {
            // A journal write (and fsync) must not hold up the signalling.
            let users = users.clone();
            tokio::task::spawn_blocking(move || {
                store(&users, &transports, &parsed, &source, &BTreeMap::new(), &tx)
            });
        }
        Some((label, run)) => {
            let users = users.clone();
            tokio::spawn(async move {
                match run.await {
                    Ok(RegisterDecision::Accept { attrs }) => {
                        let _ = tokio::task::spawn_blocking(move || {
                            store(&users, &transports, &parsed, &source, &attrs, &tx)
                        })
                        .await;
                    }
                    Ok(RegisterDecision::Reject { code, reason }) => {
                        tracing::info!(
                            message = "Dial plan refused the registration.",
                            aor = %aor,
                            code,
                            reason = %reason,
                            script = %label,
                        );
                        tx.reply(code, &reason);
                    }
                    Ok(RegisterDecision::Challenge) => {
                        if !users.auth.has_users() {
                            tracing::warn!(
                                message = "on_register challenged, but no users are configured: nobody can answer.",
                                aor = %aor,
                            );
                        }
                        let r = users.auth.challenge(auth::Kind::Www, false, Instant::now());
                        tx.reply_with(r.code, r.reason, r.headers);
                    }
                    Err(e) => {
                        tracing::error!(
                            message = "on_register failed; registration refused.",
                            script = %e.script,
                            line = e.line.map(i64::from).unwrap_or(-1),
                            call_id = %call_id_text(&request),
                            error = %e.message,
                        );
                        tx.reply(500, "Server Internal Error");
                    }
                }
            });
        }
    }
}

/// Updates the registrar and answers.
fn store(
    users: &UserServices,
    transports: &Transports,
    parsed: &registrar::RegisterRequest,
    source: &Source,
    attrs: &BTreeMap<String, String>,
    tx: &ServerTx,
) {
    let now = unix_now();
    let aor = &parsed.aor;
    let path = registrar::Path::from_source(source);
    match users.registrar.apply(aor, parsed, path, now, attrs) {
        Ok(bindings) => {
            // A phone on TCP is reached over its connection: keep that
            // open for as long as a binding lives on it.
            if let Some(conn) = source.conn {
                let longest = bindings
                    .iter()
                    .filter(|b| b.path.conn == Some(conn.0))
                    .map(|b| b.expires_in(now))
                    .max();
                if let Some(secs) = longest {
                    transports.keep_open(conn, std::time::Duration::from_secs(secs));
                }
            }
            tracing::debug!(
                message = "Registration.",
                aor = %aor,
                bindings = bindings.len(),
                source = %source.remote,
            );
            tx.reply_with(200, "OK", registrar::ok_headers(&bindings, now));
        }
        Err(e) => {
            tracing::info!(
                message = "Registration failed.",
                aor = %aor,
                code = e.code(),
                error = %e,
                source = %source.remote,
            );
            tx.reply_with(e.code(), e.reason(), e.headers());
        }
    }
}

/// The REGISTER as `on_register(reg)` sees it.
fn register_view(
    request: &Message,
    source: &Source,
    parsed: &registrar::RegisterRequest,
    auth_user: Option<String>,
) -> RegisterView {
    RegisterView {
        user: parsed.aor.clone(),
        auth_user,
        contacts: parsed
            .contacts
            .iter()
            .map(|c| RegisterContact {
                uri: c.uri.clone(),
                expires: c.expires,
                q: c.q,
            })
            .collect(),
        remove_all: parsed.star,
        call_id: call_id_text(request),
        source_ip: source.remote.ip(),
        source_port: source.remote.port(),
        transport: source.kind.as_str().to_ascii_lowercase(),
        user_agent: parsed.user_agent.clone(),
        headers: crate::view::header_list(request),
    }
}
