//! What a runtime passes multus on stdin for a configuration file in `confDir`, for
//! callers that run multus as the runtime would (the daemon's reaper, `multus-ctl`).

use serde_json::{Map, Value};

use crate::generate::MULTUS_PLUGIN_TYPES;

/// Multus' stdin for one configuration file.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeStdin {
    /// The stdin bytes: the file itself for a single network config, else multus' entry
    /// of the config list with the list's `name` and `cniVersion`.
    pub bytes: Vec<u8>,
    /// That document, parsed.
    pub document: Map<String, Value>,
    /// Whether the file is a config list.
    pub from_list: bool,
}

/// Why a configuration file gives no stdin for multus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeStdinError {
    /// Not JSON, or not a JSON object.
    #[error("not a JSON object: {0}")]
    NotAnObject(String),
    /// A config list none of whose plugins is multus.
    #[error("a config list without a multus or multus-shim plugin")]
    NoMultusPlugin,
}

/// The stdin a runtime passes multus for the configuration file `bytes`.
///
/// A single network config (no `plugins`) is passed byte for byte. From a config list,
/// the first plugin whose `type` is one of [`MULTUS_PLUGIN_TYPES`] is taken and, as
/// libcni does for every plugin of a list, given the list's `name` and `cniVersion`
/// (each an empty string when the list has none), replacing the plugin's own.
pub fn runtime_stdin(bytes: &[u8]) -> Result<RuntimeStdin, RuntimeStdinError> {
    let file: Map<String, Value> =
        serde_json::from_slice(bytes).map_err(|e| RuntimeStdinError::NotAnObject(e.to_string()))?;
    let Some(plugins) = file.get("plugins") else {
        return Ok(RuntimeStdin {
            bytes: bytes.to_vec(),
            document: file,
            from_list: false,
        });
    };
    let entry = plugins
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .find(|plugin| {
            plugin
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| MULTUS_PLUGIN_TYPES.contains(&t))
        })
        .ok_or(RuntimeStdinError::NoMultusPlugin)?;
    let mut document = entry.clone();
    for key in ["name", "cniVersion"] {
        let value = file.get(key).and_then(Value::as_str).unwrap_or_default();
        document.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    Ok(RuntimeStdin {
        bytes: Value::Object(document.clone()).to_string().into_bytes(),
        document,
        from_list: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stdin_of(value: &Value) -> Result<RuntimeStdin, RuntimeStdinError> {
        runtime_stdin(value.to_string().as_bytes())
    }

    #[test]
    fn a_single_config_is_passed_byte_for_byte() {
        let bytes = b"{ \"cniVersion\": \"0.3.1\",\n  \"type\": \"multus\", \"name\": \"m\" }\n";
        let stdin = runtime_stdin(bytes).unwrap();
        assert_eq!(stdin.bytes, bytes);
        assert!(!stdin.from_list);
        assert_eq!(stdin.document["name"], "m");
        // Whatever its type: the runtime passes the file as it is.
        let other = runtime_stdin(br#"{"name":"x"}"#).unwrap();
        assert_eq!(other.bytes, br#"{"name":"x"}"#);
    }

    #[test]
    fn multus_entry_of_a_list_gets_the_lists_name_and_version() {
        let list = json!({
            "cniVersion": "1.0.0", "name": "multus-cni-network",
            "plugins": [
                {"type": "portmap"},
                {"type": "multus-shim", "name": "own", "cniVersion": "0.3.1", "logLevel": "debug"},
                {"type": "multus"}
            ]
        });
        let stdin = stdin_of(&list).unwrap();
        assert!(stdin.from_list);
        let expected = json!({"type": "multus-shim", "name": "multus-cni-network",
                              "cniVersion": "1.0.0", "logLevel": "debug"});
        assert_eq!(Value::Object(stdin.document.clone()), expected);
        let parsed: Value = serde_json::from_slice(&stdin.bytes).unwrap();
        assert_eq!(parsed, expected);
    }

    #[test]
    fn a_list_without_version_or_name_injects_empty_strings_as_libcni() {
        let stdin =
            stdin_of(&json!({"plugins": [{"type": "multus", "cniVersion": "1.0.0"}]})).unwrap();
        assert_eq!(stdin.document["cniVersion"], "");
        assert_eq!(stdin.document["name"], "");
    }

    #[test]
    fn refusals() {
        for value in [
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}]}),
            json!({"plugins": "multus"}),
            json!({"plugins": [["multus"], {"type": 1}]}),
        ] {
            assert_eq!(
                stdin_of(&value),
                Err(RuntimeStdinError::NoMultusPlugin),
                "{value}"
            );
        }
        for bytes in [&b"[]"[..], b"", b"{", b"\"multus\""] {
            assert!(matches!(
                runtime_stdin(bytes),
                Err(RuntimeStdinError::NotAnObject(_))
            ));
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = runtime_stdin(&bytes);
        }

        #[test]
        fn a_list_entry_always_carries_the_lists_identity(
            name in ".{0,12}", version in ".{0,8}", extra in "[a-z]{1,6}", pick in 0usize..3,
        ) {
            let mut plugins = vec![json!({"type": "bridge"}), json!({"type": "tuning"})];
            plugins.insert(pick, json!({"type": "multus", "x": extra}));
            let list = json!({"name": name, "cniVersion": version, "plugins": plugins});
            let stdin = stdin_of(&list).unwrap();
            proptest::prop_assert_eq!(&stdin.document["name"], &json!(name));
            proptest::prop_assert_eq!(&stdin.document["cniVersion"], &json!(version));
            proptest::prop_assert_eq!(&stdin.document["x"], &json!(extra));
            let reparsed: Map<String, Value> = serde_json::from_slice(&stdin.bytes).unwrap();
            proptest::prop_assert_eq!(reparsed, stdin.document);
        }
    }
}
