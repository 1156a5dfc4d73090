//! `hotswap.v1.ControlPlane`, transport-free: the workers' registration
//! streams and the operators' list of workers.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use hotswap_proto::v1::{ListWorkersRequest, ListWorkersResponse, RegisterReply, WorkerReport};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use hotswap_proto::HEARTBEAT;
use hotswap_proto::error::Report;

use crate::Error;
use crate::own::OwnListeners;
use crate::registry::{Registry, SILENCE_LIMIT};

#[async_trait]
pub trait ControlPlaneService: Send + Sync + 'static {
    /// Takes a worker's reports until its stream ends; the replies stay open
    /// as long as the registration lasts.
    async fn register(
        &self,
        reports: BoxStream<'static, Result<WorkerReport, Error>>,
    ) -> Result<BoxStream<'static, Result<RegisterReply, Error>>, Error>;

    async fn list_workers(&self, r: ListWorkersRequest) -> Result<ListWorkersResponse, Error>;
}

#[derive(Clone)]
pub struct Registrar {
    pub(crate) registry: Arc<Registry>,
    pub(crate) shutdown: CancellationToken,
    /// Addresses workers may not advertise.
    pub(crate) own: OwnListeners,
}

#[async_trait]
impl ControlPlaneService for Registrar {
    async fn register(
        &self,
        mut reports: BoxStream<'static, Result<WorkerReport, Error>>,
    ) -> Result<BoxStream<'static, Result<RegisterReply, Error>>, Error> {
        let registry = self.registry.clone();
        let shutdown = self.shutdown.clone();
        let own = self.own.clone();
        let session = registry.session();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let heartbeat_ms = HEARTBEAT.as_millis() as u32;
        tokio::spawn(async move {
            let mut worker_id = None;
            let mut address_checked = None;
            let mut heartbeat = tokio::time::interval(HEARTBEAT);
            let silence = tokio::time::sleep(SILENCE_LIMIT);
            tokio::pin!(silence);
            loop {
                let report = tokio::select! {
                    () = shutdown.cancelled() => break,
                    // A stream that stays open but says nothing is over.
                    () = &mut silence => {
                        tracing::warn!(worker_id = ?worker_id, "registration stream silent; closing it");
                        break;
                    }
                    // Replies at the heartbeat let the worker notice a
                    // control plane that vanished without closing the
                    // connection.
                    _ = heartbeat.tick() => {
                        if tx.try_send(Ok(RegisterReply { heartbeat_ms })).is_err() && tx.is_closed() {
                            break;
                        }
                        continue;
                    }
                    report = reports.next() => report,
                };
                match report {
                    Some(Ok(report)) => {
                        silence
                            .as_mut()
                            .reset(tokio::time::Instant::now() + SILENCE_LIMIT);
                        if address_checked.as_ref() != Some(&report.address) {
                            if own.reached_by(&report.address).await {
                                let shown =
                                    hotswap_proto::error::shown(&report.address).into_owned();
                                tracing::warn!(address = %shown, "a worker advertised this control plane's own address; refused");
                                let _ = tx.send(Err(Error::OwnAddress(shown))).await;
                                break;
                            }
                            address_checked = Some(report.address.clone());
                        }
                        if let Err(e) = registry.report(session, &report) {
                            tracing::warn!(worker_id = %hotswap_proto::error::shown(&report.worker_id), error = %Report(&e), "registration refused");
                            let _ = tx.send(Err(e)).await;
                            break;
                        }
                        worker_id = Some(report.worker_id);
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %Report(&e), "registration stream failed");
                        break;
                    }
                    None => break,
                }
            }
            if let Some(id) = worker_id {
                registry.end(session, &id);
            }
            // Dropping tx ends the replies, and with them the call.
        });
        Ok(ReceiverStream::new(rx).boxed())
    }

    async fn list_workers(&self, _: ListWorkersRequest) -> Result<ListWorkersResponse, Error> {
        Ok(ListWorkersResponse {
            workers: self.registry.all().iter().map(|w| w.status()).collect(),
        })
    }
}
