//! Who runs a command-line command, as the audit trail records it (A1): the
//! operating-system user and host, read from the environment. Nothing else
//! of the environment is read, so no secret can end up in the trail.

use serde::Serialize;

/// The person at the command line, as the operating system names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operator {
    /// `USER` (or `LOGNAME`, `USERNAME`); `unknown` when none is set.
    pub os_user: String,
    /// `HOSTNAME`, else the kernel's host name; `unknown` when neither is
    /// available.
    pub host: String,
}

/// Longest user or host name recorded; longer ones are cut.
const MAX_NAME: usize = 128;

impl Operator {
    /// The operator of this process.
    pub fn from_env() -> Self {
        let os_user = ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()));
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .or_else(kernel_host_name);
        Self {
            os_user: printable(os_user),
            host: printable(host),
        }
    }

    /// The operator as audit data.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"os_user": self.os_user, "host": self.host})
    }
}

fn kernel_host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// A name as recorded: printable characters only, at most [`MAX_NAME`].
fn printable(name: Option<String>) -> String {
    match name {
        Some(name) => name
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_NAME)
            .collect(),
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_printable_and_bounded() {
        assert_eq!(printable(None), "unknown");
        assert_eq!(printable(Some(" ops\u{7}\n".into())), "ops");
        assert_eq!(printable(Some("x".repeat(500))).len(), MAX_NAME);
    }
}
