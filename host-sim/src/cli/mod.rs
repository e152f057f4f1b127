//! The `host-sim` command line: the arguments (help in Portuguese), the session every command
//! opens (database, plugin, TAE, screens), and the commands.

mod commands;
pub mod dbfile;
pub mod exit;
mod interrupt;
mod session;

use clap::builder::PossibleValue;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use host_sim::seed::DEMO_RM_USER;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "host-sim",
    version,
    about = "Host TOTVS RM simulado para o plugin tae-edu (TOTVS Educacional ⇄ TOTVS Assinatura Eletrônica)",
    after_help = exit::HELP
)]
pub struct Cli {
    /// A biblioteca do plugin (padrão: a libtae_edu desta compilação, ou a variável TAE_EDU_LIB).
    #[arg(long, global = true, value_name = "ARQUIVO")]
    lib: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// O processo inteiro, de ponta a ponta, contra um tae-sim embutido, sem nenhuma pergunta.
    Demo {
        /// Pasta do banco de dados e dos PDFs (recriada).
        #[arg(long, default_value = "demo-output", value_name = "PASTA")]
        output: PathBuf,
        /// Sem barra de progresso.
        #[arg(long)]
        no_progress: bool,
    },
    /// Executa uma opção do processo (enviar, excluir, atualizar e-mails, conferir, baixar, conciliar) sobre contratos.
    #[command(after_help = exit::HELP)]
    Execute(ExecuteArgs),
    /// Parâmetros globais (a aba de configuração do RM): descrever, mostrar, validar, gravar, testar.
    #[command(after_help = exit::HELP)]
    Configure(ConfigureArgs),
    /// Lista o anexo de integração (todos os documentos enviados), com filtros e páginas.
    #[command(after_help = exit::HELP)]
    Attachments(AttachmentArgs),
    /// Cria um banco de dados da escola (a escola da demo, ou N contratos).
    Seed {
        /// O arquivo do banco de dados a criar.
        #[arg(long, value_name = "ARQUIVO")]
        db: PathBuf,
        /// N contratos de teste em vez da escola da demo.
        #[arg(long, value_name = "N")]
        bulk: Option<usize>,
        /// Recria um banco que já tem dados (apaga contratos, e-mails e registros de integração).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// O banco de dados da escola (criado por `seed` ou `demo`; nunca por outro comando).
    #[arg(long, default_value = dbfile::DEFAULT_DB, value_name = "ARQUIVO")]
    db: PathBuf,
    /// O endereço base do TAE (ex.: https://totvssign.staging.totvs.app, ou um tae-sim rodando), só
    /// para este comando; sem ele, um tae-sim embutido é iniciado. Em `configure set`, grava-o nos
    /// parâmetros globais.
    #[arg(long, value_name = "URL")]
    tae_url: Option<String>,
    /// O usuário RM logado.
    #[arg(long, default_value = DEMO_RM_USER, value_name = "LOGIN")]
    user: String,
    /// O identificador da sessão RM.
    #[arg(long, default_value = "rm-sessao-cli", value_name = "ID")]
    session: String,
    /// Tela de autenticação: o e-mail (com --password). Com o tae-sim embutido, o padrão é o administrador dele.
    #[arg(long, env = "TAE_EMAIL", value_name = "E-MAIL")]
    email: Option<String>,
    /// Tela de autenticação: a senha.
    #[arg(
        long,
        env = "TAE_PASSWORD",
        hide_env_values = true,
        value_name = "SENHA"
    )]
    password: Option<String>,
    /// Tela de CPF: o CPF a responder.
    #[arg(long, value_name = "CPF")]
    cpf: Option<String>,
    /// Um arquivo JSON que responde as telas: {"auth": [{"email","password"}|{"cancel":true}], "cpf": [{"cpf"}|{"cancel":true}]}.
    #[arg(long, value_name = "ARQUIVO")]
    script: Option<PathBuf>,
    /// Pergunta as telas no terminal mesmo quando há outras respostas.
    #[arg(long)]
    interactive: bool,
    /// Mostra a resposta JSON do plugin como veio (senhas mascaradas).
    #[arg(long)]
    json: bool,
    /// Mostra as linhas de log do plugin até este nível (1 erro … 5 trace).
    #[arg(long, default_value_t = 2, value_name = "NÍVEL", value_parser = clap::value_parser!(i32).range(0..=5))]
    log_level: i32,
}

/// The options of `execute`: the plugin's names, and the Portuguese ones a secretary would type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecOption {
    Send,
    Delete,
    UpdateEmails,
    Check,
    Download,
    Reconcile,
}

impl ExecOption {
    /// (plugin name, Portuguese alias, description)
    const ALL: [(ExecOption, &'static str, &'static str, &'static str); 6] = [
        (ExecOption::Send, "send", "enviar", "envia para assinatura"),
        (
            ExecOption::Delete,
            "delete",
            "excluir",
            "exclui o documento no TAE",
        ),
        (
            ExecOption::UpdateEmails,
            "update_emails",
            "atualizar_emails",
            "troca os e-mails dos destinatários",
        ),
        (
            ExecOption::Check,
            "check",
            "conferir",
            "confere as assinaturas",
        ),
        (
            ExecOption::Download,
            "download",
            "baixar",
            "baixa os documentos",
        ),
        (
            ExecOption::Reconcile,
            "reconcile",
            "conciliar",
            "concilia os registros com o TAE (simulação, ou --fix para corrigir)",
        ),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(o, ..)| *o == self)
            .map(|(_, n, ..)| *n)
            .unwrap_or("send")
    }
}

impl ValueEnum for ExecOption {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            ExecOption::Send,
            ExecOption::Delete,
            ExecOption::UpdateEmails,
            ExecOption::Check,
            ExecOption::Download,
            ExecOption::Reconcile,
        ]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        let (_, name, alias, help) = Self::ALL.iter().find(|(o, ..)| o == self)?;
        Some(PossibleValue::new(*name).alias(*alias).help(*help))
    }
}

#[derive(Args)]
struct ExecuteArgs {
    #[command(flatten)]
    common: Common,
    /// A opção: send (enviar), delete (excluir), update_emails (atualizar_emails), check (conferir), download (baixar), reconcile (conciliar).
    #[arg(long, value_name = "OPÇÃO", ignore_case = true)]
    option: ExecOption,
    /// Chaves de contratos (visão de contratos), separadas por vírgula: codcoligada;ra;codcontrato.
    #[arg(long, value_delimiter = ',', value_name = "CHAVES")]
    keys: Vec<String>,
    /// Identificadores de registros de integração (anexo, coluna Registro), separados por vírgula.
    #[arg(long, value_delimiter = ',', value_name = "REGISTROS")]
    records: Vec<String>,
    /// Filtro do menu: período letivo (padrão 2026/1).
    #[arg(long, value_name = "PERÍODO")]
    period: Option<String>,
    /// Filtro do menu: curso.
    #[arg(long, value_name = "CURSO")]
    course: Option<String>,
    /// Filtro do menu: situação do contrato (ex.: Ativo), em maiúsculas ou minúsculas.
    #[arg(long, value_name = "SITUAÇÃO")]
    status: Option<String>,
    /// Filtro do menu: coligada.
    #[arg(long, default_value_t = 1, value_name = "CÓDIGO")]
    coligada: i64,
    /// send: um arquivo PDF em vez do relatório do contrato.
    #[arg(long, value_name = "ARQUIVO")]
    file: Option<PathBuf>,
    /// send: o código do relatório.
    #[arg(long, default_value = "EDU.CONTRATO", value_name = "CÓDIGO")]
    report: String,
    /// send: guarda uma cópia dos PDFs gerados pelo relatório (em <pasta dos arquivos>/pdfs/enviados).
    #[arg(long)]
    keep_pdfs: bool,
    /// download: 1 original, 2 assinado com manifesto, 3 assinado digitalmente, 4 zip.
    #[arg(long, default_value_t = 2, value_name = "TIPO", value_parser = clap::value_parser!(i64).range(1..=4))]
    kind: i64,
    /// reconcile: aplica as correções seguras (sem esta opção, só simula: nada é alterado).
    #[arg(long, alias = "corrigir")]
    fix: bool,
    /// reconcile: documentos do TAE criados a partir desta data (dd/mm/aaaa).
    #[arg(long, alias = "de", value_name = "DATA", value_parser = br_date, requires = "to")]
    from: Option<String>,
    /// reconcile: documentos do TAE criados até esta data (dd/mm/aaaa).
    #[arg(long, alias = "ate", value_name = "DATA", value_parser = br_date, requires = "from")]
    to: Option<String>,
    /// Onde gravar os arquivos baixados e os PDFs guardados (padrão: a pasta do banco de dados).
    #[arg(long, value_name = "PASTA")]
    files_dir: Option<PathBuf>,
    /// Parâmetros extras em JSON (sobrepostos aos montados a partir das opções).
    #[arg(long, value_name = "JSON")]
    params: Option<String>,
}

/// What `configure` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ConfigureAction {
    /// Os campos da aba de configuração.
    #[value(alias = "descrever")]
    Describe,
    /// Os parâmetros gravados (senha mascarada).
    #[value(alias = "mostrar")]
    Show,
    /// Valida os parâmetros gravados (com --values por cima), sem gravar nada.
    #[value(alias = "validar")]
    Validate,
    /// Valida pelo plugin e grava --values (e --tae-url) por cima dos parâmetros gravados.
    #[value(alias = "gravar")]
    Set,
    /// Testa a conexão: login, latência, permissões no TAE.
    #[value(alias = "testar")]
    Test,
}

#[derive(Args)]
struct ConfigureArgs {
    #[command(flatten)]
    common: Common,
    /// O que fazer: describe (descrever), show (mostrar), validate (validar), set (gravar), test (testar).
    #[arg(value_name = "AÇÃO", ignore_case = true)]
    action: ConfigureAction,
    /// validate/set/test: campos em JSON, sobrepostos aos parâmetros gravados (null remove um campo).
    #[arg(long, value_name = "JSON")]
    values: Option<String>,
}

fn record_status(s: &str) -> Result<String, String> {
    host_sim::table::parse_record_status(s).map(str::to_string)
}

fn br_date(s: &str) -> Result<String, String> {
    host_sim::table::parse_br_date(s)
}

#[derive(Args)]
struct AttachmentArgs {
    #[command(flatten)]
    common: Common,
    /// Situação do documento: Enviando, Rascunho, Pendente, Assinado parcialmente, Finalizado,
    /// Rejeitado, Cancelado, Falhou (maiúsculas ou minúsculas).
    #[arg(long, value_name = "SITUAÇÃO", value_parser = record_status)]
    status: Option<String>,
    /// Chave do contrato: codcoligada;ra;codcontrato.
    #[arg(long, value_name = "CHAVE")]
    contract: Option<String>,
    /// Login RM de quem enviou.
    #[arg(long, value_name = "LOGIN")]
    sent_by: Option<String>,
    /// Enviados a partir desta data (dd/mm/aaaa).
    #[arg(long, value_name = "DATA", value_parser = br_date)]
    sent_from: Option<String>,
    /// Enviados até esta data, inclusive (dd/mm/aaaa).
    #[arg(long, value_name = "DATA", value_parser = br_date)]
    sent_to: Option<String>,
    /// A página (a partir de 1).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    page: i64,
    /// Registros por página (1 a 500).
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(i64).range(1..=500))]
    page_size: i64,
}

/// Columns of an option's help text (after the ~25 of the option's name).
const HELP_WIDTH: usize = 88;

/// Portuguese headings, help flags and value notes for every command (clap writes English).
fn localize(cmd: clap::Command, root: bool) -> clap::Command {
    // clap writes "[OPTIONS]": the usage line is written here, with the required arguments.
    let required: Vec<String> = cmd
        .get_arguments()
        .filter(|a| a.is_required_set())
        .map(|a| {
            let value = a
                .get_value_names()
                .and_then(|n| n.first())
                .map(|n| format!("<{n}>"))
                .unwrap_or_default();
            match a.get_long() {
                Some(l) => format!("--{l} {value}"),
                None => value,
            }
        })
        .collect();
    let usage = if root {
        "host-sim [OPÇÕES] <COMANDO>".to_string()
    } else {
        format!(
            "host-sim {} [OPÇÕES] {}",
            cmd.get_name(),
            required.join(" ")
        )
        .trim_end()
        .to_string()
    };
    let mut cmd = cmd
        .override_usage(usage)
        .help_template("{about-with-newline}\nUso: {usage}\n\n{all-args}{after-help}")
        .subcommand_help_heading("Comandos")
        .subcommand_value_name("COMANDO")
        .disable_help_flag(true)
        .disable_help_subcommand(true)
        .arg(
            clap::Arg::new("ajuda")
                .short('h')
                .long("help")
                .action(clap::ArgAction::Help)
                .help("Mostra esta ajuda"),
        );
    if root {
        cmd = cmd.disable_version_flag(true).arg(
            clap::Arg::new("versao")
                .short('V')
                .long("version")
                .action(clap::ArgAction::Version)
                .help("Mostra a versão"),
        );
    }
    cmd = cmd.mut_args(|a| {
        let mut help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        let defaults: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let takes_value = a.get_action().takes_values();
        if takes_value && !defaults.is_empty() {
            help.push_str(&format!(" [padrão: {}]", defaults.join(", ")));
        }
        if let Some(env) = a.get_env() {
            help.push_str(&format!(" [ou a variável {}]", env.to_string_lossy()));
        }
        let heading = if a.is_positional() {
            "Argumentos"
        } else {
            "Opções"
        };
        let a = if takes_value {
            a.hide_default_value(true).hide_possible_values(true)
        } else {
            a
        };
        // clap writes help on one line (no wrapping without a terminal-size dependency): the
        // text is wrapped here so that rows stay within ~120 columns.
        let help = host_sim::table::wrap(&help, HELP_WIDTH).join("\n");
        let a = a.hide_env(true).help(help);
        if a.get_help_heading().is_none() {
            a.help_heading(heading)
        } else {
            a
        }
    });
    cmd.mut_subcommands(|s| localize(s, false))
}

fn context_text(v: &ContextValue) -> String {
    match v {
        ContextValue::String(s) => s.clone(),
        ContextValue::Strings(ss) => ss.join(", "),
        ContextValue::StyledStr(s) => s.to_string(),
        ContextValue::StyledStrs(ss) => ss
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        ContextValue::Number(n) => n.to_string(),
        ContextValue::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// The Portuguese aliases of an option's accepted values (`--option`: enviar, excluir, …).
fn value_aliases(cmd: &clap::Command, invalid_arg: &str) -> Vec<String> {
    let long = invalid_arg
        .trim_start_matches("--")
        .split([' ', '='])
        .next()
        .unwrap_or("");
    let mut out = Vec::new();
    let mut stack = vec![cmd];
    while let Some(c) = stack.pop() {
        for a in c.get_arguments() {
            let matches = a.get_long() == Some(long)
                || (a.is_positional()
                    && a.get_value_names()
                        .is_some_and(|n| n.iter().any(|n| invalid_arg.contains(n.as_str()))));
            if matches {
                for pv in a.get_possible_values() {
                    for alias in pv.get_name_and_aliases().skip(1) {
                        if !out.iter().any(|x| x == alias) {
                            out.push(alias.to_string());
                        }
                    }
                }
            }
        }
        stack.extend(c.get_subcommands());
    }
    out
}

/// A command-line error in Portuguese, naming the option and the accepted values.
fn usage_error_text(e: &clap::Error, cmd: &clap::Command) -> String {
    let get = |k: ContextKind| e.get(k).map(context_text).unwrap_or_default();
    let arg = get(ContextKind::InvalidArg);
    let value = get(ContextKind::InvalidValue);
    let mut text = match e.kind() {
        ErrorKind::InvalidValue => {
            let mut t = if value.is_empty() {
                format!("falta o valor de {arg}")
            } else {
                format!("{arg} não aceita o valor \"{value}\"")
            };
            let valid = get(ContextKind::ValidValue);
            if !valid.is_empty() {
                t.push_str(&format!("; valores aceitos: {valid}"));
                let aliases = value_aliases(cmd, &arg);
                if !aliases.is_empty() {
                    t.push_str(&format!(" (ou {})", aliases.join(", ")));
                }
            }
            t
        }
        ErrorKind::ValueValidation => {
            let why = std::error::Error::source(e)
                .map(|s| s.to_string())
                .unwrap_or_default();
            let why = translate_validation(&why);
            format!("{arg} não aceita o valor \"{value}\": {why}")
        }
        ErrorKind::UnknownArgument => format!("opção desconhecida: {arg}"),
        ErrorKind::InvalidSubcommand => format!(
            "comando desconhecido: {}; comandos: demo, execute, configure, attachments, seed",
            get(ContextKind::InvalidSubcommand)
        ),
        ErrorKind::MissingRequiredArgument => {
            format!("falta informar: {arg}")
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "falta o comando: demo, execute, configure, attachments ou seed".into()
        }
        ErrorKind::ArgumentConflict => format!(
            "{arg} não pode ser usada junto com {}",
            get(ContextKind::PriorArg)
        ),
        ErrorKind::TooManyValues => {
            format!("valor a mais: \"{value}\"")
        }
        ErrorKind::WrongNumberOfValues | ErrorKind::TooFewValues => {
            format!("número errado de valores para {arg}")
        }
        ErrorKind::InvalidUtf8 => "um argumento não é texto UTF-8 válido".into(),
        _ => "linha de comando inválida".into(),
    };
    let suggested = get(ContextKind::SuggestedArg);
    if !suggested.is_empty() {
        text.push_str(&format!(" (quis dizer {suggested}?)"));
    }
    let suggested = get(ContextKind::SuggestedSubcommand);
    if !suggested.is_empty() {
        text.push_str(&format!(" (quis dizer {suggested}?)"));
    }
    text
}

/// clap's own range and number messages, in Portuguese.
fn translate_validation(why: &str) -> String {
    if let Some(rest) = why.strip_prefix("invalid digit found in string") {
        return format!("não é um número{rest}");
    }
    if why.starts_with("cannot parse integer from empty string") {
        return "não é um número".into();
    }
    if let Some(rest) = why.strip_suffix(" is not in 1..=4") {
        return format!("{rest} está fora de 1 a 4");
    }
    // "0 is not in 1..=500", "0 is not in 1..", "9 is not in 0..=5"
    if let Some((v, range)) = why.split_once(" is not in ") {
        return match range.split_once("..") {
            Some((lo, "")) => format!("{v} é menor que {lo}; aceito: {lo} ou mais"),
            // An open range clap writes with the type's maximum.
            Some((lo, hi)) if hi.trim_start_matches('=').len() > 15 => {
                format!("o menor valor aceito é {lo}")
            }
            Some((lo, hi)) => format!(
                "{v} está fora do intervalo aceito, de {lo} a {}",
                hi.trim_start_matches('=')
            ),
            None => why.to_string(),
        };
    }
    why.to_string()
}

/// Parses the command line; help and version print and exit 0; errors print in Portuguese and
/// exit 2.
fn parse() -> Result<Cli, ExitCode> {
    let cmd = localize(Cli::command(), true);
    let matches = match cmd.clone().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return Err(exit::code(exit::OK));
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return Err(exit::code(exit::USAGE));
            }
            eprintln!("host-sim: {}", usage_error_text(&e, &cmd));
            eprintln!("Veja `host-sim --help` (ou `host-sim <comando> --help`).");
            return Err(exit::code(exit::USAGE));
        }
    };
    Cli::from_arg_matches(&matches).map_err(|e| {
        eprintln!("host-sim: {}", usage_error_text(&e, &cmd));
        exit::code(exit::USAGE)
    })
}

/// A command's failure: what to say and the exit code.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn cannot_run(message: impl Into<String>) -> Self {
        Failure {
            code: exit::CANNOT_RUN,
            message: message.into(),
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: exit::USAGE,
            message: message.into(),
        }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::cannot_run(message)
    }
}

pub fn main() -> ExitCode {
    let cli = match parse() {
        Ok(c) => c,
        Err(code) => return code,
    };
    host_sim::install_crypto_provider();
    let result = match cli.command {
        Command::Demo {
            output,
            no_progress,
        } => commands::demo(&cli.lib, output, no_progress),
        Command::Execute(a) => commands::execute(&cli.lib, a),
        Command::Configure(a) => commands::configure(&cli.lib, a),
        Command::Attachments(a) => commands::attachments(&cli.lib, a),
        Command::Seed { db, bulk, force } => commands::seed(&db, bulk, force),
    };
    match result {
        Ok(code) => exit::code(code),
        Err(f) => {
            eprintln!(
                "{}",
                host_sim::table::fit(&format!("host-sim: {}", f.message))
            );
            exit::code(f.code)
        }
    }
}
