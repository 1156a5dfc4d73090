//! Server CPU per call, for the benchmarks: each server process's user and
//! system time (from /proc) before and after a load, divided by the calls
//! the worker counted in between (its ModelStatistics). Counting at the
//! worker rather than at the load generator charges the servers only for
//! the calls that reached the model, and needs nothing from the tool.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use hotswap_proto::inference::ModelStatisticsRequest;
use hotswap_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;

/// Clock ticks per second, the unit of /proc/PID/stat's times.
fn ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        // SAFETY: sysconf reads a constant of the running system; it takes
        // no pointers and touches no memory of ours.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        u64::try_from(ticks)
            .ok()
            .filter(|&t| t > 0)
            .expect("sysconf(_SC_CLK_TCK)")
    })
}

/// User plus system time of `stat`, a /proc/PID/stat line, in clock ticks.
fn stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself: count fields from the last ')'. After it come
    // state (field 3) onwards, so utime (14) and stime (15) are the 12th
    // and 13th.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The CPU time process `pid` has used so far, its threads' (living and
/// ended) user and system time together.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    let ticks = stat_ticks(&stat).unwrap_or_else(|| panic!("no utime/stime in {stat:?}"));
    Duration::from_secs_f64(ticks as f64 / ticks_per_second() as f64)
}

/// The inferences the server at `addr` has counted for `model`, every
/// version's together.
pub async fn inference_count(addr: SocketAddr, model: &str) -> u64 {
    let mut client = GrpcInferenceServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    let stats = client
        .model_statistics(ModelStatisticsRequest {
            name: model.to_owned(),
            version: String::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("ModelStatistics of {model} at {addr}: {e}"))
        .into_inner();
    stats.model_stats.iter().map(|s| s.inference_count).sum()
}

/// Processes' CPU times and a worker's call count at one moment.
pub struct CpuSample {
    cpu: Vec<Duration>,
    calls: u64,
}

impl CpuSample {
    /// Samples the processes `pids` before a load of `model` on the worker
    /// at `worker`. The count is asked first so that the statistics call's
    /// own work falls outside the measured interval.
    pub async fn before(pids: &[u32], worker: SocketAddr, model: &str) -> Self {
        let calls = inference_count(worker, model).await;
        let cpu = pids.iter().map(|&pid| cpu_time(pid)).collect();
        Self { cpu, calls }
    }

    /// Samples the same processes after the load: their CPU times first,
    /// then the count, for the same reason as in [`CpuSample::before`].
    pub async fn after(pids: &[u32], worker: SocketAddr, model: &str) -> Self {
        let cpu = pids.iter().map(|&pid| cpu_time(pid)).collect();
        let calls = inference_count(worker, model).await;
        Self { cpu, calls }
    }

    /// Each process's CPU time per call since `before`, in microseconds, in
    /// the order of the pids sampled; `None` if the worker counted no call.
    pub fn per_call_since(&self, before: &CpuSample) -> Option<Vec<f64>> {
        let calls = self.calls.checked_sub(before.calls).filter(|&c| c > 0)?;
        let per_call = self
            .cpu
            .iter()
            .zip(&before.cpu)
            .map(|(after, before)| after.saturating_sub(*before).as_secs_f64() * 1e6 / calls as f64)
            .collect();
        Some(per_call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_reads_utime_and_stime_past_an_awkward_name() {
        // Fields 3..=15 after a command name holding ") (" and spaces.
        let stat = "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 120 0 0 0 700 55 0 0 20 0 9 0";
        assert_eq!(stat_ticks(stat), Some(755));
    }

    #[test]
    fn this_process_stat_parses() {
        // Panics if /proc's line for a real process does not parse.
        let _ = cpu_time(std::process::id());
    }
}
