//! Seed data: the demo school (a small, story-like set) and a bulk set for reliability tests and
//! benchmarks.

use crate::db::{DbResult, FinancialResponsible, RmUser, SchoolDb, PROCESS_PERMISSION};
use serde_json::json;

/// The demo's RM user: has the process permission, is interactive, and is NOT registered in TAE
/// (so the plugin shows the CPF screen the first time).
pub const DEMO_RM_USER: &str = "secretaria";
/// An RM user whose profile lacks the process permission.
pub const DEMO_RM_USER_NO_PERMISSION: &str = "professor";
/// A non-interactive RM user (a scheduled job): the plugin uses the service user.
pub const DEMO_RM_USER_JOB: &str = "agendador";
/// The CPF the demo's RM user types in the CPF screen.
pub const DEMO_RM_USER_CPF: &str = "529.982.247-25";
/// The demo's period.
pub const DEMO_PERIOD: &str = "2026/1";
/// The demo's two courses.
pub const DEMO_COURSES: [&str; 2] = ["Enfermagem", "Técnico em Informática"];

/// A valid CPF (formatted `000.000.000-00`) from its first nine digits.
pub fn cpf_from_base(base: u32) -> String {
    let digits: Vec<u32> = format!("{:09}", base % 1_000_000_000)
        .chars()
        .map(|c| c.to_digit(10).unwrap_or(0))
        .collect();
    let check = |ds: &[u32]| {
        let n = ds.len() as u32 + 1;
        let sum: u32 = ds.iter().enumerate().map(|(i, d)| d * (n - i as u32)).sum();
        let r = (sum * 10) % 11;
        if r == 10 {
            0
        } else {
            r
        }
    };
    let mut all = digits.clone();
    all.push(check(&all));
    all.push(check(&all));
    let s: String = all
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
        .collect();
    format!("{}.{}.{}-{}", &s[0..3], &s[3..6], &s[6..9], &s[9..11])
}

/// Whether a CPF (formatted or not) has valid check digits and is not a repeated digit.
pub fn cpf_is_valid(cpf: &str) -> bool {
    let ds: Vec<u32> = cpf.chars().filter_map(|c| c.to_digit(10)).collect();
    if ds.len() != 11 || ds.iter().all(|d| *d == ds[0]) {
        return false;
    }
    let base: u32 = ds[..9].iter().fold(0, |acc, d| acc * 10 + d);
    cpf_from_base(base)
        .chars()
        .filter_map(|c| c.to_digit(10))
        .collect::<Vec<_>>()
        == ds
}

/// The school, its unit, courses, profiles and RM users shared by both seeds.
pub fn seed_base(db: &SchoolDb) -> DbResult<()> {
    db.add_coligada(
        1,
        "Centro Educacional Esperança Ltda.",
        "12.345.678/0001-95",
    )?;
    db.add_filial(1, 1, "Unidade Centro", "São Paulo - SP")?;
    db.add_filial(1, 2, "Unidade Jardim Botânico", "Campinas - SP")?;
    db.add_course(DEMO_COURSES[0], 48)?;
    db.add_course(DEMO_COURSES[1], 18)?;
    db.add_profile(
        "SECRETARIA",
        "Secretaria Acadêmica",
        &[PROCESS_PERMISSION, "Educacional - Contratos"],
    )?;
    db.add_profile(
        "DOCENTE",
        "Corpo Docente",
        &["Educacional - Diário de classe"],
    )?;
    db.add_profile("JOBS", "Processos agendados", &[PROCESS_PERMISSION])?;
    db.add_user(&RmUser {
        login: DEMO_RM_USER.into(),
        name: "Célia Regina Gonçalves".into(),
        email: "celia.goncalves@esperanca.example.com".into(),
        profile: "SECRETARIA".into(),
        interactive: true,
    })?;
    db.add_user(&RmUser {
        login: DEMO_RM_USER_NO_PERMISSION.into(),
        name: "Otávio Brandão".into(),
        email: "otavio.brandao@esperanca.example.com".into(),
        profile: "DOCENTE".into(),
        interactive: true,
    })?;
    db.add_user(&RmUser {
        login: DEMO_RM_USER_JOB.into(),
        name: "Agendador de processos".into(),
        email: "jobs@esperanca.example.com".into(),
        profile: "JOBS".into(),
        interactive: false,
    })?;
    db.set_params(&json!({
        "request_timeout_secs": 30,
        "max_concurrency": 8,
        "recipient_auth_type": "login",
        "document_name_template": "Contrato {codcontrato} - {aluno}",
    }))?;
    Ok(())
}

struct DemoFamily {
    code: &'static str,
    name: &'static str,
    cpf: Option<&'static str>,
    email: Option<&'static str>,
    students: &'static [(&'static str, &'static str, &'static str)], // (ra, name, birth date)
}

const DEMO_FAMILIES: &[DemoFamily] = &[
    DemoFamily {
        code: "R001",
        name: "Maria da Conceição Ávila",
        cpf: Some("BASE:123456789"),
        email: Some("maria.avila@example.com"),
        students: &[
            ("2026001", "João Ávila", "2007-03-14"),
            ("2026002", "Luíza Ávila", "2008-11-02"),
        ],
    },
    DemoFamily {
        code: "R002",
        name: "José Antônio Gonçalves",
        cpf: Some("BASE:234567891"),
        email: Some("jose.goncalves@example.com"),
        students: &[("2026003", "Ana Letícia Gonçalves", "2006-07-21")],
    },
    DemoFamily {
        code: "R003",
        name: "Fernanda Araújo Lima",
        cpf: Some("BASE:345678912"),
        email: Some("fernanda.lima@example.com"),
        students: &[
            ("2026004", "Pedro Araújo Lima", "2005-01-30"),
            ("2026005", "Inês Araújo Lima", "2007-09-09"),
        ],
    },
    DemoFamily {
        code: "R004",
        name: "Sebastião Conceição",
        cpf: Some("BASE:456789123"),
        email: None, // no e-mail: the plugin reports this contract as failed
        students: &[("2026006", "Tânia Conceição", "2006-12-25")],
    },
    DemoFamily {
        code: "R005",
        name: "Márcia Brandão",
        cpf: Some("111.222.333-44"), // invalid check digits
        email: Some("marcia.brandao@example.com"),
        students: &[("2026007", "Caio Brandão", "2007-05-17")],
    },
    DemoFamily {
        code: "R006",
        name: "Raimundo Nonato Píres",
        cpf: Some("BASE:567891234"),
        email: Some("raimundo.pires@example.com"),
        students: &[("2026008", "Débora Píres", "2004-02-29")],
    },
    DemoFamily {
        code: "R007",
        name: "Cláudia Simões",
        cpf: Some("BASE:678912345"),
        email: Some("claudia.simoes@example.com"),
        students: &[("2026009", "Vinícius Simões", "2006-08-08")],
    },
    DemoFamily {
        code: "R008",
        name: "Antônio Carlos Müller",
        cpf: Some("BASE:789123456"),
        email: Some("antonio.muller@example.com"),
        students: &[("2026010", "Bárbara Müller", "2005-10-10")],
    },
    DemoFamily {
        code: "R009",
        name: "Lúcia Helena Assunção",
        cpf: Some("BASE:891234567"),
        email: Some("lucia.assuncao@example.com"),
        students: &[("2026011", "Gustavo Assunção", "2007-04-01")],
    },
    DemoFamily {
        code: "R010",
        name: "Benedito Magalhães",
        cpf: Some("BASE:912345678"),
        email: Some("benedito.magalhaes@example.com"),
        students: &[
            ("2026012", "Letícia Magalhães", "2006-06-06"),
            ("2026013", "Érico Magalhães", "2008-01-15"),
        ],
    },
    DemoFamily {
        code: "R011",
        name: "Conceição Aparecida Façanha",
        cpf: Some("BASE:135792468"),
        email: Some("conceicao.facanha@example.com"),
        students: &[("2026014", "Thaís Façanha", "2005-12-12")],
    },
];

/// The demo school: 14 contracts of period 2026/1 over two courses, with siblings sharing one
/// financial responsible, accented names, a responsible without e-mail (R004), one with an
/// invalid CPF (R005), and the RM users of [`seed_base`].
pub fn seed_demo(db: &SchoolDb) -> DbResult<Vec<String>> {
    seed_base(db)?;
    let mut keys = Vec::new();
    let mut n = 0i64;
    for fam in DEMO_FAMILIES {
        let cpf = fam.cpf.map(|c| match c.strip_prefix("BASE:") {
            Some(base) => cpf_from_base(base.parse().unwrap_or(0)),
            None => c.to_string(),
        });
        db.add_responsible(&FinancialResponsible {
            code: fam.code.into(),
            name: fam.name.into(),
            cpf,
            email: fam.email.map(str::to_string),
        })?;
        for (ra, name, birth) in fam.students {
            db.add_student(ra, name, Some(birth), Some(fam.code))?;
            let course = DEMO_COURSES[(n % 2) as usize];
            let (value, installments) = if course == DEMO_COURSES[0] {
                (128_950, 12)
            } else {
                (64_900, 6)
            };
            let codfilial = if n % 5 == 4 { 2 } else { 1 };
            keys.push(db.add_contract(
                1,
                codfilial,
                &(145 + n).to_string(),
                ra,
                course,
                DEMO_PERIOD,
                "Ativo",
                value,
                installments,
                None,
            )?);
            n += 1;
        }
    }
    Ok(keys)
}

/// `n` contracts for reliability tests and benchmarks, all valid (distinct valid responsibles
/// with valid e-mails and CPFs; every fourth student is a sibling of the previous one and shares
/// the responsible). Answers the contract keys.
pub fn seed_bulk(db: &SchoolDb, n: usize) -> DbResult<Vec<String>> {
    seed_base(db)?;
    let tx = db.conn().unchecked_transaction()?;
    let mut keys = Vec::with_capacity(n);
    let mut resp_code = String::new();
    let first_names = [
        "Ana", "Bruno", "Cecília", "Diogo", "Élida", "Fábio", "Glória", "Hélio",
    ];
    let last_names = [
        "Souza",
        "Araújo",
        "Gonçalves",
        "Conceição",
        "Lima",
        "Simões",
        "Brandão",
    ];
    for i in 0..n {
        if i % 4 != 3 || i == 0 {
            resp_code = format!("B{i:06}");
            db.add_responsible(&FinancialResponsible {
                code: resp_code.clone(),
                name: format!(
                    "{} {} {i}",
                    first_names[i % first_names.len()],
                    last_names[(i / 3) % last_names.len()]
                ),
                cpf: Some(cpf_from_base(100_000_000 + i as u32 * 7919)),
                email: Some(format!("resp{i:06}@example.com")),
            })?;
        }
        let ra = format!("B{i:06}");
        db.add_student(
            &ra,
            &format!("Aluno {} {i}", last_names[i % last_names.len()]),
            Some("2007-01-01"),
            Some(&resp_code),
        )?;
        let course = DEMO_COURSES[i % 2];
        keys.push(db.add_contract(
            1,
            1,
            &(100_000 + i).to_string(),
            &ra,
            course,
            DEMO_PERIOD,
            "Ativo",
            99_000,
            12,
            None,
        )?);
    }
    tx.commit()?;
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpf_check_digits() {
        assert_eq!(cpf_from_base(529_982_247), "529.982.247-25");
        assert!(cpf_is_valid("529.982.247-25"));
        assert!(cpf_is_valid("52998224725"));
        assert!(!cpf_is_valid("529.982.247-24"));
        assert!(!cpf_is_valid("111.111.111-11"));
        assert!(!cpf_is_valid("111.222.333-44"));
        assert!(cpf_is_valid(DEMO_RM_USER_CPF));
        for b in [0u32, 1, 123_456_789, 987_654_320] {
            let c = cpf_from_base(b);
            assert!(c.len() == 14);
            if b != 0 {
                assert!(cpf_is_valid(&c), "{c}");
            }
        }
    }

    #[test]
    fn demo_seed_has_the_promised_cases() {
        let db = SchoolDb::in_memory().unwrap();
        let keys = seed_demo(&db).unwrap();
        assert!(keys.len() >= 12);
        let all = db.all_contracts().unwrap();
        assert_eq!(all.len(), keys.len());
        let mut by_resp = std::collections::HashMap::new();
        for c in &all {
            let r = c.financial_responsible.as_ref().unwrap();
            *by_resp.entry(r.code.clone()).or_insert(0) += 1;
        }
        assert!(by_resp.values().any(|n| *n >= 2), "siblings");
        let no_email = all
            .iter()
            .filter(|c| c.financial_responsible.as_ref().unwrap().email.is_none())
            .count();
        assert_eq!(no_email, 1);
        let bad_cpf = all
            .iter()
            .filter(|c| {
                !cpf_is_valid(
                    c.financial_responsible
                        .as_ref()
                        .unwrap()
                        .cpf
                        .as_deref()
                        .unwrap_or(""),
                )
            })
            .count();
        assert_eq!(bad_cpf, 1);
        assert!(all
            .iter()
            .any(|c| c.student_name.contains('Á') || c.student_name.contains('í')));
        assert_eq!(
            all.iter()
                .map(|c| &c.course)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            2
        );
    }

    #[test]
    fn bulk_seed_is_valid_with_sharing() {
        let db = SchoolDb::in_memory().unwrap();
        let keys = seed_bulk(&db, 50).unwrap();
        assert_eq!(keys.len(), 50);
        let all = db.all_contracts().unwrap();
        assert_eq!(all.len(), 50);
        let mut resp = std::collections::HashSet::new();
        for c in &all {
            let r = c.financial_responsible.as_ref().unwrap();
            assert!(cpf_is_valid(r.cpf.as_deref().unwrap()), "{:?}", r.cpf);
            assert!(r.email.as_deref().unwrap().contains('@'));
            resp.insert(r.code.clone());
        }
        assert!(resp.len() < 50 && resp.len() > 30, "{}", resp.len());
    }
}
