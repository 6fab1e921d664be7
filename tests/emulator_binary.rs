//! The `webpubsub-emulator` binary: its command line, and a running
//! instance answering the crate's service client and a WebSocket client.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use webpubsub::{ClientAccessOptions, WebPubSubServiceClient};

const BIN: &str = env!("CARGO_BIN_EXE_webpubsub-emulator");

/// Kills the child when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn help_lists_the_options_and_bad_arguments_exit_with_2() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for option in [
        "--port",
        "--bind",
        "--host",
        "--access-key",
        "--hub <NAME>=<URL>",
    ] {
        assert!(text.contains(option), "--help mentions {option}:\n{text}");
    }

    for args in [
        &["--port", "http"][..],
        &["--hub", "chat"],
        &["--frobnicate"],
        &["--port"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn the_binary_serves_rest_and_websocket_clients_with_the_printed_connection_string() {
    let mut child = Command::new(BIN)
        .args([
            "--port",
            "0",
            "--host",
            "127.0.0.1",
            "--access-key",
            "binary-test-key-0123456789abcdef",
        ])
        .args(["--hub", "chat=http://127.0.0.1:9/eventhandler"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _running = Running(child);
    let conn = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("Connection string: ").map(str::to_owned))
    })
    .await
    .unwrap()
    .expect("the binary prints its connection string");
    assert!(
        conn.contains("AccessKey=binary-test-key-0123456789abcdef"),
        "{conn}"
    );
    assert!(
        !conn.contains("Port=0;"),
        "the real port is printed: {conn}"
    );

    // A hub without event handlers accepts clients with their token's identity.
    let service = WebPubSubServiceClient::from_connection_string(&conn, "lobby").unwrap();
    service.health().await.unwrap();
    let url = service.client_access_url(&ClientAccessOptions::new().user_id("ada"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(service.user_exists("ada").await.unwrap());
    service.send_to_user("ada", "hello").await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a frame in time")
        .expect("the socket is open")
        .expect("a valid frame");
    assert_eq!(frame.into_text().unwrap().as_str(), "hello");
}
