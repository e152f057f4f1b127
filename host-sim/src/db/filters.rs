//! The filters of `contracts.find` ([`ContractFilter`]) and `records.query` ([`RecordFilter`],
//! `docs/abi.md`): serde types that refuse unknown fields, so a typo never silently widens a
//! search. A refusal names the field by the label the user knows, the technical name, and the
//! values accepted, in Portuguese.
//!
//! What a person types is accepted as they would type it: a record status by its code or its
//! label in any case (`pendente`, `Pendente`, `PENDENTE`, `Assinado parcialmente`), a date as
//! `aaaa-mm-dd` or `dd/mm/aaaa`, or an RFC 3339 timestamp. A bare date is a day in
//! America/Sao_Paulo (UTC−03:00; Brazil has had no daylight saving time since 2019), the day a
//! secretary sees in the tables.

use super::records::RECORD_STATUSES;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;

/// Filter of `contracts.find`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContractFilter {
    #[serde(default, deserialize_with = "integer")]
    pub codcoligada: Option<i64>,
    #[serde(default, deserialize_with = "integer")]
    pub codfilial: Option<i64>,
    #[serde(default, deserialize_with = "text")]
    pub period: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub course: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub ra: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub codcontrato: Option<String>,
}

/// (field, label the user knows) of [`ContractFilter`].
const CONTRACT_FIELDS: [(&str, &str); 7] = [
    ("codcoligada", "coligada"),
    ("codfilial", "filial"),
    ("period", "período"),
    ("course", "curso"),
    ("status", "situação do contrato"),
    ("ra", "RA do aluno"),
    ("codcontrato", "código do contrato"),
];

impl ContractFilter {
    /// Parses the ABI's filter object (`null` = no filter).
    pub fn from_json(v: &Value) -> Result<Self, String> {
        parse(v, &CONTRACT_FIELDS, "do contrato")
    }
}

/// Filter of `records.query` (`RecordFilter` in `docs/abi.md`). Every given field must match.
/// `status` is held as the status code; `sent_from`/`sent_to` as given when they are
/// timestamps, as `aaaa-mm-dd` when they are dates.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecordFilter {
    #[serde(default, deserialize_with = "text_list")]
    pub record_ids: Option<Vec<String>>,
    #[serde(default, deserialize_with = "text")]
    pub contract_key: Option<String>,
    #[serde(default, deserialize_with = "record_status")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "date_or_timestamp")]
    pub sent_from: Option<String>,
    #[serde(default, deserialize_with = "date_or_timestamp")]
    pub sent_to: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub sent_by: Option<String>,
}

/// (field, label the user knows) of [`RecordFilter`].
const RECORD_FIELDS: [(&str, &str); 6] = [
    ("record_ids", "identificadores dos registros"),
    ("contract_key", "chave do contrato"),
    ("status", "situação"),
    ("sent_from", "enviado a partir de"),
    ("sent_to", "enviado até"),
    ("sent_by", "enviado por"),
];

impl RecordFilter {
    /// Parses the ABI's filter object (`null` = no filter).
    pub fn from_json(v: &Value) -> Result<Self, String> {
        parse(v, &RECORD_FIELDS, "dos registros")
    }
}

fn parse<T: for<'de> Deserialize<'de> + Default>(
    v: &Value,
    fields: &[(&str, &str)],
    of_what: &str,
) -> Result<T, String> {
    let obj = match v {
        Value::Null => return Ok(T::default()),
        Value::Object(obj) => obj,
        _ => return Err(format!("o filtro {of_what} deve ser um objeto JSON")),
    };
    // serde's own refusal of an unknown field is in English; name it here in Portuguese.
    if let Some(unknown) = obj
        .keys()
        .find(|k| !fields.iter().any(|(name, _)| name == k))
    {
        let accepted: Vec<String> = fields
            .iter()
            .map(|(name, label)| format!("{name} ({label})"))
            .collect();
        return Err(format!(
            "o filtro {of_what} não tem o campo «{unknown}»; campos aceitos: {}",
            accepted.join(", ")
        ));
    }
    serde_json::from_value(v.clone()).map_err(|whole| {
        // Name the field: the first one that fails alone. Every deserializer below words its
        // problem in Portuguese.
        for (name, label) in fields {
            if let Some(value) = obj.get(*name) {
                let alone =
                    Value::Object([(name.to_string(), value.clone())].into_iter().collect());
                if let Err(e) = serde_json::from_value::<T>(alone) {
                    return format!("campo «{label}» ({name}) do filtro {of_what}: {e}");
                }
            }
        }
        format!("filtro {of_what}: {whole}")
    })
}

fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("«{n}» não é um número inteiro"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("«{s}» não é um número inteiro"))),
        Some(other) => Err(D::Error::custom(format!("{other} não é um número inteiro"))),
    }
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(D::Error::custom(format!("{other} não é um texto"))),
    }
}

fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(D::Error::custom(format!(
                    "a lista deve ter só textos, e tem {other}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(D::Error::custom(format!(
            "deve ser uma lista de textos, e é {other}"
        ))),
    }
}

fn record_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let Some(s) = text(d)? else {
        return Ok(None);
    };
    normalize_record_status(&s)
        .map(|code| Some(code.to_string()))
        .map_err(D::Error::custom)
}

fn date_or_timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let Some(s) = text(d)? else {
        return Ok(None);
    };
    normalize_date(&s).map(Some).map_err(D::Error::custom)
}

/// The status code of a record status typed by its code or its label, in any case
/// (`Pendente`, `PENDENTE`, `pendente`, `Assinado parcialmente`, `assinado_parcialmente`).
/// The refusal lists the labels accepted.
pub fn normalize_record_status(input: &str) -> Result<&'static str, String> {
    let wanted = input.trim().to_lowercase();
    RECORD_STATUSES
        .iter()
        .find(|(code, label)| wanted == *code || wanted == label.to_lowercase())
        .map(|(code, _)| *code)
        .ok_or_else(|| {
            let labels: Vec<&str> = RECORD_STATUSES.iter().map(|(_, l)| *l).collect();
            format!(
                "«{}» não é uma situação de registro; situações aceitas (maiúsculas ou minúsculas): {}",
                input.trim(),
                labels.join(", ")
            )
        })
}

/// A date typed as `dd/mm/aaaa` or `aaaa-mm-dd` becomes `aaaa-mm-dd`; an RFC 3339 timestamp
/// (or `aaaa-mm-ddTHH:MM:SS` in UTC) is answered unchanged. The refusal names the formats.
pub fn normalize_date(input: &str) -> Result<String, String> {
    let s = input.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%d/%m/%Y") {
        return Ok(d.format("%Y-%m-%d").to_string());
    }
    if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10 {
        return Ok(s.to_string());
    }
    if timestamp_ms(s, false).is_some() {
        return Ok(s.to_string());
    }
    Err(format!(
        "«{s}» não é uma data válida; use dd/mm/aaaa (por exemplo 02/12/2026) ou aaaa-mm-dd"
    ))
}

/// America/Sao_Paulo: UTC−03:00 all year since 2019.
fn sao_paulo() -> FixedOffset {
    FixedOffset::west_opt(3 * 3600).expect("a valid offset")
}

/// Parses an RFC 3339 timestamp, a naive `aaaa-mm-ddTHH:MM:SS[.f]` (UTC), or a date
/// (`aaaa-mm-dd`, `dd/mm/aaaa`: a day in America/Sao_Paulo) to epoch milliseconds. A date is
/// the first millisecond of that day, or its last when `end_of_day`.
pub fn timestamp_ms(s: &str, end_of_day: bool) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc().timestamp_millis());
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%d/%m/%Y"))
        .ok()?;
    let t = if end_of_day {
        d.and_hms_milli_opt(23, 59, 59, 999)?
    } else {
        d.and_hms_opt(0, 0, 0)?
    };
    Some(
        sao_paulo()
            .from_local_datetime(&t)
            .single()?
            .timestamp_millis(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_refuse_unknown_fields_in_portuguese() {
        let e = ContractFilter::from_json(&json!({"curso": "x"})).unwrap_err();
        assert!(e.contains("«curso»") && e.contains("course (curso)"), "{e}");
        let f =
            ContractFilter::from_json(&json!({"codcoligada": "1", "period": "2026/1"})).unwrap();
        assert_eq!(f.codcoligada, Some(1));
        assert_eq!(f.period.as_deref(), Some("2026/1"));
        let e = RecordFilter::from_json(&json!({"statuss": "x"})).unwrap_err();
        assert!(
            e.contains("«statuss»") && e.contains("status (situação)"),
            "{e}"
        );
        // The serde types refuse unknown fields on their own too.
        assert!(serde_json::from_value::<RecordFilter>(json!({"statuss": "x"})).is_err());
        assert!(serde_json::from_value::<ContractFilter>(json!({"curso": "x"})).is_err());
        // Null fields are absent; a filter must be an object.
        assert_eq!(
            ContractFilter::from_json(&json!({"course": null})).unwrap(),
            ContractFilter::default()
        );
        assert_eq!(
            RecordFilter::from_json(&Value::Null).unwrap(),
            RecordFilter::default()
        );
        assert!(RecordFilter::from_json(&json!(3)).is_err());
        let e = ContractFilter::from_json(&json!({"codcoligada": "um"})).unwrap_err();
        assert!(
            e.contains("«coligada» (codcoligada)") && e.contains("«um» não é um número inteiro"),
            "{e}"
        );
        let e = RecordFilter::from_json(&json!({"record_ids": [1]})).unwrap_err();
        assert!(
            e.contains("«identificadores dos registros» (record_ids)") && e.contains("só textos"),
            "{e}"
        );
        let e = ContractFilter::from_json(&json!({"course": ["a"]})).unwrap_err();
        assert!(
            e.contains("«curso» (course)") && e.contains("não é um texto"),
            "{e}"
        );
    }

    #[test]
    fn record_status_by_code_or_label_in_any_case() {
        for (typed, code) in [
            ("pendente", "pendente"),
            ("Pendente", "pendente"),
            ("PENDENTE", "pendente"),
            (" pEnDeNtE ", "pendente"),
            ("Assinado parcialmente", "assinado_parcialmente"),
            ("ASSINADO PARCIALMENTE", "assinado_parcialmente"),
            ("assinado_parcialmente", "assinado_parcialmente"),
            ("Falhou", "falhou"),
        ] {
            assert_eq!(normalize_record_status(typed), Ok(code), "{typed}");
            let f = RecordFilter::from_json(&json!({ "status": typed })).unwrap();
            assert_eq!(f.status.as_deref(), Some(code), "{typed}");
        }
        let e = RecordFilter::from_json(&json!({"status": "assinado"})).unwrap_err();
        assert!(
            e.contains("«situação» (status)")
                && e.contains("«assinado»")
                && e.contains("Pendente, Assinado parcialmente"),
            "{e}"
        );
    }

    #[test]
    fn dates_in_both_forms_and_timestamps() {
        assert_eq!(normalize_date("02/12/2026").unwrap(), "2026-12-02");
        assert_eq!(normalize_date("2026-12-02").unwrap(), "2026-12-02");
        assert_eq!(normalize_date(" 2/1/2026 ").unwrap(), "2026-01-02");
        assert_eq!(
            normalize_date("2026-12-02T10:00:00Z").unwrap(),
            "2026-12-02T10:00:00Z"
        );
        for bad in [
            "32/12/2026",
            "12/31/2026",
            "02/12/26x",
            "ontem",
            "2026-13-01",
            "2026-1-5x",
            "",
        ] {
            let e = normalize_date(bad).unwrap_err();
            assert!(
                e.contains("dd/mm/aaaa") && e.contains("aaaa-mm-dd"),
                "{bad}: {e}"
            );
        }
        let f =
            RecordFilter::from_json(&json!({"sent_from": "01/12/2026", "sent_to": "2026-12-02"}))
                .unwrap();
        assert_eq!(f.sent_from.as_deref(), Some("2026-12-01"));
        assert_eq!(f.sent_to.as_deref(), Some("2026-12-02"));
        let e = RecordFilter::from_json(&json!({"sent_to": "31/02/2026"})).unwrap_err();
        assert!(
            e.contains("«enviado até» (sent_to)") && e.contains("dd/mm/aaaa"),
            "{e}"
        );
        // A bare date is a day in São Paulo (UTC−03:00).
        assert_eq!(
            timestamp_ms("02/12/2026", false),
            DateTime::parse_from_rfc3339("2026-12-02T03:00:00Z")
                .ok()
                .map(|t| t.timestamp_millis())
        );
        assert_eq!(
            timestamp_ms("2026-12-02", true),
            DateTime::parse_from_rfc3339("2026-12-03T02:59:59.999Z")
                .ok()
                .map(|t| t.timestamp_millis())
        );
    }
}
