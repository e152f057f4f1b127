//! The execute request, typed (`docs/abi.md`, "execute"): parsed once, with unknown fields
//! refused at every level, before any host call or screen.

use super::{download, reconcile, send, update_emails};
use crate::error::PluginError;
use crate::session::Need;
use crate::tae::RecipientAuth;
use serde::{Deserialize, Serialize};

/// The request as it crosses the ABI: one variant per option, tagged by `option`, each with
/// its own `params` type. Unknown fields are refused at every level.
#[derive(Debug, Deserialize)]
#[serde(tag = "option", rename_all = "snake_case")]
enum Wire {
    Send(Envelope<send::SendParams>),
    Delete(Envelope<NoParams>),
    UpdateEmails(Envelope<update_emails::UpdateParams>),
    Check(Envelope<NoParams>),
    Download(Envelope<download::DownloadParams>),
    Reconcile(Envelope<reconcile::ReconcileParams>),
}

/// The fields every option's request has besides `option`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<P> {
    session: String,
    invoked_from: InvokedFrom,
    #[serde(default = "Option::default")]
    params: Option<P>,
}

impl<P: Default> Envelope<P> {
    /// The session, where the option was started from, and the option with its params
    /// (omitted params are the option's defaults).
    fn split(
        self,
        option: impl FnOnce(P) -> OptionRequest,
    ) -> (String, InvokedFrom, OptionRequest) {
        (
            self.session,
            self.invoked_from,
            option(self.params.unwrap_or_default()),
        )
    }
}

/// Where the option was started from.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InvokedFrom {
    Menu {
        #[serde(default)]
        filter: Option<MenuFilter>,
    },
    ContractView {
        contract_keys: Vec<String>,
    },
    Attachment {
        record_ids: Vec<String>,
    },
}

/// The menu filter: only the fields the host knows (`docs/abi.md`, `contracts.find`).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MenuFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codcoligada: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codfilial: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub course: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Scalar>,
}

/// A filter value: RM keys are numbers or text.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Text(String),
}

/// The parameters of an option without any.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// The option and its parameters. A sixth option is one variant here and in [`Wire`], its
/// params type and its `run` in a module of its own (`docs/ARCHITECTURE.md`).
#[derive(Debug)]
pub enum OptionRequest {
    Send(send::SendParams),
    Delete(NoParams),
    UpdateEmails(update_emails::UpdateParams),
    Check(NoParams),
    Download(download::DownloadParams),
    Reconcile(reconcile::ReconcileParams),
}

impl OptionRequest {
    pub fn name(&self) -> &'static str {
        match self {
            OptionRequest::Send(_) => "send",
            OptionRequest::Delete(_) => "delete",
            OptionRequest::UpdateEmails(_) => "update_emails",
            OptionRequest::Check(_) => "check",
            OptionRequest::Download(_) => "download",
            OptionRequest::Reconcile(_) => "reconcile",
        }
    }

    /// The TAE permissions the option needs. Registering recipients (create users) is only
    /// needed when they authenticate with a TAE login.
    pub fn needs(&self, auth: RecipientAuth) -> Vec<Need> {
        let mut needs = match self {
            OptionRequest::Send(_) | OptionRequest::UpdateEmails(_) => {
                vec![Need::Send, Need::Query]
            }
            OptionRequest::Delete(_) => vec![Need::Delete, Need::Query],
            OptionRequest::Check(_) | OptionRequest::Download(_) => vec![Need::Query],
            // Mending cancels orphan drafts.
            OptionRequest::Reconcile(p) if p.fix => vec![Need::Query, Need::Delete],
            OptionRequest::Reconcile(_) => vec![Need::Query],
        };
        if matches!(
            self,
            OptionRequest::Send(_) | OptionRequest::UpdateEmails(_)
        ) && auth == RecipientAuth::Login
        {
            needs.push(Need::CreateUsers);
        }
        needs
    }

    /// Checks what the types cannot (people lists, template, source, download kind).
    fn check(&self) -> Result<(), PluginError> {
        match self {
            OptionRequest::Send(p) => p.check(),
            OptionRequest::UpdateEmails(p) => p.check(),
            OptionRequest::Download(p) => p.kind().map(|_| ()),
            OptionRequest::Reconcile(p) => p.window().map(|_| ()),
            OptionRequest::Delete(_) | OptionRequest::Check(_) => Ok(()),
        }
    }
}

/// A parsed execute request.
#[derive(Debug)]
pub struct ExecuteRequest {
    pub session: String,
    pub invoked_from: InvokedFrom,
    pub option: OptionRequest,
}

impl ExecuteRequest {
    /// Parses and checks the request (before any host call or screen).
    pub fn parse(request: serde_json::Value) -> Result<ExecuteRequest, PluginError> {
        let wire: Wire = serde_json::from_value(request)
            .map_err(|e| PluginError::invalid_request(format!("execute request: {e}")))?;
        let (session, invoked_from, option) = match wire {
            Wire::Send(e) => e.split(OptionRequest::Send),
            Wire::Delete(e) => e.split(OptionRequest::Delete),
            Wire::UpdateEmails(e) => e.split(OptionRequest::UpdateEmails),
            Wire::Check(e) => e.split(OptionRequest::Check),
            Wire::Download(e) => e.split(OptionRequest::Download),
            Wire::Reconcile(e) => e.split(OptionRequest::Reconcile),
        };
        if session.trim().is_empty() {
            return Err(PluginError::invalid_request(
                "execute request: empty session",
            ));
        }
        option.check()?;
        Ok(ExecuteRequest {
            session,
            invoked_from,
            option,
        })
    }
}

/// A list of people of the process, normalised (`None` when omitted).
pub fn people(
    name: &str,
    list: &Option<Vec<crate::config::Person>>,
    cpf_required: bool,
) -> Result<Option<Vec<crate::config::Person>>, PluginError> {
    match list {
        None => Ok(None),
        Some(v) => crate::config::check_persons(v.clone(), cpf_required)
            .map(Some)
            .map_err(|m| {
                PluginError::new(
                    crate::error::Status::InvalidRequest,
                    format!("Parâmetro \"{name}\" do processo inválido: {m}"),
                    format!("params.{name}: {m}"),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(
        option: serde_json::Value,
        params: serde_json::Value,
    ) -> Result<ExecuteRequest, PluginError> {
        ExecuteRequest::parse(
            json!({"session": "s", "invoked_from": {"kind": "contract_view", "contract_keys": ["k"]},
                                     "option": option, "params": params}),
        )
    }

    #[test]
    fn unknown_fields_are_refused_at_every_level() {
        assert!(req(json!("check"), json!(null)).is_ok());
        assert!(req(json!("check"), json!({})).is_ok());
        assert!(req(json!("check"), json!({"x": 1})).is_err());
        assert!(req(json!("download"), json!({"kind": 4})).is_ok());
        assert!(req(json!("download"), json!({"kind": 9})).is_err());
        assert!(req(json!("download"), json!({"kind": 2, "y": 1})).is_err());
        assert!(req(json!("archive"), json!({})).is_err());
        assert!(req(json!("send"), json!({"source": {"kind": "fax"}})).is_err());
        assert!(req(
            json!("send"),
            json!({"source": {"kind": "file", "path": "/x.pdf", "z": 1}})
        )
        .is_err());
        let e = req(json!("send"), json!({})).unwrap_err();
        assert!(e.message.contains("origem do documento"), "{e}");
        assert!(req(
            json!("update_emails"),
            json!({"validators": [{"name": "V", "email": "v@x.com"}]})
        )
        .is_ok());
        let e = req(
            json!("update_emails"),
            json!({"validators": [{"name": "V", "email": "v"}]}),
        )
        .unwrap_err();
        assert!(e.message.contains("validators"), "{e}");
        assert!(ExecuteRequest::parse(json!({"session": "s", "invoked_from": {"kind": "menu", "filter": {"curso": 1}}, "option": "check"})).is_err());
        assert!(ExecuteRequest::parse(json!({"session": "s", "invoked_from": {"kind": "menu", "filter": {"course": "x"}}, "option": "check"})).is_ok());
        assert!(ExecuteRequest::parse(
            json!({"session": " ", "invoked_from": {"kind": "menu"}, "option": "check"})
        )
        .is_err());
    }

    #[test]
    fn reconcile_params_are_typed() {
        let fix = |r: Result<ExecuteRequest, PluginError>| match r.unwrap().option {
            OptionRequest::Reconcile(p) => p.fix,
            _ => unreachable!(),
        };
        assert!(
            !fix(req(json!("reconcile"), json!(null))),
            "a dry run by default"
        );
        assert!(!fix(req(json!("reconcile"), json!({}))));
        assert!(fix(req(json!("reconcile"), json!({"fix": true}))));
        assert!(req(json!("reconcile"), json!({"fix": "sim"})).is_err());
        assert!(req(json!("reconcile"), json!({"fix": true, "dry": 1})).is_err());
        assert!(req(
            json!("reconcile"),
            json!({"period": {"from": "2026-11-01", "to": "2026-11-30"}})
        )
        .is_ok());
        assert!(req(
            json!("reconcile"),
            json!({"period": {"from": "2026-11-01T00:00:00Z", "to": "2026-11-30T23:59:59Z"}})
        )
        .is_ok());
        assert!(req(
            json!("reconcile"),
            json!({"period": {"from": "2026-11-01", "to": "2026-11-30", "x": 1}})
        )
        .is_err());
        assert!(req(
            json!("reconcile"),
            json!({"period": {"from": "2026-11-01"}})
        )
        .is_err());
        let e = req(
            json!("reconcile"),
            json!({"period": {"from": "01/11/2026", "to": "2026-11-30"}}),
        )
        .unwrap_err();
        assert!(e.message.contains("period.from"), "{e}");
        let e = req(
            json!("reconcile"),
            json!({"period": {"from": "2026-12-01", "to": "2026-11-30"}}),
        )
        .unwrap_err();
        assert!(e.message.contains("period"), "{e}");
        let needs = |fix: bool| {
            OptionRequest::Reconcile(reconcile::ReconcileParams { fix, period: None })
                .needs(RecipientAuth::EmailCode)
        };
        assert_eq!(needs(false), vec![Need::Query]);
        assert_eq!(needs(true), vec![Need::Query, Need::Delete]);
    }
}
