//! Listing a group's connections, page after page: a call with options,
//! configured then awaited.

use std::fmt;
use std::future::IntoFuture;

use http::Method;
use url::Url;

use super::paths::Part;
use super::requests::ServiceFuture;
use super::transport::{read_body, Call};
use super::{ServiceError, WebPubSubServiceClient};

/// A connection in a group, as listed by the service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[non_exhaustive]
pub struct GroupMember {
    /// The connection id.
    #[serde(rename = "connectionId")]
    pub connection_id: String,
    /// The user id, absent for anonymous connections.
    #[serde(rename = "userId", default)]
    pub user_id: Option<String>,
}

/// A listing of a group's connections; `.await` follows every page and
/// returns them all.
#[must_use = "a request does nothing until it is awaited"]
pub struct ListConnectionsRequest {
    client: WebPubSubServiceClient,
    group: String,
    max_page_size: Option<u32>,
    top: Option<u32>,
}

/// The most bytes of one page that are read.
const PAGE_LIMIT: usize = 16 * 1024 * 1024;

impl ListConnectionsRequest {
    pub(super) fn new(client: WebPubSubServiceClient, group: String) -> Self {
        Self {
            client,
            group,
            max_page_size: None,
            top: None,
        }
    }

    /// How many connections each page holds (1–200; the service's default is 200).
    pub fn max_page_size(mut self, size: u32) -> Self {
        self.max_page_size = Some(size);
        self
    }

    /// Stops after this many connections (at least 1; default: all).
    pub fn top(mut self, count: u32) -> Self {
        self.top = Some(count);
        self
    }
}

#[derive(serde::Deserialize)]
struct Page {
    value: Vec<GroupMember>,
    #[serde(rename = "nextLink", default)]
    next_link: Option<String>,
}

impl IntoFuture for ListConnectionsRequest {
    type Output = Result<Vec<GroupMember>, ServiceError>;
    type IntoFuture = ServiceFuture<Vec<GroupMember>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            const OP: &str = "list_connections_in_group";
            if let Some(size) = self.max_page_size.filter(|s| !(1..=200).contains(s)) {
                return Err(ServiceError::invalid(
                    OP,
                    format!("max_page_size {size} is not within 1-200"),
                ));
            }
            if self.top == Some(0) {
                return Err(ServiceError::invalid(OP, "top must be at least 1"));
            }
            let page_size = self.max_page_size.map(|s| s.to_string());
            let top = self.top.map(|t| t.to_string());
            let path = [
                Part::Lit("groups"),
                Part::Group(&self.group),
                Part::Lit("connections"),
            ];
            let call = self
                .client
                .call_to(OP, Method::GET, &path)?
                .query_opt("maxpagesize", page_size.as_deref())
                .query_opt("top", top.as_deref());
            let transport = self.client.transport();
            let endpoint = Url::parse(&transport.endpoint).map_err(|e| {
                ServiceError::invalid(OP, format!("the endpoint is not a URL: {e}"))
            })?;
            let mut url = format!("{}{}", transport.endpoint, call.path_and_query());
            let mut members = Vec::new();
            loop {
                let call = Call::root(OP, Method::GET, "");
                let answer = transport.send_to(call, &url).await?;
                let body = read_body(OP, answer.response, PAGE_LIMIT, transport.timeout).await?;
                let page: Page =
                    serde_json::from_slice(&body).map_err(|e| ServiceError::InvalidResponse {
                        operation: OP,
                        reason: format!("expected a page of connections: {e}"),
                    })?;
                members.extend(page.value);
                if self.top.is_some_and(|top| members.len() >= top as usize) {
                    members.truncate(self.top.unwrap_or(u32::MAX) as usize);
                    return Ok(members);
                }
                let Some(next) = page.next_link.filter(|n| !n.is_empty()) else {
                    return Ok(members);
                };
                let next = endpoint
                    .join(&next)
                    .map_err(|e| ServiceError::InvalidResponse {
                        operation: OP,
                        reason: format!("nextLink `{next}` is not a URL: {e}"),
                    })?;
                // The next link gets a token signed with the access key: never
                // send one to another host.
                if next.origin() != endpoint.origin() {
                    return Err(ServiceError::InvalidResponse {
                        operation: OP,
                        reason: format!("nextLink `{next}` leaves the service endpoint"),
                    });
                }
                if next.as_str() == url {
                    return Err(ServiceError::InvalidResponse {
                        operation: OP,
                        reason: "nextLink repeats the page just read".to_owned(),
                    });
                }
                url = next.into();
            }
        })
    }
}

impl fmt::Debug for ListConnectionsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListConnectionsRequest")
            .field("group", &self.group)
            .field("max_page_size", &self.max_page_size)
            .field("top", &self.top)
            .finish_non_exhaustive()
    }
}
