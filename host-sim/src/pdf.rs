//! The contract report (`EDU.CONTRATO`) rendered to a real PDF with printpdf.
//!
//! Built-in Helvetica with WinAnsi encoding covers Portuguese (ã, ç, é, ô, …); characters outside
//! Latin-1/CP1252 would need an embedded font, so the renderer replaces them (printpdf writes
//! `?`) — the demo data stays within Latin-1. The output is deterministic: the same contract
//! renders to the same bytes (fixed document dates), so its SHA-256 is stable across reruns.

use crate::db::Contract;
use printpdf::{
    BuiltinFont, Color, Line, LinePoint, Mm, Op, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, Rgb, TextItem,
};

/// The report code the host knows how to render.
pub const CONTRACT_REPORT_CODE: &str = "EDU.CONTRATO";

/// Options of the contract report.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// Extra clauses appended at the end (e.g. to make big PDFs in tests).
    pub extra_clauses: Vec<String>,
}

const PAGE_W: f32 = 210.0;
const PAGE_H: f32 = 297.0;
const MARGIN_X: f32 = 20.0;
const TOP: f32 = 275.0;
const BOTTOM: f32 = 22.0;
/// Characters per line of 10 pt Helvetica across 170 mm (Helvetica averages ~0.5 em).
const WRAP_AT: usize = 92;

#[derive(Clone, Copy)]
enum Style {
    Title,
    Heading,
    Body,
    Bold,
    Small,
}

impl Style {
    fn font(self) -> (BuiltinFont, f32) {
        match self {
            Style::Title => (BuiltinFont::HelveticaBold, 15.0),
            Style::Heading => (BuiltinFont::HelveticaBold, 11.0),
            Style::Body => (BuiltinFont::Helvetica, 10.0),
            Style::Bold => (BuiltinFont::HelveticaBold, 10.0),
            Style::Small => (BuiltinFont::Helvetica, 8.0),
        }
    }
    fn line_height_mm(self) -> f32 {
        match self {
            Style::Title => 8.0,
            Style::Heading => 6.5,
            Style::Body | Style::Bold => 5.0,
            Style::Small => 4.0,
        }
    }
}

enum Block {
    Text(Style, String),
    Gap(f32),
    Rule,
    Signature(String),
    PageBreak,
}

/// Formats cents as Brazilian reais: `R$ 1.289,50`.
pub fn brl(cents: i64) -> String {
    let neg = cents < 0;
    let cents = cents.unsigned_abs();
    let reais = (cents / 100).to_string();
    // Thousands separated by dots, grouping from the right.
    let digits: Vec<char> = reais.chars().collect();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|g| g.iter().collect())
        .collect();
    let grouped = groups.join(".");
    format!(
        "{}R$ {},{:02}",
        if neg { "-" } else { "" },
        grouped,
        cents % 100
    )
}

/// `2007-03-14` → `14/03/2007` (anything else unchanged).
fn br_date(iso: &str) -> String {
    match chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d") {
        Ok(d) => d.format("%d/%m/%Y").to_string(),
        Err(_) => iso.to_string(),
    }
}

/// Greedy word wrap at `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

fn clauses(c: &Contract) -> Vec<(String, String)> {
    let resp = c
        .financial_responsible
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_else(|| "o(a) CONTRATANTE".into());
    vec![
        ("CLÁUSULA PRIMEIRA - DO OBJETO".into(), format!(
            "O presente contrato tem por objeto a prestação de serviços educacionais ao(à) aluno(a) {}, \
             RA {}, no curso {}, período letivo {}, na {} da {}, conforme o projeto pedagógico, o calendário \
             escolar e o regimento interno da instituição, que o(a) CONTRATANTE declara conhecer e aceitar.",
            c.student_name, c.ra, c.course, c.period, c.unit_name, c.school_name)),
        ("CLÁUSULA SEGUNDA - DO VALOR E DA FORMA DE PAGAMENTO".into(), format!(
            "Pelos serviços contratados, o(a) CONTRATANTE pagará à CONTRATADA o valor total de {}, dividido em \
             {} parcelas mensais e sucessivas de {}, com vencimento no dia 10 (dez) de cada mês, por boleto \
             bancário ou PIX. O pagamento até o vencimento dá direito a desconto de pontualidade de 5% (cinco por cento).",
            brl(c.total_value_cents()), c.installments, brl(c.monthly_value_cents))),
        ("CLÁUSULA TERCEIRA - DO ATRASO".into(),
            "O atraso no pagamento de qualquer parcela acarretará multa de 2% (dois por cento), juros de mora de 1% \
             (um por cento) ao mês, calculados pro rata die, e correção monetária pelo IPCA, sem prejuízo das demais \
             medidas previstas em lei, observado o Código de Defesa do Consumidor.".into()),
        ("CLÁUSULA QUARTA - DAS OBRIGAÇÕES DA CONTRATADA".into(),
            "A CONTRATADA obriga-se a ministrar as aulas e demais atividades previstas no plano de ensino, com \
             professores habilitados, em instalações adequadas, e a fornecer ao(à) aluno(a) os documentos escolares \
             a que tiver direito, na forma da legislação educacional vigente.".into()),
        ("CLÁUSULA QUINTA - DAS OBRIGAÇÕES DO(A) CONTRATANTE".into(), format!(
            "Cabe a {resp}, na qualidade de responsável financeiro(a), manter seus dados cadastrais atualizados \
             (endereço, telefone e e-mail), efetuar os pagamentos nas datas acordadas e acompanhar a frequência e o \
             rendimento escolar do(a) aluno(a).")),
        ("CLÁUSULA SEXTA - DA RESCISÃO".into(),
            "O presente contrato poderá ser rescindido por qualquer das partes mediante comunicação por escrito com \
             antecedência mínima de 30 (trinta) dias, ficando o(a) CONTRATANTE obrigado(a) ao pagamento das parcelas \
             vencidas até a data do efetivo desligamento. O trancamento de matrícula segue as regras do regimento.".into()),
        ("CLÁUSULA SÉTIMA - DA PROTEÇÃO DE DADOS".into(),
            "As partes tratarão os dados pessoais envolvidos neste contrato em conformidade com a Lei nº 13.709/2018 \
             (LGPD), exclusivamente para as finalidades de execução do contrato, cumprimento de obrigações legais e \
             comunicação acadêmica, adotando medidas de segurança técnicas e administrativas adequadas.".into()),
        ("CLÁUSULA OITAVA - DA ASSINATURA ELETRÔNICA".into(),
            "As partes reconhecem a validade da assinatura eletrônica deste instrumento por meio do TOTVS Assinatura \
             Eletrônica, nos termos da Medida Provisória nº 2.200-2/2001 e da Lei nº 14.063/2020, dispensada a \
             assinatura física e o reconhecimento de firma.".into()),
        ("CLÁUSULA NONA - DO FORO".into(), format!(
            "Fica eleito o foro da comarca de {} para dirimir quaisquer questões oriundas deste contrato, com \
             renúncia expressa de qualquer outro, por mais privilegiado que seja.",
            c.unit_city)),
    ]
}

fn blocks(c: &Contract, opts: &ReportOptions) -> Vec<Block> {
    let mut b = Vec::new();
    let text = |s: Style, t: String| Block::Text(s, t);
    b.push(text(Style::Title, c.school_name.clone()));
    b.push(text(
        Style::Small,
        format!("CNPJ {} - {} - {}", c.school_cnpj, c.unit_name, c.unit_city),
    ));
    b.push(Block::Rule);
    b.push(text(
        Style::Heading,
        "CONTRATO DE PRESTAÇÃO DE SERVIÇOS EDUCACIONAIS".into(),
    ));
    b.push(text(
        Style::Small,
        format!(
            "Contrato nº {} - Coligada {} / Filial {} - Situação: {}",
            c.codcontrato, c.codcoligada, c.codfilial, c.status
        ),
    ));
    b.push(Block::Gap(3.0));
    b.push(text(Style::Heading, "DAS PARTES".into()));
    b.push(text(
        Style::Body,
        format!(
            "CONTRATADA: {}, inscrita no CNPJ sob o nº {}, com sede em {}.",
            c.school_name, c.school_cnpj, c.unit_city
        ),
    ));
    match &c.financial_responsible {
        Some(r) => b.push(text(
            Style::Body,
            format!(
                "CONTRATANTE (responsável financeiro): {}, CPF {}, e-mail {}, código {}.",
                r.name,
                r.cpf
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("não informado"),
                r.email
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("não informado"),
                r.code
            ),
        )),
        None => b.push(text(
            Style::Body,
            "CONTRATANTE (responsável financeiro): não informado.".into(),
        )),
    }
    b.push(text(
        Style::Body,
        format!(
            "ALUNO(A): {}, RA {}, nascido(a) em {}.",
            c.student_name,
            c.ra,
            c.student_birth_date
                .as_deref()
                .map(br_date)
                .unwrap_or_else(|| "data não informada".into())
        ),
    ));
    b.push(Block::Gap(2.0));
    b.push(text(Style::Heading, "DADOS DO CURSO".into()));
    for (label, value) in [
        ("Curso", c.course.clone()),
        ("Período letivo", c.period.clone()),
        ("Unidade", format!("{} ({})", c.unit_name, c.unit_city)),
        ("Valor total", brl(c.total_value_cents())),
        (
            "Parcelas",
            format!("{} x {}", c.installments, brl(c.monthly_value_cents)),
        ),
    ] {
        b.push(text(Style::Body, format!("{label}: {value}")));
    }
    b.push(Block::Gap(3.0));
    let mut all_clauses = clauses(c);
    for (i, extra) in opts.extra_clauses.iter().enumerate() {
        all_clauses.push((format!("CLÁUSULA ADICIONAL {}", i + 1), extra.clone()));
    }
    for (title, body) in all_clauses {
        b.push(text(Style::Bold, title));
        for line in wrap(&body, WRAP_AT) {
            b.push(text(Style::Body, line));
        }
        b.push(Block::Gap(2.5));
    }
    // The closing and the signatures never share the first page (every contract has at least
    // two pages, as RM's report does).
    b.push(Block::PageBreak);
    b.push(text(
        Style::Body,
        format!(
            "E, por estarem justas e contratadas, as partes assinam o presente instrumento eletronicamente. \
             {}, período letivo {}.",
            c.unit_city, c.period
        ),
    ));
    b.push(Block::Gap(14.0));
    b.push(Block::Signature(format!(
        "CONTRATANTE: {}",
        c.financial_responsible
            .as_ref()
            .map(|r| r.name.as_str())
            .unwrap_or("responsável financeiro")
    )));
    b.push(Block::Gap(14.0));
    b.push(Block::Signature(format!("CONTRATADA: {}", c.school_name)));
    b
}

fn text_at(ops: &mut Vec<Op>, x: f32, y: f32, style: Style, s: &str) {
    let (font, size) = style.font();
    ops.push(Op::StartTextSection);
    ops.push(Op::SetFont {
        font: PdfFontHandle::Builtin(font),
        size: Pt(size),
    });
    ops.push(Op::SetTextCursor {
        pos: Point::new(Mm(x), Mm(y)),
    });
    ops.push(Op::ShowText {
        items: vec![TextItem::Text(s.to_string())],
    });
    ops.push(Op::EndTextSection);
}

fn hline(ops: &mut Vec<Op>, x0: f32, x1: f32, y: f32) {
    ops.push(Op::SetOutlineColor {
        col: Color::Rgb(Rgb::new(0.3, 0.3, 0.3, None)),
    });
    ops.push(Op::SetOutlineThickness { pt: Pt(0.6) });
    ops.push(Op::DrawLine {
        line: Line {
            points: vec![
                LinePoint {
                    p: Point::new(Mm(x0), Mm(y)),
                    bezier: false,
                },
                LinePoint {
                    p: Point::new(Mm(x1), Mm(y)),
                    bezier: false,
                },
            ],
            is_closed: false,
        },
    });
}

/// The report's date: the start of the contract's period (`2026/1` → 1 January 2026, `2026/2`
/// → 1 July 2026), midnight in Brasília (UTC−03:00, Brazil has no daylight saving time since
/// 2019). A date of the contract, not of the rendering, keeps the bytes the same on every
/// render.
fn report_date(period: &str) -> String {
    let (year, term) = period.split_once('/').unwrap_or((period, "1"));
    let year: u32 = year
        .trim()
        .parse()
        .ok()
        .filter(|y| (1900..=9999).contains(y))
        .unwrap_or(2026);
    let month = if term.trim() == "2" { 7 } else { 1 };
    format!("D:{year:04}{month:02}01000000-03'00'")
}

/// printpdf's document information, mended: its dates are 1970 and it writes an empty
/// `GTS_PDFXVersion` (PDF/X marker) with which `pdfinfo` calls the file PDF/X.
fn fix_info(lo: &mut lopdf::Document, contract: &Contract) {
    let Ok(info_id) = lo.trailer.get(b"Info").and_then(|o| o.as_reference()) else {
        return;
    };
    let Ok(info) = lo.get_dictionary_mut(info_id) else {
        return;
    };
    let date = report_date(&contract.period);
    for key in ["CreationDate", "ModDate"] {
        info.set(
            key,
            lopdf::Object::String(date.clone().into_bytes(), lopdf::StringFormat::Literal),
        );
    }
    for key in ["GTS_PDFXVersion", "Trapped"] {
        info.remove(key.as_bytes());
    }
    for key in ["Producer", "Keywords", "Identifier"] {
        let empty =
            matches!(info.get(key.as_bytes()), Ok(lopdf::Object::String(s, _)) if s.is_empty());
        if empty {
            info.remove(key.as_bytes());
        }
    }
}

/// Renders the contract report; at least two pages (the clauses and the signature block flow
/// onto the second page), each with a footer "Página N de M".
pub fn render_contract_pdf(contract: &Contract, opts: &ReportOptions) -> Vec<u8> {
    let blocks = blocks(contract, opts);
    // Lay out into pages of ops.
    let mut pages: Vec<Vec<Op>> = vec![Vec::new()];
    let mut y = TOP;
    let new_page = |pages: &mut Vec<Vec<Op>>, y: &mut f32| {
        pages.push(Vec::new());
        *y = TOP;
    };
    // Wrap every body paragraph to the page width.
    let blocks: Vec<Block> = blocks
        .into_iter()
        .flat_map(|b| match b {
            Block::Text(Style::Body, t) => wrap(&t, WRAP_AT)
                .into_iter()
                .map(|l| Block::Text(Style::Body, l))
                .collect::<Vec<_>>(),
            other => vec![other],
        })
        .collect();
    for block in &blocks {
        let needed = match block {
            Block::Text(s, _) => s.line_height_mm(),
            Block::Gap(g) => *g,
            Block::Rule => 4.0,
            Block::Signature(_) => 12.0,
            Block::PageBreak => 0.0,
        };
        if matches!(block, Block::PageBreak) {
            // Only while still on the first page: the contract always has two pages or more.
            if pages.len() == 1 {
                new_page(&mut pages, &mut y);
            }
            continue;
        }
        if y - needed < BOTTOM {
            new_page(&mut pages, &mut y);
        }
        let ops = pages.last_mut().expect("at least one page");
        match block {
            Block::Text(style, s) => {
                y -= style.line_height_mm();
                text_at(ops, MARGIN_X, y, *style, s);
            }
            Block::Gap(g) => y -= g,
            Block::Rule => {
                y -= 2.0;
                hline(ops, MARGIN_X, PAGE_W - MARGIN_X, y);
                y -= 2.0;
            }
            Block::Signature(label) => {
                y -= 6.0;
                hline(ops, MARGIN_X + 20.0, PAGE_W - MARGIN_X - 20.0, y);
                y -= 5.0;
                text_at(ops, MARGIN_X + 20.0, y, Style::Small, label);
                y -= 1.0;
            }
            Block::PageBreak => {}
        }
    }
    let total = pages.len();
    let mut doc = PdfDocument::new(&format!(
        "Contrato {} - {}",
        contract.codcontrato, contract.student_name
    ));
    doc.metadata.info.author = contract.school_name.clone();
    doc.metadata.info.creator = "host-sim (TOTVS RM simulado)".into();
    doc.metadata.info.subject = "Contrato de prestação de serviços educacionais".into();
    let pdf_pages: Vec<PdfPage> = pages
        .into_iter()
        .enumerate()
        .map(|(i, mut ops)| {
            text_at(
                &mut ops,
                MARGIN_X,
                12.0,
                Style::Small,
                &format!(
                    "{} - Contrato nº {} - Página {} de {}",
                    contract.school_name,
                    contract.codcontrato,
                    i + 1,
                    total
                ),
            );
            PdfPage::new(Mm(PAGE_W), Mm(PAGE_H), ops)
        })
        .collect();
    let mut warnings = Vec::new();
    doc.with_pages(pdf_pages);
    let mut lo = doc.to_lopdf_document(&PdfSaveOptions::default(), &mut warnings);
    // printpdf writes a random trailer /ID; a fixed one (from the contract's identity) makes the
    // bytes, and so the SHA-256 the plugin records, the same on every render.
    let id = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{}|{}", contract.key(), contract.school_cnpj));
        digest[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    lo.trailer.set(
        "ID",
        lopdf::Object::Array(vec![
            lopdf::Object::String(id.clone().into_bytes(), lopdf::StringFormat::Literal),
            lopdf::Object::String(id.into_bytes(), lopdf::StringFormat::Literal),
        ]),
    );
    fix_info(&mut lo, contract);
    let mut bytes = Vec::new();
    if lo.save_to(&mut bytes).is_err() {
        // Writing to a Vec does not fail; should it, printpdf's own writer still gives a PDF.
        return doc.save(&PdfSaveOptions::default(), &mut warnings);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::SchoolDb;

    fn contract() -> Contract {
        let db = SchoolDb::in_memory().unwrap();
        crate::seed::seed_demo(&db).unwrap();
        db.all_contracts()
            .unwrap()
            .into_iter()
            .find(|c| c.student_name == "João Ávila")
            .unwrap()
    }

    #[test]
    fn document_info_has_the_period_date_and_no_pdfx_marker() {
        assert_eq!(report_date("2026/1"), "D:20260101000000-03'00'");
        assert_eq!(report_date("2025/2"), "D:20250701000000-03'00'");
        assert_eq!(report_date("x"), "D:20260101000000-03'00'");
        let pdf = render_contract_pdf(&contract(), &ReportOptions::default());
        let doc = lopdf::Document::load_mem(&pdf).unwrap();
        let info_id = doc.trailer.get(b"Info").unwrap().as_reference().unwrap();
        let info = doc.get_dictionary(info_id).unwrap();
        let date = |k: &str| match info.get(k.as_bytes()).unwrap() {
            lopdf::Object::String(s, _) => String::from_utf8_lossy(s).into_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(date("CreationDate"), "D:20260101000000-03'00'");
        assert_eq!(date("ModDate"), "D:20260101000000-03'00'");
        assert!(info.get(b"GTS_PDFXVersion").is_err());
        assert!(!pdf.windows(4).any(|w| w == b"1970"));
        // Still the same bytes on every render.
        assert_eq!(
            pdf,
            render_contract_pdf(&contract(), &ReportOptions::default())
        );
        // What poppler says, where it is installed (the assertions above hold either way).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contrato.pdf");
        std::fs::write(&path, &pdf).unwrap();
        if let Ok(out) = std::process::Command::new("pdfinfo").arg(&path).output() {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{text}");
            assert!(
                text.contains("CreationDate:") && text.contains("2026"),
                "{text}"
            );
            assert!(
                !text.contains("1970") && !text.contains("PDF subtype"),
                "{text}"
            );
            assert!(text.contains("Custom Metadata: no"), "{text}");
        }
    }

    #[test]
    fn money_format() {
        assert_eq!(brl(128_950), "R$ 1.289,50");
        assert_eq!(brl(5), "R$ 0,05");
        assert_eq!(brl(1_547_400), "R$ 15.474,00");
        assert_eq!(brl(100_000_000), "R$ 1.000.000,00");
    }

    #[test]
    fn wraps_words() {
        let lines = wrap("aaa bbb ccc ddd", 7);
        assert_eq!(lines, vec!["aaa bbb", "ccc ddd"]);
        assert!(wrap(&"palavra ".repeat(100), WRAP_AT)
            .iter()
            .all(|l| l.chars().count() <= WRAP_AT));
    }

    #[test]
    fn renders_two_pages_with_accents_and_is_deterministic() {
        let c = contract();
        let pdf = render_contract_pdf(&c, &ReportOptions::default());
        assert!(pdf.starts_with(b"%PDF-"));
        let doc = lopdf::Document::load_mem(&pdf).expect("lopdf parses the contract");
        let pages = doc.get_pages();
        assert!(pages.len() >= 2, "{} pages", pages.len());
        let all_text = doc
            .extract_text(&pages.keys().copied().collect::<Vec<_>>())
            .unwrap_or_default();
        // WinAnsi bytes decode back to the accented letters.
        for needle in [
            "João Ávila",
            "Conceição",
            "PRESTAÇÃO DE SERVIÇOS",
            "até a data",
            "Enfermagem",
            "2026/1",
            "R$ 1.289,50",
            "CLÁUSULA",
        ] {
            assert!(
                all_text.contains(needle) || all_text.replace('\n', " ").contains(needle),
                "missing {needle:?} in extracted text"
            );
        }
        assert_eq!(pdf, render_contract_pdf(&c, &ReportOptions::default()));
    }

    /// `qpdf --check` (Debian package `qpdf`) must accept the contract.
    #[test]
    fn qpdf_accepts_the_contract() {
        let qpdf = std::process::Command::new("qpdf").arg("--version").output();
        assert!(
            qpdf.map(|o| o.status.success()).unwrap_or(false),
            "qpdf is required for this test: install it (Debian/Ubuntu: apt-get install qpdf)"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contrato.pdf");
        std::fs::write(
            &path,
            render_contract_pdf(&contract(), &ReportOptions::default()),
        )
        .unwrap();
        let out = std::process::Command::new("qpdf")
            .arg("--check")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "qpdf --check failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn extra_clauses_make_more_pages() {
        let c = contract();
        let small = render_contract_pdf(&c, &ReportOptions::default());
        let big = render_contract_pdf(
            &c,
            &ReportOptions {
                extra_clauses: vec![
                    "Texto adicional de cláusula, com acentuação. ".repeat(40);
                    10
                ],
            },
        );
        let n = |b: &[u8]| lopdf::Document::load_mem(b).unwrap().get_pages().len();
        assert!(n(&big) > n(&small));
    }
}
