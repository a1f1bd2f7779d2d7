//! Serving the functions' routes over plain HTTP on this machine, at the same paths as behind
//! API Gateway: for `lemdash serve` and the end-to-end tests. Each request goes through the same
//! [`Api::handle`] the Lambda functions use.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::api::{Api, Function};

/// Serves every route of both functions on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, api: Arc<Api>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let api = api.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let api = api.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let response = api.handle(Function::All, Request::from_parts(parts, body)).await;
                    Ok::<_, Infallible>(response.map(|b| Full::new(Bytes::from(b))))
                }
            });
            let _: Result<(), _> = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Starts [`serve`] on a free port of 127.0.0.1; returns the base URL (`http://127.0.0.1:PORT`).
pub async fn spawn(api: Arc<Api>) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((url, tokio::spawn(serve(listener, api))))
}
