//! The service may call the event handler over HTTP/2 (spec §1): the router
//! behind `axum::serve` answers a signed connect and a preflight sent with
//! HTTP/2 prior knowledge (h2c) on 127.0.0.1.

use axum::http::{Request, Version};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use webpubsub::{
    testing, ConnectEventRequest, ConnectEventResponse, EventErrorResponse, EventRouter,
};

struct Chat;

#[webpubsub::event_handler]
impl Chat {
    async fn connect(
        &self,
        req: ConnectEventRequest,
    ) -> Result<ConnectEventResponse, EventErrorResponse> {
        Ok(ConnectEventResponse::new().user_id(req.query_value("user").unwrap_or("anonymous")))
    }
}

const CONN: &str = "Endpoint=https://h2.webpubsub.azure.com;AccessKey=h2-key";

/// Sends `requests` over one HTTP/2 connection to a fresh server and returns
/// each answer's status, version, `WebHook-Allowed-Origin` and body.
async fn over_http2(
    requests: Vec<Request<axum::body::Body>>,
) -> Vec<(u16, Version, Option<String>, String)> {
    let events = EventRouter::builder()
        .hub("chat", Chat)
        .connection_string(CONN)
        .build()
        .expect("valid router");
    let app = axum::Router::new().nest_service("/eventhandler", events);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(connection);

    let mut answers = Vec::new();
    for mut request in requests {
        let path = request.uri().path().to_owned();
        *request.uri_mut() = format!("http://{addr}{path}").parse().expect("uri");
        let response = sender.send_request(request).await.expect("response");
        let version = response.version();
        let origin = response
            .headers()
            .get("webhook-allowed-origin")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let status = response.status().as_u16();
        let (_, body) = testing::read_body(response).await;
        answers.push((
            status,
            version,
            origin,
            String::from_utf8_lossy(&body).into_owned(),
        ));
    }
    server.abort();
    answers
}

fn at_eventhandler(mut request: Request<axum::body::Body>) -> Request<axum::body::Body> {
    *request.uri_mut() = "/eventhandler".parse().expect("uri");
    request
}

#[tokio::test]
async fn the_router_answers_events_and_the_handshake_over_http2() {
    let connect = testing::connect("chat", "conn-h2")
        .query("user", "alice")
        .uri("/eventhandler")
        .sign_as(CONN);
    let forged = testing::connect("chat", "conn-h2")
        .uri("/eventhandler")
        .sign_as("Endpoint=https://h2.webpubsub.azure.com;AccessKey=not-the-key");
    let preflight = at_eventhandler(testing::preflight("h2.webpubsub.azure.com"));

    let answers = over_http2(vec![connect, forged, preflight]).await;

    assert_eq!(answers[0].0, 200, "{answers:?}");
    assert_eq!(answers[0].1, Version::HTTP_2);
    assert_eq!(answers[0].3, r#"{"userId":"alice"}"#);
    assert_eq!(
        (answers[1].0, answers[1].3.as_str()),
        (401, "ce-signature does not match any configured access key")
    );
    assert_eq!(
        (answers[2].0, answers[2].2.as_deref()),
        (200, Some("h2.webpubsub.azure.com"))
    );
}
