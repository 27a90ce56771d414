//! The local endpoints as a `tower::Service` (feature `tower`), for any server built on
//! tower and hyper: axum (`Router::route_service`), hyper's own `service_fn` adapters,
//! tonic's and others' routers.
//!
//! ```
//! use telemetry_core::export::endpoint::Endpoints;
//! use telemetry_core::export::tower_service::EndpointService;
//! use telemetry_core::Application;
//! use tower_service::Service;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut service = EndpointService::new(Endpoints::new(Application::new("my-server", "1.0.0")));
//! let request = http::Request::get("/metrics").body(()).unwrap();
//! let response = service.call(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
//! # });
//! ```
//!
//! It answers `GET` and `HEAD` of `/metrics` and `/telemetry` as
//! [`Endpoints::handle`] documents (any other path 404); other methods get 405 with an
//! `Allow` header. The request body is never read. The snapshot and its rendering run on
//! tokio's blocking pool, never on an async worker; the service is always ready.

use crate::export::endpoint::Endpoints;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// [`Endpoints`] as a `tower::Service<http::Request<B>>` answering `http::Response<String>`;
/// clones share the endpoints.
#[derive(Clone, Debug)]
pub struct EndpointService {
    endpoints: Arc<Endpoints>,
}

impl EndpointService {
    /// A service answering with `endpoints`.
    pub fn new(endpoints: Endpoints) -> Self {
        EndpointService {
            endpoints: Arc::new(endpoints),
        }
    }
}

/// The future of `EndpointService`'s `call`: the answer made on tokio's blocking pool.
pub type EndpointFuture =
    Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send + 'static>>;

impl<B> tower_service::Service<Request<B>> for EndpointService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = EndpointFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> EndpointFuture {
        let method = request.method().clone();
        if method != Method::GET && method != Method::HEAD {
            let mut response = Response::new(String::new());
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return Box::pin(std::future::ready(Ok(response)));
        }
        let path_and_query = request.uri().path_and_query().map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        );
        let accept = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let endpoints = self.endpoints.clone();
        Box::pin(async move {
            let answer = tokio::task::spawn_blocking(move || {
                endpoints.handle(&path_and_query, accept.as_deref())
            })
            .await;
            let mut response = match answer {
                Ok(answer) => {
                    let mut response = Response::new(answer.body);
                    *response.status_mut() = StatusCode::from_u16(answer.status)
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(answer.content_type),
                    );
                    response
                }
                Err(_) => {
                    let mut response = Response::new(String::new());
                    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    response
                }
            };
            if method == Method::HEAD {
                response.body_mut().clear();
            }
            Ok(response)
        })
    }
}
