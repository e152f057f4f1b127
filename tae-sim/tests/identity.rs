//! What TAE keeps that the client chose, and what search can find (TAE-API.md): the upload's
//! NomeEnvelope answered as `nomeArquivo` in the read and in every search record, the search
//! filters (sender, whole company, status array, paging), the by-name filter off by default,
//! the three cancel models, two environments in one company, and the sim clock. Stand-in only
//! (these switch the stand-in's behaviour).

mod common;

use common::{errors_text, publication, Target};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tae_sim::{api, CancelModel};

fn records(body: &Value) -> Vec<Value> {
    body["data"]["registro"]
        .as_array()
        .unwrap_or_else(|| panic!("no registro: {body}"))
        .clone()
}

fn ids(body: &Value) -> Vec<u64> {
    records(body)
        .iter()
        .map(|r| r["id"].as_u64().expect("id"))
        .collect()
}

async fn search(t: &Target, token: &str, page: (usize, usize), body: Value) -> Value {
    let path = format!(
        "{}?PaginaAtual={}&TamanhoPagina={}",
        api::SEARCH,
        page.0,
        page.1
    );
    let (status, answer) = t.post(&path, token, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["success"], true, "{answer}");
    answer
}

async fn cancel(t: &Target, token: &str, id: u64) -> (StatusCode, Value) {
    t.send(
        Method::POST,
        &format!("/documents/v1/publicacoes/{id}/cancelar"),
        Some(token),
        None,
    )
    .await
}

async fn read_raw(t: &Target, token: &str, id: u64) -> (StatusCode, Value) {
    t.get(&format!("/documents/v2/publicacoes/{id}"), token)
        .await
}

async fn set_features(t: &Target, features: Value) -> Value {
    let (status, body) = t
        .portal(Method::POST, "/_sim/features", Some(features))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A second user of the seeded company (same company, another sender).
async fn second_sender(t: &Target) -> String {
    t.state()
        .create_user(tae_sim::NewUser {
            email: "secretaria2@escola.example".into(),
            password: Some("Secretaria@2".into()),
            name: "Secretaria 2".into(),
            cpf: "12345678909".into(),
            ..Default::default()
        })
        .unwrap();
    let (status, body) = t
        .login_as("secretaria2@escola.example", "Secretaria@2")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn nome_envelope_is_nome_arquivo_in_the_read_and_every_search_record() {
    let t = Target::new();
    let token = t.token().await;
    let name = "RM-EDU env=PROD contrato=145 tentativa=7f3a";
    let id = t.upload(&token, name).await;
    let data = t.read(&token, id).await;
    assert_eq!(data["nomeArquivo"], name);
    // D4: the record's shape as TAE sends it.
    let body = search(&t, &token, (1, 10), json!({"pesquisarEmTodaEmpresa": true})).await;
    assert_eq!(body["data"]["total"], 1);
    let record = &records(&body)[0];
    assert_eq!(record["id"], id);
    assert_eq!(record["nomeArquivo"], name);
    assert_eq!(record["status"], api::STATUS_DRAFT);
    assert_eq!(record["autor"], json!({"email": tae_sim::ADMIN_EMAIL}));
    assert_eq!(record["dataExpiracao"], Value::Null);
    let created = record["dataCriacao"].as_str().expect("dataCriacao");
    assert_eq!(created, data["recCreatedOn"].as_str().unwrap());
    assert!(record["dataUltimaAlteracao"].is_string(), "{record}");
    // Published with an expiry date: the record carries it; the recipient search answers the
    // same record.
    let mut body = publication(id, &[("maria@example.com", api::ACAO_SIGN)]);
    body["publicacaoOpcoes"]["dataExpiracao"] = json!("2027-01-31T00:00:00");
    let (status, answer) = t.post(api::PUBLISH_V1, &token, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = t
        .post(
            api::SEARCH_RECIPIENT,
            &token,
            json!({"destinatarioEmail": "MARIA@example.com", "status": [0, 1, 2, 4]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let record = &records(&answer)[0];
    assert_eq!(record["nomeArquivo"], name);
    assert_eq!(record["dataExpiracao"], "2027-01-31T00:00:00");
    assert_eq!(record["autor"]["email"], tae_sim::ADMIN_EMAIL);
    assert_eq!(record["status"], api::STATUS_PENDING);
    assert_ne!(
        record["dataUltimaAlteracao"], record["dataCriacao"],
        "publishing changes the document"
    );
    // D5 answers the same D3 shape.
    let (_, many) = t.post(api::MANY_DOCUMENTS, &token, json!([id])).await;
    assert_eq!(many["data"][0]["nomeArquivo"], name);
}

#[tokio::test]
async fn search_by_name_is_off_by_default_and_switchable() {
    let t = Target::new();
    let token = t.token().await;
    let a = t.upload(&token, "Contrato Alfa").await;
    let b = t.upload(&token, "Contrato Beta").await;
    assert!(!t.state().features().search_by_name);
    let (_, features) = t.portal(Method::GET, "/_sim/features", None).await;
    assert_eq!(features["search_by_name"], false, "{features}");
    let by_name = json!({"pesquisarEmTodaEmpresa": true, "nomeDocumento": "Alfa"});
    // Off: the field is ignored, as TAE most likely ignores it.
    let body = search(&t, &token, (1, 10), by_name.clone()).await;
    assert_eq!(ids(&body), vec![b, a]);
    let features = set_features(&t, json!({"search_by_name": true})).await;
    assert_eq!(features["search_by_name"], true);
    let body = search(&t, &token, (1, 10), by_name.clone()).await;
    assert_eq!(ids(&body), vec![a]);
    set_features(&t, json!({"search_by_name": false})).await;
    let body = search(&t, &token, (1, 10), by_name).await;
    assert_eq!(body["data"]["total"], 2);
    // A misspelt switch is refused, not ignored.
    let (status, body) = t
        .portal(
            Method::POST,
            "/_sim/features",
            Some(json!({"searchByName": true})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn search_filters_by_sender_whole_company_status_array_and_pages() {
    let t = Target::new();
    let admin = t.token().await;
    let other = second_sender(&t).await;
    let mine: Vec<u64> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(t.upload(&admin, &format!("Admin {i}")).await);
        }
        v
    };
    let theirs = t.upload(&other, "Outra secretaria").await;
    let published = t
        .publish(&admin, "Admin publicado", &[("p@example.com", 0)])
        .await;
    // Without pesquisarEmTodaEmpresa: only the caller's own documents.
    let body = search(&t, &other, (1, 10), json!({})).await;
    assert_eq!(ids(&body), vec![theirs]);
    // The whole company, filtered by sender.
    let body = search(
        &t,
        &other,
        (1, 10),
        json!({"pesquisarEmTodaEmpresa": true, "email": tae_sim::ADMIN_EMAIL}),
    )
    .await;
    assert_eq!(ids(&body), vec![published, mine[2], mine[1], mine[0]]);
    assert!(records(&body)
        .iter()
        .all(|r| r["autor"]["email"] == tae_sim::ADMIN_EMAIL));
    // The status array: drafts only, pending only, both; 3 = every status.
    let body = search(
        &t,
        &admin,
        (1, 10),
        json!({"pesquisarEmTodaEmpresa": true, "status": [api::STATUS_DRAFT]}),
    )
    .await;
    assert_eq!(ids(&body), vec![theirs, mine[2], mine[1], mine[0]]);
    let body = search(
        &t,
        &admin,
        (1, 10),
        json!({"pesquisarEmTodaEmpresa": true, "status": [api::STATUS_PENDING, api::STATUS_PARTIALLY_SIGNED]}),
    )
    .await;
    assert_eq!(ids(&body), vec![published]);
    let body = search(
        &t,
        &admin,
        (1, 10),
        json!({"pesquisarEmTodaEmpresa": true, "status": [api::FILTER_ALL]}),
    )
    .await;
    assert_eq!(body["data"]["total"], 5);
    let (status, body) = t
        .post(
            api::SEARCH,
            &admin,
            json!({"pesquisarEmTodaEmpresa": true, "status": ["x"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Paging through the sender's documents, newest first, one page at a time.
    let mut seen = Vec::new();
    for page in 1..=3 {
        let body = search(
            &t,
            &admin,
            (page, 2),
            json!({"pesquisarEmTodaEmpresa": true, "email": tae_sim::ADMIN_EMAIL}),
        )
        .await;
        assert_eq!(body["data"]["total"], 4);
        seen.extend(ids(&body));
    }
    assert_eq!(seen, vec![published, mine[2], mine[1], mine[0]]);
}

/// A draft and a published document, then both cancelled under `model`; returns their ids.
async fn cancel_both(t: &Target, token: &str, model: &str) -> (u64, u64) {
    let features = set_features(t, json!({"cancel_model": model})).await;
    assert_eq!(features["cancel_model"], model);
    let draft = t.upload(token, "Rascunho a cancelar").await;
    let published = t
        .publish(token, "Publicado a cancelar", &[("c@example.com", 0)])
        .await;
    for id in [draft, published] {
        let (status, body) = cancel(t, token, id).await;
        assert_eq!(status, StatusCode::OK, "{model} {id}: {body}");
        assert_eq!(body["success"], true);
    }
    let cancellations = t
        .state()
        .emails()
        .into_iter()
        .filter(|e| e.kind == "cancellation")
        .map(|e| (e.to, e.document_id))
        .collect::<Vec<_>>();
    assert_eq!(
        cancellations,
        vec![("c@example.com".to_string(), Some(published))]
    );
    (draft, published)
}

#[tokio::test]
async fn cancel_model_cancelled_is_status_7_the_default() {
    let t = Target::new();
    let token = t.token().await;
    assert_eq!(t.state().features().cancel_model, CancelModel::Cancelled);
    let (draft, published) = cancel_both(&t, &token, "cancelled").await;
    for id in [draft, published] {
        let data = t.read(&token, id).await;
        assert_eq!(data["status"], api::STATUS_CANCELLED);
        let (status, body) = cancel(&t, &token, id).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            errors_text(&body).contains(api::MSG_ALREADY_CANCELLED),
            "{body}"
        );
    }
    let body = search(&t, &token, (1, 10), json!({"pesquisarEmTodaEmpresa": true})).await;
    assert_eq!(ids(&body), vec![published, draft]);
    let body = search(
        &t,
        &token,
        (1, 10),
        json!({"pesquisarEmTodaEmpresa": true, "status": [api::STATUS_CANCELLED]}),
    )
    .await;
    assert_eq!(body["data"]["total"], 2);
    let portal = t.state().document(published).unwrap();
    assert!(portal["cancelled_at"].is_string());
    assert_eq!(portal["vanished"], false);
}

#[tokio::test]
async fn cancel_model_draft_goes_back_to_rascunho_without_recipients() {
    let t = Target::new();
    let token = t.token().await;
    let (draft, published) = cancel_both(&t, &token, "draft").await;
    assert_eq!(t.state().features().cancel_model, CancelModel::Draft);
    for id in [draft, published] {
        let data = t.read(&token, id).await;
        assert_eq!(data["status"], api::STATUS_DRAFT, "{data}");
        assert_eq!(data["pendentes"], json!([]));
        assert_eq!(data["assinantes"], json!([]));
        // A Rascunho can be cancelled again: nothing tells it from a fresh draft.
        let (status, body) = cancel(&t, &token, id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let portal = t.state().document(id).unwrap();
        assert!(portal["cancelled_at"].is_string(), "{portal}");
        assert_eq!(portal["status"], api::STATUS_DRAFT);
    }
    // Listed among the drafts, not as cancelled.
    let body = search(
        &t,
        &token,
        (1, 10),
        json!({"pesquisarEmTodaEmpresa": true, "status": [api::STATUS_DRAFT]}),
    )
    .await;
    assert_eq!(ids(&body), vec![published, draft]);
    let body = search(
        &t,
        &token,
        (1, 10),
        json!({"pesquisarEmTodaEmpresa": true, "status": [api::STATUS_CANCELLED]}),
    )
    .await;
    assert_eq!(body["data"]["total"], 0);
    // The signer can no longer act; the stand-in would let it be published again.
    assert_eq!(
        t.state()
            .sign(published, "c@example.com")
            .unwrap_err()
            .status,
        409
    );
    let (status, body) = t
        .post(
            api::PUBLISH_V1,
            &token,
            publication(published, &[("c@example.com", 0)]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn cancel_model_vanish_removes_it_from_every_route() {
    let t = Target::new();
    let token = t.token().await;
    let kept = t.upload(&token, "Fica").await;
    let (draft, published) = cancel_both(&t, &token, "vanish").await;
    for id in [draft, published] {
        let (status, body) = read_raw(&t, &token, id).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["success"], false);
        assert_eq!(body["errors"], json!([api::MSG_NOT_FOUND]));
        let (status, body) = cancel(&t, &token, id).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["errors"], json!([api::MSG_NOT_FOUND]));
        let (status, body) = t
            .get(
                &format!("/documents/v1/publicacoes/{id}/download?tipoDownload=1"),
                &token,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["errors"], json!([api::MSG_NOT_FOUND]));
        let (status, _) = t
            .post(
                api::PUBLISH_V1,
                &token,
                publication(id, &[("c@example.com", 0)]),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // The portal still shows it, marked.
        let portal = t.state().document(id).unwrap();
        assert_eq!(portal["vanished"], true);
        assert_eq!(portal["status"], api::STATUS_CANCELLED);
    }
    for status in [
        json!([api::FILTER_ALL]),
        json!([api::STATUS_CANCELLED]),
        json!(null),
    ] {
        let body = search(
            &t,
            &token,
            (1, 10),
            json!({"pesquisarEmTodaEmpresa": true, "status": status}),
        )
        .await;
        assert_eq!(
            ids(&body),
            if status == json!([api::STATUS_CANCELLED]) {
                vec![]
            } else {
                vec![kept]
            }
        );
    }
    let (_, body) = t
        .post(
            api::SEARCH_RECIPIENT,
            &token,
            json!({"destinatarioEmail": "c@example.com"}),
        )
        .await;
    assert_eq!(body["data"]["total"], 0, "{body}");
    let (_, body) = t
        .post(api::MANY_DOCUMENTS, &token, json!([draft, kept, published]))
        .await;
    let listed: Vec<u64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, vec![kept]);
    // Switching the model back does not bring it back.
    set_features(&t, json!({"cancel_model": "cancelled"})).await;
    assert_eq!(
        read_raw(&t, &token, published).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn two_environments_are_separate_documents_in_one_company() {
    // Two RM environments (test and production) with one TAE user: two clients, two tokens,
    // the same document names.
    let t = Target::new();
    let production = t.token().await;
    let test = t.token().await;
    assert_ne!(production, test);
    let name = "Contrato 145 - João Ávila";
    let p = t
        .publish(&production, name, &[("resp@example.com", 0)])
        .await;
    let q = t.publish(&test, name, &[("resp@example.com", 0)]).await;
    assert_ne!(p, q);
    for token in [&production, &test] {
        let body = search(
            &t,
            token,
            (1, 10),
            json!({"email": tae_sim::ADMIN_EMAIL, "status": [0]}),
        )
        .await;
        assert_eq!(ids(&body), vec![q, p]);
        assert!(records(&body).iter().all(|r| r["nomeArquivo"] == name));
    }
    // Each environment's document lives on its own: cancelling one leaves the other.
    let (status, _) = cancel(&t, &test, q).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t.read(&production, p).await["status"], api::STATUS_PENDING);
    t.state().sign(p, "resp@example.com").unwrap();
    assert_eq!(t.read(&test, q).await["status"], api::STATUS_CANCELLED);
    assert_eq!(t.read(&test, p).await["status"], api::STATUS_FINALISED);
}

fn parse_time(s: &Value) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(s.as_str().expect("a timestamp"), "%Y-%m-%dT%H:%M:%S%.f")
        .expect("yyyy-MM-ddTHH:mm:ss.f")
}

fn host_now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

#[tokio::test]
async fn clock_offset_shifts_timestamps_and_token_expiry() {
    let t = Target::new();
    for offset in [600i64, -600] {
        let (status, clock) = t
            .portal(
                Method::POST,
                "/_sim/clock",
                Some(json!({"offset_secs": offset})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{clock}");
        assert_eq!(clock["offset_secs"], offset);
        let skew = (parse_time(&clock["now"]) - host_now()).num_seconds();
        assert!(
            (offset - 5..=offset + 1).contains(&skew),
            "clock now skew {skew}"
        );
        let (_, login) = t.login_as(&t.user, &t.password).await;
        let token = login["data"]["token"].as_str().unwrap().to_string();
        let expires = parse_time(&login["data"]["expirationDate"]);
        let ahead = (expires - host_now()).num_seconds() - 12 * 3600;
        assert!(
            (offset - 5..=offset + 1).contains(&ahead),
            "expirationDate off by {ahead} s with offset {offset}"
        );
        let before = host_now();
        let id = t.upload(&token, "Relógio").await;
        let data = t.read(&token, id).await;
        let created = parse_time(&data["recCreatedOn"]);
        let skew = (created - before).num_seconds();
        assert!(
            (offset - 1..=offset + 5).contains(&skew),
            "recCreatedOn skew {skew}"
        );
        let body = search(&t, &token, (1, 1), json!({})).await;
        assert_eq!(parse_time(&records(&body)[0]["dataCriacao"]), created);
    }
    let (_, clock) = t.portal(Method::GET, "/_sim/clock", None).await;
    assert_eq!(clock["offset_secs"], -600);
    let (status, _) = t
        .portal(Method::POST, "/_sim/clock", Some(json!({"offset": 1})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn token_expiry_follows_the_sim_clock() {
    let t = Target::new();
    t.state().set_faults(tae_sim::FaultConfig {
        token_ttl_secs: Some(300),
        ..Default::default()
    });
    // TAE 10 minutes behind the host: its token's expirationDate is already past on the host's
    // clock, yet TAE accepts it — TAE's own clock decides.
    t.state().set_clock_offset(-600);
    let token = t.token().await;
    let (_, login) = t.login_as(&t.user, &t.password).await;
    assert!(parse_time(&login["data"]["expirationDate"]) < host_now());
    let (status, body) = t.get(api::PROFILE, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // TAE's clock moves 10 minutes ahead of the host: the 5-minute token has expired for TAE,
    // though on the host's clock it was issued 5 minutes before its computed expiry.
    t.state().set_clock_offset(600);
    let (status, _) = t.get(api::PROFILE, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A token issued now is valid, its expirationDate 10 minutes later than the host expects.
    let (_, login) = t.login_as(&t.user, &t.password).await;
    let fresh = login["data"]["token"].as_str().unwrap();
    let ahead = (parse_time(&login["data"]["expirationDate"]) - host_now()).num_seconds();
    assert!((895..=901).contains(&ahead), "expires in {ahead} s");
    assert_eq!(t.get(api::PROFILE, fresh).await.0, StatusCode::OK);
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn sim_extras_off_leaves_only_what_tae_is_known_to_send() {
    let t = Target::new();
    let token = t.token().await;
    let id = t.publish(&token, "Só o TAE", &[("m@example.com", 0)]).await;
    assert!(t.state().features().sim_extras, "on by default");
    let with = t.read(&token, id).await;
    assert!(with.get("nomeDocumento").is_some() && with.get("criadoPor").is_some());
    let features = set_features(&t, json!({"sim_extras": false})).await;
    assert_eq!(features["sim_extras"], false);
    let data = t.read(&token, id).await;
    assert_eq!(
        keys(&data),
        [
            "assinantes",
            "id",
            "motivoRejeicao",
            "nomeArquivo",
            "pendentes",
            "recCreatedOn",
            "recModifiedOn",
            "status",
            "tamanhoArquivo"
        ]
    );
    assert_eq!(keys(&data["pendentes"][0]), ["acao", "email"]);
    let (_, many) = t.post(api::MANY_DOCUMENTS, &token, json!([id])).await;
    assert_eq!(many["data"][0], data);
    let body = search(&t, &token, (1, 10), json!({})).await;
    let expected = [
        "autor",
        "dataCriacao",
        "dataExpiracao",
        "dataUltimaAlteracao",
        "id",
        "nomeArquivo",
        "status",
    ];
    assert_eq!(keys(&records(&body)[0]), expected);
    let (_, body) = t
        .post(
            api::SEARCH_RECIPIENT,
            &token,
            json!({"destinatarioEmail": "m@example.com"}),
        )
        .await;
    assert_eq!(keys(&records(&body)[0]), expected);
}
