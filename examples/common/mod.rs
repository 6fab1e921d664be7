//! Start-up helpers shared by the examples: settings from the environment
//! and a listening port, with errors that say what to do. Each example
//! includes this file with `#[path = "common/mod.rs"] mod common;`.

use std::fmt::Display;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

/// The value of the environment variable `name`; unset, blank and non-UTF-8
/// values all count as unset, so `NAME=` never switches a mode on.
pub(crate) fn var(name: &str) -> Option<String> {
    non_blank(std::env::var(name).ok())
}

/// `value`, unless it is missing or only white space.
pub(crate) fn non_blank(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The port in the environment variable `name`, or `default` when unset.
pub(crate) fn port(name: &str, default: u16) -> Result<u16, String> {
    match var(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|_| format!("{name}={value} is not a port number: use 0 to 65535")),
    }
}

/// What to print when `WebPubSubConnectionString` is set but unusable.
pub(crate) fn connection_string_error(error: impl Display) -> String {
    format!(
        "WebPubSubConnectionString: {error}; copy it from the Azure portal \
         (your Web PubSub resource, Keys), or unset it to run locally"
    )
}

/// What to print when binding `addr` failed: names a busy port and the
/// setting (`fix`, e.g. `PORT`) that picks another.
pub(crate) fn bind_error(addr: SocketAddr, error: &io::Error, fix: &str) -> String {
    let port = addr.port();
    match error.kind() {
        io::ErrorKind::AddrInUse => {
            format!("port {port} is busy: set {fix}=<another port> (or stop the program using it)")
        }
        io::ErrorKind::PermissionDenied => {
            format!("port {port} needs privileges: set {fix}=<a port above 1023>")
        }
        _ => format!("cannot listen on {addr}: {error}"),
    }
}

/// Listens on 127.0.0.1:`port`; `fix` names the variable that changes it.
pub(crate) async fn listen(port: u16, fix: &str) -> Result<tokio::net::TcpListener, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| bind_error(addr, &e, fix))
}

/// `main`'s exit: errors are printed with their `Display`, exit code 1.
pub(crate) fn exit<E: Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A Node command (its built-in `fetch` and `WebSocket`: Node 22 has the
/// latter by default, Node 20.10 and later with `--experimental-websocket`,
/// which 22 also accepts) that negotiates
/// a client URL at `negotiate`, connects with the JSON subprotocol, sends
/// user event `event` with the text `data`, prints every frame it gets
/// for two seconds, and closes.
#[allow(dead_code)] // not every example prints one
pub(crate) fn node_client_command(negotiate: &str, event: &str, data: &str) -> String {
    format!(
        "node --experimental-websocket -e \"fetch('{negotiate}').then(r => r.json()).then(({{url}}) => {{ \
const ws = new WebSocket(url, 'json.webpubsub.azure.v1'); \
ws.onmessage = (m) => console.log(String(m.data)); \
ws.onopen = () => ws.send(JSON.stringify({{type: 'event', event: '{event}', dataType: 'text', data: '{data}'}})); \
setTimeout(() => ws.close(), 2000); }})\""
    )
}
