//! `webpubsub-emulator`: a local Azure Web PubSub service.
//!
//! ```text
//! cargo run -p webpubsub-emulator -- \
//!     --hub chat=http://127.0.0.1:3000/eventhandler
//! ```

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use webpubsub_emulator::uuid;
use webpubsub_emulator::{
    Emulator, EventHandlerSettings, HubSettings, DEFAULT_ACCESS_KEY, DEFAULT_CLIENT_ID,
    DEFAULT_MANAGED_IDENTITY_CLIENT_ID, DEFAULT_MANAGED_IDENTITY_OBJECT_ID,
};

/// The environment variable that sets the access key.
const KEY_VAR: &str = "WebPubSubEmulatorAccessKey";

/// webpubsub-emulator: a local Azure Web PubSub service
///
/// Serves WebSocket clients (/client/hubs/{hub}), the REST API (/api/...) and a
/// live view of connections and upstream calls (/_emulator), and calls each
/// hub's event handler as the service does. Prints its connection string.
#[derive(Debug, Parser)]
#[command(
    name = "webpubsub-emulator",
    version,
    after_help = "Logs: RUST_LOG (default info,webpubsub=debug).\n\
                  Example: webpubsub-emulator --hub chat=http://127.0.0.1:3000/eventhandler"
)]
struct Args {
    /// Port to listen on (0 picks a free one)
    #[arg(long, default_value_t = 8080)]
    port: u16,

    /// Address to listen on
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    bind: IpAddr,

    /// Host name in the connection string and WebHook-Request-Origin
    #[arg(long, default_value = "localhost")]
    host: String,

    /// Access key [default: a fixed local key]; a blank variable counts as unset
    #[arg(long, value_name = "KEY", env = KEY_VAR, hide_env_values = true)]
    access_key: Option<String>,

    /// A hub and its event handler URL template ({hub}, {event} allowed);
    /// repeat for more hubs; the handler gets every event
    #[arg(long = "hub", value_name = "NAME=URL", value_parser = hub)]
    hubs: Vec<(String, String)>,

    /// Open sockets at a time; more get 503 [default: 512]
    #[arg(long, value_name = "N", value_parser = count)]
    max_connections: Option<usize>,

    /// Connections of one user id to one hub; more get 429 [default: 100]
    #[arg(long, value_name = "N", value_parser = count)]
    max_connections_per_user: Option<usize>,

    /// Groups one connection may be in [default: 100]
    #[arg(long, value_name = "N", value_parser = count)]
    max_groups_per_connection: Option<usize>,

    /// Connections kept without a socket (reliable ones waiting for
    /// recovery, detached MQTT sessions), in all hubs [default: 512]
    #[arg(long, value_name = "N")]
    max_detached_connections: Option<usize>,

    /// Bytes one connection may hold (queued and unacknowledged messages,
    /// pending invocations) before it is cut off as too slow
    /// [default: 16777216]
    #[arg(long, value_name = "BYTES", value_parser = count)]
    send_queue_bytes: Option<usize>,

    /// Authenticate the event handler of hub NAME with the emulator's
    /// managed identity: a bearer token with aud=RESOURCE on every event
    /// (not on the abuse-protection OPTIONS); repeat for more hubs
    #[arg(long = "hub-auth", value_name = "NAME=RESOURCE", value_parser = hub_auth)]
    hub_auth: Vec<(String, String)>,

    /// No access keys (Azure's disableLocalAuth): REST needs Entra bearer
    /// tokens, client tokens come from :generateToken, no ce-signature upstream
    #[arg(long)]
    disable_local_auth: bool,

    /// Also serve HTTPS on this port (0 picks a free one) with a
    /// self-signed certificate for 127.0.0.1, localhost and ::1
    #[arg(long, value_name = "PORT")]
    https_port: Option<u16>,

    /// Write the HTTPS certificate (PEM) to this file, e.g. for NODE_EXTRA_CA_CERTS
    #[arg(long, value_name = "FILE", requires = "https_port")]
    https_cert_out: Option<std::path::PathBuf>,

    /// Tenant id of the emulator's Entra ID [default: 0e3a0000-0000-4000-8000-000000000001]
    #[arg(long, value_name = "GUID")]
    tenant_id: Option<uuid::Uuid>,

    /// Client id of the app registration that may get tokens
    /// [default: 0e3a0000-0000-4000-8000-000000000002]
    #[arg(long, value_name = "GUID")]
    client_id: Option<uuid::Uuid>,

    /// Its client secret [default: a random one, printed at startup]; a
    /// blank variable counts as unset, a blank flag is refused
    #[arg(
        long,
        value_name = "SECRET",
        env = "WebPubSubEmulatorClientSecret",
        hide_env_values = true
    )]
    client_secret: Option<String>,

    /// Client id (azp) of the emulator's managed identity
    /// [default: 0e3a0000-0000-4000-8000-000000000004]
    #[arg(long, value_name = "GUID")]
    managed_identity_client_id: Option<uuid::Uuid>,

    /// Object id (oid) of the emulator's managed identity
    /// [default: 0e3a0000-0000-4000-8000-000000000005]
    #[arg(long, value_name = "GUID")]
    managed_identity_object_id: Option<uuid::Uuid>,

    /// Let other hosts reach the token endpoint, the Entra ID documents and
    /// the live view (/_emulator), which otherwise answer loopback peers only
    #[arg(long)]
    allow_remote_admin: bool,
}

/// `--hub-auth NAME=RESOURCE`.
fn hub_auth(value: &str) -> Result<(String, String), String> {
    value
        .split_once('=')
        .filter(|(_, resource)| !resource.trim().is_empty())
        .map(|(name, resource)| (name.to_owned(), resource.to_owned()))
        .ok_or_else(|| "write NAME=RESOURCE, e.g. chat=api://my-app".to_owned())
}

/// `--hub NAME=URL`: the URL (a template: `{hub}` and `{event}` allowed)
/// must be an absolute http(s) URL.
fn hub(value: &str) -> Result<(String, String), String> {
    let (name, url) = value
        .split_once('=')
        .ok_or_else(|| "write NAME=URL, e.g. chat=http://127.0.0.1:3000/eventhandler".to_owned())?;
    let sample = url.replace("{hub}", "hub").replace("{event}", "connect");
    let absolute = url::Url::parse(&sample)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    if !absolute {
        let hint = if url.contains("://") {
            String::new()
        } else {
            format!(" (did you mean http://{url}?)")
        };
        return Err(format!(
            "`{url}` is not an http(s) URL with a host{hint}; write NAME=URL, \
             e.g. {name}=http://127.0.0.1:3000/eventhandler"
        ));
    }
    Ok((name.to_owned(), url.to_owned()))
}

/// A cap: a whole number of at least 1.
fn count(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("not a whole number of at least 1".to_owned()),
    }
}

/// The command line; clap prints help, version or a usage error and exits.
fn parse() -> Args {
    let matches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // An empty or blank `WebPubSubEmulatorAccessKey=` counts as unset; a
    // blank `--access-key` is refused by the builder.
    if matches.value_source("access_key") == Some(ValueSource::EnvVariable)
        && args
            .access_key
            .as_deref()
            .is_some_and(|k| k.trim().is_empty())
    {
        args.access_key = None;
    }
    // So does a blank `WebPubSubEmulatorClientSecret=` (a random secret is
    // made); a blank `--client-secret` is refused by the builder.
    if matches.value_source("client_secret") == Some(ValueSource::EnvVariable)
        && args
            .client_secret
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
    {
        args.client_secret = None;
    }
    args
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,webpubsub=debug".into()),
        )
        // Colours for a terminal only, not in a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the emulator, prints its connection string, and serves until Ctrl-C.
async fn run(args: Args) -> Result<(), String> {
    if args
        .access_key
        .as_deref()
        .is_some_and(|k| k.trim().is_empty())
    {
        return Err(
            "--access-key is empty: give a key (any text that is not blank), \
                    or leave the flag out to use the emulator's local key"
                .to_owned(),
        );
    }
    let key = args.access_key.as_deref().unwrap_or(DEFAULT_ACCESS_KEY);
    let mut builder = Emulator::builder()
        .access_key(key)
        .host(&args.host)
        .disable_local_auth(args.disable_local_auth);
    for (name, _) in &args.hub_auth {
        if !args.hubs.iter().any(|(hub, _)| hub == name) {
            return Err(format!(
                "--hub-auth {name}=…: no --hub {name}=URL to authenticate"
            ));
        }
    }
    for (name, url) in &args.hubs {
        let mut handler = EventHandlerSettings::new(url);
        if let Some((_, resource)) = args.hub_auth.iter().rev().find(|(hub, _)| hub == name) {
            handler = handler.managed_identity(resource);
        }
        builder = builder.hub(HubSettings::new(name).event_handler(handler));
    }
    if let Some(tenant) = args.tenant_id {
        builder = builder.tenant_id(tenant);
    }
    let client_id = args.client_id.unwrap_or(DEFAULT_CLIENT_ID);
    builder = match &args.client_secret {
        Some(secret) => builder.app_registration(client_id, secret),
        None => builder.app_client_id(client_id),
    };
    builder = builder.insecure_allow_remote_admin(args.allow_remote_admin);
    builder = builder.managed_identity(
        args.managed_identity_client_id
            .unwrap_or(DEFAULT_MANAGED_IDENTITY_CLIENT_ID),
        args.managed_identity_object_id
            .unwrap_or(DEFAULT_MANAGED_IDENTITY_OBJECT_ID),
    );
    if let Some(port) = args.https_port {
        builder = builder.https_port(port);
    }
    if let Some(n) = args.max_connections {
        builder = builder.max_connections(n);
    }
    if let Some(n) = args.max_connections_per_user {
        builder = builder.max_connections_per_user(n);
    }
    if let Some(n) = args.max_groups_per_connection {
        builder = builder.max_groups_per_connection(n);
    }
    if let Some(n) = args.max_detached_connections {
        builder = builder.max_detached_connections(n);
    }
    if let Some(n) = args.send_queue_bytes {
        builder = builder.send_queue_bytes(n);
    }
    let emulator = builder.build().map_err(|e| e.to_string())?;
    let addr = SocketAddr::new(args.bind, args.port);
    let running = emulator
        .start(addr)
        .await
        .map_err(|e| bind_error(addr, &e))?;
    println!("Web PubSub emulator listening on {}", running.local_addr());
    if let Some(https) = running.https_endpoint() {
        println!("HTTPS: {https} (self-signed certificate for 127.0.0.1, localhost, ::1)");
    }
    if let (Some(path), Some(pem)) = (&args.https_cert_out, running.certificate_pem()) {
        std::fs::write(path, pem)
            .map_err(|e| format!("cannot write the certificate to {}: {e}", path.display()))?;
        println!("HTTPS certificate written to {}", path.display());
    }
    println!("Connection string: {}", running.connection_string());
    if args.disable_local_auth {
        println!("Auth: local auth DISABLED (no access key); Entra ID bearer tokens only");
    } else {
        println!("Auth: access key (HS256 tokens, ce-signature) and Entra ID bearer tokens");
    }
    println!(
        "Entra ID: issuer {}, token endpoint {} (client id {}, client secret {})",
        running.issuer(),
        running.token_endpoint(),
        running.client_id(),
        running.client_secret()
    );
    if args.allow_remote_admin {
        println!(
            "Admin routes: the token endpoint, the Entra ID documents and the live view \
             answer OTHER HOSTS too (--allow-remote-admin)"
        );
    } else {
        println!(
            "Admin routes: the token endpoint, the Entra ID documents and the live view \
             answer this machine (loopback) only"
        );
    }
    println!("Entra ID discovery: {}", running.openid_configuration_url());
    for (name, url) in &args.hubs {
        match args.hub_auth.iter().rev().find(|(hub, _)| hub == name) {
            Some((_, resource)) => println!(
                "Hub `{name}`: events go to {url} with a managed-identity bearer token (aud {resource})"
            ),
            None => println!("Hub `{name}`: events go to {url}"),
        }
    }
    let stopped = tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"));
    running.shutdown().await;
    stopped
}

/// What to print when listening on `addr` failed: a busy port names the flag.
fn bind_error(addr: SocketAddr, error: &io::Error) -> String {
    let port = addr.port();
    match error.kind() {
        io::ErrorKind::AddrInUse => {
            format!("port {port} is busy: pass --port <another port> (or stop the program using it)")
        }
        io::ErrorKind::PermissionDenied => {
            format!("port {port} needs privileges: pass --port <a port above 1023>")
        }
        io::ErrorKind::AddrNotAvailable => format!(
            "{} is not an address of this machine: pass --bind 127.0.0.1 (or another of its addresses)",
            addr.ip()
        ),
        _ => format!("cannot listen on {addr}: {error}"),
    }
}
