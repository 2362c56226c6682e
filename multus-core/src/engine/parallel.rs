//! Parallel attach: the cluster network first and alone, then the additional networks
//! at the same time (at most `parallelAttachLimit` at once), and the auxiliary chain
//! last. Rollback and DEL run the same stages in reverse.
//!
//! Delegates are started in plan order, so the delegates attempted are always a prefix
//! of the plan, as in a serial ADD, and results are kept by plan index, so everything
//! observable (results, network-status, events, the record) is what a serial ADD gives.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::ops::Range;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::Engine;
use super::invoke::Invoker;
use crate::config::MultusConf;
use crate::nad::PARALLEL_ATTACH_ANNOTATION;
use crate::seams::{DelegateExec, ExecError, ExecRequest};
use crate::state::{Attachment, SandboxState};

/// Whether a pod's networks are attached in parallel: its
/// `k8s.v1.cni.cncf.io/parallel-attach` annotation (`"true"` or `"false"`) when it has
/// one, else the configuration's `parallelAttach`.
pub(super) fn wanted(conf: &MultusConf, annotations: Option<&BTreeMap<String, String>>) -> bool {
    match annotations.and_then(|a| a.get(PARALLEL_ATTACH_ANNOTATION)) {
        Some(value) if value.trim().eq_ignore_ascii_case("true") => true,
        Some(value) if value.trim().eq_ignore_ascii_case("false") => false,
        Some(value) => {
            tracing::warn!(
                annotation = PARALLEL_ATTACH_ANNOTATION,
                value = %value.chars().take(32).collect::<String>(),
                "annotation is neither \"true\" nor \"false\"; ignored"
            );
            conf.parallel_attach
        }
        None => conf.parallel_attach,
    }
}

/// The stages of a sandbox's attachments, in plan order: index ranges, where a range of
/// more than one delegate runs concurrently. Serially, every delegate is a stage of its
/// own. In parallel, the delegates up to the cluster network and the auxiliary chain
/// stay alone; every run of additional networks between them is one stage.
pub(super) fn stages(attachments: &[Attachment], parallel: bool) -> Vec<Range<usize>> {
    let first_additional = attachments
        .iter()
        .position(|a| a.delegate.cluster_network)
        .map_or(0, |cluster| cluster + 1);
    let mut stages: Vec<Range<usize>> = Vec::new();
    for (index, attachment) in attachments.iter().enumerate() {
        let joins = parallel && index >= first_additional && !attachment.delegate.auxiliary;
        match stages.last_mut() {
            Some(last)
                if joins && last.end == index && last.start >= first_additional && {
                    !attachments[last.start].delegate.auxiliary
                } =>
            {
                last.end = index + 1;
            }
            _ => stages.push(index..index + 1),
        }
    }
    stages
}

/// Run `start(i)` for every index of `order`, in that order, at most `limit` at a time.
/// Once an output satisfies `stop`, nothing more is started; what runs is awaited.
/// Returns the outputs sorted by index and how many were started.
async fn run_stage<T, F, Fut>(
    order: impl IntoIterator<Item = usize>,
    limit: usize,
    mut start: F,
    stop: impl Fn(&T) -> bool,
) -> (Vec<(usize, T)>, usize)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = T>,
{
    let mut order = order.into_iter();
    let mut started = 0;
    let mut running = FuturesUnordered::new();
    let mut done = Vec::new();
    let mut stopped = false;
    loop {
        while !stopped && running.len() < limit.max(1) {
            let Some(index) = order.next() else { break };
            started += 1;
            let call = start(index);
            running.push(async move { (index, call.await) });
        }
        match running.next().await {
            Some((index, output)) => {
                stopped |= stop(&output);
                done.push((index, output));
            }
            None => break,
        }
    }
    done.sort_by_key(|(index, _)| *index);
    (done, started)
}

/// Runs every call through [`DelegateExec::exec_concurrently`].
struct Concurrently<'a>(&'a dyn DelegateExec);

#[async_trait]
impl DelegateExec for Concurrently<'_> {
    async fn exec(&self, request: ExecRequest) -> Result<Vec<u8>, ExecError> {
        self.0.exec_concurrently(request).await
    }
}

/// An ADD that failed part-way.
#[derive(Debug)]
pub(super) struct AttachFailure {
    /// The first delegate (in plan order) whose ADD failed.
    pub failed: usize,
    /// Its error.
    pub source: ExecError,
    /// How many delegates were started (a prefix of the plan).
    pub attempted: usize,
    /// Delegates whose binary was missing: they ran nothing.
    pub never_ran: BTreeSet<usize>,
}

impl Engine<'_> {
    /// ADD every delegate of `state`, stage by stage, storing each result by index.
    /// On the first failure nothing more is started and what runs is awaited.
    pub(super) async fn attach_all(
        &self,
        invoker: &Invoker<'_>,
        state: &mut SandboxState,
    ) -> Result<(), AttachFailure> {
        let concurrent_exec = Concurrently(invoker.exec);
        let concurrent = Invoker {
            exec: &concurrent_exec,
            ..invoker.clone()
        };
        for range in stages(&state.attachments, state.parallel_attach) {
            let limit = self.stage_limit(range.len());
            let runner = if range.len() > 1 {
                &concurrent
            } else {
                invoker
            };
            let attachments = &state.attachments;
            let first = range.start;
            let (done, started) = run_stage(
                range,
                limit,
                |i| runner.add(&attachments[i].delegate),
                Result::is_err,
            )
            .await;
            let mut failure = None;
            let mut never_ran = BTreeSet::new();
            for (index, output) in done {
                match output {
                    Ok(result) => state.attachments[index].result = Some(result),
                    Err(error) => {
                        if matches!(error, ExecError::NotFound { .. }) {
                            never_ran.insert(index);
                        }
                        failure.get_or_insert((index, error));
                    }
                }
            }
            if let Some((failed, source)) = failure {
                return Err(AttachFailure {
                    failed,
                    source,
                    attempted: first + started,
                    never_ran,
                });
            }
        }
        Ok(())
    }

    /// How many delegates of a stage of `len` run at once: the limit is only looked up
    /// (it may read the CPU count and the cgroup's quota) for a stage that can overlap.
    fn stage_limit(&self, len: usize) -> usize {
        if len > 1 {
            self.conf.parallel_attach_limit()
        } else {
            1
        }
    }

    /// DEL the delegates of `attachments` in reverse stages (concurrently within a
    /// stage when `parallel`); the outcome of each, by index.
    pub(super) async fn detach_all(
        &self,
        invoker: &Invoker<'_>,
        attachments: &[Attachment],
        parallel: bool,
    ) -> Vec<Result<(), ExecError>> {
        let concurrent_exec = Concurrently(invoker.exec);
        let concurrent = Invoker {
            exec: &concurrent_exec,
            ..invoker.clone()
        };
        let mut outcomes: Vec<Result<(), ExecError>> = vec![Ok(()); attachments.len()];
        for range in stages(attachments, parallel).into_iter().rev() {
            let runner = if range.len() > 1 {
                &concurrent
            } else {
                invoker
            };
            let limit = self.stage_limit(range.len());
            let (done, _) = run_stage(
                range.rev(),
                limit,
                |i| runner.del(&attachments[i].delegate, attachments[i].result.as_ref()),
                |_| false,
            )
            .await;
            for (index, outcome) in done {
                outcomes[index] = outcome;
            }
        }
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachments(kinds: &str) -> Vec<Attachment> {
        let config = crate::delegate::DelegateConfig::from_value(
            &serde_json::json!({"cniVersion":"1.0.0","name":"n","type":"noop"}),
        )
        .unwrap();
        kinds
            .chars()
            .map(|kind| Attachment {
                // Through serde, so that the test keeps building when a field is added.
                delegate: serde_json::from_value(serde_json::json!({
                    "network": kind.to_string(),
                    "ifname": "net",
                    "clusterNetwork": kind == 'c',
                    "config": serde_json::to_value(&config).unwrap(),
                    "runtimeConfig": {},
                    "cniArgs": "",
                    "addCniArgs": "",
                    "auxiliary": kind == 'x',
                }))
                .unwrap(),
                result: None,
            })
            .collect()
    }

    #[test]
    fn cluster_network_first_and_alone_auxiliary_chain_last() {
        let a = attachments("cnnnnx");
        assert_eq!(stages(&a, false), vec![0..1, 1..2, 2..3, 3..4, 4..5, 5..6]);
        assert_eq!(stages(&a, true), vec![0..1, 1..5, 5..6]);
        assert_eq!(stages(&attachments("c"), true), vec![0..1]);
        assert_eq!(stages(&attachments("cn"), true), vec![0..1, 1..2]);
        assert_eq!(stages(&attachments("cnn"), true), vec![0..1, 1..3]);
        // A static delegate before the cluster network (none in practice) stays serial.
        assert_eq!(stages(&attachments("ncnn"), true), vec![0..1, 1..2, 2..4]);
        assert_eq!(stages(&attachments(""), true), Vec::<Range<usize>>::new());
    }

    #[test]
    fn run_stage_is_bounded_ordered_and_stops_starting_after_a_failure() {
        let in_flight = std::cell::Cell::new(0usize);
        let peak = std::cell::Cell::new(0usize);
        let (done, started) = pollster::block_on(run_stage(
            0..6,
            2,
            |i| {
                let (in_flight, peak) = (&in_flight, &peak);
                async move {
                    in_flight.set(in_flight.get() + 1);
                    peak.set(peak.get().max(in_flight.get()));
                    futures_util::future::ready(()).await;
                    in_flight.set(in_flight.get() - 1);
                    if i == 3 { Err(i) } else { Ok(i) }
                }
            },
            Result::is_err,
        ));
        assert!(peak.get() <= 2);
        // 4 was started while 3 ran (two at a time); 5 never is.
        assert_eq!(started, 5, "nothing starts after the failure");
        let indices: Vec<usize> = done.iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, vec![0, 1, 2, 3, 4]);
        assert_eq!(done[3].1, Err(3));
    }
}
