//! Running one planned delegate (a single conf or every plugin of a list) for one verb,
//! the way a CNI runtime does.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use serde_json::Map;

use crate::cni::{CniResult, CniVersion};
use crate::delegate::DelegateConfig;
use crate::plan::PlannedDelegate;
use crate::request::Command;
use crate::seams::{DelegateExec, ExecError, ExecRequest};

/// Calls delegate plugins for one sandbox (or, for STATUS and GC, for none): the one
/// conflist ADD/DEL/CHECK loop, used by the engine and by the daemon's hot-plug.
#[derive(Clone)]
pub struct Invoker<'a> {
    /// Runs each plugin.
    pub exec: &'a dyn DelegateExec,
    /// `CNI_CONTAINERID` (cleared for STATUS and GC).
    pub container_id: String,
    /// `CNI_NETNS` (cleared for STATUS and GC).
    pub netns: String,
    /// Where plugins are looked up, also `CNI_PATH`.
    pub search_path: Vec<PathBuf>,
    /// Time limit per plugin call.
    pub timeout: Duration,
}

impl std::fmt::Debug for Invoker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invoker")
            .field("container_id", &self.container_id)
            .field("netns", &self.netns)
            .field("search_path", &self.search_path)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Invoker<'_> {
    /// ADD: run the plugins in order, threading each result into the next plugin's
    /// `prevResult`. Returns the last plugin's result.
    pub async fn add(&self, delegate: &PlannedDelegate) -> Result<Value, ExecError> {
        let mut prev: Option<Value> = None;
        for (index, plugin_type) in delegate.config.plugin_types().into_iter().enumerate() {
            let stdin =
                delegate
                    .config
                    .plugin_stdin(index, &delegate.runtime_config, prev.as_ref());
            let out = self
                .call_for(
                    plugin_type,
                    Command::Add,
                    delegate,
                    &delegate.add_cni_args,
                    stdin,
                )
                .await?;
            let version = delegate.config.cni_version().unwrap_or(CniVersion::V0_1_0);
            prev = Some(parse_output(plugin_type, &out, version)?);
        }
        Ok(prev.unwrap_or(Value::Null))
    }

    /// DEL: run the plugins in reverse order with the cached result as `prevResult`
    /// (CNI 0.4.0 and later). Every plugin is tried; the first error is returned, a
    /// missing binary's only when no plugin that ran failed.
    pub async fn del(
        &self,
        delegate: &PlannedDelegate,
        cached: Option<&Value>,
    ) -> Result<(), ExecError> {
        let prev = prev_result_for(delegate, cached);
        let prev = prev.as_ref();
        let mut first_error = None;
        let types = delegate.config.plugin_types();
        for (index, plugin_type) in types.iter().enumerate().rev() {
            let stdin = delegate
                .config
                .plugin_stdin(index, &delegate.runtime_config, prev);
            if let Err(e) = self
                .call_for(
                    plugin_type,
                    Command::Del,
                    delegate,
                    &delegate.cni_args,
                    stdin,
                )
                .await
            {
                tracing::warn!(network = %delegate.network, plugin = plugin_type, error = %e, "delegate DEL failed");
                // A missing binary ran nothing: any other failure says more about what
                // is left, so it takes precedence.
                let replace = match &first_error {
                    None => true,
                    Some(ExecError::NotFound { .. }) => !matches!(e, ExecError::NotFound { .. }),
                    Some(_) => false,
                };
                if replace {
                    first_error = Some(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// CHECK: run the plugins in order with the cached result as `prevResult`, in the
    /// delegate's own cniVersion.
    pub async fn check(&self, delegate: &PlannedDelegate, cached: &Value) -> Result<(), ExecError> {
        self.check_with(delegate, Some(cached)).await
    }

    /// CHECK with an optional `prevResult` (hot-plug passes the caller's, if any),
    /// converted to the delegate's cniVersion like a cached one.
    pub async fn check_with(
        &self,
        delegate: &PlannedDelegate,
        prev: Option<&Value>,
    ) -> Result<(), ExecError> {
        let prev = prev_result_for(delegate, prev);
        for (index, plugin_type) in delegate.config.plugin_types().into_iter().enumerate() {
            let stdin =
                delegate
                    .config
                    .plugin_stdin(index, &delegate.runtime_config, prev.as_ref());
            self.call_for(
                plugin_type,
                Command::Check,
                delegate,
                &delegate.cni_args,
                stdin,
            )
            .await?;
        }
        Ok(())
    }

    /// STATUS (CNI 1.1): ask every plugin of the config whether it is ready.
    pub async fn status(&self, config: &DelegateConfig) -> Result<(), ExecError> {
        for (index, plugin_type) in config.plugin_types().into_iter().enumerate() {
            let stdin = config.plugin_stdin(index, &Map::new(), None);
            self.call(plugin_type, Command::Status, config.name(), "", "", stdin)
                .await?;
        }
        Ok(())
    }

    /// GC (CNI 1.1): every plugin of the config gets `cni.dev/valid-attachments` (and
    /// its legacy alias `cni.dev/attachments`, as libcni sends it).
    pub async fn gc(
        &self,
        config: &DelegateConfig,
        valid_attachments: &Value,
    ) -> Result<(), ExecError> {
        for (index, plugin_type) in config.plugin_types().into_iter().enumerate() {
            let mut doc: Value =
                serde_json::from_slice(&config.plugin_stdin(index, &Map::new(), None))
                    .unwrap_or(Value::Null);
            if let Some(object) = doc.as_object_mut() {
                // libcni sends both names: the current one and its legacy alias.
                for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
                    object.insert(key.into(), valid_attachments.clone());
                }
            }
            let stdin = doc.to_string().into_bytes();
            self.call(plugin_type, Command::Gc, config.name(), "", "", stdin)
                .await?;
        }
        Ok(())
    }

    async fn call_for(
        &self,
        plugin_type: &str,
        command: Command,
        delegate: &PlannedDelegate,
        args: &str,
        stdin: Vec<u8>,
    ) -> Result<Vec<u8>, ExecError> {
        self.call(
            plugin_type,
            command,
            &delegate.network,
            &delegate.ifname,
            args,
            stdin,
        )
        .await
    }

    async fn call(
        &self,
        plugin_type: &str,
        command: Command,
        network: &str,
        ifname: &str,
        args: &str,
        stdin: Vec<u8>,
    ) -> Result<Vec<u8>, ExecError> {
        tracing::debug!(network, plugin = plugin_type, %command, ifname, "calling delegate");
        let per_sandbox = command.is_per_container();
        let sandbox_value = |v: &String| {
            if per_sandbox {
                v.clone()
            } else {
                String::new()
            }
        };
        self.exec
            .exec(ExecRequest {
                plugin_type: plugin_type.to_owned(),
                command,
                container_id: sandbox_value(&self.container_id),
                netns: sandbox_value(&self.netns),
                ifname: ifname.to_owned(),
                args: args.to_owned(),
                search_path: self.search_path.clone(),
                stdin,
                timeout: self.timeout,
            })
            .await
    }
}

/// The `prevResult` a delegate's DEL or CHECK gets: the cached result converted to
/// the delegate's own cniVersion, as libcni converts it (CNI 0.4.0 and later only).
/// A result that cannot be converted is passed as cached.
fn prev_result_for(delegate: &PlannedDelegate, cached: Option<&Value>) -> Option<Value> {
    let version = delegate
        .config
        .cni_version()
        .filter(|v| *v >= CniVersion::V0_4_0)?;
    let cached = cached.filter(|v| !v.is_null())?;
    if CniResult::document_version(cached).is_ok_and(|own| own == version) {
        return Some(cached.clone());
    }
    match CniResult::from_value(cached, version) {
        Ok(result) => Some(result.to_value(version)),
        Err(e) => {
            tracing::warn!(network = %delegate.network, error = %e, "cached result cannot be converted to the delegate's cniVersion; passing it as cached");
            Some(cached.clone())
        }
    }
}

/// A plugin's ADD output: JSON that is a CNI result of its own `cniVersion` (or of
/// `version`, the one it was called with, when it declares none).
fn parse_output(plugin_type: &str, out: &[u8], version: CniVersion) -> Result<Value, ExecError> {
    let invalid = |reason: String| ExecError::InvalidResult {
        plugin: plugin_type.to_owned(),
        reason,
    };
    let value: Value =
        serde_json::from_slice(out).map_err(|e| invalid(format!("result is not JSON: {e}")))?;
    CniResult::from_value(&value, version).map_err(|e| invalid(e.to_string()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_that_is_not_a_result_of_its_version_is_refused() {
        let v = CniVersion::V1_0_0;
        for bad in [
            &b"[1,2,3]"[..],
            br#"{"interfaces":"x"}"#,
            br#"{"cniVersion":"1.0.0","ips":[{"address":7}]}"#,
            br#"{"cniVersion":"0.2.0","ip4":"x"}"#,
            br#"{"cniVersion":"9.9.9"}"#,
            b"not json",
        ] {
            let err = parse_output("evil", bad, v).unwrap_err();
            assert!(
                matches!(err, ExecError::InvalidResult { ref plugin, .. } if plugin == "evil"),
                "{}: {err}",
                String::from_utf8_lossy(bad)
            );
        }
        let good = br#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.2/24","interface":0}]}"#;
        assert!(parse_output("bridge", good, v).is_ok());
        assert!(parse_output("bridge", b"{}", v).is_ok());
    }
}
