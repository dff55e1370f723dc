//! The HTTP key API: `GET`, `PUT` and `DELETE /key/{id}` run GET, SET and DEL through the
//! node exactly as a RESP client's commands would (routing, forwarding, Raft: a PUT answers
//! once its write is committed), each request as a short-lived client in CLIENT LIST.
//!
//! `PUT` takes the value as its body and a time to live as `?ttl=<seconds>` or
//! `?ttl_ms=<milliseconds>` (or the header `X-Basalt-TTL`, seconds). When a password or an
//! ACL is set, requests authenticate with HTTP Basic (the user `default` when only a
//! password is set): no or wrong credentials get 401, a user the ACL denies gets 403.
//! Replies: 200 with the value (`application/octet-stream`), 204 for a stored or deleted
//! key, 404 for a missing one, 400 for bad input, 413 for a body over
//! `proto-max-bulk-len`, 409 for a key of another type, 503 while the shard has no
//! reachable leader; JSON error bodies throughout.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes as Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;

use super::error;
use crate::commands::Session;
use crate::node::Node;
use crate::protocol::reply::decode_scalar;
use crate::protocol::Reply;

/// The header that may carry a PUT's time to live, in seconds.
const TTL_HEADER: &str = "x-basalt-ttl";

/// A request's client: listed while it runs, logged in as its credentials say.
struct HttpClient {
    node: Arc<Node>,
    session: Session,
}

impl Drop for HttpClient {
    fn drop(&mut self) {
        self.node.shared.clients.unregister(self.session.info.id);
    }
}

impl HttpClient {
    /// Registers the client and logs it in: as `default` when no password or ACL asks
    /// for more, else with the Basic credentials (401 without them or when they fail).
    async fn log_in(
        node: Arc<Node>,
        peer: SocketAddr,
        headers: &HeaderMap,
    ) -> Result<HttpClient, Response> {
        let local = SocketAddr::new(peer.ip(), node.shared.tcp_port);
        let info = node.shared.clients.register(peer, local);
        let auth_required = node.shared.auth_required();
        let mut session = Session::new(info, !auth_required);
        session.log_in(node.shared.acl.default_user(), &node.shared.acl);
        let mut client = HttpClient { node, session };
        match basic_credentials(headers) {
            Some((user, password)) => {
                let reply = client.run(vec!["AUTH".into(), user, password]).await;
                if let Reply::Error(text) = reply {
                    return Err(unauthorized(&text));
                }
            }
            None if auth_required => return Err(unauthorized("authentication required")),
            None => {}
        }
        Ok(client)
    }

    /// Runs a command; a reply forwarded from another node comes back as the scalar it is.
    async fn run(&mut self, args: Vec<Bytes>) -> Reply {
        match self.node.execute(&mut self.session, args).await {
            Reply::Encoded(raw) => decode_scalar(&raw).unwrap_or(Reply::Encoded(raw)),
            reply => reply,
        }
    }
}

/// The user and password of an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(Bytes, Bytes)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let password = Bytes::copy_from_slice(&decoded[colon + 1..]);
    let user = Bytes::from(decoded[..colon].to_vec());
    Some((user, password))
}

fn unauthorized(text: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, text);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"basalt\""),
    );
    response
}

/// The status an error reply maps to, by its prefix.
fn status_of(text: &str) -> StatusCode {
    let prefix = text.split(' ').next().unwrap_or("");
    match prefix {
        "NOAUTH" | "WRONGPASS" => StatusCode::UNAUTHORIZED,
        "NOPERM" => StatusCode::FORBIDDEN,
        "WRONGTYPE" => StatusCode::CONFLICT,
        "CLUSTERDOWN" | "TRYAGAIN" | "LOADING" | "BUSY" | "MASTERDOWN" | "READONLY" => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        "MOVED" | "ASK" => StatusCode::MISDIRECTED_REQUEST,
        "OOM" => StatusCode::INSUFFICIENT_STORAGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A reply the key API did not expect, or an error reply, as a response.
fn failure(reply: Reply) -> Response {
    match reply {
        Reply::Error(text) => {
            let status = status_of(&text);
            let response = error(status, text.as_str());
            if status == StatusCode::UNAUTHORIZED {
                return unauthorized(&text);
            }
            response
        }
        other => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected reply {other:?}"),
        ),
    }
}

type Peer = ConnectInfo<super::listener::PeerAddr>;

/// Logs the request's client in and runs one command as it (`Err`: the response that
/// refused it).
async fn run_one(
    node: Arc<Node>,
    peer: SocketAddr,
    headers: &HeaderMap,
    args: Vec<Bytes>,
) -> Result<Reply, Response> {
    let mut client = HttpClient::log_in(node, peer, headers).await?;
    Ok(client.run(args).await)
}

pub(super) async fn get_key(
    State(node): State<Arc<Node>>,
    ConnectInfo(super::listener::PeerAddr(peer)): Peer,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match run_one(node, peer, &headers, vec!["GET".into(), Bytes::from(id)]).await {
        Err(refused) => refused,
        Ok(Reply::Bulk(value)) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], value).into_response()
        }
        Ok(Reply::Null) => error(StatusCode::NOT_FOUND, "no such key"),
        Ok(other) => failure(other),
    }
}

pub(super) async fn put_key(
    State(node): State<Arc<Node>>,
    ConnectInfo(super::listener::PeerAddr(peer)): Peer,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Result<Body, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    let ttl = match ttl_args(&query, &headers) {
        Ok(ttl) => ttl,
        Err(text) => return error(StatusCode::BAD_REQUEST, text),
    };
    let mut args = vec!["SET".into(), Bytes::from(id), body];
    args.extend(ttl);
    match run_one(node, peer, &headers, args).await {
        Err(refused) => refused,
        Ok(Reply::Simple(_) | Reply::Status(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(other) => failure(other),
    }
}

pub(super) async fn delete_key(
    State(node): State<Arc<Node>>,
    ConnectInfo(super::listener::PeerAddr(peer)): Peer,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match run_one(node, peer, &headers, vec!["DEL".into(), Bytes::from(id)]).await {
        Err(refused) => refused,
        Ok(Reply::Integer(1)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Reply::Integer(0)) => error(StatusCode::NOT_FOUND, "no such key"),
        Ok(other) => failure(other),
    }
}

/// SET's expiry arguments from `?ttl=`, `?ttl_ms=` or the TTL header (at most one).
fn ttl_args(query: &HashMap<String, String>, headers: &HeaderMap) -> Result<Vec<Bytes>, String> {
    let header = headers
        .get(TTL_HEADER)
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| "bad TTL header".to_string())
        })
        .transpose()?;
    let given: Vec<(&str, String)> = [
        ("EX", query.get("ttl").cloned()),
        ("PX", query.get("ttl_ms").cloned()),
        ("EX", header),
    ]
    .into_iter()
    .filter_map(|(unit, v)| v.map(|v| (unit, v)))
    .collect();
    match given.as_slice() {
        [] => Ok(Vec::new()),
        [(unit, value)] => match value.parse::<u64>() {
            Ok(n) if n > 0 && n <= i64::MAX as u64 / 1000 => Ok(vec![
                Bytes::from_static(unit.as_bytes()),
                Bytes::from(n.to_string()),
            ]),
            _ => Err(format!(
                "the time to live must be a positive integer, not {value:?}"
            )),
        },
        _ => Err("give the time to live once (ttl, ttl_ms or the X-Basalt-TTL header)".into()),
    }
}
