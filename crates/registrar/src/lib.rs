//! Tandem's registrar and location service (RFC 3261 §10, with RFC 5626
//! `+sip.instance` / `reg-id` binding identity).
//!
//! Pure logic and stores: no sockets, no tasks. The core hands a REGISTER
//! [`Message`](sip::message::Message) and where it came from ([`Path`]) to
//! [`Registrar::register`] and sends the response it describes: a 200 OK
//! with [`ok_headers`], or the [`RegisterError`]'s code, reason and
//! headers. Requests are routed to a user with [`Registrar::lookup`].
//!
//! Bindings live in a [`LocationStore`]: [`MemoryStore`] (embedded
//! default) or [`FileStore`] (the same plus a JSON-lines journal, so a
//! restart loses no registration).

mod binding;
mod date;
mod error;
mod file_store;
mod register;
mod registrar;
mod store;

pub use binding::{Binding, Path};
pub use date::rfc1123_date;
pub use error::RegisterError;
pub use file_store::FileStore;
pub use register::{RegisterRequest, RequestedContact, parse_register};
pub use registrar::{Registrar, RegistrarConfig, ok_headers};
pub use store::{LocationStore, MemoryStore, StoreError};

#[cfg(test)]
pub(crate) mod testutil;
