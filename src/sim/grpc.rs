//! The reference service's gRPC health service (`grpc.health.v1.Health`, tonic-health's own
//! server) on a listener of its own, for the demo's `grpc` probe: the server's overall health
//! and [`SERVICE`] answer SERVING.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The named service the health server knows besides the overall health (`""`).
pub(crate) const SERVICE: &str = "pathwatch.demo.Agent";

/// Serves gRPC health checks on `listener` until `shutdown`.
pub async fn serve_grpc(
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    reporter
        .set_service_status(SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown.cancelled_owned(),
        )
        .await?;
    Ok(())
}
