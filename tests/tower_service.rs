//! The local endpoints as a `tower::Service`: answered as `Endpoints::handle` answers, mounted
//! in an axum router like any service, never blocking the runtime's workers.

use telemetry_core::Application;
use telemetry_core::export::endpoint::Endpoints;
use telemetry_core::export::tower_service::EndpointService;
use tower::ServiceExt;

fn service() -> EndpointService {
    EndpointService::new(Endpoints::new(Application::new("tower-app", "1.0.0")))
}

async fn get(
    service: EndpointService,
    method: &str,
    uri: &str,
    accept: Option<&str>,
) -> http::Response<String> {
    let mut request = http::Request::builder().method(method).uri(uri);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    service.oneshot(request.body(()).unwrap()).await.unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn answers_as_the_endpoints_do() {
    telemetry_core::counter!("tower.requests")
        .unwrap()
        .increment();
    let metrics = get(service(), "GET", "/metrics", None).await;
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.body().contains("tower_requests_total 1"),
        "{}",
        metrics.body()
    );
    let openmetrics = get(
        service(),
        "GET",
        "/metrics",
        Some("application/openmetrics-text; version=1.0.0"),
    )
    .await;
    assert!(openmetrics.body().ends_with("# EOF\n"));
    let telemetry = get(
        service(),
        "GET",
        "/telemetry?details_level=3&anonymize=true",
        None,
    )
    .await;
    assert_eq!(telemetry.headers()["content-type"], "application/json");
    let json: serde_json::Value = serde_json::from_str(telemetry.body()).unwrap();
    assert_eq!(json["application"]["name"], "tower-app");
    assert_eq!(
        get(service(), "GET", "/telemetry?details_level=x", None)
            .await
            .status(),
        400
    );
    assert_eq!(get(service(), "GET", "/admin", None).await.status(), 404);
    let post = get(service(), "POST", "/metrics", None).await;
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    let head = get(service(), "HEAD", "/metrics", None).await;
    assert_eq!((head.status().as_u16(), head.body().as_str()), (200, ""));
}

#[tokio::test(flavor = "current_thread")]
async fn mounts_in_an_axum_router() {
    let app: axum::Router = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async { "the product's own route" }),
        )
        .route_service("/metrics", service());
    let response = app
        .oneshot(
            http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
