//! `webpubsub-emulator`: a local Azure Web PubSub service.
//!
//! ```text
//! cargo run --features emulator --bin webpubsub-emulator -- \
//!     --hub chat=http://127.0.0.1:3000/eventhandler
//! ```

use std::net::SocketAddr;

use webpubsub::emulator::{Emulator, EventHandlerSettings, HubSettings, DEFAULT_ACCESS_KEY};

const USAGE: &str = "\
webpubsub-emulator: a local Azure Web PubSub service

USAGE:
    webpubsub-emulator [OPTIONS]

OPTIONS:
    --port <PORT>            port to listen on [default: 8080]
    --bind <IP>              address to listen on [default: 127.0.0.1]
    --host <HOST>            host name in the connection string and WebHook-Request-Origin [default: localhost]
    --access-key <KEY>       access key [default: a fixed local key; env WebPubSubEmulatorAccessKey]
    --hub <NAME>=<URL>       a hub and its event handler URL template ({hub}, {event} allowed);
                             repeat for more hubs; the handler gets every event
    --max-connections <N>    open sockets at a time; more get 503 [default: 512]
    --max-connections-per-user <N>
                             connections of one user id to one hub; more get 429 [default: 100]
    --max-groups-per-connection <N>
                             groups one connection may be in [default: 100]
    -h, --help               print this help

Logs: RUST_LOG (default info,webpubsub=debug).";

struct Args {
    port: u16,
    bind: String,
    host: String,
    key: String,
    hubs: Vec<(String, String)>,
    max_connections: Option<usize>,
    max_connections_per_user: Option<usize>,
    max_groups_per_connection: Option<usize>,
}

fn count(name: &str, value: &str) -> Result<Option<usize>, String> {
    match value.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => Err(format!(
            "{name} {value} is not a whole number of at least 1"
        )),
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        port: 8080,
        bind: "127.0.0.1".to_owned(),
        host: "localhost".to_owned(),
        key: std::env::var("WebPubSubEmulatorAccessKey")
            .unwrap_or_else(|_| DEFAULT_ACCESS_KEY.to_owned()),
        hubs: Vec::new(),
        max_connections: None,
        max_connections_per_user: None,
        max_groups_per_connection: None,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--port" => {
                let v = value("--port")?;
                parsed.port = v
                    .parse()
                    .map_err(|_| format!("--port {v} is not a port number"))?;
            }
            "--bind" => parsed.bind = value("--bind")?,
            "--host" => parsed.host = value("--host")?,
            "--access-key" => parsed.key = value("--access-key")?,
            "--hub" => {
                let v = value("--hub")?;
                let (name, url) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--hub {v}: write NAME=URL"))?;
                parsed.hubs.push((name.to_owned(), url.to_owned()));
            }
            "--max-connections" => {
                parsed.max_connections = count(&arg, &value(&arg)?)?;
            }
            "--max-connections-per-user" => {
                parsed.max_connections_per_user = count(&arg, &value(&arg)?)?;
            }
            "--max-groups-per-connection" => {
                parsed.max_groups_per_connection = count(&arg, &value(&arg)?)?;
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return Ok(());
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,webpubsub=debug".into()),
        )
        .init();

    let mut builder = Emulator::builder().access_key(&args.key).host(&args.host);
    for (name, url) in &args.hubs {
        builder = builder.hub(HubSettings::new(name).event_handler(EventHandlerSettings::new(url)));
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
    let emulator = builder.build()?;
    let addr: SocketAddr = format!("{}:{}", args.bind, args.port).parse()?;
    let running = emulator.start(addr).await?;
    println!("Web PubSub emulator listening on {}", running.local_addr());
    println!("Connection string: {}", running.connection_string());
    for (name, url) in &args.hubs {
        println!("Hub `{name}`: events go to {url}");
    }
    tokio::signal::ctrl_c().await?;
    running.shutdown().await;
    Ok(())
}
