//! Download of a sent document (by default the signed PDF with its manifest) into the host,
//! attached to the integration record.

use super::{put, tae_failed, Item, Outcome};
use crate::session::Auth;

pub async fn run(auth: &Auth<'_>, kind: u8, item: &Item) -> Outcome {
    let Some(rec) = item
        .working_record()
        .filter(|r| r.document_id.is_some())
        .or_else(|| item.records.iter().find(|r| r.document_id.is_some()))
    else {
        return Outcome::new(
            item,
            "skipped",
            format!("{}: não há documento enviado para baixar.", item.label()),
        );
    };
    let mut r = rec.clone();
    let id = r.document_id.unwrap_or_default();
    let by = auth.user.who();
    let (bytes, name) = match auth
        .call(|t| async move { auth.client.download(&t, id, kind).await })
        .await
    {
        Ok(x) => x,
        Err(e) => {
            return tae_failed(
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
    let path = match auth.host.records_store_file(&r.id, &file_name, &bytes) {
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
    if let Err(m) = put(auth, &[&r]).await {
        return Outcome::failed(item, m).with_record(&r);
    }
    Outcome::new(
        item,
        "downloaded",
        format!("{}: documento nº {id} baixado ({file_name}).", item.label()),
    )
    .with_record(&r)
}
