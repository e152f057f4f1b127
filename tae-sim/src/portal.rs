//! The portal's side, under `/_sim/` (no auth, JSON, never faulted, never counted): what the
//! people on the other end of the e-mails do (confirm, sign, reject), and test controls.

use crate::faults::FaultConfig;
use crate::state::{
    tae_time, CancelModel, Features, NewUser, Permissions, SimError, SimState, ADMIN_EMAIL,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

fn error(err: SimError) -> Response {
    (
        StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(json!({"error": err.message})),
    )
        .into_response()
}

fn bad_json(rejection: JsonRejection) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": format!("invalid JSON body: {rejection}")})),
    )
        .into_response()
}

fn reply<T: serde::Serialize>(result: Result<T, SimError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => error(e),
    }
}

fn parse_id(raw: &str) -> Result<u64, SimError> {
    raw.trim().parse().map_err(|_| SimError {
        status: 404,
        message: format!("unknown document id {raw}"),
    })
}

async fn index() -> Json<Value> {
    Json(json!({
        "service": "tae-sim",
        "admin": {"email": ADMIN_EMAIL, "password": crate::state::ADMIN_PASSWORD},
        "routes": [
            "POST /_sim/users", "GET /_sim/users", "POST /_sim/users/confirm",
            "POST /_sim/users/permissions",
            "GET /_sim/documents", "GET /_sim/documents/{id}",
            "POST /_sim/documents/{id}/act", "POST /_sim/documents/{id}/reject",
            "GET /_sim/emails", "GET /_sim/counters", "POST /_sim/counters/reset",
            "GET /_sim/faults", "PUT /_sim/faults", "GET /_sim/features", "POST /_sim/features", "GET /_sim/clock", "POST /_sim/clock",
            "POST /_sim/tokens/expire", "POST /_sim/reset",
        ],
    }))
}

async fn create_user(
    State(sim): State<SimState>,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Response {
    let Json(new) = match body {
        Ok(b) => b,
        Err(e) => return bad_json(e),
    };
    match sim.create_user(new) {
        Ok(user) => (StatusCode::CREATED, Json(user)).into_response(),
        Err(e) => error(e),
    }
}

async fn list_users(State(sim): State<SimState>) -> Response {
    Json(sim.users()).into_response()
}

#[derive(Deserialize)]
struct ConfirmBody {
    email: String,
    #[serde(default)]
    password: Option<String>,
}

async fn confirm_user(
    State(sim): State<SimState>,
    body: Result<Json<ConfirmBody>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(b)) => reply(sim.confirm_user(&b.email, b.password.as_deref())),
        Err(e) => bad_json(e),
    }
}

#[derive(Deserialize)]
struct PermissionsBody {
    email: String,
    permissions: Permissions,
}

async fn set_permissions(
    State(sim): State<SimState>,
    body: Result<Json<PermissionsBody>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(b)) => reply(sim.set_permissions(&b.email, b.permissions)),
        Err(e) => bad_json(e),
    }
}

async fn list_documents(State(sim): State<SimState>) -> Response {
    Json(sim.documents()).into_response()
}

async fn one_document(State(sim): State<SimState>, Path(id): Path<String>) -> Response {
    reply(parse_id(&id).and_then(|id| {
        sim.document(id).ok_or(SimError {
            status: 404,
            message: format!("unknown document id {id}"),
        })
    }))
}

#[derive(Deserialize)]
struct ActBody {
    email: String,
    #[serde(default)]
    reason: Option<String>,
}

async fn act(
    State(sim): State<SimState>,
    Path(id): Path<String>,
    body: Result<Json<ActBody>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(b)) => reply(parse_id(&id).and_then(|id| sim.act(id, &b.email))),
        Err(e) => bad_json(e),
    }
}

async fn reject(
    State(sim): State<SimState>,
    Path(id): Path<String>,
    body: Result<Json<ActBody>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(b)) => reply(
            parse_id(&id)
                .and_then(|id| sim.reject(id, &b.email, b.reason.as_deref().unwrap_or_default())),
        ),
        Err(e) => bad_json(e),
    }
}

async fn emails(
    State(sim): State<SimState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let to = query.get("to").map(|t| t.to_lowercase());
    let kind = query.get("kind");
    let list: Vec<_> = sim
        .emails()
        .into_iter()
        .filter(|e| to.as_ref().is_none_or(|t| e.to.to_lowercase() == *t))
        .filter(|e| kind.is_none_or(|k| e.kind == *k))
        .collect();
    Json(list).into_response()
}

async fn counters(State(sim): State<SimState>) -> Response {
    Json(sim.counters()).into_response()
}

async fn reset_counters(State(sim): State<SimState>) -> Response {
    sim.reset_counters();
    Json(json!({"ok": true})).into_response()
}

async fn get_timeline(State(sim): State<SimState>) -> Response {
    Json(sim.timeline()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineSwitch {
    recording: bool,
}

async fn set_timeline(
    State(sim): State<SimState>,
    body: Result<Json<TimelineSwitch>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(b)) => {
            sim.set_timeline(b.recording);
            Json(json!({"recording": b.recording})).into_response()
        }
        Err(e) => bad_json(e),
    }
}

async fn get_faults(State(sim): State<SimState>) -> Response {
    Json(sim.faults()).into_response()
}

async fn put_faults(
    State(sim): State<SimState>,
    body: Result<Json<FaultConfig>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(faults)) => {
            sim.set_faults(faults);
            Json(sim.faults()).into_response()
        }
        Err(e) => bad_json(e),
    }
}

async fn get_features(State(sim): State<SimState>) -> Response {
    Json(sim.features()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeaturesBody {
    many_ids: Option<bool>,
    strict_signers: Option<bool>,
    cancel_model: Option<CancelModel>,
    search_by_name: Option<bool>,
    sim_extras: Option<bool>,
}

async fn set_features(
    State(sim): State<SimState>,
    body: Result<Json<FeaturesBody>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(b)) => {
            if let Some(many_ids) = b.many_ids {
                sim.set_many_ids(many_ids);
            }
            if let Some(strict) = b.strict_signers {
                sim.set_strict_signers(strict);
            }
            if let Some(model) = b.cancel_model {
                sim.set_cancel_model(model);
            }
            if let Some(enabled) = b.search_by_name {
                sim.set_search_by_name(enabled);
            }
            if let Some(enabled) = b.sim_extras {
                sim.set_sim_extras(enabled);
            }
            let features: Features = sim.features();
            Json(features).into_response()
        }
        Err(e) => bad_json(e),
    }
}

fn clock_json(sim: &SimState) -> Value {
    json!({"offset_secs": sim.clock_offset(), "now": tae_time(sim.now())})
}

async fn get_clock(State(sim): State<SimState>) -> Response {
    Json(clock_json(&sim)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    offset_secs: i64,
}

async fn set_clock(
    State(sim): State<SimState>,
    body: Result<Json<ClockBody>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(b)) => {
            sim.set_clock_offset(b.offset_secs);
            Json(clock_json(&sim)).into_response()
        }
        Err(e) => bad_json(e),
    }
}

async fn expire_tokens(State(sim): State<SimState>) -> Response {
    sim.expire_tokens();
    Json(json!({"ok": true})).into_response()
}

async fn reset(State(sim): State<SimState>) -> Response {
    sim.reset();
    Json(json!({"ok": true})).into_response()
}

pub(crate) fn router(sim: SimState) -> Router {
    Router::new()
        .route("/_sim", get(index))
        .route("/_sim/", get(index))
        .route("/_sim/users", get(list_users).post(create_user))
        .route("/_sim/users/confirm", post(confirm_user))
        .route("/_sim/users/permissions", post(set_permissions))
        .route("/_sim/documents", get(list_documents))
        .route("/_sim/documents/{id}", get(one_document))
        .route("/_sim/documents/{id}/act", post(act))
        .route("/_sim/documents/{id}/sign", post(act))
        .route("/_sim/documents/{id}/validate", post(act))
        .route("/_sim/documents/{id}/witness", post(act))
        .route("/_sim/documents/{id}/reject", post(reject))
        .route("/_sim/emails", get(emails))
        .route("/_sim/counters", get(counters))
        .route("/_sim/counters/reset", post(reset_counters))
        .route("/_sim/timeline", get(get_timeline).post(set_timeline))
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .route("/_sim/features", get(get_features).post(set_features))
        .route("/_sim/clock", get(get_clock).post(set_clock))
        .route("/_sim/tokens/expire", post(expire_tokens))
        .route("/_sim/reset", post(reset))
        .with_state(sim)
}
