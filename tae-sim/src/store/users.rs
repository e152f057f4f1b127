//! Users: creation (portal), registration (A3), confirmation and lookup (A4).

use super::{Inner, Need};
use crate::api;
use crate::model::*;

impl Inner {
    pub(crate) fn create_user(&mut self, new: NewUser) -> SimResult<User> {
        let email = new.email.trim().to_string();
        if !valid_email(&email) {
            return Err(SimError::bad_request("E-mail inválido."));
        }
        if self.user(&email).is_some() {
            return Err(SimError::bad_request(
                "Já existe um usuário cadastrado com este e-mail.",
            ));
        }
        let company_name = new.company.unwrap_or_else(|| COMPANY_NAME.to_string());
        let company_id = self.company_id(&company_name);
        let user = User {
            id: self.users.last().map_or(0, |u| u.id) + 1,
            name: if new.name.trim().is_empty() {
                email.clone()
            } else {
                new.name.trim().to_string()
            },
            email,
            cpf: new
                .cpf
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect(),
            confirmed: new.confirmed.unwrap_or(true),
            administrator: new.administrator,
            permissions: new.permissions.unwrap_or(Permissions::ALL),
            company: company_name,
            company_id,
            password: new.password.filter(|p| !p.is_empty()),
            created_at: tae_time(self.now()),
        };
        self.add_user(user.clone());
        Ok(user)
    }

    /// A3: registration by an authenticated user; the new user is unconfirmed, has no
    /// permissions, belongs to the caller's company and gets a confirmation e-mail.
    pub(crate) fn register(
        &mut self,
        caller: &User,
        email: &str,
        full_name: &str,
        identification: &str,
        identification_type: i64,
        password: Option<String>,
    ) -> SimResult<User> {
        Self::require(caller, Need::CreateUsers)?;
        if full_name.trim().is_empty() {
            return Err(SimError::bad_request("O nome completo é obrigatório."));
        }
        if email.trim().is_empty() {
            return Err(SimError::bad_request("O e-mail é obrigatório."));
        }
        if !valid_email(email.trim()) {
            return Err(SimError::bad_request("E-mail inválido."));
        }
        let identification = identification.trim();
        if identification_type == api::IDENT_FOREIGN {
            if identification.is_empty() || identification.chars().count() > 30 {
                return Err(SimError::bad_request(
                    "Identificação internacional inválida (1 a 30 caracteres).",
                ));
            }
        } else {
            let digits: String = identification
                .chars()
                .filter(|c| !matches!(c, '.' | '-' | '/' | ' '))
                .collect();
            if !valid_cpf_or_cnpj(&digits) {
                return Err(SimError::bad_request("CPF/CNPJ inválido."));
            }
        }
        let user = self.create_user(NewUser {
            email: email.trim().to_string(),
            password,
            name: full_name.trim().to_string(),
            cpf: identification.to_string(),
            confirmed: Some(false),
            permissions: Some(Permissions::NONE),
            administrator: false,
            company: Some(caller.company.clone()),
        })?;
        self.send_email(
            &user.email,
            "registration",
            "Confirme seu cadastro no TOTVS Assinatura Eletrônica".to_string(),
            None,
        );
        Ok(user)
    }

    pub(crate) fn confirm_user(
        &mut self,
        email: &str,
        password: Option<String>,
    ) -> SimResult<User> {
        let user = self
            .user_mut(email)
            .ok_or_else(|| SimError::bad_request("Usuário não encontrado."))?;
        user.confirmed = true;
        if let Some(p) = password.filter(|p| !p.is_empty()) {
            user.password = Some(p);
        }
        Ok(user.clone())
    }

    pub(crate) fn find_users(&self, filter: &str, take: usize) -> Vec<User> {
        let filter = filter.to_lowercase();
        self.users
            .iter()
            .filter(|u| u.email.to_lowercase().contains(&filter))
            .take(take)
            .cloned()
            .collect()
    }
}
