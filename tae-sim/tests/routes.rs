//! Every route of TAE-API.md with a success and an error case, the status machine and the
//! permissions. The shared tests run against the stand-in (`sim::*`) and, ignored unless run
//! with `--ignored` and `TAE_LIVE_URL`, `TAE_LIVE_USER`, `TAE_LIVE_PASSWORD` set, against a
//! live TAE (`live::*`); tests needing the portal side run against the stand-in only.

mod common;

use common::{errors_text, publication, unique_email, Target};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tae_sim::api;

/// `sim::<name>` and an ignored `live::<name>` for each shared route test.
macro_rules! sim_and_live {
    ($($name:ident),* $(,)?) => {
        mod sim {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Target::new()).await
                }
            )*
        }
        mod live {
            $(
                #[tokio::test]
                #[ignore = "live TAE: set TAE_LIVE_URL, TAE_LIVE_USER, TAE_LIVE_PASSWORD and run with --ignored"]
                async fn $name() {
                    super::$name(super::Target::live()).await
                }
            )*
        }
    };
}

// ---------- A1 login ----------

async fn a1_login_on_every_alias_with_any_property_case(t: Target) {
    for (path, user_key) in [
        (api::LOGIN_V3, "userName"),
        (api::LOGIN_V2, "UserName"),
        (api::LOGIN_API, "username"),
    ] {
        let (status, body) = t
            .send(
                Method::POST,
                path,
                None,
                Some(json!({user_key: t.user, "Password": t.password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["succeeded"], true);
        let token = body["data"]["token"].as_str().unwrap();
        assert!(token.len() >= 20);
        let expiration = body["data"]["expirationDate"].as_str().unwrap();
        let parsed = chrono::NaiveDateTime::parse_from_str(expiration, "%Y-%m-%dT%H:%M:%S%.f")
            .expect("yyyy-MM-ddTHH:mm:ss.fff");
        let hours = (parsed - chrono::Utc::now().naive_utc()).num_minutes() as f64 / 60.0;
        if !t.is_live() {
            assert!((11.9..=12.1).contains(&hours), "expires in {hours} h");
        }
    }
}

async fn a1_login_refuses_a_wrong_password_and_an_empty_body(t: Target) {
    let (status, body) = t.login_as(&t.user, "wrong-password").await;
    assert!(status.is_client_error(), "{status}");
    assert_eq!(body["succeeded"], false, "{body}");
    if !t.is_live() {
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["description"], api::MSG_BAD_LOGIN);
        assert_eq!(body["messages"][0]["description"], api::MSG_BAD_LOGIN);
        let (status, _) = t
            .send(Method::POST, api::LOGIN_V3, None, Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}

// ---------- A2 profile ----------

async fn a2_profile_of_the_caller_with_permissions(t: Target) {
    let token = t.token().await;
    let (status, body) = t.get(api::PROFILE, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["succeeded"], true);
    assert!(body["data"]["email"]
        .as_str()
        .unwrap()
        .eq_ignore_ascii_case(&t.user));
    assert!(body["data"]["fullName"].is_string());
    if !t.is_live() {
        let p = &body["data"]["permissoes"];
        for flag in [
            api::PERM_SEND,
            api::PERM_DELETE,
            api::PERM_QUERY,
            api::PERM_CREATE_USERS,
        ] {
            assert_eq!(p[flag], true, "{flag}");
        }
        assert_eq!(body["data"]["isAdministrator"], true);
        assert_eq!(body["data"]["isPublisher"], true);
        assert_eq!(body["data"]["cpf"], "52998224725");
    }
}

async fn a2_profile_without_or_with_a_bad_token_is_401(t: Target) {
    let (status, _) = t.send(Method::GET, api::PROFILE, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = t.get(api::PROFILE, "not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    if !t.is_live() {
        assert_eq!(body["succeeded"], false);
    }
}

// ---------- A3 register ----------

fn registration(email: &str, cpf: &str) -> Value {
    json!({"email": email, "password": "", "fullName": "Maria da Conceição", "cpf": cpf,
           "userType": 1, "changePassword": true, "cnpjLicensedCompany": "", "phoneNumber": "",
           "position": "Responsável financeiro", "acceptedTerm": true})
}

async fn a3_register_creates_an_unconfirmed_user_and_mails_them(t: Target) {
    let token = t.token().await;
    let email = unique_email("reg");
    let (status, body) = t
        .post(
            api::REGISTER,
            &token,
            registration(&email, "123.456.789-09"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["succeeded"], true, "{body}");
    if t.is_live() {
        return;
    }
    let user = t.state().user(&email).expect("registered");
    assert!(!user.confirmed);
    assert_eq!(user.cpf, "12345678909");
    let mails = t.state().emails();
    assert!(mails
        .iter()
        .any(|m| m.to == email && m.kind == "registration"));
    // Cannot log in until the e-mail is confirmed (and a password set) in the portal.
    let (status, body) = t.login_as(&email, "Segredo@1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = t
        .portal(
            Method::POST,
            "/_sim/users/confirm",
            Some(json!({"email": email, "password": "Segredo@1"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = t.login_as(&email, "Segredo@1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a3_register_refuses_bad_cpf_missing_name_and_duplicates(t: Target) {
    let token = t.token().await;
    let email = unique_email("bad");
    let (status, body) = t
        .post(api::REGISTER, &token, registration(&email, "12345678900"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["succeeded"], false);
    let mut no_name = registration(&email, "12345678909");
    no_name["fullName"] = json!("");
    let (status, _) = t.post(api::REGISTER, &token, no_name).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    if !t.is_live() {
        let (status, body) = t
            .post(
                api::REGISTER,
                &token,
                registration(tae_sim::ADMIN_EMAIL, "12345678909"),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["description"].as_str().unwrap().contains("Já existe"));
        // International id (tipoIdentificacao 2): 1–30 characters.
        let mut foreign = registration(&unique_email("ext"), "P1234567");
        foreign["tipoIdentificacao"] = json!(2);
        let (status, body) = t.post(api::REGISTER, &token, foreign).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

// ---------- A4 user lookup ----------

async fn a4_email_list_finds_by_substring(t: Target) {
    let token = t.token().await;
    let filter = t.user.to_uppercase();
    let (status, body) = t
        .get(
            &format!("{}?Filter={filter}&Take=10", api::USER_EMAIL_LIST),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = body["data"].as_array().expect("list");
    assert!(list
        .iter()
        .any(|u| u["email"].as_str().unwrap().eq_ignore_ascii_case(&t.user)));
    if !t.is_live() {
        let (_, body) = t
            .get(
                &format!("{}?filter=escola.example", api::USER_EMAIL_LIST),
                &token,
            )
            .await;
        assert_eq!(body["data"].as_array().unwrap().len(), 1);
        let (_, body) = t
            .get(
                &format!("{}?Filter=nobody-here", api::USER_EMAIL_LIST),
                &token,
            )
            .await;
        assert_eq!(body["data"], json!([]));
    }
}

async fn a4_email_list_needs_a_token_and_a_filter(t: Target) {
    let (status, _) = t
        .send(
            Method::GET,
            &format!("{}?Filter=a", api::USER_EMAIL_LIST),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    if !t.is_live() {
        let token = t.token().await;
        let (status, body) = t.get(api::USER_EMAIL_LIST, &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["success"], false);
    }
}

// ---------- D1 upload ----------

async fn d1_upload_returns_an_integer_id_of_a_draft(t: Target) {
    let token = t.token().await;
    let id = t.upload(&token, "Contrato 145 - João Ávila").await;
    let data = t.read(&token, id).await;
    assert_eq!(data["status"], api::STATUS_DRAFT);
    // `nomeArquivo` is the upload's NomeEnvelope (TAE-API.md: "What TAE keeps that the client
    // chose"), not the file's own name.
    assert_eq!(data["nomeArquivo"], "Contrato 145 - João Ávila");
    let size = common::sample_pdf("Contrato 145 - João Ávila").len();
    assert_eq!(data["tamanhoArquivo"], size as u64);
    if !t.is_live() {
        let doc = t.state().document(id).unwrap();
        assert_eq!(doc["name"], "Contrato 145 - João Ávila");
        assert_eq!(doc["file_name"], "contrato.pdf");
        assert_eq!(
            doc["sha256"].as_str().unwrap(),
            tae_sim::state::sha256_hex(&common::sample_pdf("Contrato 145 - João Ávila"))
        );
    }
}

async fn d1_upload_refuses_non_pdf_no_file_and_no_token(t: Target) {
    let token = t.token().await;
    let (status, body) = t
        .upload_bytes(&token, "x", "x.txt", b"hello, not a pdf".to_vec())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["success"], false);
    if !t.is_live() {
        assert!(errors_text(&body).contains("PDF"), "{body}");
        let form = reqwest::multipart::Form::new().text("NomeEnvelope", "sem arquivo");
        let response = t
            .client
            .post(t.url(api::UPLOAD))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    let (status, _) = t
        .upload_bytes("bad-token", "x", "x.pdf", common::sample_pdf("x"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

// ---------- D2 publish ----------

async fn d2_publish_on_both_paths_makes_it_pending(t: Target) {
    let token = t.token().await;
    for path in [api::PUBLISH_V1, api::PUBLISH_V2] {
        let id = t.upload(&token, "Contrato publicado").await;
        let (status, body) = t
            .post(path, &token, publication(id, &[("resp@example.com", 0)]))
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let data = t.read(&token, id).await;
        assert_eq!(data["status"], api::STATUS_PENDING);
        assert_eq!(data["pendentes"][0]["email"], "resp@example.com");
        assert_eq!(data["pendentes"][0]["acao"], 0);
        assert_eq!(data["assinantes"], json!([]));
        if !t.is_live() {
            assert!(t
                .state()
                .emails()
                .iter()
                .any(|m| m.kind == "signature_request"
                    && m.to == "resp@example.com"
                    && m.document_id == Some(id)));
        }
    }
}

async fn d2_publish_refuses_unknown_id_republish_and_repeated_recipient(t: Target) {
    let token = t.token().await;
    let (status, body) = t
        .post(
            api::PUBLISH_V1,
            &token,
            publication(999_999_999, &[("a@example.com", 0)]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(errors_text(&body).contains(api::MSG_NOT_FOUND), "{body}");

    let id = t.upload(&token, "Contrato repetido").await;
    let (status, body) = t
        .post(
            api::PUBLISH_V1,
            &token,
            publication(id, &[("a@example.com", 0), ("A@Example.com", 2)]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        errors_text(&body)
            .to_lowercase()
            .contains("destinatário repetido"),
        "{body}"
    );
    let (status, _) = t
        .post(
            api::PUBLISH_V1,
            &token,
            publication(id, &[("a@example.com", 0)]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = t
        .post(
            api::PUBLISH_V1,
            &token,
            publication(id, &[("a@example.com", 0)]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        errors_text(&body).contains(api::MSG_ALREADY_PUBLISHED),
        "{body}"
    );
}

// ---------- D3 read ----------

async fn d3_read_v1_and_v2_have_the_same_shape(t: Target) {
    let token = t.token().await;
    let id = t
        .publish(
            &token,
            "Contrato leitura",
            &[("resp@example.com", 0), ("val@example.com", 1)],
        )
        .await;
    let (_, v1) = t
        .get(&format!("/documents/v1/publicacoes/{id}"), &token)
        .await;
    let (_, v2) = t
        .get(&format!("/documents/v2/publicacoes/{id}"), &token)
        .await;
    assert_eq!(v1["data"], v2["data"]);
    let data = &v2["data"];
    for key in [
        "id",
        "status",
        "nomeArquivo",
        "tamanhoArquivo",
        "recCreatedOn",
        "recModifiedOn",
        "motivoRejeicao",
        "assinantes",
        "pendentes",
    ] {
        assert!(data.get(key).is_some(), "missing {key} in {data}");
    }
    assert_eq!(data["id"], id);
    assert_eq!(v2["success"], true);
    assert_eq!(v2["errors"], json!([]));
}

async fn d3_read_of_an_unknown_document(t: Target) {
    let token = t.token().await;
    let (status, body) = t.get("/documents/v2/publicacoes/999999999", &token).await;
    assert!(status.is_client_error(), "{status}");
    assert_eq!(body["success"], false);
    assert!(errors_text(&body).contains(api::MSG_NOT_FOUND), "{body}");
    let (status, _) = t
        .send(Method::GET, "/documents/v2/publicacoes/1", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn paths_are_case_insensitive() {
    let t = Target::new();
    let token = t.token().await;
    let id = t.upload(&token, "Caixa").await;
    let (status, body) = t
        .get(&format!("/Documents/V2/Publicacoes/{id}"), &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(t.state().counter("GET", api::READ_V2), 1);
}

// ---------- the status machine (portal side) ----------

#[tokio::test]
async fn status_machine_pending_partial_finalised() {
    let t = Target::new();
    let token = t.token().await;
    let id = t
        .publish(
            &token,
            "Contrato 145",
            &[
                ("resp@example.com", 0),
                ("val@example.com", 1),
                ("test@example.com", 2),
            ],
        )
        .await;
    // Any order without workflow: the validator first.
    let (status, body) = t
        .portal(
            Method::POST,
            &format!("/_sim/documents/{id}/act"),
            Some(json!({"email": "val@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = t.read(&token, id).await;
    assert_eq!(data["status"], api::STATUS_PARTIALLY_SIGNED);
    assert_eq!(data["assinantes"].as_array().unwrap().len(), 1);
    assert_eq!(data["assinantes"][0]["email"], "val@example.com");
    assert_eq!(data["assinantes"][0]["acao"], 1);
    assert!(data["assinantes"][0]["data"].is_string());
    assert_eq!(data["pendentes"].as_array().unwrap().len(), 2);

    t.state().sign(id, "resp@example.com").unwrap();
    assert_eq!(
        t.read(&token, id).await["status"],
        api::STATUS_PARTIALLY_SIGNED
    );
    t.state().witness(id, "TEST@example.com").unwrap();
    let data = t.read(&token, id).await;
    assert_eq!(data["status"], api::STATUS_FINALISED);
    assert_eq!(data["pendentes"], json!([]));
    assert_eq!(data["assinantes"].as_array().unwrap().len(), 3);
    let doc = t.state().document(id).unwrap();
    assert_eq!(doc["status_name"], "Finalizado");
    assert_eq!(doc["recipients"][2]["state"], "witnessed");
    assert!(t.state().emails().iter().any(|m| m.kind == "finalised"));

    // Acting twice, or on a finalised document, is refused.
    let err = t.state().act(id, "resp@example.com").unwrap_err();
    assert_eq!(err.status, 409);
    let (status, _) = t
        .portal(
            Method::POST,
            &format!("/_sim/documents/{id}/act"),
            Some(json!({"email": "stranger@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn status_machine_rejection_with_reason() {
    let t = Target::new();
    let token = t.token().await;
    let id = t
        .publish(
            &token,
            "Contrato rejeitado",
            &[("resp@example.com", 0), ("val@example.com", 1)],
        )
        .await;
    let (status, _) = t
        .portal(
            Method::POST,
            &format!("/_sim/documents/{id}/reject"),
            Some(json!({"email": "resp@example.com", "reason": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a reason is required");
    let (status, body) = t
        .portal(
            Method::POST,
            &format!("/_sim/documents/{id}/reject"),
            Some(json!({"email": "resp@example.com", "reason": "Valor da mensalidade incorreto"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = t.read(&token, id).await;
    assert_eq!(data["status"], api::STATUS_REJECTED);
    assert_eq!(data["motivoRejeicao"], "Valor da mensalidade incorreto");
    assert_eq!(
        t.state().document(id).unwrap()["recipients"][0]["state"],
        "rejected"
    );
    // A rejected document can still be cancelled (it is not finalised).
    let (status, body) = t
        .post(
            &format!("/documents/v1/publicacoes/{id}/cancelar"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(t.read(&token, id).await["status"], api::STATUS_CANCELLED);
    assert_eq!(
        t.state().act(id, "val@example.com").unwrap_err().status,
        409
    );
}

#[tokio::test]
async fn status_machine_workflow_order() {
    let t = Target::new();
    let token = t.token().await;
    let id = t.upload(&token, "Contrato em fluxo").await;
    let mut body = publication(id, &[("first@example.com", 1), ("second@example.com", 0)]);
    body["utilizaWorkflow"] = json!(true);
    body["destinatarios"][0]["workflow"] = json!(1);
    body["destinatarios"][1]["workflow"] = json!(2);
    let (status, response) = t.post(api::PUBLISH_V1, &token, body).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let err = t.state().act(id, "second@example.com").unwrap_err();
    assert_eq!(err.status, 409, "{err}");
    t.state().act(id, "first@example.com").unwrap();
    t.state().act(id, "second@example.com").unwrap();
    assert_eq!(t.read(&token, id).await["status"], api::STATUS_FINALISED);
}

#[tokio::test]
async fn strict_signers_must_confirm_their_account_first() {
    let t = Target::new();
    let token = t.token().await;
    let (status, body) = t
        .portal(
            Method::POST,
            "/_sim/features",
            Some(json!({"strict_signers": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["strict_signers"], true);
    let email = unique_email("strict");
    let (status, _) = t
        .post(api::REGISTER, &token, registration(&email, "12345678909"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let id = t.publish(&token, "Estrito", &[(email.as_str(), 0)]).await;
    assert_eq!(t.state().act(id, &email).unwrap_err().status, 409);
    t.state().confirm_user(&email, Some("Nova@123")).unwrap();
    t.state().act(id, &email).unwrap();
    assert_eq!(t.read(&token, id).await["status"], api::STATUS_FINALISED);
}

// ---------- D4 search ----------

async fn d4_search_pages_and_filters(t: Target) {
    if !t.is_live() {
        // The by-name filter is a guess about TAE, off by default.
        t.state().set_search_by_name(true);
    }
    let token = t.token().await;
    let tag = format!("Busca {}", fastrand::u32(..));
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(t.upload(&token, &format!("{tag} {i}")).await);
    }
    let path = format!("{}?PaginaAtual=1&TamanhoPagina=2", api::SEARCH);
    let (status, body) = t
        .post(
            &path,
            &token,
            json!({"pesquisarEmTodaEmpresa": true, "nomeDocumento": tag.to_lowercase()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    if t.is_live() {
        assert!(body["data"]["registro"].is_array());
        return;
    }
    assert_eq!(body["data"]["total"], 3);
    let page: Vec<u64> = body["data"]["registro"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(page, vec![ids[2], ids[1]], "newest first");
    let item = &body["data"]["registro"][0];
    for key in [
        "id",
        "nomeDocumento",
        "status",
        "recCreatedOn",
        "recModifiedOn",
        "criadoPor",
    ] {
        assert!(item.get(key).is_some(), "{key}");
    }
    let (_, body) = t
        .post(
            &format!("{}?PaginaAtual=2&TamanhoPagina=2", api::SEARCH),
            &token,
            json!({"pesquisarEmTodaEmpresa": true, "nomeDocumento": tag}),
        )
        .await;
    assert_eq!(body["data"]["registro"][0]["id"], ids[0]);
    // Status filter, sender filter, and the recipient search.
    let (status, _) = t
        .post(
            api::PUBLISH_V1,
            &token,
            publication(ids[0], &[("busca@example.com", 0)]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = t
        .post(
            api::SEARCH,
            &token,
            json!({"pesquisarEmTodaEmpresa": true, "status": 0, "nomeDocumento": tag}),
        )
        .await;
    assert_eq!(body["data"]["total"], 1);
    let (_, body) = t
        .post(
            api::SEARCH_RECIPIENT,
            &token,
            json!({"destinatarioEmail": "busca@example.com", "status": [0, 1]}),
        )
        .await;
    assert_eq!(body["data"]["total"], 1, "{body}");
    assert_eq!(body["data"]["registro"][0]["id"], ids[0]);
    // `email` is the sender: the recipient's address finds nothing, the sender's finds all three.
    let (_, body) = t
        .post(
            api::SEARCH,
            &token,
            json!({"pesquisarEmTodaEmpresa": true, "email": "busca@example.com"}),
        )
        .await;
    assert_eq!(body["data"]["total"], 0, "{body}");
    let (_, body) = t
        .post(
            api::SEARCH,
            &token,
            json!({"pesquisarEmTodaEmpresa": true, "email": t.user, "nomeDocumento": tag}),
        )
        .await;
    assert_eq!(body["data"]["total"], 3, "{body}");
}

async fn d4_search_refuses_a_bad_page_size(t: Target) {
    let token = t.token().await;
    let (status, body) = t
        .post(
            &format!("{}?PaginaAtual=1&TamanhoPagina=0", api::SEARCH),
            &token,
            json!({"pesquisarEmTodaEmpresa": true}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = t
        .send(Method::POST, api::SEARCH, None, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

// ---------- D5 many ids ----------

async fn d5_many_ids_returns_the_known_ones(t: Target) {
    let token = t.token().await;
    let a = t.upload(&token, "Muitos A").await;
    let b = t.publish(&token, "Muitos B", &[("m@example.com", 0)]).await;
    let (status, body) = t
        .post(api::MANY_DOCUMENTS, &token, json!([a, 999_999_999u64, b]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = body["data"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{body}");
    let single = t.read(&token, b).await;
    assert!(list.contains(&single), "same object as D3");
}

async fn d5_many_ids_refuses_more_than_1000_and_can_be_switched_off(t: Target) {
    let token = t.token().await;
    let ids: Vec<u64> = (1..=1001).collect();
    let (status, body) = t.post(api::MANY_DOCUMENTS, &token, json!(ids)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    if t.is_live() {
        return;
    }
    let (status, _) = t
        .post(api::MANY_DOCUMENTS, &token, json!({"ids": [1]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = t
        .portal(
            Method::POST,
            "/_sim/features",
            Some(json!({"many_ids": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = t.post(api::MANY_DOCUMENTS, &token, json!([1])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.state().set_many_ids(true);
    let (status, _) = t.post(api::MANY_DOCUMENTS, &token, json!([1])).await;
    assert_eq!(status, StatusCode::OK);
}

// ---------- D6 / D7 recipients ----------

async fn d6_d7_replace_a_recipient(t: Target) {
    let token = t.token().await;
    let id = t
        .publish(
            &token,
            "Troca de e-mail",
            &[("old@example.com", 0), ("val@example.com", 1)],
        )
        .await;
    let (status, body) = t
        .send(
            Method::DELETE,
            api::REMOVE_RECIPIENT,
            Some(&token),
            Some(json!({"idDocumento": id, "emailDestinatario": "old@example.com"})),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let add = json!({"idDocumento": id, "destinatarios": publication(id, &[("new@example.com", 0)])["destinatarios"]});
    let (status, body) = t.post(api::ADD_RECIPIENTS, &token, add.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = t.read(&token, id).await;
    let pending: Vec<&str> = data["pendentes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["email"].as_str().unwrap())
        .collect();
    assert!(pending.contains(&"new@example.com") && !pending.contains(&"old@example.com"));
    // Adding the same e-mail again is a repeated recipient.
    let (status, body) = t.post(api::ADD_RECIPIENTS, &token, add).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        errors_text(&body).contains("destinatário repetido"),
        "{body}"
    );
    if !t.is_live() {
        let mails = t.state().emails();
        assert!(mails
            .iter()
            .any(|m| m.to == "old@example.com" && m.kind == "recipient_removed"));
        assert!(mails
            .iter()
            .any(|m| m.to == "new@example.com" && m.kind == "signature_request"));
    }
}

async fn d7_remove_refuses_unknown_recipient_and_missing_body(t: Target) {
    let token = t.token().await;
    let id = t
        .publish(
            &token,
            "Remoção",
            &[("a@example.com", 0), ("b@example.com", 1)],
        )
        .await;
    let (status, body) = t
        .send(
            Method::DELETE,
            api::REMOVE_RECIPIENT,
            Some(&token),
            Some(json!({"idDocumento": id, "emailDestinatario": "nobody@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = t
        .send(Method::DELETE, api::REMOVE_RECIPIENT, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    if !t.is_live() {
        t.state().sign(id, "a@example.com").unwrap();
        let (status, body) = t
            .send(
                Method::DELETE,
                api::REMOVE_RECIPIENT,
                Some(&token),
                Some(json!({"idDocumento": id, "emailDestinatario": "a@example.com"})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "signed recipients stay: {body}"
        );
        // Removing the last pending recipient finalises the document.
        let (status, body) = t
            .send(
                Method::DELETE,
                api::REMOVE_RECIPIENT,
                Some(&token),
                Some(json!({"idDocumento": id, "emailDestinatario": "b@example.com"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(t.read(&token, id).await["status"], api::STATUS_FINALISED);
    }
}

// ---------- D8 cancel ----------

async fn d8_cancel_a_pending_document(t: Target) {
    let token = t.token().await;
    let id = t.publish(&token, "Cancelar", &[("c@example.com", 0)]).await;
    let path = format!("/documents/v1/publicacoes/{id}/cancelar");
    let (status, body) = t.send(Method::POST, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = t.read(&token, id).await;
    if !t.is_live() {
        assert_eq!(data["status"], api::STATUS_CANCELLED);
        assert!(t
            .state()
            .emails()
            .iter()
            .any(|m| m.to == "c@example.com" && m.kind == "cancellation"));
    }
    let (status, body) = t.send(Method::POST, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "cancelled twice: {body}");
}

#[tokio::test]
async fn d8_cancel_refuses_a_finalised_document() {
    let t = Target::new();
    let token = t.token().await;
    let id = t
        .publish(&token, "Finalizado", &[("f@example.com", 0)])
        .await;
    t.state().sign(id, "f@example.com").unwrap();
    let (status, body) = t
        .send(
            Method::POST,
            &format!("/documents/v1/publicacoes/{id}/cancelar"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        errors_text(&body).contains(api::MSG_FINALISED_CANCEL),
        "{body}"
    );
    let (status, _) = t
        .send(
            Method::POST,
            "/documents/v1/publicacoes/999999999/cancelar",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

// ---------- D9 download ----------

fn decode(body: &Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(body["data"]["fileBytes"].as_str().expect("fileBytes"))
        .expect("base64")
}

#[tokio::test]
async fn d9_download_original_signed_and_zip() {
    let t = Target::new();
    let token = t.token().await;
    let id = t.publish(&token, "Baixar", &[("d@example.com", 0)]).await;
    let path = |kind: u32| format!("/documents/v1/publicacoes/{id}/download?tipoDownload={kind}");
    let (status, body) = t.get(&path(1), &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(decode(&body), common::sample_pdf("Baixar"));
    assert_eq!(body["data"]["fileName"], "contrato.pdf");

    let (status, body) = t.get(&path(3), &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not finalised yet: {body}");

    t.state().sign(id, "d@example.com").unwrap();
    let (status, body) = t.get(&path(2), &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let signed = lopdf::Document::load_mem(&decode(&body)).expect("a real PDF");
    assert_eq!(signed.get_pages().len(), 2, "original page + manifest");
    let manifest = signed.extract_text(&[2]).unwrap_or_default();
    assert!(manifest.contains("d@example.com"), "{manifest}");
    let (status, body) = t.get(&path(3), &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = t.get(&path(4), &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(decode(&body).starts_with(b"PK\x03\x04"));
    assert!(body["data"]["fileName"].as_str().unwrap().ends_with(".zip"));
}

async fn d9_download_refuses_a_bad_kind_and_unknown_document(t: Target) {
    let token = t.token().await;
    let id = t.upload(&token, "Tipo").await;
    let (status, _) = t
        .get(
            &format!("/documents/v1/publicacoes/{id}/download?tipoDownload=9"),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = t
        .get(
            "/documents/v1/publicacoes/999999999/download?tipoDownload=1",
            &token,
        )
        .await;
    assert!(status.is_client_error());
    assert_eq!(body["success"], false);
}

// ---------- permissions ----------

#[tokio::test]
async fn permissions_are_enforced_per_route_with_403() {
    let t = Target::new();
    let admin = t.token().await;
    let doc = t
        .publish(&admin, "Permissões", &[("p@example.com", 0)])
        .await;
    let (status, body) = t
        .portal(
            Method::POST,
            "/_sim/users",
            Some(
                json!({"email": "consulta@escola.example", "password": "Consulta@1",
                        "name": "Só Consulta", "cpf": "12345678909",
                        "permissions": {"query": true}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, login) = t.login_as("consulta@escola.example", "Consulta@1").await;
    let token = login["data"]["token"].as_str().unwrap().to_string();

    let (_, profile) = t.get(api::PROFILE, &token).await;
    assert_eq!(profile["data"]["permissoes"][api::PERM_QUERY], true);
    assert_eq!(profile["data"]["permissoes"][api::PERM_SEND], false);
    assert_eq!(profile["data"]["isPublisher"], false);

    // query works
    let (status, _) = t
        .get(&format!("/documents/v2/publicacoes/{doc}"), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    // publish (upload) does not
    let (status, body) = t
        .upload_bytes(&token, "x", "x.pdf", common::sample_pdf("x"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"success": false, "data": null, "errors": ["Usuário sem permissão para enviar documentos."], "code": 403})
    );
    let (status, _) = t
        .post(
            api::PUBLISH_V1,
            &token,
            publication(doc, &[("x@example.com", 0)]),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // delete does not
    let (status, body) = t
        .send(
            Method::POST,
            &format!("/documents/v1/publicacoes/{doc}/cancelar"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["errors"][0],
        "Usuário sem permissão para excluir documentos."
    );
    // create users does not (identity envelope)
    let (status, body) = t
        .post(
            api::REGISTER,
            &token,
            registration("novo@example.com", "12345678909"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["succeeded"], false);
    assert_eq!(
        body["description"],
        "Usuário sem permissão para criar usuários."
    );

    // A user without query cannot read.
    t.state()
        .set_permissions("consulta@escola.example", tae_sim::Permissions::NONE)
        .unwrap();
    let (status, body) = t
        .get(&format!("/documents/v2/publicacoes/{doc}"), &token)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["errors"][0],
        "Usuário sem permissão para consultar documentos."
    );
}

#[tokio::test]
async fn documents_of_another_company_are_invisible() {
    let t = Target::new();
    let admin = t.token().await;
    let doc = t.upload(&admin, "Da Escola Exemplo").await;
    t.state()
        .create_user(tae_sim::NewUser {
            email: "outra@escola2.example".into(),
            password: Some("Outra@123".into()),
            name: "Outra Escola".into(),
            cpf: "12345678909".into(),
            company: Some("Outra Escola".into()),
            ..Default::default()
        })
        .unwrap();
    let (_, login) = t.login_as("outra@escola2.example", "Outra@123").await;
    let other = login["data"]["token"].as_str().unwrap().to_string();
    let (status, body) = t
        .get(&format!("/documents/v2/publicacoes/{doc}"), &other)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(errors_text(&body).contains(api::MSG_NOT_FOUND));
    let (_, body) = t.post(api::MANY_DOCUMENTS, &other, json!([doc])).await;
    assert_eq!(body["data"], json!([]));
}

// ---------- portal and counters ----------

#[tokio::test]
async fn portal_lists_documents_emails_and_counts_routes() {
    let t = Target::new();
    let token = t.token().await;
    let id = t
        .publish(&token, "Portal", &[("portal@example.com", 0)])
        .await;
    let (status, docs) = t.portal(Method::GET, "/_sim/documents", None).await;
    assert_eq!(status, StatusCode::OK);
    let doc = &docs[0];
    assert_eq!(doc["id"], id);
    assert_eq!(doc["status"], 0);
    assert_eq!(doc["status_name"], "Pendente");
    assert_eq!(doc["createdBy"], tae_sim::ADMIN_EMAIL);
    assert_eq!(doc["recipients"][0]["acao"], 0);
    assert_eq!(doc["recipients"][0]["state"], "pending");
    assert_eq!(doc["sha256"].as_str().unwrap().len(), 64);
    assert!(doc["file_size"].as_u64().unwrap() > 100);

    let (_, emails) = t.portal(Method::GET, "/_sim/emails", None).await;
    let mail = emails
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["to"] == "portal@example.com")
        .expect("signature request");
    assert_eq!(mail["kind"], "signature_request");
    assert_eq!(mail["document_id"], id);
    assert!(mail["at"].is_string() && mail["subject"].is_string());

    let (_, counters) = t.portal(Method::GET, "/_sim/counters", None).await;
    assert_eq!(counters["POST /identityintegration/v3/auth/login"], 1);
    assert_eq!(counters["POST /documents/v1/envelopes/upload"], 1);
    assert_eq!(counters["POST /documents/v1/publicacoes"], 1);
    assert!(
        counters.get("GET /_sim/documents").is_none(),
        "portal not counted"
    );
    let (status, _) = t.portal(Method::POST, "/_sim/counters/reset", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(t.state().counters().is_empty());

    let (_, users) = t.portal(Method::GET, "/_sim/users", None).await;
    assert_eq!(users[0]["email"], tae_sim::ADMIN_EMAIL);
    assert!(users[0].get("password").is_none());

    let (status, _) = t.portal(Method::POST, "/_sim/reset", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(t.state().documents().is_empty());
    assert!(t.state().emails().is_empty());
    let (status, _) = t.get(api::PROFILE, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "reset drops tokens");
}

#[tokio::test]
async fn portal_errors_are_json_with_a_status() {
    let t = Target::new();
    let (status, body) = t
        .portal(
            Method::POST,
            "/_sim/users",
            Some(json!({"email": "not-an-email"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].is_string());
    let (status, _) = t
        .portal(
            Method::POST,
            "/_sim/users/confirm",
            Some(json!({"email": "nobody@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = t
        .portal(
            Method::POST,
            "/_sim/documents/123/act",
            Some(json!({"email": "a@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = t
        .portal(
            Method::PUT,
            "/_sim/faults",
            Some(json!({"latency_ms": "slow"})),
        )
        .await;
    assert!(status.is_client_error());
}

// Every test above that takes a `Target` runs twice: `sim::<name>` against an in-process
// stand-in (always), and `live::<name>` against a real TAE — ignored unless asked for with
// `--ignored` (see `docs/tae-sim.md`), so a live run never reports a test it did not run as a
// pass. Tests that need the portal side (signing, chosen users, a second company) have no live
// twin at all.
sim_and_live!(
    a1_login_on_every_alias_with_any_property_case,
    a1_login_refuses_a_wrong_password_and_an_empty_body,
    a2_profile_of_the_caller_with_permissions,
    a2_profile_without_or_with_a_bad_token_is_401,
    a3_register_creates_an_unconfirmed_user_and_mails_them,
    a3_register_refuses_bad_cpf_missing_name_and_duplicates,
    a4_email_list_finds_by_substring,
    a4_email_list_needs_a_token_and_a_filter,
    d1_upload_returns_an_integer_id_of_a_draft,
    d1_upload_refuses_non_pdf_no_file_and_no_token,
    d2_publish_on_both_paths_makes_it_pending,
    d2_publish_refuses_unknown_id_republish_and_repeated_recipient,
    d3_read_v1_and_v2_have_the_same_shape,
    d3_read_of_an_unknown_document,
    d4_search_pages_and_filters,
    d4_search_refuses_a_bad_page_size,
    d5_many_ids_returns_the_known_ones,
    d5_many_ids_refuses_more_than_1000_and_can_be_switched_off,
    d6_d7_replace_a_recipient,
    d7_remove_refuses_unknown_recipient_and_missing_body,
    d8_cancel_a_pending_document,
    d9_download_refuses_a_bad_kind_and_unknown_document,
);
