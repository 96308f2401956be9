//! The transaction user until the B2BUA core arrives: answers what an
//! endpoint without calls must answer (RFC 3261 §8.2, §12.2.2, §15).

use sip::message::Method;
use sip::transaction::{TuEvent, TxLayer};
use tokio::sync::mpsc;

/// Runs until the layer closes the event queue.
pub(crate) async fn run(_layer: TxLayer, mut events: mpsc::Receiver<TuEvent>) {
    while let Some(event) = events.recv().await {
        handle(event);
    }
}

fn handle(event: TuEvent) {
    match event {
        TuEvent::Request {
            request,
            source,
            tx,
            ..
        } => {
            let method = request.method().cloned().unwrap_or(Method::Options);
            let call_id = request
                .call_id()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .unwrap_or_default();
            let in_dialog = request.to_tag().is_some();
            let (code, reason) = match method {
                // §12.2.2: a request inside a dialog we do not know.
                _ if in_dialog => (481, "Call/Transaction Does Not Exist"),
                // No routing until the B2BUA core exists.
                Method::Invite | Method::Message => (480, "Temporarily Unavailable"),
                // Requests that only make sense inside a dialog.
                _ => (481, "Call/Transaction Does Not Exist"),
            };
            tracing::info!(
                message = "Request answered.",
                method = %method,
                code,
                call_id = %call_id,
                remote = %source.remote,
                transport = %source.kind,
            );
            tx.reply(code, reason);
        }
        // An ACK for a 2xx we never sent, or a stray one: nothing to do.
        TuEvent::Ack { .. } => {}
        TuEvent::Cancelled { .. } => {}
        TuEvent::AckTimeout { invite } => {
            tracing::debug!(message = "Final response was never acknowledged.", ?invite);
        }
    }
}
