//! Download of a sent document (by default the signed PDF with its manifest) into the host,
//! attached to the integration record.

use super::{Item, Outcome, OutcomeKind, Run};
use serde::Deserialize;

/// `download` params: `{"kind": 1|2|3|4}` (default 2, signed with manifest).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadParams {
    #[serde(default)]
    kind: Option<u8>,
}

impl DownloadParams {
    pub fn kind(&self) -> Result<u8, crate::error::PluginError> {
        match self.kind {
            None => Ok(2),
            Some(k @ 1..=4) => Ok(k),
            Some(_) => Err(crate::error::PluginError::invalid_request(
                "params.kind must be 1, 2, 3 or 4",
            )),
        }
    }
}

pub async fn run(run: &Run<'_>, kind: u8, item: &Item) -> Outcome {
    let Some(rec) = item
        .working_record()
        .filter(|r| r.document_id.is_some())
        .or_else(|| item.records.iter().find(|r| r.document_id.is_some()))
    else {
        return Outcome::new(
            item,
            OutcomeKind::Skipped,
            format!("{}: não há documento enviado para baixar.", item.label()),
        );
    };
    let mut r = rec.clone();
    let id = r.document_id.unwrap_or_default();
    let by = run.user.who();
    let (bytes, name) = match run
        .tae
        .call(|t| async move { run.tae.client.download(&t, id, kind).await })
        .await
    {
        Ok(x) => x,
        Err(e) => {
            return Outcome::tae_failed(
                item,
                &format!("não foi possível baixar o documento nº {id}"),
                &e,
            )
            .with_record(&r)
        }
    };
    let file_name = name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| {
        format!(
            "documento-{id}-{kind}.{}",
            if kind == 4 { "zip" } else { "pdf" }
        )
    });
    let path = match run.host.records_store_file(&r.id, &file_name, &bytes) {
        Ok(p) => p,
        Err(e) => {
            return Outcome::failed(
                item,
                format!(
                    "documento nº {id} baixado, mas o RM não o gravou ({}).",
                    e.message
                ),
            )
            .with_record(&r)
        }
    };
    r.event(
        &by,
        "downloaded",
        format!(
            "{file_name} ({} bytes, tipo {kind}){}",
            bytes.len(),
            path.as_deref()
                .map(|p| format!(" em {p}"))
                .unwrap_or_default()
        ),
    );
    if let Err(m) = run.put(&[&r]).await {
        return Outcome::failed(item, m).with_record(&r);
    }
    Outcome::new(
        item,
        OutcomeKind::Downloaded,
        format!("{}: documento nº {id} baixado ({file_name}).", item.label()),
    )
    .with_record(&r)
}
