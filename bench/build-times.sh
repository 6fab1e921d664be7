#!/usr/bin/env bash
# Cold build times of what a newcomer runs (issue 11, item 6), each in a
# fresh clone with its own empty target directory, crates already
# downloaded (`cargo fetch` first, not timed):
#
#   first    cargo run --example chat      (timed to the built binary: `cargo build --example chat`)
#   tests    bash .ci/test                  (the README's test command, npm packages installed)
#   answer   an app that depends on webpubsub only to answer events
#            (default-features = false, axum + tokio), cargo build --release
#
#   bash bench/build-times.sh [first] [tests] [answer]   (default: all three)
#
# Run it on a quiet machine: nothing else building. Prints one line per
# measurement, with the crate count of what was compiled and, for the first
# two, the size of the target directory they left.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/webpubsub-build-times.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
what=("$@")
[ ${#what[@]} -gt 0 ] || what=(first tests answer)

clone() {
  git clone -q "$ROOT" "$WORK/$1"
  (cd "$WORK/$1" && cargo fetch -q)
}

timed() { # label, command...
  local label=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  printf '%-8s %6.1f s\n' "$label" "$(echo "$end - $start" | bc)"
}

for w in "${what[@]}"; do
  case "$w" in
    first)
      clone first
      (cd "$WORK/first" && timed first cargo build -q --example chat)
      echo "         $(ls "$WORK/first/target/debug/deps"/*.rlib 2>/dev/null | sed 's/.*\/lib//; s/-[0-9a-f]*\.rlib$//' | sort -u | wc -l) library crates built"
      echo "         target/ $(du -sh "$WORK/first/target" | cut -f1) on disk"
      ;;
    tests)
      clone tests
      (cd "$WORK/tests" && timed tests bash -c 'bash .ci/test >"$0" 2>&1' "$WORK/tests.log") || { tail -20 "$WORK/tests.log"; exit 1; }
      grep "^all tests:" "$WORK/tests.log"
      echo "         target/ $(du -sh "$WORK/tests/target" | cut -f1) on disk"
      ;;
    answer)
      mkdir -p "$WORK/answer/src"
      cat >"$WORK/answer/Cargo.toml" <<TOML
[package]
name = "answer"
version = "0.1.0"
edition = "2021"

[dependencies]
webpubsub = { path = "$ROOT", default-features = false }
axum = { version = "0.8", default-features = false, features = ["http1", "tokio"] }
tokio = { version = "1", features = ["macros", "rt-multi-thread", "net"] }
TOML
      cat >"$WORK/answer/src/main.rs" <<'RS'
use webpubsub::{async_trait, ConnectEventRequest, ConnectEventResponse, EventErrorResponse, EventHandler, EventRouter};

struct App;

#[async_trait]
impl EventHandler for App {
    async fn connect(&self, req: ConnectEventRequest) -> Result<ConnectEventResponse, EventErrorResponse> {
        Ok(ConnectEventResponse::new().user_id(req.context.connection_id.clone()))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events = EventRouter::builder().hub("chat", App).access_key("key").build()?;
    let app = axum::Router::new().nest_service("/eventhandler", events);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
RS
      cp "$ROOT/Cargo.lock" "$WORK/answer/"
      (cd "$WORK/answer" && cargo fetch -q && timed answer cargo build -q --release)
      echo "         $(cd "$WORK/answer" && cargo tree -q --prefix none -e normal,build | sed 's/ (.*//' | sort -u | wc -l) crates in its graph"
      ;;
    *) echo "unknown measurement '$w' (first, tests, answer)" >&2; exit 2 ;;
  esac
done
