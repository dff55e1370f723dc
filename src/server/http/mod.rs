//! The node's HTTP port (`http-port`; closed when 0): Prometheus metrics, health, the
//! cluster map as JSON, and a key API over the same routing and Raft path as RESP.
//!
//! - `GET /metrics`: the Prometheus text exposition (`node/metrics.rs`), open to anyone who
//!   reaches the port, as exporters usually are.
//! - `GET /health/live`: 200 while the process serves HTTP at all.
//! - `GET /health/ready`: 200 when every shard has a leader this node can reach, else 503
//!   naming the shards that do not.
//! - `GET /cluster`: nodes and shards as this node sees them (`cluster.rs`).
//! - `GET | PUT | DELETE /key/{id}` (`keys.rs`): GET, SET and DEL run as a client's commands
//!   would, authenticated by HTTP Basic against the ACL users when a password or ACL is set.
//!
//! Served by axum on the node's runtime, at most `maxclients` connections at a time
//! (`listener.rs`); errors are JSON bodies (`{"error": "..."}`) with honest status codes.

mod cluster;
mod keys;
mod listener;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::exposition::CONTENT_TYPE;
use crate::node::Node;

/// Binds the HTTP port on `ip` if `http-port` is set.
pub async fn bind(node: &Node, ip: std::net::IpAddr) -> std::io::Result<Option<TcpListener>> {
    match node.shared.config.get("http-port").parse::<u16>() {
        Ok(port) if port != 0 => Ok(Some(TcpListener::bind(SocketAddr::new(ip, port)).await?)),
        _ => Ok(None),
    }
}

/// The routes, over `node`.
pub fn router(node: Arc<Node>) -> Router {
    // A value may be as large as a RESP bulk string may.
    let body_limit = node.shared.config.bulk_len_bytes_max();
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(cluster::ready))
        .route("/cluster", get(cluster::map))
        .route(
            "/key/{id}",
            get(keys::get_key)
                .put(keys::put_key)
                .delete(keys::delete_key),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(node)
}

/// Serves `listener` until `stop` turns true.
pub async fn serve(node: Arc<Node>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let listener = listener::Limited::new(listener, node.clone());
    let app = router(node).into_make_service_with_connect_info::<listener::PeerAddr>();
    let stopped = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::warn!(error = %e, "the HTTP port stopped");
    }
}

/// A JSON error body with `status`.
pub(super) fn error(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": text.into() }))).into_response()
}

async fn metrics(State(node): State<Arc<Node>>) -> Response {
    // Reading the engine's and the groups' state takes locks: off the async workers.
    match tokio::task::spawn_blocking(move || node.metrics()).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn live() -> Response {
    Json(serde_json::json!({ "status": "live" })).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}
